// daemon/compare.h on fixed numbers. The p-values are checked against closed forms (McNemar: a
// binomial tail summed by hand; t with 1 and 2 degrees of freedom; the normal tail) and a t table.
#include "daemon/compare.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>

#include "absl/strings/str_cat.h"
#include "daemon/server_core.h"
#include "tests/executors/local/test_util.h"

namespace evald::daemon::compare {
namespace {

TEST_CASE("McNemar exact p-values on fixed counts", "[compare]") {
  // n = 12 discordant pairs, 2 vs 10: 2 * (C(12,0) + C(12,1) + C(12,2)) / 2^12 = 158 / 4096.
  CHECK(McNemarExactP(10, 2) == Approx(158.0 / 4096).epsilon(1e-12));
  CHECK(McNemarExactP(2, 10) == Approx(158.0 / 4096).epsilon(1e-12));
  // 0 vs 6: 2 / 64.
  CHECK(McNemarExactP(0, 6) == Approx(2.0 / 64).epsilon(1e-12));
  // Equal counts and no discordant pair: no evidence.
  CHECK(McNemarExactP(5, 5) == 1.0);
  CHECK(McNemarExactP(0, 0) == 1.0);
  // 0 vs 5: 2 / 32 = 0.0625 is not significant at 0.05, 0 vs 6 is.
  CHECK(McNemarExactP(0, 5) == Approx(0.0625));
}

TEST_CASE("paired t-test p-values against closed forms and a t table", "[compare]") {
  // df = 2, t^2 = 12: p = 1 - sqrt(t^2 / (2 + t^2)).
  CHECK(PairedTP({1, 2, 3}) == Approx(1 - std::sqrt(12.0 / 14.0)).epsilon(1e-9));
  // df = 1, t = 2: p = 1 - 2 / pi * atan(2).
  CHECK(PairedTP({1, 3}) == Approx(1 - 2 / std::acos(-1.0) * std::atan(2.0)).epsilon(1e-9));
  // df = 10: t = 2.228 is the two-sided 5% point.
  std::vector<double> d(11, 0.0);
  // Differences with mean m and sd s give t = m / (s / sqrt(11)); build t = 2.228139.
  for (int i = 0; i < 11; ++i) d[i] = (i % 2 == 0 ? 1.0 : -1.0);
  d[10] = 0;  // mean 0 so far, sd sqrt(1)
  double mean = 0, ss = 0;
  for (double v : d) mean += v;
  mean /= 11;
  for (double v : d) ss += (v - mean) * (v - mean);
  const double sd = std::sqrt(ss / 10);
  const double shift = 2.228139 * sd / std::sqrt(11.0) - mean;
  for (double& v : d) v += shift;
  CHECK(PairedTP(d) == Approx(0.05).margin(1e-5));
  CHECK(PairedTP({0, 0, 0}) == 1.0);
  CHECK(PairedTP({0.5, 0.5}) == 0.0);
  CHECK(PairedTP({0.5}) == 1.0);
}

TEST_CASE("two-sample z on stderrs", "[compare]") {
  // z = 0.1 / sqrt(0.03^2 + 0.04^2) = 2: p = erfc(2 / sqrt 2) = 0.0455003.
  CHECK(TwoSampleZP(-0.1, 0.03, 0.04) == Approx(0.04550026).epsilon(1e-6));
  CHECK(TwoSampleZP(0.0, 0.03, 0.04) == 1.0);
  CHECK(TwoSampleZP(0.0, 0, 0) == 1.0);
  CHECK(TwoSampleZP(0.2, 0, 0) == 0.0);
}

TEST_CASE("incomplete beta on known values", "[compare]") {
  CHECK(RegularizedIncompleteBeta(1, 1, 0.3) == Approx(0.3));
  CHECK(RegularizedIncompleteBeta(2, 3, 0.4) == Approx(0.5248));  // 1 - 3*0.6^4 ... by hand
  CHECK(RegularizedIncompleteBeta(5, 0.5, 0) == 0.0);
  CHECK(RegularizedIncompleteBeta(5, 0.5, 1) == 1.0);
}

TEST_CASE("paired test picks McNemar for 0/1 scores and pairs only common samples", "[compare]") {
  std::map<int64_t, double> a, b;
  for (int i = 0; i < 40; ++i) a[i] = 1;
  for (int i = 0; i < 40; ++i) b[i] = i < 10 ? 0 : 1;  // 10 right only in a
  b[99] = 1;                                           // not in a: not paired
  TestResult t = PairedTest(a, b);
  CHECK(t.method == kMcNemarExact);
  CHECK(t.paired == 40);
  CHECK(t.mean_diff == Approx(-0.25));
  CHECK(t.p_value == Approx(2.0 / 1024));
  TestResult same = PairedTest(a, a);
  CHECK(same.p_value == 1.0);
  CHECK(same.mean_diff == 0.0);

  std::map<int64_t, double> c = {{0, 0.5}, {1, 0.25}, {2, 1}};
  std::map<int64_t, double> d = {{0, 1.5}, {1, 2.25}, {2, 4}};  // diffs 1, 2, 3
  TestResult cont = PairedTest(c, d);
  CHECK(cont.method == kPairedT);
  CHECK(cont.p_value == Approx(1 - std::sqrt(12.0 / 14.0)));

  TestResult none = PairedTest(c, {{7, 1}});
  CHECK(none.method == kNone);
  CHECK(none.paired == 0);
  CHECK(none.p_value == 1.0);
}

TEST_CASE("samples.jsonl scores are read per sample and averaged over repeats", "[compare]") {
  const std::string path =
      (std::filesystem::temp_directory_path() / "evald_compare_test_samples.jsonl").string();
  {
    std::ofstream out(path);
    out << R"({"sample":0,"repeat":0,"correct":true,"scores":{"exact_match":1.0}})"
        << "\n"
        << R"({"sample":0,"repeat":1,"correct":false,"scores":{"exact_match":0.0}})"
        << "\n"
        << R"({"sample":3,"repeat":0,"scores":{"exact_match":1,"f1":0.5},"error":"x"})"
        << "\n"
        << R"({"sample":4,"repeat":0,"correct":true})"
        << "\n"
        << "\n";
  }
  absl::StatusOr<SampleScores> s = ReadSampleScores(path);
  REQUIRE(s.ok());
  CHECK(s->at("exact_match") == std::map<int64_t, double>{{0, 0.5}, {3, 1.0}});
  CHECK(s->at("f1") == std::map<int64_t, double>{{3, 0.5}});
  {
    std::ofstream out(path, std::ios::app);
    out << "not json\n";
  }
  absl::StatusOr<SampleScores> bad = ReadSampleScores(path);
  CHECK(bad.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(bad.status().message().find(":6:") != std::string::npos);
  std::filesystem::remove(path);
  CHECK(ReadSampleScores(path).status().code() == absl::StatusCode::kNotFound);
}

// ServerCore::Compare is read-only: a viewer may call it. Jobs that have not run have no metrics,
// so there is nothing to compare, which is not an error.
TEST_CASE("a viewer may compare two runs and a bad alpha is refused", "[compare]") {
  evald::testing::TempDir dir;
  ServerConfig config;
  config.state_dir = dir.path() + "/state";
  config.configs_dir = std::string(EVALD_SOURCE_DIR) + "/configs";
  config.runner_path = "/bin/true";
  REQUIRE(FinalizeServerConfig(config).ok());
  absl::StatusOr<std::unique_ptr<ServerCore>> core = ServerCore::Create(config, nullptr, {});
  REQUIRE(core.ok());
  v1::SubmitRequest submit;
  submit.set_config_yaml(absl::StrCat(
      "execution:\n  type: local\n  output_dir: ", dir.path(),
      "/out\ntarget:\n  api_endpoint:\n    url: http://127.0.0.1:9/v1/chat/completions\n"
      "    model_id: m\n    api_key_name: null\nevaluation:\n  tasks:\n    - name: "
      "native_gsm8k\n"));
  submit.set_composed(true);
  v1::SubmitResponse submitted;
  REQUIRE((*core)->Submit(LocalCaller(0), submit, &submitted).ok());

  const Caller viewer{.user = "vera", .role = Role::kViewer, .via = "test"};
  v1::CompareRequest request;
  request.set_id_a(submitted.invocation_id());
  request.set_id_b(submitted.invocation_id());
  v1::CompareResponse response;
  absl::Status s = (*core)->Compare(viewer, request, &response);
  INFO(s.message());
  REQUIRE(s.ok());
  CHECK(response.alpha() == 0.05);
  CHECK(response.metrics_size() == 0);

  request.set_alpha(1.5);
  CHECK((*core)->Compare(viewer, request, &response).code() == absl::StatusCode::kInvalidArgument);
  request.set_alpha(0);
  request.set_id_b("0000beef");
  CHECK((*core)->Compare(viewer, request, &response).code() == absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace evald::daemon::compare
