#include "cli/format.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <map>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace evald::cli {
namespace {

constexpr int64_t kSecondMs = 1000;
constexpr int64_t kMinuteMs = 60 * kSecondMs;
constexpr int64_t kHourMs = 60 * kMinuteMs;
constexpr int64_t kDayMs = 24 * kHourMs;

std::string OrDash(const std::string& s) { return s.empty() ? "-" : s; }

// Display width of UTF-8 text (code points; evalctl prints no wide characters).
size_t Width(absl::string_view s) {
  size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

std::string Pad(absl::string_view s, size_t width) {
  std::string out(s);
  size_t w = Width(s);
  if (w < width) out.append(width - w, ' ');
  return out;
}

// Indents every line of `text` by `prefix`; keeps a trailing newline.
std::string Indent(absl::string_view text, absl::string_view prefix) {
  std::string out;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!out.empty()) out += '\n';
    if (!line.empty()) absl::StrAppend(&out, prefix, line);
  }
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out + "\n";
}

std::string FormatValue(double v) {
  if (std::isnan(v)) return "nan";
  return absl::StrFormat("%.4f", v);
}

// Shortest text that reads back as the same double (nlohmann's number printer); "" for NaN.
std::string ExactNumber(double v) {
  if (!std::isfinite(v)) return "";
  return Json(v).dump();
}

// The executor labels its ids itself (Executor::Describe: "pid 123", a SLURM job id, ...).
std::string BackendLabel(absl::string_view backend_id) {
  return backend_id.empty() ? "-" : std::string(backend_id);
}

}  // namespace

// ---- Names -------------------------------------------------------------------------------------

// Only adapters: the names and terminality are core's (core/lifecycle.h), the enum mapping is
// proto/state_enums.h.

std::string StateName(v1::JobState state) {
  std::optional<JobState> s = FromProto(state);
  return s ? std::string(ToString(*s)) : "unknown";
}

std::optional<v1::JobState> ParseStateName(absl::string_view name) {
  std::optional<JobState> s = ParseJobState(name);
  if (!s) return std::nullopt;
  return ToProto(*s);
}

bool IsTerminal(v1::JobState state) {
  std::optional<JobState> s = FromProto(state);
  return s && evald::IsTerminal(*s);
}

std::string ExitReasonName(v1::ExitReason reason) {
  std::optional<ExitReason> r = FromProto(reason);
  return r && *r != ExitReason::kNone ? std::string(ToString(*r)) : "";
}

std::string DeploymentStateName(v1::DeploymentState state) {
  std::optional<DeploymentState> s = FromProto(state);
  return s ? std::string(ToString(*s)) : "unknown";
}

bool IsJobId(absl::string_view id) { return absl::StrContains(id, '.'); }

// ---- Time --------------------------------------------------------------------------------------

std::string FormatDuration(int64_t ms) {
  if (ms < 0) ms = 0;
  if (ms < kSecondMs) return absl::StrCat(ms, "ms");
  if (ms < kMinuteMs) return absl::StrCat(ms / kSecondMs, "s");
  if (ms < kHourMs) {
    return absl::StrFormat("%dm%02ds", ms / kMinuteMs, (ms % kMinuteMs) / kSecondMs);
  }
  if (ms < kDayMs) return absl::StrFormat("%dh%02dm", ms / kHourMs, (ms % kHourMs) / kMinuteMs);
  return absl::StrFormat("%dd%dh", ms / kDayMs, (ms % kDayMs) / kHourMs);
}

std::string FormatAge(int64_t then_ms, int64_t now_ms) {
  if (then_ms <= 0) return "-";
  int64_t age = now_ms - then_ms;
  if (age < kSecondMs) return "just now";
  if (age < kMinuteMs) return absl::StrCat(age / kSecondMs, "s ago");
  if (age < kHourMs) return absl::StrCat(age / kMinuteMs, "m ago");
  if (age < kDayMs) return absl::StrCat(age / kHourMs, "h ago");
  return absl::StrCat(age / kDayMs, "d ago");
}

std::string FormatLocalTime(int64_t ms) {
  if (ms <= 0) return "-";
  std::time_t secs = static_cast<std::time_t>(ms / kSecondMs);
  std::tm tm{};
  if (localtime_r(&secs, &tm) == nullptr) return "-";
  char buf[32];
  size_t n = std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  return std::string(buf, n);
}

absl::StatusOr<int64_t> ParseSince(absl::string_view text, int64_t now_ms) {
  auto invalid = [&] {
    return absl::InvalidArgumentError(absl::StrCat(
        "Invalid --since value: ", text, ". Use YYYY-MM-DD, YYYY-MM-DDTHH:MM:SS, Nd or Nh"));
  };
  auto all_digits = [](absl::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
      return absl::ascii_isdigit(static_cast<unsigned char>(c));
    });
  };
  // Relative: Nd or Nh.
  if (text.size() >= 2 && (text.back() == 'd' || text.back() == 'h')) {
    absl::string_view num = text.substr(0, text.size() - 1);
    int64_t n = 0;
    // Bounded so the subtraction below cannot overflow (a million days is ~2700 years).
    if (!all_digits(num) || num.size() > 7 || !absl::SimpleAtoi(num, &n)) return invalid();
    return now_ms - n * (text.back() == 'd' ? kDayMs : kHourMs);
  }
  // Absolute: YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS, local time.
  if (text.size() != 10 && text.size() != 19) return invalid();
  if (text[4] != '-' || text[7] != '-') return invalid();
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  auto field = [&](size_t pos, size_t len, int* out) {
    absl::string_view f = text.substr(pos, len);
    return all_digits(f) && absl::SimpleAtoi(f, out);
  };
  if (!field(0, 4, &year) || !field(5, 2, &month) || !field(8, 2, &day)) return invalid();
  if (text.size() == 19) {
    if (text[10] != 'T' || text[13] != ':' || text[16] != ':') return invalid();
    if (!field(11, 2, &hour) || !field(14, 2, &minute) || !field(17, 2, &second)) {
      return invalid();
    }
  }
  static constexpr int kDaysInMonth[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  if (year < 1970 || month < 1 || month > 12) return invalid();
  int max_day = kDaysInMonth[month - 1] + (month == 2 && leap ? 1 : 0);
  if (day < 1 || day > max_day || hour > 23 || minute > 59 || second > 59) return invalid();
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  tm.tm_isdst = -1;
  std::time_t t = std::mktime(&tm);
  if (t == static_cast<std::time_t>(-1)) return invalid();
  return static_cast<int64_t>(t) * kSecondMs;
}

// ---- Progress ----------------------------------------------------------------------------------

std::string FormatProgress(const v1::Progress& p) {
  if (p.total() > 0) {
    int64_t pct = std::min<int64_t>(100, p.done() * 100 / p.total());
    return absl::StrCat(p.done(), "/", p.total(), " (", pct, "%)");
  }
  if (p.done() > 0) return absl::StrCat(p.done());
  return "-";
}

std::string RenderProgressBar(int64_t done, int64_t total, int width) {
  int inner = std::max(1, width - 2);
  int filled = 0;
  if (total > 0 && done > 0) {
    filled = static_cast<int>(std::min<int64_t>(inner, done * inner / total));
  }
  return absl::StrCat("[", std::string(filled, '#'), std::string(inner - filled, '-'), "]");
}

std::string FormatExit(const v1::Job& job) {
  if (!IsTerminal(job.state()) && job.exit_reason() == v1::EXIT_REASON_UNSPECIFIED) return "-";
  if (job.exit_reason() == v1::EXIT_REASON_EXIT_CODE ||
      (job.exit_reason() == v1::EXIT_REASON_UNSPECIFIED && job.has_exit_code())) {
    return job.has_exit_code() ? absl::StrCat(job.exit_code()) : "exit_code";
  }
  std::string reason = ExitReasonName(job.exit_reason());
  if (reason.empty()) return "-";
  if (job.has_exit_code()) absl::StrAppend(&reason, " (", job.exit_code(), ")");
  return reason;
}

// ---- Tables ------------------------------------------------------------------------------------

std::string Table::Render() const {
  std::vector<size_t> widths(header_.size(), 0);
  for (size_t i = 0; i < header_.size(); ++i) widths[i] = Width(header_[i]);
  for (const auto& row : rows_) {
    for (size_t i = 0; i < row.size() && i < widths.size(); ++i) {
      widths[i] = std::max(widths[i], Width(row[i]));
    }
  }
  auto line = [&](const std::vector<std::string>& cells) {
    std::string out;
    for (size_t i = 0; i < widths.size(); ++i) {
      const std::string cell = i < cells.size() ? cells[i] : "";
      if (i > 0) out += "  ";
      out += (i + 1 == widths.size()) ? cell : Pad(cell, widths[i]);
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out + "\n";
  };
  std::string out = line(header_);
  std::vector<std::string> dashes;
  for (size_t w : widths) dashes.push_back(std::string(w, '-'));
  out += line(dashes);
  for (const auto& row : rows_) out += line(row);
  return out;
}

std::string RenderInvocationHeader(const v1::Invocation& inv, int64_t now_ms) {
  std::string out = absl::StrCat("invocation ", inv.invocation_id(), ": ", StateName(inv.state()));
  if (inv.created_ms() > 0)
    absl::StrAppend(&out, ", created ", FormatAge(inv.created_ms(), now_ms));
  if (inv.ended_ms() > 0 && inv.created_ms() > 0) {
    absl::StrAppend(&out, ", took ", FormatDuration(inv.ended_ms() - inv.created_ms()));
  }
  if (!inv.executor().empty()) absl::StrAppend(&out, ", executor ", inv.executor());
  return out + "\n";
}

std::string RenderStatusTable(const std::vector<v1::Invocation>& invocations, int64_t now_ms) {
  std::string out;
  for (const v1::Invocation& inv : invocations) {
    if (!out.empty()) out += "\n";
    out += RenderInvocationHeader(inv, now_ms);
    Table t({"job_id", "task", "state", "progress", "exit", "output_dir"});
    for (const v1::Job& j : inv.jobs()) {
      t.AddRow({j.job_id(), j.task(), StateName(j.state()), FormatProgress(j.progress()),
                FormatExit(j), OrDash(j.output_dir())});
    }
    out += t.Render();
  }
  return out;
}

std::string RenderRunsTable(const std::vector<v1::Invocation>& invocations) {
  Table t({"invocation_id", "created", "state", "jobs", "executor", "owner", "tasks"});
  for (const v1::Invocation& inv : invocations) {
    std::set<std::string> tasks(inv.tasks().begin(), inv.tasks().end());
    if (tasks.empty()) {
      for (const v1::Job& j : inv.jobs()) tasks.insert(j.task());
    }
    int jobs = inv.job_count() > 0 ? inv.job_count() : inv.jobs_size();
    t.AddRow({inv.invocation_id(), FormatLocalTime(inv.created_ms()), StateName(inv.state()),
              absl::StrCat(jobs), OrDash(inv.executor()), OrDash(inv.owner()),
              OrDash(absl::StrJoin(tasks, ","))});
  }
  return t.Render();
}

std::string RenderTasksTable(const v1::ListTasksResponse& response) {
  if (response.tasks_size() == 0) return "No tasks found.\n";
  // harness -> container -> tasks, both in order of first appearance (as the reference does).
  std::vector<std::string> harnesses;
  std::map<std::string, std::vector<std::string>> containers;
  std::map<std::pair<std::string, std::string>, std::vector<const v1::TaskInfo*>> groups;
  for (const v1::TaskInfo& t : response.tasks()) {
    if (!containers.count(t.harness())) harnesses.push_back(t.harness());
    auto& cs = containers[t.harness()];
    if (std::find(cs.begin(), cs.end(), t.container()) == cs.end()) cs.push_back(t.container());
    groups[{t.harness(), t.container()}].push_back(&t);
  }
  std::string out;
  for (const std::string& harness : harnesses) {
    for (const std::string& container : containers[harness]) {
      std::vector<const v1::TaskInfo*> rows = groups[{harness, container}];
      std::stable_sort(rows.begin(), rows.end(), [](const v1::TaskInfo* a, const v1::TaskInfo* b) {
        return a->name() < b->name();
      });
      size_t task_w = 4, ep_w = 13;  // "task", "endpoint_type"
      for (const v1::TaskInfo* r : rows) {
        task_w = std::max(task_w, r->name().size());
        ep_w = std::max(ep_w, r->endpoint_type().size());
      }
      task_w += 2;
      std::string harness_line = absl::StrCat("harness: ", harness);
      std::string container_line = absl::StrCat(
          "container: ", container.empty() ? "none (native, runs in evalrun)" : container);
      size_t width = std::max({harness_line.size(), container_line.size(), task_w + ep_w});
      size_t task_col = std::max(task_w, width * 2 / 3);
      width = std::max(width, task_col + ep_w);
      absl::StrAppend(&out, std::string(width, '='), "\n", harness_line, "\n", container_line, "\n",
                      std::string(width, ' '), "\n", Pad("task", task_col), "endpoint_type\n",
                      std::string(width, '-'), "\n");
      for (const v1::TaskInfo* r : rows) {
        absl::StrAppend(&out, Pad(r->name(), task_col), r->endpoint_type(), "\n");
      }
      absl::StrAppend(&out, std::string(width, '-'), "\n  ", rows.size(),
                      rows.size() == 1 ? " task available\n" : " tasks available\n",
                      std::string(width, '='), "\n\n");
    }
  }
  return out;
}

std::string PartialNote(const v1::JobResult& jr) {
  std::string note = jr.samples_total() > 0
                         ? absl::StrCat("partial (", jr.samples_scored(), " of ",
                                        jr.samples_total(), " samples)")
                         : "partial";
  if (jr.state() != v1::JOB_STATE_SUCCEEDED) absl::StrAppend(&note, ", job ", StateName(jr.state()));
  return note;
}

std::string RenderResultsTable(const v1::GetResultsResponse& results) {
  Table t({"job_id", "task", "metric", "score", "value", "± stderr", "n"});
  std::vector<std::string> without;
  for (const v1::JobResult& jr : results.jobs()) {
    if (jr.metrics_size() == 0) {
      without.push_back(absl::StrCat(jr.job_id(), " (", StateName(jr.state()), ")"));
      continue;
    }
    for (const v1::Metric& m : jr.metrics()) {
      bool stats = m.has_stats();
      t.AddRow({jr.job_id(), m.task().empty() ? jr.task() : m.task(), m.metric(), OrDash(m.score()),
                FormatValue(m.value()),
                stats ? absl::StrCat("± ", FormatValue(m.stats().stderr())) : "-",
                stats ? absl::StrCat(m.stats().count()) : "-"});
    }
  }
  std::string out;
  if (!t.empty()) out = t.Render();
  // Scores of a run that stopped early are not the task's result: say so under the table.
  bool first_partial = true;
  for (const v1::JobResult& jr : results.jobs()) {
    if (!jr.partial() || jr.metrics_size() == 0) continue;
    if (first_partial) out += "\n";
    first_partial = false;
    absl::StrAppend(&out, jr.job_id(), ": ", PartialNote(jr), "\n");
  }
  if (!without.empty()) {
    if (!out.empty()) out += "\n";
    absl::StrAppend(&out, "no results yet: ", absl::StrJoin(without, ", "), "\n");
  }
  if (out.empty()) out = "No results.\n";
  return out;
}

std::string RenderInfo(const v1::Invocation& inv, int64_t now_ms) {
  std::string out;
  auto kv = [&out](absl::string_view indent, absl::string_view key, absl::string_view value) {
    absl::StrAppend(&out, indent, Pad(key, 16), value, "\n");
  };
  kv("", "invocation", inv.invocation_id());
  kv("", "state",
     absl::StrCat(StateName(inv.state()),
                  inv.desired() == v1::DESIRED_STATE_STOP ? " (stop requested)" : ""));
  kv("", "created",
     absl::StrCat(FormatLocalTime(inv.created_ms()), " (", FormatAge(inv.created_ms(), now_ms),
                  ")"));
  kv("", "ended",
     inv.ended_ms() > 0 ? absl::StrCat(FormatLocalTime(inv.ended_ms()), " (took ",
                                       FormatDuration(inv.ended_ms() - inv.created_ms()), ")")
                        : "-");
  kv("", "run dir", OrDash(inv.run_dir()));
  kv("", "executor", OrDash(inv.executor()));
  kv("", "owner", OrDash(inv.owner()));
  kv("", "client", OrDash(inv.client()));
  kv("", "tasks", OrDash(absl::StrJoin(inv.tasks(), ", ")));
  if (inv.secret_names_size() > 0) kv("", "secrets", absl::StrJoin(inv.secret_names(), ", "));
  for (const v1::Job& j : inv.jobs()) {
    absl::StrAppend(&out, "\njob ", j.job_id(), "  ", j.task(), "\n");
    std::string state = StateName(j.state());
    if (j.attempt() > 0) absl::StrAppend(&state, " (attempt ", j.attempt(), ")");
    if (j.desired() == v1::DESIRED_STATE_STOP && !IsTerminal(j.state())) state += ", stopping";
    kv("  ", "state", state);
    if (!j.harness().empty()) kv("  ", "harness", j.harness());
    if (!j.container().empty()) kv("  ", "container", j.container());
    kv("  ", "output dir", OrDash(j.output_dir()));
    kv("  ", "backend id", BackendLabel(j.backend_id()));
    // Sorted by key (a proto map has no order).
    std::map<std::string, std::string> details(j.backend_details().begin(),
                                               j.backend_details().end());
    for (const auto& [key, value] : details) kv("  ", key, value);
    kv("  ", "started", FormatLocalTime(j.started_ms()));
    kv("  ", "ended",
       j.ended_ms() > 0 && j.started_ms() > 0
           ? absl::StrCat(FormatLocalTime(j.ended_ms()), " (ran ",
                          FormatDuration(j.ended_ms() - j.started_ms()), ")")
           : FormatLocalTime(j.ended_ms()));
    kv("  ", "exit", FormatExit(j));
    if (!j.message().empty()) kv("  ", "message", j.message());
    kv("  ", "progress", FormatProgress(j.progress()));
    if (!j.output_dir().empty()) {
      kv("  ", "stdout log", absl::StrCat(j.output_dir(), "/logs/stdout.log"));
      kv("  ", "stderr log", absl::StrCat(j.output_dir(), "/logs/stderr.log"));
      kv("  ", "results", absl::StrCat(j.output_dir(), "/artifacts/results.yml"));
    }
    // Auto-export: "export mlflow   succeeded (1 attempt): http://..."
    for (const v1::JobExport& e : j.exports()) {
      std::string detail = e.run_url().empty() ? e.message() : e.run_url();
      kv("  ", absl::StrCat("export ", e.dest()),
         absl::StrCat(ExportStateName(e.state()), " (", e.attempts(),
                      e.attempts() == 1 ? " attempt)" : " attempts)",
                      detail.empty() ? "" : ": ", detail));
    }
  }
  for (const v1::Deployment& d : inv.deployments()) {
    absl::StrAppend(&out, "\ndeployment ", d.deployment_id(), "  ", d.type(), "\n");
    kv("  ", "state", DeploymentStateName(d.state()));
    if (!d.job_id().empty()) kv("  ", "serves job", d.job_id());
    kv("  ", "url", OrDash(d.url()));
    if (!d.health_url().empty()) kv("  ", "health url", d.health_url());
    kv("  ", "backend id", BackendLabel(d.backend_id()));
    std::map<std::string, std::string> details(d.backend_details().begin(),
                                               d.backend_details().end());
    for (const auto& [key, value] : details) kv("  ", key, value);
    if (d.time_to_healthy_ms() > 0)
      kv("  ", "time to healthy", FormatDuration(d.time_to_healthy_ms()));
    if (!d.message().empty()) kv("  ", "message", d.message());
    if (!d.log_path().empty()) kv("  ", "log", d.log_path());
    if (!d.command().empty()) kv("  ", "command", d.command());
  }
  if (!inv.config_yaml().empty()) {
    absl::StrAppend(&out, "\nresolved config:\n", Indent(inv.config_yaml(), "  "));
  }
  return out;
}

std::string RenderSubmitted(const v1::SubmitResponse& r) {
  const std::string& id = r.invocation_id();
  std::string out = absl::StrCat("Submitted invocation ", id, " (", r.jobs_size(),
                                 r.jobs_size() == 1 ? " job" : " jobs");
  if (!r.run_dir().empty()) absl::StrAppend(&out, ", run dir ", r.run_dir());
  out += ")\n";
  Table t({"job_id", "task", "output_dir"});
  for (const v1::JobRef& j : r.jobs()) t.AddRow({j.job_id(), j.task(), OrDash(j.output_dir())});
  out += t.Render();
  absl::StrAppend(&out, "\nto follow it:       evalctl watch ", id, "\n",
                  "to check status:    evalctl status ", id, "\n",
                  "to kill all jobs:   evalctl kill ", id, "\n");
  if (r.jobs_size() > 0) {
    absl::StrAppend(&out, "to kill one job:    evalctl kill ", r.jobs(0).job_id(), "\n");
  }
  return out;
}

std::string RenderDryRun(const v1::SubmitResponse& r) {
  std::string out = "# Resolved config (dry run)\n";
  out += r.config_yaml();
  if (!out.empty() && out.back() != '\n') out += '\n';
  auto banner = [](absl::string_view title) {
    std::string line(72, '=');
    return absl::StrCat("\n", line, "\n", title, "\n", line, "\n");
  };
  for (const v1::JobRef& j : r.jobs()) {
    std::string title = absl::StrCat("job ", j.job_id(), ": ", j.task());
    if (!j.output_dir().empty()) absl::StrAppend(&title, " -> ", j.output_dir());
    out += banner(title);
    out += j.script();
    if (!j.script().empty() && j.script().back() != '\n') out += '\n';
  }
  if (!r.deployment_command().empty()) {
    out += banner("deployment command");
    absl::StrAppend(&out, r.deployment_command(), "\n");
  }
  absl::StrAppend(&out, "\nDry run: nothing was stored or started (", r.jobs_size(),
                  r.jobs_size() == 1 ? " job" : " jobs", " rendered).\n");
  return out;
}

// ---- JSON / CSV --------------------------------------------------------------------------------

Json ProgressJson(const v1::Progress& p) {
  Json j;
  j["done"] = p.done();
  j["total"] = p.total();
  j["rate"] = std::isfinite(p.rate()) ? p.rate() : 0.0;
  return j;
}

std::string ExportStateName(v1::ExportState s) {
  switch (s) {
    case v1::EXPORT_STATE_PENDING:
      return "pending";
    case v1::EXPORT_STATE_SUCCEEDED:
      return "succeeded";
    case v1::EXPORT_STATE_FAILED:
      return "failed";
    default:
      return "unknown";
  }
}

Json JobStatusJson(const v1::Job& job) {
  Json j;
  j["job_id"] = job.job_id();
  j["task"] = job.task();
  j["state"] = StateName(job.state());
  j["progress"] = ProgressJson(job.progress());
  j["output_dir"] = job.output_dir();
  std::string reason = ExitReasonName(job.exit_reason());
  j["exit_reason"] = reason.empty() ? Json() : Json(reason);
  j["exit_code"] = job.has_exit_code() ? Json(job.exit_code()) : Json();
  j["attempt"] = job.attempt();
  if (job.exports_size() > 0) {
    j["exports"] = Json::array();
    for (const v1::JobExport& e : job.exports()) {
      Json x;
      x["dest"] = e.dest();
      x["state"] = ExportStateName(e.state());
      x["attempts"] = e.attempts();
      x["message"] = e.message();
      x["run_url"] = e.run_url().empty() ? Json() : Json(e.run_url());
      j["exports"].push_back(std::move(x));
    }
  }
  return j;
}

Json InvocationStatusJson(const v1::Invocation& inv) {
  Json j;
  j["invocation_id"] = inv.invocation_id();
  j["state"] = StateName(inv.state());
  j["executor"] = inv.executor();
  j["created"] = inv.created_ms() > 0 ? Json(FormatLocalTime(inv.created_ms())) : Json();
  j["jobs"] = Json::array();
  for (const v1::Job& job : inv.jobs()) j["jobs"].push_back(JobStatusJson(job));
  return j;
}

Json SubmitJson(const v1::SubmitResponse& r) {
  Json j;
  j["invocation_id"] = r.invocation_id();
  j["dry_run"] = r.dry_run();
  j["run_dir"] = r.run_dir();
  j["jobs"] = Json::array();
  for (const v1::JobRef& job : r.jobs()) {
    Json o;
    o["job_id"] = job.job_id();
    o["task"] = job.task();
    o["output_dir"] = job.output_dir();
    if (r.dry_run()) o["script"] = job.script();
    j["jobs"].push_back(std::move(o));
  }
  if (r.dry_run()) {
    j["config"] = r.config_yaml();
    j["deployment_command"] = r.deployment_command();
  }
  return j;
}

Json InfoJson(const v1::Invocation& inv) {
  auto time_or_null = [](int64_t ms) { return ms > 0 ? Json(FormatLocalTime(ms)) : Json(); };
  Json j;
  j["invocation_id"] = inv.invocation_id();
  j["state"] = StateName(inv.state());
  j["stop_requested"] = inv.desired() == v1::DESIRED_STATE_STOP;
  j["executor"] = inv.executor();
  j["created"] = time_or_null(inv.created_ms());
  j["ended"] = time_or_null(inv.ended_ms());
  j["run_dir"] = inv.run_dir();
  j["client"] = inv.client();
  j["owner"] = inv.owner();
  j["tasks"] = Json(std::vector<std::string>(inv.tasks().begin(), inv.tasks().end()));
  j["secret_names"] =
      Json(std::vector<std::string>(inv.secret_names().begin(), inv.secret_names().end()));
  j["jobs"] = Json::array();
  for (const v1::Job& job : inv.jobs()) {
    Json o = JobStatusJson(job);
    o["harness"] = job.harness();
    o["container"] = job.container();
    o["executor"] = job.executor().empty() ? inv.executor() : job.executor();
    o["backend_id"] = job.backend_id();
    o["backend_details"] = Json::object();
    for (const auto& [key, value] : job.backend_details()) o["backend_details"][key] = value;
    o["message"] = job.message();
    o["started"] = time_or_null(job.started_ms());
    o["ended"] = time_or_null(job.ended_ms());
    if (!job.output_dir().empty()) {
      o["logs"] = {{"stdout", absl::StrCat(job.output_dir(), "/logs/stdout.log")},
                   {"stderr", absl::StrCat(job.output_dir(), "/logs/stderr.log")}};
    }
    j["jobs"].push_back(std::move(o));
  }
  j["deployments"] = Json::array();
  for (const v1::Deployment& d : inv.deployments()) {
    Json o;
    o["deployment_id"] = d.deployment_id();
    o["type"] = d.type();
    o["state"] = DeploymentStateName(d.state());
    o["job_id"] = d.job_id();
    o["url"] = d.url();
    o["health_url"] = d.health_url();
    o["backend_id"] = d.backend_id();
    o["backend_details"] = Json::object();
    for (const auto& [key, value] : d.backend_details()) o["backend_details"][key] = value;
    o["time_to_healthy_ms"] = d.time_to_healthy_ms();
    o["log_path"] = d.log_path();
    o["command"] = d.command();
    o["message"] = d.message();
    j["deployments"].push_back(std::move(o));
  }
  j["config"] = inv.config_yaml().empty() ? Json() : Json(inv.config_yaml());
  return j;
}

Json ResultsJson(const v1::GetResultsResponse& results) {
  Json arr = Json::array();
  for (const v1::JobResult& jr : results.jobs()) {
    for (const v1::Metric& m : jr.metrics()) {
      Json o;
      o["job_id"] = jr.job_id();
      o["task"] = m.task().empty() ? jr.task() : m.task();
      o["metric"] = m.metric();
      o["score"] = m.score();
      o["value"] = m.value();
      o["stderr"] = m.has_stats() ? Json(m.stats().stderr()) : Json();
      o["count"] = m.has_stats() ? Json(m.stats().count()) : Json();
      if (jr.partial()) {
        o["partial"] = true;
        o["samples_scored"] = jr.samples_scored();
        o["samples_total"] = jr.samples_total();
      }
      arr.push_back(std::move(o));
    }
  }
  return arr;
}

Json TasksJson(const v1::ListTasksResponse& response) {
  Json arr = Json::array();
  for (const v1::TaskInfo& t : response.tasks()) {
    Json o;
    o["task"] = t.name();
    o["endpoint_type"] = t.endpoint_type();
    o["harness"] = t.harness();
    o["container"] = t.container();
    arr.push_back(std::move(o));
  }
  Json j;
  j["tasks"] = std::move(arr);
  return j;
}

std::string CsvField(absl::string_view field) {
  if (field.find_first_of(",\"\r\n") == absl::string_view::npos) return std::string(field);
  std::string out = "\"";
  for (char c : field) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string ResultsCsv(const v1::GetResultsResponse& results) {
  std::string out = "job_id,task,metric,score,value,stderr,count,partial\n";
  for (const v1::JobResult& jr : results.jobs()) {
    for (const v1::Metric& m : jr.metrics()) {
      std::vector<std::string> row = {CsvField(jr.job_id()),
                                      CsvField(m.task().empty() ? jr.task() : m.task()),
                                      CsvField(m.metric()),
                                      CsvField(m.score()),
                                      ExactNumber(m.value()),
                                      m.has_stats() ? ExactNumber(m.stats().stderr()) : "",
                                      m.has_stats() ? absl::StrCat(m.stats().count()) : "",
                                      jr.partial() ? "true" : ""};
      absl::StrAppend(&out, absl::StrJoin(row, ","), "\n");
    }
  }
  return out;
}

}  // namespace evald::cli
