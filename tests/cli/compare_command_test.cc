// `evalctl compare` against a scripted API: the table, the JSON, and `--fail-on-regression`
// exiting 1 only for a significant drop (not for a significant gain or an insignificant drop).
#include <catch2/catch.hpp>

#include "absl/strings/match.h"
#include "nlohmann/json.hpp"
#include "tests/cli/fake_api.h"

namespace evald::cli::testing {
namespace {

class CompareApi : public FakeApi {
 public:
  absl::Status compare_status;
  v1::CompareResponse compare_response;
  std::vector<v1::CompareRequest> compare_requests;
  absl::Status Compare(const v1::CompareRequest& request, v1::CompareResponse* response) override {
    compare_requests.push_back(request);
    if (!compare_status.ok()) return compare_status;
    *response = compare_response;
    return absl::OkStatus();
  }
};

v1::MetricComparison Row(const std::string& task, double a, double b, double p,
                         const std::string& method) {
  v1::MetricComparison m;
  m.set_task(task);
  m.set_metric("accuracy");
  m.set_score("exact_match");
  m.set_value_a(a);
  m.set_value_b(b);
  m.set_diff(b - a);
  m.set_p_value(p);
  m.set_significant(p < 0.05);
  m.set_method(method);
  if (method != "z_stderr") m.set_paired_samples(40);
  return m;
}

v1::CompareResponse Response(std::vector<v1::MetricComparison> rows) {
  v1::CompareResponse r;
  r.set_id_a("1a2b3c4d");
  r.set_id_b("5e6f7a8b");
  r.set_alpha(0.05);
  for (auto& m : rows) *r.add_metrics() = m;
  return r;
}

TEST_CASE("compare prints one row per metric and exits 0 without the gate") {
  CompareApi api;
  api.compare_response = Response(
      {Row("arith", 1.0, 0.55, 7.6e-6, "mcnemar_exact"), Row("mmlu", 0.5, 0.52, 0.3, "z_stderr")});
  api.compare_response.add_only_in_b("gsm8k.exact_match");
  Harness h(&api);
  CompareOptions o{"1a2b3c4d", "5e6f7a8b", false, false};
  REQUIRE(RunCompare(h.ctx, o) == 0);
  REQUIRE(api.compare_requests.size() == 1);
  CHECK(api.compare_requests[0].id_a() == "1a2b3c4d");
  CHECK(api.compare_requests[0].id_b() == "5e6f7a8b");
  const std::string out = h.out.str();
  CHECK(absl::StrContains(out, "task"));
  CHECK(absl::StrContains(out, "significant"));
  CHECK(absl::StrContains(out, "mcnemar_exact (n=40)"));
  CHECK(absl::StrContains(out, "7.6e-06"));
  CHECK(absl::StrContains(out, "-0.45"));
  CHECK(absl::StrContains(out, "yes (worse)"));
  CHECK(absl::StrContains(out, "only in 5e6f7a8b: gsm8k.exact_match"));
}

TEST_CASE("compare --fail-on-regression exits 1 only on a significant drop") {
  CompareApi api;
  Harness h(&api);
  CompareOptions o{"1a2b3c4d", "5e6f7a8b", false, true};
  api.compare_response = Response(
      {Row("arith", 0.55, 1.0, 7.6e-6, "mcnemar_exact"), Row("mmlu", 0.5, 0.45, 0.2, "paired_t")});
  CHECK(RunCompare(h.ctx, o) == 0);
  api.compare_response = Response({Row("arith", 1.0, 0.55, 7.6e-6, "mcnemar_exact")});
  Harness h2(&api);
  CHECK(RunCompare(h2.ctx, o) == 1);
  CHECK(absl::StrContains(h2.err.str(),
                          "significantly worse in 5e6f7a8b: arith.accuracy.exact_match 1 -> 0.55"));
}

TEST_CASE("compare --json is one object with a regression flag per metric") {
  CompareApi api;
  api.compare_response = Response({Row("arith", 1.0, 0.55, 7.6e-6, "mcnemar_exact")});
  Harness h(&api);
  CompareOptions o{"1a2b3c4d", "5e6f7a8b", true, false};
  REQUIRE(RunCompare(h.ctx, o) == 0);
  nlohmann::json j = nlohmann::json::parse(h.out.str());
  CHECK(j["alpha"] == 0.05);
  REQUIRE(j["metrics"].size() == 1);
  CHECK(j["metrics"][0]["method"] == "mcnemar_exact");
  CHECK(j["metrics"][0]["paired_samples"] == 40);
  CHECK(j["metrics"][0]["significant"] == true);
  CHECK(j["metrics"][0]["regression"] == true);
  CHECK(j["metrics"][0]["score"] == "exact_match");
  CHECK(j["only_in_a"].empty());
}

TEST_CASE("compare of an unknown id exits 4") {
  CompareApi api;
  api.compare_status = absl::NotFoundError("no invocation 0000beef");
  Harness h(&api);
  CompareOptions o{"1a2b3c4d", "0000beef", false, false};
  CHECK(RunCompare(h.ctx, o) == 4);
}

}  // namespace
}  // namespace evald::cli::testing
