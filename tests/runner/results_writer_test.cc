#include "runner/results_writer.h"

#include <catch2/catch.hpp>

#include "runner/yaml_util.h"
#include "tests/runner/test_util.h"

namespace evald::runner {
namespace {

using testing::ReadFile;
using testing::ReadLines;
using testing::TempDir;
using testing::WriteFile;

Evaluation Eval(bool correct, const std::string& score = "numeric_match") {
  Evaluation e;
  e.correct = correct;
  e.scores.emplace_back(score, correct ? 1.0 : 0.0);
  return e;
}

TEST_CASE("results: the reference key paths, as exporters read them") {
  ScoreBook book({"numeric_match"}, 4, 1);
  book.Add(0, Eval(true));
  book.Add(1, Eval(true));
  book.Add(2, Eval(false));
  book.Add(3, Eval(true));
  Plan plan;
  plan.config = {
      {"type", "native_gsm8k"}, {"output_dir", "/o"}, {"params", {{"limit_samples", 4}}}};
  plan.target = {{"api_endpoint", {{"url", "http://h/v1/chat/completions"}, {"model_id", "m"}}}};
  nlohmann::json doc = BuildResults("native_gsm8k", book, plan, "evalrun --plan p.yaml");
  auto parsed = YamlDoc::Parse(EmitYaml(doc), "results.yml");
  REQUIRE(parsed.ok());
  const YAML::Node& root = parsed->root();
  YAML::Node score =
      YamlDoc::Child(root, "results.tasks.native_gsm8k.metrics.accuracy.scores.numeric_match");
  REQUIRE(score.IsMap());
  CHECK(score["value"].as<double>() == Approx(0.75));
  CHECK(score["stats"]["count"].as<int>() == 4);
  CHECK(score["stats"]["mean"].as<double>() == Approx(0.75));
  CHECK(score["stats"]["stderr"].as<double>() == Approx(0.25));
  for (const char* k : {"sum", "sum_squared", "min", "max", "variance", "stddev"}) {
    CHECK(score["stats"][k].IsDefined());
  }
  CHECK(root["command"].as<std::string>() == "evalrun --plan p.yaml");
  CHECK(root["config"]["type"].as<std::string>() == "native_gsm8k");
  CHECK(root["target"]["api_endpoint"]["model_id"].as<std::string>() == "m");
  CHECK(root["git_hash"].IsDefined());
  // The exporter rule: metric names must contain acc/accuracy/score/... to be picked up.
  for (const auto& m : root["results"]["tasks"]["native_gsm8k"]["metrics"]) {
    CHECK(m.first.as<std::string>().find("acc") != std::string::npos);
  }
}

TEST_CASE("results: repeats add pass@k over samples") {
  ScoreBook book({"choice_accuracy"}, 2, 4);
  // sample 0: 1 of 4 right; sample 1: 4 of 4 right.
  for (int r = 0; r < 4; ++r) book.Add(0, Eval(r == 0, "choice_accuracy"));
  for (int r = 0; r < 4; ++r) book.Add(1, Eval(true, "choice_accuracy"));
  nlohmann::json m = book.MetricsJson();
  CHECK(m["accuracy"]["scores"]["choice_accuracy"]["value"].get<double>() == Approx(5.0 / 8));
  CHECK(m["accuracy"]["scores"]["choice_accuracy"]["stats"]["count"] == 8);
  CHECK(m["pass@k"]["scores"]["pass@1"]["value"].get<double>() == Approx((0.25 + 1.0) / 2));
  CHECK(m["pass@k"]["scores"]["pass@2"]["value"].get<double>() == Approx((0.5 + 1.0) / 2));
  CHECK(m["pass@k"]["scores"]["pass@4"]["value"].get<double>() == Approx(1.0));
  CHECK(m["pass@k"]["scores"]["pass@4"]["stats"]["count"] == 2);
}

TEST_CASE("results: eval_factory_metrics.json merges with an earlier file") {
  TempDir dir;
  WriteFile(dir / "m.json", R"({"evaluation": {"old": 1}, "other_tool": {"x": 2}})");
  REQUIRE(WriteMetricsJson(dir / "m.json", {{"evaluation", {{"runtime_seconds", 1.5}}}}).ok());
  auto j = nlohmann::json::parse(ReadFile(dir / "m.json"));
  CHECK(j["other_tool"]["x"] == 2);
  CHECK(j["evaluation"]["runtime_seconds"] == 1.5);
  CHECK_FALSE(j["evaluation"].contains("old"));
  WriteFile(dir / "broken.json", "{not json");
  REQUIRE(WriteMetricsJson(dir / "broken.json", {{"a", 1}}).ok());
  CHECK(nlohmann::json::parse(ReadFile(dir / "broken.json"))["a"] == 1);
}

TEST_CASE("results: samples.jsonl lines survive invalid UTF-8") {
  TempDir dir;
  SamplesWriter w;
  REQUIRE(w.Open(dir / "samples.jsonl").ok());
  w.Write({{"response", std::string("bad \xff\xfe bytes")}});
  w.Write({{"response", "ok"}});
  REQUIRE(w.Close().ok());
  auto lines = ReadLines(dir / "samples.jsonl");
  REQUIRE(lines.size() == 2);
  CHECK(nlohmann::json::parse(lines[0])["response"].get<std::string>().find("bad") == 0);
  SamplesWriter bad;
  CHECK_FALSE(bad.Open(dir / "no/such/dir/samples.jsonl").ok());
}

}  // namespace
}  // namespace evald::runner
