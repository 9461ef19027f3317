#include "executors/slurm/slurm_status.h"

#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/shell.h"

namespace evald::executors {
namespace {

constexpr char kSacctFields[] = "jobid,jobname,state,exitcode";

bool IsJobId(absl::string_view id) {
  if (id.empty()) return false;
  for (char c : id) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c)) && c != '_') return false;
  }
  return true;
}

std::string FirstWord(absl::string_view s) {
  s = absl::StripAsciiWhitespace(s);
  return std::string(s.substr(0, s.find(' ')));
}

// "3:0" -> 3; "0:15" -> 143; "" -> nullopt.
std::optional<int> ParseExitCode(absl::string_view text) {
  std::vector<absl::string_view> parts = absl::StrSplit(text, ':');
  int code = 0, signal = 0;
  if (parts.empty() || !absl::SimpleAtoi(parts[0], &code)) return std::nullopt;
  if (parts.size() > 1 && absl::SimpleAtoi(parts[1], &signal) && code == 0 && signal > 0) {
    return 128 + signal;
  }
  return code;
}

}  // namespace

std::string SqueueCommand(const std::vector<std::string>& ids) {
  return absl::StrCat("squeue -h -t all -j ", ShellQuote(absl::StrJoin(ids, ",")),
                      " -o '%i|%T|%r|%j'");
}

std::string SacctCommand(const std::vector<std::string>& ids) {
  const std::string j = ShellQuote(absl::StrJoin(ids, ","));
  return absl::StrCat("sacct -n -P -X -o ", kSacctFields, " -j ", j,
                      " 2>/dev/null || sacct -c -n -P -o ", kSacctFields, " -j ", j);
}

std::string FindByNameCommand(const std::string& name) {
  const std::string n = ShellQuote(name);
  // Both answers, marked, in one round trip; the jobcomp file cannot filter by name itself.
  return absl::StrCat("echo '@squeue'; squeue -h -t all -n ", n, " -o '%i|%T|%r|%j' || exit 1; ",
                      "out=$(sacct -n -P -X -S now-30days -o ", kSacctFields, " --name ", n,
                      " 2>/dev/null || sacct -c -n -P -o ", kSacctFields, ") || exit 1; ",
                      "echo '@sacct'; printf '%s\\n' \"$out\" | grep -F -- ",
                      ShellQuote(absl::StrCat("|", name, "|")), "; exit 0");
}

bool SqueueKnowsNone(int exit_code, const std::string& err) {
  return exit_code == 1 && absl::StrContains(err, "Invalid job id");
}

std::map<std::string, SlurmJobStatus> ParseSqueue(const std::string& text) {
  std::map<std::string, SlurmJobStatus> out;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipWhitespace())) {
    std::vector<std::string> f = absl::StrSplit(absl::StripAsciiWhitespace(line), '|');
    if (f.size() != 4 || !IsJobId(f[0]) || f[1].empty()) continue;
    SlurmJobStatus s{.id = f[0], .name = f[3], .state = FirstWord(f[1]), .reason = f[2]};
    if (s.reason == "None") s.reason.clear();
    out[s.id] = s;
  }
  return out;
}

std::map<std::string, std::vector<SlurmJobStatus>> ParseSacct(const std::string& text) {
  std::map<std::string, std::vector<SlurmJobStatus>> out;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipWhitespace())) {
    std::vector<std::string> f = absl::StrSplit(absl::StripAsciiWhitespace(line), '|');
    if (f.size() != 4 || !IsJobId(f[0]) || f[2].empty()) continue;
    out[f[0]].push_back(
        {.id = f[0], .name = f[1], .state = FirstWord(f[2]), .exit_code = ParseExitCode(f[3])});
  }
  return out;
}

bool IsFinalSlurmState(const std::string& state) {
  static const std::set<std::string> kFinal = {
      "COMPLETED", "FAILED",   "CANCELLED",     "TIMEOUT",      "PREEMPTED", "NODE_FAIL",
      "BOOT_FAIL", "DEADLINE", "OUT_OF_MEMORY", "SPECIAL_EXIT", "REVOKED"};
  return kFinal.count(state) > 0;
}

std::string DescribeSlurmStatus(const SlurmJobStatus& s) {
  std::string out = s.state;
  if (!s.reason.empty()) absl::StrAppend(&out, " (", s.reason, ")");
  if (s.state == "FAILED" && s.exit_code) absl::StrAppend(&out, " (exit code ", *s.exit_code, ")");
  return out;
}

Observation ObservationFor(const SlurmJobStatus& s) {
  Observation obs;
  obs.message = absl::StrCat("SLURM job ", s.id, " ", DescribeSlurmStatus(s));
  const std::string& st = s.state;
  if (st == "COMPLETED") {
    obs.kind = Observation::Kind::kExited;
    obs.exit_code = 0;
  } else if (st == "FAILED") {
    obs.kind = Observation::Kind::kExited;
    obs.exit_code = s.exit_code.value_or(1) == 0 ? 1 : s.exit_code.value_or(1);
  } else if (st == "CANCELLED" || st == "TIMEOUT" || st == "PREEMPTED" || st == "DEADLINE") {
    // SLURM ends these with SIGTERM (then SIGKILL after KillWait).
    obs.kind = Observation::Kind::kExited;
    obs.exit_code = 143;
  } else if (st == "OUT_OF_MEMORY") {
    obs.kind = Observation::Kind::kExited;
    obs.exit_code = 137;
  } else if (IsFinalSlurmState(st)) {  // NODE_FAIL, BOOT_FAIL, SPECIAL_EXIT, REVOKED
    obs.kind = Observation::Kind::kExited;
    obs.exit_code = 1;
  } else if (st == "PENDING" || st == "CONFIGURING" || absl::StartsWith(st, "REQUEUE") ||
             st == "RESV_DEL_HOLD") {
    obs.kind = Observation::Kind::kSubmitted;
  } else {
    // RUNNING, COMPLETING, SUSPENDED, STOPPED, SIGNALING, STAGE_OUT, RESIZING: allocated.
    obs.kind = Observation::Kind::kRunning;
  }
  return obs;
}

}  // namespace evald::executors
