// The config schema checked at submit: unknown keys with suggestions, wrong types and bad values
// with the key path, what was expected and what was found; every packaged config and reference
// example still passes.
#include "core/config/schema.h"

#include <catch2/catch.hpp>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/config/compose.h"
#include "executors/registry.h"
#include "tests/core/config/test_util.h"

namespace evald::config {
namespace {

using testing::ComposeText;
using testing::PackagedDir;
using testing::PeerExamplesDir;

// The executors' own keys, as evald and evalctl check them.
const std::vector<ExecutorSchema>& Executors() {
  static const auto* schemas = new std::vector<ExecutorSchema>(executors::BuiltinSchemas());
  return *schemas;
}

const char kLocal[] = R"(defaults:
  - execution: local
  - deployment: none
  - _self_
execution:
  output_dir: /out
target:
  api_endpoint:
    url: https://integrate.api.nvidia.com/v1/chat/completions
    model_id: meta/llama-3.1-8b-instruct
    api_key_name: NGC_API_KEY
evaluation:
  tasks:
    - name: ifeval
)";

// The schema's verdict on `yaml` composed with the packaged groups and `overrides`.
std::string Verdict(const std::string& yaml, std::vector<std::string> overrides = {}) {
  auto composed = ComposeText(yaml, std::move(overrides));
  if (!composed.ok()) return absl::StrCat("<compose: ", composed.status().message(), ">");
  absl::Status s = CheckConfigSchema(*composed, "my.yaml", Executors());
  return s.ok() ? std::string("<ok>") : std::string(s.message());
}

TEST_CASE("The issue's examples name the file, the key path, the expectation and a suggestion") {
  CHECK(Verdict(kLocal) == "<ok>");
  CHECK(Verdict(kLocal, {"+execution.outptu_dir=/x"}) ==
        "my.yaml: execution.outptu_dir: unknown key in execution (execution type local); did "
        "you mean 'output_dir'?");
  CHECK(Verdict(kLocal, {"+evaluation.overrides={config.params.parallelism: lots}"}) ==
        "my.yaml: evaluation.overrides.config.params.parallelism: expected an integer >= 1 or "
        "null, found a string 'lots'");
  CHECK(Verdict(kLocal, {"target.api_endpoint.url=12345"}) ==
        "my.yaml: target.api_endpoint.url: expected a URL (a string), found an integer 12345");
  CHECK(Verdict(kLocal, {"+evaluation.tasks.0.overrides={config.params.limit_samples: -3}"}) ==
        "my.yaml: evaluation.tasks[0].overrides.config.params.limit_samples: expected a number "
        ">= 0 or null, found an integer -3");
  CHECK(Verdict(kLocal, {"execution.output_dir=[1,2]"}) ==
        "my.yaml: execution.output_dir: expected an absolute path (a string), found a list [1, "
        "2]");
}

TEST_CASE("Every problem is reported, up to twenty") {
  std::string yaml = absl::StrCat(kLocal, R"(    - name: gsm8k
      endpoint_type: chatt
      overrides:
        config.params.temperature: -1
        config.params.top_p: 2
deployment:
  type: none
  tensor_paralel_size: 2
executon:
  mode: serial
)");
  // In the composed config's key order: the groups' sections first.
  std::string msg = Verdict(yaml);
  CHECK(msg ==
        "my.yaml: 5 problems in the config:\n"
        "  deployment.tensor_paralel_size: unknown key in deployment (deployment type none); did "
        "you mean 'tensor_parallel_size'?\n"
        "  evaluation.tasks[1].endpoint_type: expected one of 'chat', 'completions', 'vlm' or "
        "null, found a string 'chatt'; did you mean 'chat'?\n"
        "  evaluation.tasks[1].overrides.config.params.temperature: expected a number >= 0 or "
        "null, found an integer -1\n"
        "  evaluation.tasks[1].overrides.config.params.top_p: expected a number between 0 and 1 "
        "or null, found an integer 2\n"
        "  executon: unknown top-level key; did you mean 'execution'?");

  std::string many = kLocal;
  for (int i = 0; i < 25; ++i) absl::StrAppend(&many, "    - name: t", i, "\n      bad: 1\n");
  msg = Verdict(many);
  CHECK(absl::StartsWith(msg, "my.yaml: 25 problems in the config:\n"));
  CHECK(absl::StrContains(msg, "  evaluation.tasks[20].bad: unknown key in evaluation.tasks[20]"));
  CHECK_FALSE(absl::StrContains(msg, "evaluation.tasks[21].bad"));
  CHECK(absl::EndsWith(msg, "\n  ... and 5 more"));
}

TEST_CASE("Executor keys are checked for the selected executor, SLURM and Lepton included") {
  std::vector<std::string> to_slurm = {"execution=slurm/default", "execution.hostname=login",
                                       "execution.account=acct"};
  CHECK(Verdict(kLocal, to_slurm) == "<ok>");
  std::vector<std::string> typo = to_slurm;
  typo.push_back("+execution.acount=x");
  CHECK(Verdict(kLocal, typo) ==
        "my.yaml: execution.acount: unknown key in execution (execution type slurm); did you "
        "mean 'account'?");
  typo = to_slurm;
  typo.push_back("execution.num_nodes=0");
  CHECK(Verdict(kLocal, typo) ==
        "my.yaml: execution.num_nodes: expected an integer >= 1, found an integer 0");
  // A key of another executor is named as such.
  CHECK(Verdict(kLocal, {"+execution.hostname=login"}) ==
        "my.yaml: execution.hostname: unknown key in execution (execution type local); it is a "
        "key of type slurm");
  CHECK(Verdict(kLocal, {"execution=lepton/default", "+execution.lepton_platform.taks={}"}) ==
        "my.yaml: execution.lepton_platform.taks: unknown key in execution.lepton_platform "
        "(execution type lepton); did you mean 'tasks'?");
  // An unknown executor is the one problem; its keys are checked against every executor's.
  CHECK(Verdict(kLocal, {"execution.type=slurmm"}) ==
        "my.yaml: execution.type: expected one of 'local', 'slurm', 'lepton', found a string "
        "'slurmm'; did you mean 'slurm'?");
}

TEST_CASE("Deployment keys are checked for the selected deployment type") {
  const std::string vllm = R"(defaults:
  - execution: local
  - deployment: vllm
  - _self_
execution:
  output_dir: /out
deployment:
  checkpoint_path: /models/m
  served_model_name: m
evaluation:
  tasks:
    - name: ifeval
)";
  CHECK(Verdict(vllm) == "<ok>");
  CHECK(Verdict(vllm, {"deployment.port=70000"}) ==
        "my.yaml: deployment.port: expected an integer between 1 and 65535 or 'auto', found an "
        "integer 70000");
  CHECK(Verdict(vllm, {"deployment.port=autoo"}) ==
        "my.yaml: deployment.port: expected an integer between 1 and 65535 or 'auto', found a "
        "string 'autoo'; did you mean 'auto'?");
  CHECK(Verdict(vllm, {"deployment=sglang", "+deployment.pipeline_parallel_size=2"}) ==
        "my.yaml: deployment.pipeline_parallel_size: unknown key in deployment (deployment type "
        "sglang); it is a key of type vllm, trtllm");
  CHECK(Verdict(vllm, {"+deployment.lepton_config={resource_shap: gpu.1xh200}"}) ==
        "my.yaml: deployment.lepton_config.resource_shap: unknown key in "
        "deployment.lepton_config (deployment type vllm); did you mean 'resource_shape'?");
  CHECK(Verdict(vllm, {"+deployment.shared=maybe"}) ==
        "my.yaml: deployment.shared: expected true or false or null, found a string 'maybe'");
}

TEST_CASE("Maps passed through to the harness or the platform stay open") {
  std::string yaml = absl::StrCat(kLocal, R"(    - name: mbpp
      overrides:
        config.params.extra.anything: 1
        config.params.limit_samples: "10"
        target.api_endpoint.adapter_config.use_reasoning: "false"
        some.harness.key: [1, 2]
      env_vars:
        ANY_NAME: HOST_VAR
      config:
        config:
          params:
            extra: {whatever: {deep: true}}
        target: {api_endpoint: {adapter_config: {interceptors: [{name: caching}]}}}
notes: 'a top-level helper for interpolation'
)");
  CHECK(Verdict(yaml, {"+execution.auto_export={destinations: [mlflow], configs: {mlflow: {x: 1}}}",
                       "+execution.env_vars={deployment: {A: b}}"}) == "<ok>");
  // The well-known keys inside them are still typed, nested or flat.
  CHECK(Verdict(kLocal, {"+evaluation.config={config: {params: {parallelism: 0}}}"}) ==
        "my.yaml: evaluation.config.config.params.parallelism: expected an integer >= 1 or null, "
        "found an integer 0");
}

TEST_CASE("Env var values are never echoed") {
  std::string msg = Verdict(kLocal, {"+evaluation.env_vars={HF_TOKEN: 123456789}"});
  CHECK(msg ==
        "my.yaml: evaluation.env_vars.HF_TOKEN: expected the NAME of a host environment variable "
        "(a string), found an integer");
  msg = Verdict(kLocal, {"target.api_endpoint.api_key_name=[nvapi-secret]"});
  CHECK(absl::StrContains(msg, "target.api_endpoint.api_key_name: expected the NAME"));
  CHECK_FALSE(absl::StrContains(msg, "nvapi-secret"));
}

TEST_CASE("Deeply nested values are refused or described without walking them") {
  // `levels` sequences around the scalar 1, built from the outside in: assigning a yaml-cpp node
  // to a node variable aliases it, and each push_back merges the pushed node's memory into the
  // parent's, so inside-out building copied the whole chain at every level (O(n^2), 30 s).
  auto nested = [](int levels) {
    std::vector<YAML::Node> chain = {YAML::Node(YAML::NodeType::Sequence)};
    for (int i = 1; i < levels; ++i) {
      YAML::Node inner(YAML::NodeType::Sequence);
      chain.back().push_back(inner);
      chain.push_back(inner);
    }
    chain.back().push_back(YAML::Node(1));
    return chain.front();
  };
  auto composed = ComposeText(kLocal);
  REQUIRE(composed.ok());
  YAML::Node cfg = YAML::Clone(*composed);
  cfg["execution"]["output_dir"] = nested(10000);
  absl::Status s = CheckConfigSchema(cfg, "my.yaml", Executors());
  CHECK(absl::StartsWith(s.message(), "my.yaml"));
  CHECK(absl::StrContains(s.message(), "nesting deeper than"));

  cfg = YAML::Clone(*composed);
  cfg["execution"]["output_dir"] = nested(150);
  CHECK(CheckConfigSchema(cfg, "my.yaml", Executors()).message() ==
        "my.yaml: execution.output_dir: expected an absolute path (a string), found a list of 1 "
        "item");
  cfg = YAML::Clone(*composed);
  cfg["evaluation"]["config"]["config"]["params"]["extra"]["x"] = nested(150);
  CHECK(CheckConfigSchema(cfg, "my.yaml", Executors()).ok());
}

TEST_CASE("Every reference example and every packaged group passes the schema") {
  std::vector<std::string> examples;
  for (const auto& e : std::filesystem::directory_iterator(PeerExamplesDir())) {
    if (e.path().extension() == ".yaml") examples.push_back(e.path().string());
  }
  for (const auto& e : std::filesystem::directory_iterator(testing::SourcePath("examples"))) {
    if (e.path().extension() == ".yaml") examples.push_back(e.path().string());
  }
  REQUIRE(examples.size() >= 17);
  for (const std::string& path : examples) {
    CAPTURE(path);
    ComposeRequest req;
    req.primary_path = path;
    req.packaged_dir = PackagedDir();
    req.env = testing::FixedEnv({{"USER", "u"},
                                 {"HOME", "/home/u"},
                                 {"PWD", "/src"},
                                 {"AWS_ACCESS_KEY_ID", "a"},
                                 {"NV_CSS_S3_TOKEN", "b"}});
    req.working_dir = "/submit";
    req.allow_missing = true;  // `???` is ParseRunConfig's to report
    auto composed = Compose(req);
    REQUIRE(composed.ok());
    absl::Status s = CheckConfigSchema(*composed, path, Executors());
    CAPTURE(s.message());
    CHECK(s.ok());
  }
  for (const char* execution : {"local", "slurm/default", "lepton/default"}) {
    for (const char* deployment : {"none", "vllm", "sglang", "nim", "trtllm", "command"}) {
      CAPTURE(execution, deployment);
      ComposeRequest req;
      req.primary_path = PackagedDir() + "/default.yaml";
      req.packaged_dir = PackagedDir();
      req.env = testing::FixedEnv({{"USER", "u"}});
      req.overrides = {absl::StrCat("execution=", execution),
                       absl::StrCat("deployment=", deployment)};
      req.allow_missing = true;
      auto composed = Compose(req);
      REQUIRE(composed.ok());
      absl::Status s = CheckConfigSchema(*composed, "default.yaml", Executors());
      CAPTURE(s.message());
      CHECK(s.ok());
    }
  }
}

}  // namespace
}  // namespace evald::config
