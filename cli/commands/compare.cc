// compare: the Compare RPC's table (or JSON) of two runs' metrics, and the CI gate of
// `--fail-on-regression` (docs/cli.md, "compare"; the statistics: docs/export.md).
#include <algorithm>
#include <cmath>
#include <ostream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "cli/commands/commands.h"
#include "cli/format.h"

namespace evald::cli {
namespace {

std::string Num(double v) { return std::isnan(v) ? "nan" : absl::StrFormat("%.4g", v); }

std::string PValue(double p) { return p < 1e-4 ? absl::StrFormat("%.1e", p) : Num(p); }

bool Regressed(const v1::MetricComparison& m) { return m.significant() && m.diff() < 0; }

std::string Render(const v1::CompareResponse& r) {
  std::vector<std::vector<std::string>> rows = {
      {"task", "metric", "a", "b", "diff", "p", "method", "significant"}};
  for (const v1::MetricComparison& m : r.metrics()) {
    std::string metric = m.score().empty() ? m.metric() : absl::StrCat(m.metric(), ".", m.score());
    std::string method = m.paired_samples() > 0
                             ? absl::StrCat(m.method(), " (n=", m.paired_samples(), ")")
                             : m.method();
    rows.push_back({m.task(), metric, Num(m.value_a()), Num(m.value_b()),
                    absl::StrFormat("%+.4g", m.diff()), PValue(m.p_value()), method,
                    m.significant() ? (m.diff() < 0 ? "yes (worse)" : "yes (better)") : "no"});
  }
  std::vector<size_t> width(rows[0].size(), 0);
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      absl::StrAppend(&line, row[i],
                      std::string(i + 1 < row.size() ? width[i] - row[i].size() + 2 : 0, ' '));
    }
    absl::StrAppend(&out, line, "\n");
  }
  if (r.metrics_size() == 0) out = "No metric in both runs.\n";
  for (const v1::MetricComparison& m : r.metrics()) {
    if (!m.note().empty()) absl::StrAppend(&out, m.task(), ".", m.metric(), ": ", m.note(), "\n");
  }
  if (r.only_in_a_size() > 0) {
    absl::StrAppend(&out, "only in ", r.id_a(), ": ", absl::StrJoin(r.only_in_a(), ", "), "\n");
  }
  if (r.only_in_b_size() > 0) {
    absl::StrAppend(&out, "only in ", r.id_b(), ": ", absl::StrJoin(r.only_in_b(), ", "), "\n");
  }
  absl::StrAppend(&out, "significant: p < ", Num(r.alpha()),
                  " (mcnemar_exact/paired_t: paired on samples both runs scored; z_stderr: "
                  "two-sample z on the reported stderr)\n");
  return out;
}

Json ToJson(const v1::CompareResponse& r) {
  Json j;
  j["id_a"] = r.id_a();
  j["id_b"] = r.id_b();
  j["alpha"] = r.alpha();
  j["metrics"] = Json::array();
  for (const v1::MetricComparison& m : r.metrics()) {
    Json e;
    e["task"] = m.task();
    e["metric"] = m.metric();
    e["score"] = m.score().empty() ? Json() : Json(m.score());
    e["job_a"] = m.job_a();
    e["job_b"] = m.job_b();
    e["a"] = m.value_a();
    e["b"] = m.value_b();
    e["diff"] = m.diff();
    e["method"] = m.method();
    e["paired_samples"] = m.paired_samples();
    e["p_value"] = m.p_value();
    e["significant"] = m.significant();
    e["regression"] = Regressed(m);
    e["note"] = m.note().empty() ? Json() : Json(m.note());
    j["metrics"].push_back(std::move(e));
  }
  j["only_in_a"] = Json(std::vector<std::string>(r.only_in_a().begin(), r.only_in_a().end()));
  j["only_in_b"] = Json(std::vector<std::string>(r.only_in_b().begin(), r.only_in_b().end()));
  return j;
}

}  // namespace

int RunCompare(Context& ctx, const CompareOptions& options) {
  v1::CompareRequest req;
  req.set_id_a(options.id_a);
  req.set_id_b(options.id_b);
  v1::CompareResponse resp;
  absl::Status s = ctx.api->Compare(req, &resp);
  if (!s.ok()) return ReportFailure(s, ctx.address, *ctx.err, options.id_a);
  if (options.json) {
    *ctx.out << ToJson(resp).dump(2) << "\n";
  } else {
    *ctx.out << Render(resp);
  }
  if (!options.fail_on_regression) return kExitOk;
  std::vector<std::string> worse;
  for (const v1::MetricComparison& m : resp.metrics()) {
    if (Regressed(m)) {
      worse.push_back(absl::StrCat(m.task(), ".", m.metric(), m.score().empty() ? "" : ".",
                                   m.score(), " ", Num(m.value_a()), " -> ", Num(m.value_b()),
                                   " (p ", PValue(m.p_value()), ")"));
    }
  }
  if (worse.empty()) return kExitOk;
  *ctx.err << "evalctl: significantly worse in " << options.id_b << ": "
           << absl::StrJoin(worse, ", ") << "\n";
  return kExitFailed;
}

}  // namespace evald::cli
