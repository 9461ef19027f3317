// ServerCore::Compare, the Compare RPC (docs/export.md, "Comparing two runs"): reads both runs'
// results like GetResults, pairs their jobs by task, and for every task.metric[.score] in both
// runs tests the difference with daemon/compare.h: paired on the samples both jobs' samples.jsonl
// scored when the metric is evalrun's per-sample `accuracy`, on the reported stderrs otherwise.
// Read-only, so every role may compare; the job dirs are evald's (also fetched SLURM/Lepton ones).
#include <cmath>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "daemon/compare.h"
#include "daemon/server_core.h"

namespace evald::daemon {
namespace {

using MetricKey = std::tuple<std::string, std::string, std::string>;  // task, metric, score

std::string KeyName(const MetricKey& k) {
  const auto& [task, metric, score] = k;
  return score.empty() ? absl::StrCat(task, ".", metric)
                       : absl::StrCat(task, ".", metric, ".", score);
}

// One job's metrics and, read on first use, its per-sample scores.
struct JobSide {
  const v1::JobResult* job = nullptr;
  std::map<MetricKey, const v1::Metric*> metrics;
  std::optional<absl::StatusOr<compare::SampleScores>> samples;

  const absl::StatusOr<compare::SampleScores>& Samples() {
    if (!samples) {
      std::string dir = std::filesystem::path(job->results_path()).parent_path().string();
      samples = compare::ReadSampleScores(dir + "/samples.jsonl");
    }
    return *samples;
  }
};

JobSide SideOf(const v1::JobResult& jr) {
  JobSide side;
  side.job = &jr;
  for (const v1::Metric& m : jr.metrics()) {
    side.metrics[{m.task().empty() ? jr.task() : m.task(), m.metric(), m.score()}] = &m;
  }
  return side;
}

// The per-sample scores of `m` when samples.jsonl has them and they add up to the reported value
// (a results.yml from another harness, or a samples.jsonl left by an older run, does not pair).
const std::map<int64_t, double>* PairableSamples(JobSide& side, const v1::Metric& m,
                                                 std::string* why) {
  if (m.metric() != "accuracy" || m.score().empty()) {
    *why = "no per-sample scores for this metric";
    return nullptr;
  }
  const absl::StatusOr<compare::SampleScores>& s = side.Samples();
  if (!s.ok()) {
    *why = absl::StrCat("job ", side.job->job_id(), ": ", s.status().message());
    return nullptr;
  }
  auto it = s->find(m.score());
  if (it == s->end() || it->second.empty()) {
    *why = absl::StrCat("job ", side.job->job_id(), ": samples.jsonl has no ", m.score());
    return nullptr;
  }
  double sum = 0;
  for (const auto& [sample, v] : it->second) sum += v;
  const double mean = sum / static_cast<double>(it->second.size());
  if (std::fabs(mean - m.value()) > 1e-6 * std::max(1.0, std::fabs(m.value()))) {
    *why = absl::StrCat("job ", side.job->job_id(), ": samples.jsonl does not match results.yml");
    return nullptr;
  }
  return &it->second;
}

// "job X has partial results (4 of 10 samples)": scores of a run that stopped early are compared
// all the same, but the reader must know.
std::string PartialNote(const JobSide& a, const JobSide& b) {
  std::string note;
  for (const JobSide* side : {&a, &b}) {
    if (!side->job->partial()) continue;
    absl::StrAppend(&note, note.empty() ? "" : "; ", "job ", side->job->job_id(),
                    " has partial results (", side->job->samples_scored(), " of ",
                    side->job->samples_total(), " samples)");
  }
  return note;
}

void AppendNote(const std::string& extra, v1::MetricComparison* out) {
  if (extra.empty()) return;
  out->set_note(out->note().empty() ? extra : absl::StrCat(out->note(), "; ", extra));
}

void CompareMetric(const MetricKey& key, JobSide& a, JobSide& b, double alpha,
                   v1::MetricComparison* out) {
  const v1::Metric& ma = *a.metrics.at(key);
  const v1::Metric& mb = *b.metrics.at(key);
  out->set_task(std::get<0>(key));
  out->set_metric(std::get<1>(key));
  out->set_score(std::get<2>(key));
  out->set_job_a(a.job->job_id());
  out->set_job_b(b.job->job_id());
  out->set_value_a(ma.value());
  out->set_value_b(mb.value());
  out->set_diff(mb.value() - ma.value());
  std::string why;
  const std::map<int64_t, double>* sa = PairableSamples(a, ma, &why);
  const std::map<int64_t, double>* sb = sa != nullptr ? PairableSamples(b, mb, &why) : nullptr;
  if (sa != nullptr && sb != nullptr) {
    compare::TestResult t = compare::PairedTest(*sa, *sb);
    if (t.method != compare::kNone) {
      out->set_method(t.method);
      out->set_paired_samples(t.paired);
      out->set_p_value(t.p_value);
      out->set_note(t.note);
      out->set_significant(t.p_value < alpha);
      AppendNote(PartialNote(a, b), out);
      return;
    }
    why = t.note;
  }
  if (ma.has_stats() && mb.has_stats()) {
    out->set_method(compare::kZStderr);
    out->set_p_value(compare::TwoSampleZP(out->diff(), ma.stats().stderr(), mb.stats().stderr()));
  } else {
    out->set_method(compare::kNone);
    out->set_p_value(1);
    why = absl::StrCat(why, why.empty() ? "" : "; ", "no stderr reported");
  }
  out->set_note(why);
  AppendNote(PartialNote(a, b), out);
  out->set_significant(out->p_value() < alpha);
}

}  // namespace

absl::Status ServerCore::Compare(const Caller& caller, const v1::CompareRequest& request,
                                 v1::CompareResponse* response) {
  EVALD_RETURN_IF_ERROR(RequireRole(caller, Role::kViewer, "compare results"));
  const double alpha = request.alpha() == 0 ? compare::kDefaultAlpha : request.alpha();
  if (!(alpha > 0 && alpha < 1)) {
    return absl::InvalidArgumentError(absl::StrCat("alpha ", alpha, " is not in (0, 1)"));
  }
  v1::GetResultsRequest req_a, req_b;
  req_a.set_id(request.id_a());
  req_b.set_id(request.id_b());
  v1::GetResultsResponse res_a, res_b;
  EVALD_RETURN_IF_ERROR(GetResults(req_a, &res_a));
  EVALD_RETURN_IF_ERROR(GetResults(req_b, &res_b));
  response->set_id_a(request.id_a());
  response->set_id_b(request.id_b());
  response->set_alpha(alpha);

  // The n-th job of a task in a is compared with the n-th job of that task in b.
  std::map<std::string, std::vector<JobSide>> by_task_a, by_task_b;
  for (const v1::JobResult& jr : res_a.jobs()) by_task_a[jr.task()].push_back(SideOf(jr));
  for (const v1::JobResult& jr : res_b.jobs()) by_task_b[jr.task()].push_back(SideOf(jr));
  std::set<std::string> only_a, only_b;
  auto list_all = [](const std::vector<JobSide>& sides, size_t from, std::set<std::string>* out) {
    for (size_t i = from; i < sides.size(); ++i) {
      for (const auto& [key, m] : sides[i].metrics) out->insert(KeyName(key));
    }
  };
  for (auto& [task, sides_a] : by_task_a) {
    std::vector<JobSide>& sides_b = by_task_b[task];
    const size_t n = std::min(sides_a.size(), sides_b.size());
    for (size_t i = 0; i < n; ++i) {
      for (const auto& [key, m] : sides_a[i].metrics) {
        if (sides_b[i].metrics.count(key) == 0) {
          only_a.insert(KeyName(key));
          continue;
        }
        CompareMetric(key, sides_a[i], sides_b[i], alpha, response->add_metrics());
      }
      for (const auto& [key, m] : sides_b[i].metrics) {
        if (sides_a[i].metrics.count(key) == 0) only_b.insert(KeyName(key));
      }
    }
    list_all(sides_a, n, &only_a);
    list_all(sides_b, n, &only_b);
  }
  for (auto& [task, sides_b] : by_task_b) {
    if (by_task_a.count(task) == 0) list_all(sides_b, 0, &only_b);
  }
  for (const std::string& k : only_a) response->add_only_in_a(k);
  for (const std::string& k : only_b) response->add_only_in_b(k);
  return absl::OkStatus();
}

}  // namespace evald::daemon
