#include "executors/slurm/slurm_resume.h"

#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"

namespace evald::executors {

std::string SlurmChain::Text() const { return absl::StrJoin(ids, " -> "); }

std::string EncodeSlurmChain(const SlurmChain& c) {
  nlohmann::json j = {{"attempt", c.attempt},         {"ids", c.ids},
                      {"max_resumes", c.max_resumes}, {"walltime_s", c.walltime_s},
                      {"max_walltime_s", nullptr},    {"resubmitting", c.resubmitting},
                      {"stopped", c.stopped},         {"last_resume", c.last_resume}};
  if (c.max_walltime_s) j["max_walltime_s"] = *c.max_walltime_s;
  return j.dump() + "\n";
}

std::optional<SlurmChain> DecodeSlurmChain(absl::string_view text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  auto ids = j.find("ids");
  if (ids == j.end() || !ids->is_array()) return std::nullopt;
  SlurmChain c;
  for (const nlohmann::json& id : *ids) {
    if (!id.is_string()) return std::nullopt;
    c.ids.push_back(id.get<std::string>());
  }
  const auto integer = [&](const char* key, int64_t fallback) {
    auto it = j.find(key);
    return it != j.end() && it->is_number_integer() ? it->get<int64_t>() : fallback;
  };
  const auto boolean = [&](const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_boolean() && it->get<bool>();
  };
  c.attempt = static_cast<int>(integer("attempt", 0));
  c.max_resumes = static_cast<int>(integer("max_resumes", 0));
  c.walltime_s = integer("walltime_s", 0);
  if (auto it = j.find("max_walltime_s"); it != j.end() && it->is_number_integer()) {
    c.max_walltime_s = it->get<int64_t>();
  }
  c.resubmitting = boolean("resubmitting");
  c.stopped = boolean("stopped");
  if (auto it = j.find("last_resume"); it != j.end() && it->is_string()) {
    c.last_resume = it->get<std::string>();
  }
  return c;
}

absl::StatusOr<int64_t> SlurmTimeSeconds(absl::string_view text) {
  const auto bad = [&] {
    return absl::InvalidArgumentError(absl::StrCat("'", text, "' is not a SLURM time"));
  };
  int64_t days = 0;
  absl::string_view rest = text;
  const bool has_days = rest.find('-') != absl::string_view::npos;
  if (has_days) {
    size_t dash = rest.find('-');
    if (!absl::SimpleAtoi(rest.substr(0, dash), &days) || days < 0) return bad();
    rest = rest.substr(dash + 1);
  }
  std::vector<int64_t> parts;
  for (absl::string_view p : absl::StrSplit(rest, ':')) {
    int64_t v = 0;
    if (p.empty() || !absl::SimpleAtoi(p, &v) || v < 0) return bad();
    parts.push_back(v);
  }
  if (parts.empty() || parts.size() > 3) return bad();
  int64_t h = 0, m = 0, s = 0;
  if (has_days) {  // days-hours[:minutes[:seconds]]
    h = parts[0];
    if (parts.size() > 1) m = parts[1];
    if (parts.size() > 2) s = parts[2];
  } else if (parts.size() == 1) {  // minutes
    m = parts[0];
  } else if (parts.size() == 2) {  // minutes:seconds
    m = parts[0];
    s = parts[1];
  } else {  // hours:minutes:seconds
    h = parts[0];
    m = parts[1];
    s = parts[2];
  }
  return ((days * 24 + h) * 60 + m) * 60 + s;
}

std::string FormatSlurmTime(int64_t seconds) {
  const int64_t days = seconds / 86400;
  const int64_t rest = seconds % 86400;
  std::string hms = absl::StrFormat("%02d:%02d:%02d", rest / 3600, (rest % 3600) / 60, rest % 60);
  return days > 0 ? absl::StrCat(days, "-", hms) : hms;
}

bool IsResumableSlurmState(const std::string& state) {
  return state == "TIMEOUT" || state == "PREEMPTED" || state == "NODE_FAIL";
}

ResumeDecision DecideResume(const SlurmChain& chain, const std::string& state) {
  ResumeDecision d;
  if (!IsResumableSlurmState(state)) return d;
  if (chain.stopped) {
    d.message = absl::StrCat(state, "; not resumed, the job was being stopped");
    return d;
  }
  if (chain.resumes() >= chain.max_resumes) {
    d.message = absl::StrCat(state, "; max_resumes ", chain.max_resumes, " reached");
    if (chain.max_resumes == 0) absl::StrAppend(&d.message, " (auto-resume is off)");
    return d;
  }
  const int64_t jobs = static_cast<int64_t>(chain.ids.size());
  if (chain.max_walltime_s && (jobs + 1) * chain.walltime_s > *chain.max_walltime_s) {
    d.message = absl::StrCat(state, "; max_walltime ", FormatSlurmTime(*chain.max_walltime_s),
                             " reached (", jobs, jobs == 1 ? " job" : " jobs", " of walltime ",
                             FormatSlurmTime(chain.walltime_s), ", another would exceed it)");
    return d;
  }
  d.resume = true;
  return d;
}

std::string ResumedMessage(const SlurmChain& chain, const std::string& state) {
  return absl::StrCat("resumed after ", state, " as SLURM job ",
                      chain.ids.empty() ? "?" : chain.ids.back(), " (resume ", chain.resumes(),
                      " of ", chain.max_resumes, ")");
}

}  // namespace evald::executors
