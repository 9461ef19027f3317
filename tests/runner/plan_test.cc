#include "runner/plan.h"

#include <catch2/catch.hpp>

#include "runner/yaml_util.h"
#include "tests/runner/test_util.h"

namespace evald::runner {
namespace {

using testing::TempDir;
using testing::WriteFile;

constexpr char kMinimal[] = R"(config:
  type: native_gsm8k
  output_dir: out
target:
  api_endpoint:
    url: http://127.0.0.1:9/v1/chat/completions
    model_id: m
)";

std::string ErrorOf(const std::string& text, const std::vector<std::string>& overrides = {}) {
  auto plan = ParsePlan(text, "plan.yaml", "/jobs/t", overrides);
  REQUIRE_FALSE(plan.ok());
  return std::string(plan.status().message());
}

TEST_CASE("plan: minimal plan gets the reference defaults") {
  auto plan = ParsePlan(kMinimal, "plan.yaml", "/jobs/t");
  REQUIRE(plan.ok());
  CHECK(plan->task == "native_gsm8k");
  CHECK(plan->output_dir == "/jobs/t/out");
  CHECK(plan->params.parallelism == 1);
  CHECK(plan->params.max_retries == 5);
  CHECK(plan->params.request_timeout_s == 60);
  CHECK(plan->params.n_samples == 1);
  CHECK_FALSE(plan->params.limit_samples.has_value());
  CHECK_FALSE(plan->params.temperature.has_value());
  CHECK(plan->endpoint.type == EndpointType::kChat);
  CHECK_FALSE(plan->endpoint.type_given);
  CHECK(plan->endpoint.api_key_env == "API_KEY");  // absent: the reference default
  CHECK(plan->adapter.caching.enabled);            // caching is on by default
  CHECK(plan->adapter.caching.dir == "/jobs/t/out/cache");
  CHECK(plan->adapter.stats.enabled);
  CHECK_FALSE(plan->adapter.reasoning.enabled);
}

TEST_CASE("plan: every param of the contract is read") {
  const std::string text = R"(config:
  type: my_task
  output_dir: /abs/artifacts
  task_file: tasks/my.yaml
  params:
    limit_samples: 100
    parallelism: 64
    temperature: 0.7
    top_p: 0.9
    max_new_tokens: 1024
    request_timeout: 2.5
    max_retries: 3
    extra:
      n_samples: 4
      seed: 1234
      dataset: data/x.jsonl
      num_fewshot: 2
      retry_base_delay: 0.01
      retry_max_delay: 0.1
      max_failed_fraction: 0.25
target:
  api_endpoint:
    url: https://api.example.com/v1/completions
    model_id: org/model
    type: completions
    api_key: null
)";
  auto plan = ParsePlan(text, "plan.yaml", "/jobs/t");
  REQUIRE(plan.ok());
  const Params& p = plan->params;
  CHECK(*p.limit_samples == 100);
  CHECK(p.parallelism == 64);
  CHECK(*p.temperature == Approx(0.7));
  CHECK(*p.top_p == Approx(0.9));
  CHECK(*p.max_new_tokens == 1024);
  CHECK(p.request_timeout_s == Approx(2.5));
  CHECK(p.max_retries == 3);
  CHECK(p.n_samples == 4);
  CHECK(*p.seed == 1234);
  CHECK(p.dataset == "/jobs/t/data/x.jsonl");
  CHECK(*p.num_fewshot == 2);
  CHECK(p.retry_base_delay_s == Approx(0.01));
  CHECK(p.retry_max_delay_s == Approx(0.1));
  CHECK(p.max_failed_fraction == Approx(0.25));
  CHECK(plan->task_file == "/jobs/t/tasks/my.yaml");
  CHECK(plan->endpoint.type == EndpointType::kCompletions);
  CHECK(plan->endpoint.api_key_env.empty());  // explicit null: no key
  CHECK(plan->config["params"]["limit_samples"] == 100);
  CHECK(plan->target["api_endpoint"]["model_id"] == "org/model");
}

TEST_CASE("plan: errors name the file, the line and the key path") {
  std::string text = kMinimal;
  text += "";
  std::string bad = R"(config:
  type: native_gsm8k
  output_dir: out
  params:
    parallelism: lots
target:
  api_endpoint:
    url: http://h/v1/chat/completions
    model_id: m
)";
  std::string msg = ErrorOf(bad);
  CHECK_THAT(msg, Catch::Contains("plan.yaml:5: config.params.parallelism"));
  CHECK_THAT(msg, Catch::Contains("expected an integer, got 'lots'"));

  msg = ErrorOf(R"(config:
  type: native_gsm8k
  output_dir: out
target:
  api_endpoint:
    url: ftp://h/x
    model_id: m
)");
  CHECK_THAT(msg, Catch::Contains("plan.yaml:6: target.api_endpoint.url"));
  CHECK_THAT(msg, Catch::Contains("http:// or https://"));

  msg = ErrorOf(R"(config:
  output_dir: out
target: {api_endpoint: {url: http://h/v1, model_id: m}}
)");
  CHECK_THAT(msg, Catch::Contains("config.type"));

  msg = ErrorOf(R"(config: {type: t, output_dir: o}
target: {api_endpoint: {url: http://h/v1, model_id: m, type: vlm}}
)");
  CHECK_THAT(msg, Catch::Contains("target.api_endpoint.type"));
  CHECK_THAT(msg, Catch::Contains("chat or completions"));

  msg = ErrorOf(R"(config: {type: t, output_dir: o, params: {top_p: 3}}
target: {api_endpoint: {url: http://h/v1, model_id: m}}
)");
  CHECK_THAT(msg, Catch::Contains("config.params.top_p"));

  msg = ErrorOf("config: [unclosed\n");
  CHECK_THAT(msg, Catch::Contains("plan.yaml:"));
  CHECK_THAT(msg, Catch::Contains("invalid YAML"));
}

TEST_CASE("plan: overrides apply dotted keys with YAML-typed values") {
  auto plan = ParsePlan(kMinimal, "plan.yaml", "/jobs/t",
                        {"config.params.limit_samples=7", "config.params.extra.seed=42",
                         "target.api_endpoint.adapter_config.use_caching=false"});
  REQUIRE(plan.ok());
  CHECK(*plan->params.limit_samples == 7);
  CHECK(*plan->params.seed == 42);
  CHECK_FALSE(plan->adapter.caching.enabled);
  CHECK_THAT(ErrorOf(kMinimal, {"no-equals-sign"}), Catch::Contains("key.path=value"));
  CHECK(ErrorOf(kMinimal, {"config.type.x=1"}) ==
        "override 'config.type.x=1': key path 'config.type.x' goes through 'config.type', which "
        "is a string, not a mapping");
  CHECK_THAT(ErrorOf(kMinimal, {"config..x=1"}), Catch::Contains("empty part"));
}

TEST_CASE("plan: overrides address list items and type values by the daemon's YAML 1.1 rule") {
  auto plan = ParsePlan(
      R"(config:
  type: native_gsm8k
  output_dir: out
  params: {extra: {stop: [a, b]}}
target:
  api_endpoint: {url: http://127.0.0.1:9/v1/chat/completions, model_id: m}
)",
      "plan.yaml", "/jobs/t",
      {"config.params.extra.stop[1]=c", "config.params.extra.stop.0=z", "config.params.top_p=1e-5",
       "config.params.extra.seed=0x1f", "config.params.extra.shuffle_choices=yes",
       "config.params.extra.w='yes'", "config.params.extra.t=1:20", "config.params.extra.o=0o17"});
  REQUIRE(plan.ok());
  const nlohmann::json& extra = plan->config["params"]["extra"];
  CHECK(extra["stop"].dump() == R"(["z","c"])");
  CHECK(*plan->params.top_p == 1e-5);
  CHECK(*plan->params.seed == 31);
  CHECK(*plan->params.shuffle_choices);
  CHECK(extra["w"].dump() == R"("yes")");
  CHECK(extra["t"].dump() == "80");
  CHECK(extra["o"].dump() == R"("0o17")");
  CHECK_THAT(ErrorOf(kMinimal, {"config.params=[1]", "config.params[3]=1"}),
             Catch::Contains("index 3 is out of range for 'config.params'"));
}

TEST_CASE("plan: scalars are read with the daemon's YAML 1.1 rule") {
  auto plan = ParsePlan(R"(config:
  type: native_gsm8k
  output_dir: out
  params:
    top_p: 1.0e-05
    temperature: 1e-5
    limit_samples: 1_000
    extra: {seed: 0x1f, shuffle_choices: on, dataset: "yes"}
target:
  api_endpoint: {url: http://127.0.0.1:9/v1/chat/completions, model_id: m}
)",
                        "plan.yaml", "/jobs/t");
  REQUIRE(plan.ok());
  CHECK(*plan->params.top_p == 1e-5);
  CHECK(*plan->params.temperature == 1e-5);
  CHECK(*plan->params.limit_samples == 1000);
  CHECK(*plan->params.seed == 31);
  CHECK(*plan->params.shuffle_choices);
  CHECK(plan->config["params"]["extra"]["shuffle_choices"].dump() == "true");
  CHECK_THAT(ErrorOf(R"(config: {type: t, output_dir: o, params: {limit_samples: "5"}}
target: {api_endpoint: {url: http://h/v1, model_id: m}}
)"),
             Catch::Contains("expected an integer"));
}

TEST_CASE("plan: LoadPlan resolves relative paths against the plan's folder") {
  TempDir dir;
  WriteFile(dir / "job/plan.yaml", kMinimal);
  auto plan = LoadPlan(dir / "job/plan.yaml");
  REQUIRE(plan.ok());
  CHECK(plan->output_dir == dir / "job/out");
  CHECK(plan->path == dir / "job/plan.yaml");
  auto missing = LoadPlan(dir / "nope.yaml");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().code() == absl::StatusCode::kNotFound);
}

TEST_CASE("yaml: EmitYaml quotes strings that would read back as other types") {
  nlohmann::json j = {{"a", "72"},     {"b", "true"},  {"c", ""},           {"d", 0.1},
                      {"e", 1.0},      {"f", nullptr}, {"g", "plain text"}, {"h", {1, 2}},
                      {"i", 1e-5},     {"j", "yes"},   {"k", "0x1f"},       {"l", "1:20"},
                      {"m", "1.0e-05"}};
  std::string text = EmitYaml(j);
  CHECK(text.find("i: 1.0e-05\n") != std::string::npos);
  auto doc = YamlDoc::Parse(text, "x");
  REQUIRE(doc.ok());
  nlohmann::json back = YamlToJson(doc->root());
  CHECK(back == j);
  // Keys come out sorted, as PyYAML's yaml.dump writes them.
  CHECK(text.find("a:") < text.find("b:"));
  CHECK(text.find("g:") < text.find("h:"));
}

TEST_CASE("plan: an alias bomb is refused before it is built or converted to JSON") {
  // 6 levels of 10 aliases: 1,234,566 nodes under config.params.extra once expanded.
  std::string text = "config:\n  type: native_gsm8k\n  output_dir: out\n  params:\n    extra:\n";
  for (int level = 0; level < 6; ++level) {
    std::string name(1, static_cast<char>('a' + level));
    text += "      " + name + ": &" + name + " [";
    for (int k = 0; k < 10; ++k) {
      text += k > 0 ? "," : "";
      text += level == 0 ? "x" : "*" + std::string(1, static_cast<char>('a' + level - 1));
    }
    text += "]\n";
  }
  text += "target:\n  api_endpoint:\n    url: http://127.0.0.1:9/v1/chat/completions\n";
  std::string error = ErrorOf(text);
  CHECK(error.rfind("plan.yaml:", 0) == 0);
  CHECK(error.find(": config.params.extra.e[") != std::string::npos);
  CHECK(error.find("too many nodes after alias expansion (limit 20000)") != std::string::npos);
}

}  // namespace
}  // namespace evald::runner
