// results: the metrics of an invocation's (or one job's) finished jobs, and the CI gates of
// `--fail-under TASK.METRIC[.SCORE]=VALUE` (docs/cli.md, "results").
#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <ostream>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "cli/commands/commands.h"
#include "cli/format.h"

namespace evald::cli {
namespace {

struct Gate {
  std::string name;            // TASK.METRIC or TASK.METRIC.SCORE; TASK may be `*`
  std::string threshold_text;  // as typed, for the PASS/FAIL line
  double threshold = 0;
};

// One gate applied to one job's metric (or to a job without results).
struct GateOutcome {
  const Gate* gate = nullptr;
  std::string key;  // the concrete task.metric[.score] (a `*` gate names each task)
  std::string job_id;
  const v1::Metric* metric = nullptr;  // null: the job has no results
  bool passed = false;
  std::string reason;  // why it failed beyond the comparison; "" otherwise
};

absl::StatusOr<Gate> ParseGate(const std::string& text) {
  size_t eq = text.find('=');
  Gate g;
  if (eq != std::string::npos) {
    g.name = text.substr(0, eq);
    g.threshold_text = text.substr(eq + 1);
  }
  if (eq == std::string::npos || g.name.find('.') == std::string::npos || g.name.front() == '.' ||
      g.name.back() == '.') {
    return absl::InvalidArgumentError(absl::StrCat(
        "--fail-under ", text, ": expected TASK.METRIC=VALUE or TASK.METRIC.SCORE=VALUE"));
  }
  if (!absl::SimpleAtod(g.threshold_text, &g.threshold) || !std::isfinite(g.threshold)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--fail-under ", text, ": ", g.threshold_text, " is not a finite number"));
  }
  return g;
}

std::string TaskOf(const v1::JobResult& jr, const v1::Metric& m) {
  return m.task().empty() ? jr.task() : m.task();
}

// Each metric's name for the usage error: task.metric, or task.metric.score for each score of a
// metric that has several.
std::string AvailableNames(const v1::GetResultsResponse& results) {
  std::set<std::string> names;
  for (const v1::JobResult& jr : results.jobs()) {
    std::map<std::string, int> scores;  // task.metric -> number of scores in this job
    for (const v1::Metric& m : jr.metrics()) ++scores[absl::StrCat(TaskOf(jr, m), ".", m.metric())];
    for (const v1::Metric& m : jr.metrics()) {
      std::string key = absl::StrCat(TaskOf(jr, m), ".", m.metric());
      names.insert(scores[key] > 1 ? absl::StrCat(key, ".", m.score()) : key);
    }
  }
  return names.empty() ? "none (no job has results)" : absl::StrJoin(names, ", ");
}

// Applies one gate to every job. A name that matches nothing, or a metric with several scores
// named without its score, is InvalidArgument (a typo must not pass CI silently).
absl::Status ApplyGate(const Gate& gate, const v1::GetResultsResponse& results,
                       std::vector<GateOutcome>* outcomes) {
  const bool any_task = gate.name.rfind("*.", 0) == 0;
  const std::string rest = any_task ? gate.name.substr(2) : "";
  size_t before = outcomes->size();
  for (const v1::JobResult& jr : results.jobs()) {
    if (jr.metrics_size() == 0) {
      // No results.yml scores at all (a failed job): the metric is unknown but cannot pass.
      if (any_task || gate.name.rfind(jr.task() + ".", 0) == 0) {
        GateOutcome o{&gate, any_task ? absl::StrCat(jr.task(), ".", rest) : gate.name,
                      jr.job_id()};
        o.reason = absl::StrCat("no results (job ", StateName(jr.state()), ")");
        outcomes->push_back(std::move(o));
      }
      continue;
    }
    std::map<std::string, std::vector<const v1::Metric*>> by_metric;  // name -> its scores
    std::vector<std::pair<std::string, const v1::Metric*>> by_score;
    for (const v1::Metric& m : jr.metrics()) {
      std::string task = TaskOf(jr, m);
      std::string metric_key = absl::StrCat(task, ".", m.metric());
      std::string score_key = absl::StrCat(metric_key, ".", m.score());
      std::string want_metric = any_task ? absl::StrCat(task, ".", rest) : gate.name;
      if (metric_key == want_metric) by_metric[metric_key].push_back(&m);
      if (!m.score().empty() && score_key == want_metric) by_score.push_back({score_key, &m});
    }
    for (const auto& [key, ms] : by_metric) {
      if (ms.size() > 1) {
        std::vector<std::string> scores;
        for (const v1::Metric* m : ms) scores.push_back(absl::StrCat(key, ".", m->score()));
        return absl::InvalidArgumentError(
            absl::StrCat("--fail-under ", gate.name, ": ", key,
                         " has several scores; name one: ", absl::StrJoin(scores, ", ")));
      }
      by_score.push_back({key, ms[0]});
    }
    for (const auto& [key, m] : by_score) {
      GateOutcome o{&gate, key, jr.job_id(), m};
      if (jr.partial() || jr.state() != v1::JOB_STATE_SUCCEEDED) {
        o.reason = PartialNote(jr);
      } else if (std::isnan(m->value())) {
        o.reason = "not a number";
      } else {
        o.passed = m->value() >= gate.threshold;  // strict: only value < threshold fails
      }
      outcomes->push_back(std::move(o));
    }
  }
  if (outcomes->size() == before) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--fail-under ", gate.name, ": no such task.metric; available: ", AvailableNames(results)));
  }
  return absl::OkStatus();
}

std::string GateValue(double v) { return std::isnan(v) ? "nan" : absl::StrFormat("%.6g", v); }

// "PASS gsm8k.exact_match 0.83 >= 0.80", "FAIL gsm8k.exact_match 0.79 < 0.80",
// "FAIL gsm8k.exact_match 0.91 vs 0.80: partial (4 of 10 samples), job failed".
std::string GateLine(const GateOutcome& o, bool with_job) {
  std::string line = absl::StrCat(o.passed ? "PASS " : "FAIL ", o.key);
  if (o.metric != nullptr) {
    std::string value = GateValue(o.metric->value());
    if (!o.reason.empty()) {
      absl::StrAppend(&line, " ", value, " vs ", o.gate->threshold_text, ": ", o.reason);
    } else {
      absl::StrAppend(&line, " ", value, o.passed ? " >= " : " < ", o.gate->threshold_text);
    }
  } else {
    absl::StrAppend(&line, ": ", o.reason);
  }
  if (with_job) absl::StrAppend(&line, " (job ", o.job_id, ")");
  return line;
}

Json GateJson(const GateOutcome& o) {
  Json j;
  j["gate"] = absl::StrCat(o.gate->name, "=", o.gate->threshold_text);
  j["key"] = o.key;
  j["job_id"] = o.job_id;
  j["value"] =
      o.metric != nullptr && std::isfinite(o.metric->value()) ? Json(o.metric->value()) : Json();
  j["threshold"] = o.gate->threshold;
  j["passed"] = o.passed;
  j["reason"] = o.reason.empty() ? Json() : Json(o.reason);
  return j;
}

}  // namespace

int RunResults(Context& ctx, const ResultsOptions& options) {
  if (options.json && options.csv) {
    *ctx.err << "evalctl: --json and --csv exclude each other\n";
    return kExitBadInput;
  }
  std::vector<Gate> gates;
  for (const std::string& text : options.fail_under) {
    absl::StatusOr<Gate> g = ParseGate(text);
    if (!g.ok()) {
      *ctx.err << "evalctl: " << g.status().message() << "\n";
      return kExitBadInput;
    }
    gates.push_back(*std::move(g));
  }
  v1::GetResultsRequest req;
  req.set_id(options.id);
  v1::GetResultsResponse resp;
  absl::Status s = ctx.api->GetResults(req, &resp);
  if (!s.ok()) return ReportFailure(s, ctx.address, *ctx.err, options.id);

  std::vector<GateOutcome> outcomes;
  if (!gates.empty()) {
    // Gates judge final results only: scores of a running job would change under them.
    std::vector<std::string> unfinished;
    for (const v1::JobResult& jr : resp.jobs()) {
      if (!IsTerminal(jr.state())) {
        unfinished.push_back(absl::StrCat(jr.job_id(), " ", StateName(jr.state())));
      }
    }
    if (!unfinished.empty()) {
      *ctx.err << "evalctl: " << options.id << " is not finished ("
               << absl::StrJoin(unfinished, ", ")
               << "); --fail-under needs final results: wait with `evalctl watch " << options.id
               << "` (or submit --wait), then gate\n";
      return kExitRefused;
    }
    for (const Gate& g : gates) {
      absl::Status applied = ApplyGate(g, resp, &outcomes);
      if (!applied.ok()) {
        *ctx.err << "evalctl: " << applied.message() << "\n";
        return kExitBadInput;
      }
    }
  }
  // A task key found in several jobs (the same task twice) names the job on its gate lines.
  std::map<std::string, std::set<std::string>> jobs_of_key;
  for (const GateOutcome& o : outcomes) jobs_of_key[o.key].insert(o.job_id);
  int failed = 0;
  std::string lines;
  for (const GateOutcome& o : outcomes) {
    failed += o.passed ? 0 : 1;
    absl::StrAppend(&lines, GateLine(o, jobs_of_key[o.key].size() > 1), "\n");
  }

  if (options.json) {
    if (gates.empty()) {
      *ctx.out << ResultsJson(resp).dump(2) << "\n";
    } else {
      Json j;
      j["results"] = ResultsJson(resp);
      j["gates"] = Json::array();
      for (const GateOutcome& o : outcomes) j["gates"].push_back(GateJson(o));
      j["passed"] = failed == 0;
      *ctx.out << j.dump(2) << "\n";
    }
  } else if (options.csv) {
    *ctx.out << ResultsCsv(resp);
    *ctx.err << lines;  // stdout stays pure CSV
  } else {
    *ctx.out << RenderResultsTable(resp);
    if (!lines.empty()) *ctx.out << "\n" << lines;
  }
  if (failed > 0) {
    *ctx.err << "evalctl: " << failed << " of " << outcomes.size() << " gate checks failed\n";
    return kExitGateFailed;
  }
  return kExitOk;
}

}  // namespace evald::cli
