#include <catch2/catch.hpp>

#include "daemon/export/export_config.h"
#include "daemon/export/metrics_extract.h"
#include "tests/daemon/export/export_test_util.h"

namespace evald::daemon::exporters {
namespace {

using testing::DataFile;
using testing::TempDir;
using testing::WriteText;

TEST_CASE("extraction follows the reference rules on a results.yml with every case") {
  absl::StatusOr<MetricMap> m =
      ExtractMetricsFromText(DataFile("results_gsm8k_mmlu.yml"), "results.yml", {}, {});
  REQUIRE(m.ok());
  // latency (name), score_note (string), em_flag (bool), pass@1 (quoted string) are left out;
  // mmlu_acc_micro comes from the group and the task with the same value.
  const MetricMap expected = {{"gsm8k_accuracy", 0.9},
                              {"gsm8k_exact_match_flexible-extract", 0.8},
                              {"gsm8k_exact_match_strict-match", 0.75},
                              {"gsm8k_f1", 0.5},
                              {"humaneval_score", 0.2},
                              {"mmlu_acc_macro", 0.6},
                              {"mmlu_acc_micro", 0.61}};
  CHECK(*m == expected);
}

TEST_CASE("the name filter matches lower-cased substrings") {
  CHECK(IsExportedMetricName("ACC"));
  CHECK(IsExportedMetricName("exact_match"));
  CHECK(IsExportedMetricName("Pass@1"));
  CHECK(IsExportedMetricName("pass@k"));
  CHECK(IsExportedMetricName("macro_F1"));
  // Substrings, as in the reference: "temperature" holds "em", "pass@10" holds "pass@1".
  CHECK(IsExportedMetricName("temperature"));
  CHECK(IsExportedMetricName("pass@10"));
  CHECK_FALSE(IsExportedMetricName("latency"));
  CHECK_FALSE(IsExportedMetricName("mean"));
  CHECK_FALSE(IsExportedMetricName("bleu"));
}

TEST_CASE("a key with two different values is an error naming the key and both values") {
  absl::StatusOr<MetricMap> m =
      ExtractMetricsFromText(DataFile("results_conflict.yml"), "a/results.yml", {}, {});
  REQUIRE_FALSE(m.ok());
  CHECK(m.status().message() ==
        "metric conflict: 'mmlu_acc_micro' is 0.61 (a/results.yml groups.mmlu.metrics.acc.scores."
        "micro) and 0.62 (a/results.yml tasks.mmlu.metrics.acc.scores.micro)");
}

TEST_CASE("json files with a top-level score add <stem>_score and results.yml wins") {
  TempDir tmp;
  WriteText(tmp.path() / "results.yml", DataFile("results_gsm8k_mmlu.yml"));
  WriteText(tmp.path() / "custom.json", R"({"score": 0.42, "other": 1})");
  WriteText(tmp.path() / "humaneval.json", R"({"score": 0.99})");  // humaneval_score from yml
  WriteText(tmp.path() / "text.json", R"({"score": "high"})");
  WriteText(tmp.path() / "broken.json", R"({"score": )");
  WriteText(tmp.path() / "eval_factory_metrics.json", R"({"evaluation": {}})");
  WriteText(tmp.path() / "sub" / "nested.json", R"({"score": 0.1})");  // not top-level
  absl::StatusOr<MetricMap> m = ExtractMetrics(tmp.path().string(), {});
  REQUIRE(m.ok());
  CHECK(m->at("custom_score") == 0.42);
  CHECK(m->at("humaneval_score") == 0.2);
  CHECK(m->count("text_score") == 0);
  CHECK(m->count("broken_score") == 0);
  CHECK(m->count("nested_score") == 0);
  CHECK(m->size() == 8);
}

TEST_CASE("a job without results.yml exports only its json scores") {
  TempDir tmp;
  WriteText(tmp.path() / "bfcl.json", R"({"score": 0.3})");
  absl::StatusOr<MetricMap> m = ExtractMetrics(tmp.path().string(), {});
  REQUIRE(m.ok());
  CHECK(*m == MetricMap{{"bfcl_score", 0.3}});
}

TEST_CASE("log_metrics keeps keys containing a filter, case-insensitively") {
  absl::StatusOr<MetricMap> m =
      ExtractMetricsFromText(DataFile("results_gsm8k_mmlu.yml"), "results.yml", {}, {"ACC", "f1"});
  REQUIRE(m.ok());
  CHECK(*m == MetricMap{{"gsm8k_accuracy", 0.9},
                        {"gsm8k_f1", 0.5},
                        {"mmlu_acc_macro", 0.6},
                        {"mmlu_acc_micro", 0.61}});
}

TEST_CASE("a broken results.yml is an error naming file and line") {
  absl::StatusOr<MetricMap> m = ExtractMetricsFromText("results: [x", "j/results.yml", {}, {});
  REQUIRE_FALSE(m.ok());
  CHECK(m.status().message().rfind("j/results.yml:1:", 0) == 0);
}

TEST_CASE("benchmark and model names") {
  CHECK(BenchmarkName("simple_evals.gpqa_diamond", "simple_evals") == "gpqa_diamond");
  CHECK(BenchmarkName("gpqa_diamond", "simple_evals") == "gpqa_diamond");
  CHECK(BenchmarkName("lm-evaluation-harness.mmlu", "simple_evals") ==
        "lm-evaluation-harness.mmlu");
  YAML::Node cfg = YAML::Load(R"(
target: {api_endpoint: {model_id: meta/llama-3.1-8b-instruct}}
deployment: {served_model_name: served}
)");
  CHECK(ResolveModelName(cfg, "", "ab.0") == "meta/llama-3.1-8b-instruct");
  CHECK(ResolveModelName(YAML::Load("{model_name: m, target: x}"), "", "ab.0") == "m");
  CHECK(ResolveModelName(YAML::Load("deployment: {served_model_name: served}"), "", "ab.0") ==
        "served");
  CHECK(ResolveModelName(YAML::Load("target: 5"), "from-db", "ab.0") == "from-db");
  CHECK(ResolveModelName(YAML::Node(), "", "ab.0") == "unknown_model_ab.0");
}

TEST_CASE("exporter config: auto_export configs, then -o overrides, last wins") {
  YAML::Node base = YAML::Load(R"(
output_dir: /data/out
format: json
copy_logs: false
log_metrics: [accuracy]
tags: {framework: vLLM}
)");
  absl::StatusOr<nlohmann::json> cfg =
      MergeExportConfig(base,
                        {"export.local.format=csv", "export.mlflow.tracking_uri=http://x",
                         "copy_logs=true", "export.local.tags.precision=bf16",
                         "export.local.log_metrics=[acc, 'pass@1']", "export.local.format=json"},
                        "local");
  REQUIRE(cfg.ok());
  CHECK((*cfg)["format"] == "json");
  CHECK((*cfg)["copy_logs"] == true);
  CHECK((*cfg)["output_dir"] == "/data/out");
  CHECK_FALSE(cfg->contains("tracking_uri"));
  CHECK((*cfg)["tags"] == nlohmann::json{{"framework", "vLLM"}, {"precision", "bf16"}});
  CHECK((*cfg)["log_metrics"] == nlohmann::json{"acc", "pass@1"});
  CHECK_FALSE(MergeExportConfig(YAML::Node(), {"export.local.format"}, "local").ok());
  CHECK_FALSE(MergeExportConfig(YAML::Load("[1]"), {}, "local").ok());
  absl::StatusOr<bool> b =
      ConfigBool(nlohmann::json{{"copy_logs", "yes please"}}, "local", "copy_logs", false);
  REQUIRE_FALSE(b.ok());
  CHECK(b.status().message() ==
        "export config local.copy_logs must be true or false, not \"yes please\"");
}

}  // namespace
}  // namespace evald::daemon::exporters
