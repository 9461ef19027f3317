#include "daemon/results_reader.h"

#include <catch2/catch.hpp>

namespace evald::daemon {
namespace {

JobRecord Job() {
  JobRecord j;
  j.id = "0badf00d.1";
  j.invocation_id = "0badf00d";
  return j;
}

TEST_CASE("results.yml in the reference layout becomes one row per score") {
  const char* yaml = R"(
command: x
results:
  tasks:
    gsm8k:
      metrics:
        exact_match:
          scores:
            strict:
              value: 0.75
              stats: {count: 4, sum: 3, mean: 0.75, stderr: 0.25, stddev: 0.5, min: 0, max: 1}
            flexible:
              value: 0.5
  groups:
    math:
      metrics:
        accuracy: {value: 0.6, stats: {count: 10}}
        score: 0.7
)";
  absl::StatusOr<std::vector<ResultRecord>> rows = ParseResults(yaml, "results.yml", Job());
  REQUIRE(rows.ok());
  REQUIRE(rows->size() == 4);
  const ResultRecord& strict = (*rows)[0].score == "strict" ? (*rows)[0] : (*rows)[1];
  CHECK(strict.job_id == "0badf00d.1");
  CHECK(strict.task == "gsm8k");
  CHECK(strict.metric == "exact_match");
  CHECK(strict.value == Approx(0.75));
  CHECK(strict.has_stats);
  CHECK(strict.count == 4);
  CHECK(strict.stderr_ == Approx(0.25));
  const ResultRecord& flexible = (*rows)[0].score == "flexible" ? (*rows)[0] : (*rows)[1];
  CHECK_FALSE(flexible.has_stats);
  CHECK((*rows)[2].task == "math");
  CHECK((*rows)[2].metric == "accuracy");
  CHECK((*rows)[2].score.empty());
  CHECK((*rows)[2].count == 10);
  CHECK((*rows)[3].metric == "score");
  CHECK((*rows)[3].value == Approx(0.7));
}

TEST_CASE("broken results files are errors that name the place") {
  absl::StatusOr<std::vector<ResultRecord>> rows =
      ParseResults("results: [unclosed", "a/results.yml", Job());
  REQUIRE_FALSE(rows.ok());
  CHECK(rows.status().message().find("a/results.yml:1:") != std::string::npos);
  rows = ParseResults("nothing: here\n", "b/results.yml", Job());
  REQUIRE_FALSE(rows.ok());
  CHECK(rows.status().message() == "b/results.yml: no 'results' mapping");
  CHECK(ReadResultsFile("/nonexistent/results.yml", Job()).status().code() ==
        absl::StatusCode::kNotFound);
  // Aliased metrics and scores would be one row per task x metric x score: 10^8 here.
  std::string bomb = "s: &s {";
  for (int k = 0; k < 100; ++k) bomb += "s" + std::to_string(k) + ": {value: 1},";
  bomb += "}\nm: &m {";
  for (int k = 0; k < 100; ++k) bomb += "m" + std::to_string(k) + ": {scores: *s},";
  bomb += "}\nresults:\n  tasks: {";
  for (int k = 0; k < 10000; ++k) bomb += "t" + std::to_string(k) + ": {metrics: *m},";
  bomb += "}\n";
  rows = ParseResults(bomb, "c/results.yml", Job());
  REQUIRE_FALSE(rows.ok());
  // Each *m is 40,401 nodes: the 4th task passes the limit.
  CHECK(rows.status().message() ==
        "c/results.yml:4:79: results.tasks.t3.metrics: too many nodes after alias expansion "
        "(limit 200000)");
}

TEST_CASE("the partial marker of results.yml is read, and its absence means complete") {
  PartialMarker m = ParsePartialMarker(
      "command: x\npartial: true\nresults:\n  tasks: {}\nsamples_scored: 4\nsamples_total: 12\n");
  CHECK(m.partial);
  CHECK(m.samples_scored == 4);
  CHECK(m.samples_total == 12);
  CHECK_FALSE(ParsePartialMarker("results:\n  tasks: {}\n").partial);
  CHECK_FALSE(ParsePartialMarker("partial: false\nresults: {}\n").partial);
  CHECK_FALSE(ParsePartialMarker("partial: [broken").partial);
  CHECK_FALSE(ReadPartialMarker("/nonexistent/results.yml").partial);
  // The scores themselves read as before.
  CHECK(ParseResults("partial: true\nresults:\n  tasks:\n    t:\n      metrics:\n        m: 0.5\n",
                     "r.yml", Job())
            ->size() == 1);
}

}  // namespace
}  // namespace evald::daemon
