// Validation of composed configs into a RunConfig: what the reference rejects, with clearer
// messages, plus the task filter, env-var mapping, secrets and user-defined tasks.
#include "core/config/run_config.h"

#include <catch2/catch.hpp>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/config/compose.h"
#include "executors/lepton/lepton_config.h"
#include "tests/core/config/test_util.h"

namespace evald::config {
namespace {

using testing::ComposeText;
using testing::PackagedDir;
using testing::PeerExamplesDir;
using testing::TempDir;

const TaskCatalog& Catalog() {
  static const TaskCatalog* catalog = [] {
    auto c = TaskCatalog::LoadDir(PackagedDir() + "/tasks");
    REQUIRE(c.ok());
    return new TaskCatalog(std::move(*c));
  }();
  return *catalog;
}

const char kBase[] = R"(defaults:
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
  overrides:
    config.params.request_timeout: 3600
    config.params.temperature: 0.1
  env_vars:
    SHARED: SHARED_SRC
  config:
    config: {params: {parallelism: 2}}
    target: {api_endpoint: {adapter_config: {use_reasoning: false}}}
  tasks:
    - name: ifeval
    - name: gpqa_diamond
      overrides:
        config.params.temperature: 0.6
        config.params.top_p: 0.95
      env_vars:
        HF_TOKEN: MY_HF
        SHARED: TASK_SRC
      config:
        config: {params: {max_new_tokens: 8}}
    - name: ifeval
      container: my/image:1
      endpoint_type: completions
)";

absl::StatusOr<RunConfig> Parse(const std::string& yaml, std::vector<std::string> overrides = {},
                                std::vector<std::string> filter = {}) {
  auto composed = ComposeText(yaml, std::move(overrides));
  if (!composed.ok()) return composed.status();
  return ParseRunConfig(*composed, Catalog(), filter);
}

std::string ErrorOf(const absl::StatusOr<RunConfig>& r) {
  return r.ok() ? std::string("<ok>") : std::string(r.status().message());
}

TEST_CASE("A valid config decodes into executor target and one spec per task") {
  auto rc = Parse(kBase);
  REQUIRE(rc.ok());
  CHECK(rc->executor == "local");
  CHECK(rc->mode == "parallel");
  CHECK(rc->output_dir == "/out");
  CHECK(rc->deployment_type == "none");
  CHECK(rc->deployment["type"].Scalar() == "none");
  CHECK(rc->target.url == "https://integrate.api.nvidia.com/v1/chat/completions");
  CHECK(rc->target.model_id == "meta/llama-3.1-8b-instruct");
  CHECK(rc->target.api_key_name == "NGC_API_KEY");
  CHECK(rc->execution["type"].Scalar() == "local");
  REQUIRE(rc->tasks.size() == 3);

  const TaskSpec& ifeval = rc->tasks[0];
  CHECK(ifeval.index == 0);
  CHECK(ifeval.def.qualified_name() == "lm-evaluation-harness.ifeval");
  CHECK(ifeval.container == ifeval.def.container);
  CHECK(ifeval.endpoint_type == "chat");
  REQUIRE(ifeval.overrides.size() == 2);
  CHECK(ifeval.env_vars == std::vector<std::pair<std::string, std::string>>{
                               {"SHARED", "SHARED_SRC"}, {"API_KEY", "NGC_API_KEY"}});

  const TaskSpec& gpqa = rc->tasks[1];
  // A task's override replaces the global one in place; new keys come after.
  REQUIRE(gpqa.overrides.size() == 3);
  CHECK(gpqa.overrides[0].first == "config.params.request_timeout");
  CHECK(gpqa.overrides[1].first == "config.params.temperature");
  CHECK(gpqa.overrides[1].second.Scalar() == "0.6");
  CHECK(gpqa.overrides[2].first == "config.params.top_p");
  CHECK(gpqa.env_vars ==
        std::vector<std::pair<std::string, std::string>>{
            {"SHARED", "TASK_SRC"}, {"HF_TOKEN", "MY_HF"}, {"API_KEY", "NGC_API_KEY"}});
  // evaluation.config shallow-updated with the task's config (the reference rule).
  CHECK(gpqa.config["config"]["params"]["max_new_tokens"].Scalar() == "8");
  CHECK_FALSE(gpqa.config["config"]["params"]["parallelism"].IsDefined());
  CHECK(gpqa.config["target"]["api_endpoint"]["adapter_config"]["use_reasoning"].Scalar() ==
        "false");

  const TaskSpec& custom = rc->tasks[2];
  CHECK(custom.container == "my/image:1");
  CHECK(custom.endpoint_type == "completions");
  CHECK(rc->secret_names ==
        std::vector<std::string>{"MY_HF", "NGC_API_KEY", "SHARED_SRC", "TASK_SRC"});
}

TEST_CASE("Secret names come from api_key_name and env_vars sources") {
  auto composed = ComposeText(kBase);
  REQUIRE(composed.ok());
  CHECK(SecretNamesOf(*composed) ==
        std::vector<std::string>{"MY_HF", "NGC_API_KEY", "SHARED_SRC", "TASK_SRC"});
  CHECK(SecretNamesOf(YAML::Load("a: 1")).empty());
  CHECK(SecretNamesOf(YAML::Load("[1, 2]")).empty());
}

TEST_CASE("Every peer example validates unless the reference rejects its tasks too") {
  std::vector<std::string> examples;
  for (const auto& e : std::filesystem::directory_iterator(PeerExamplesDir())) {
    if (e.path().extension() == ".yaml") examples.push_back(e.path().string());
  }
  std::sort(examples.begin(), examples.end());
  REQUIRE(examples.size() == 15);
  for (const std::string& path : examples) {
    CAPTURE(path);
    ComposeRequest req;
    req.primary_path = path;
    req.packaged_dir = PackagedDir();
    req.env = testing::GoldenEnv();
    req.working_dir = "/submit";
    req.overrides = {"execution.output_dir=/results"};
    if (absl::StrContains(path, "/slurm_")) {
      req.overrides.push_back("execution.account=acct");
      req.overrides.push_back("execution.hostname=login");
    }
    auto composed = Compose(req);
    REQUIRE(composed.ok());
    auto rc = ParseRunConfig(*composed, Catalog());
    if (absl::StrContains(path, "local_aa_non_reasoning") ||
        absl::StrContains(path, "local_aa_reasoning")) {
      // `mmlu_pro` is in two harnesses of the reference mapping, so the reference rejects these.
      REQUIRE_FALSE(rc.ok());
      CHECK(rc.status().message() ==
            "evaluation.tasks[4].name: there are multiple tasks named 'mmlu_pro' in the catalog, "
            "please select one of ['lm-evaluation-harness.mmlu_pro', 'simple_evals.mmlu_pro']");
      continue;
    }
    if (absl::StrContains(path, "local_auto_export")) {
      // gpqa_diamond needs HF_TOKEN and this example maps none: the reference refuses it too.
      REQUIRE_FALSE(rc.ok());
      CHECK(absl::StartsWith(rc.status().message(),
                             "task 'simple_evals.gpqa_diamond' (evaluation.tasks[0]) requires "
                             "environment variable HF_TOKEN"));
      continue;
    }
    if (absl::StrContains(path, "nemotron_benchmarks")) {
      REQUIRE_FALSE(rc.ok());
      CHECK(absl::StartsWith(rc.status().message(),
                             "evaluation.tasks[7].name: task 'arena-hard-v0-1' does not exist in "
                             "the catalog"));
      // The rest of it runs with a task filter.
      CHECK(ParseRunConfig(*composed, Catalog(), {"ifeval", "gpqa_diamond_nemo"}).ok());
      continue;
    }
    CAPTURE(ErrorOf(rc));
    REQUIRE(rc.ok());
    CHECK_FALSE(rc->tasks.empty());
  }
}

TEST_CASE("Missing mandatory values left in a composed config are reported by path") {
  ComposeRequest req;
  req.primary_path = PeerExamplesDir() + "/slurm_llama_3_1_8b_instruct.yaml";
  req.packaged_dir = PackagedDir();
  req.env = testing::GoldenEnv();
  req.allow_missing = true;
  auto composed = Compose(req);
  REQUIRE(composed.ok());
  auto rc = ParseRunConfig(*composed, Catalog());
  REQUIRE_FALSE(rc.ok());
  CHECK(rc.status().message() ==
        "missing mandatory values at 'execution.hostname', 'execution.account' (set them in the "
        "config or with -o)");
}

TEST_CASE("Validation rejects what the reference rejects") {
  // An unknown execution.type is the schema's and the registry's to refuse (schema_test.cc).
  CHECK(ErrorOf(Parse(kBase, {"+execution.mode=serial"})) ==
        "unknown execution.mode 'serial'; available: parallel, sequential");
  auto sequential = Parse(kBase, {"+execution.mode=sequential"});
  REQUIRE(sequential.ok());
  CHECK(sequential->mode == "sequential");

  CHECK(ErrorOf(Parse(kBase, {"evaluation.tasks[0].name=mmlu"})) ==
        "evaluation.tasks[0].name: there are multiple tasks named 'mmlu' in the catalog, please "
        "select one of ['lm-evaluation-harness.mmlu', 'simple_evals.mmlu']");
  CHECK(ErrorOf(Parse(kBase, {"evaluation.tasks[0].name=gsm8kk"})) ==
        "evaluation.tasks[0].name: task 'gsm8kk' does not exist in the catalog; did you mean "
        "'gsm8k'?");
  CHECK(Parse(kBase, {"evaluation.tasks[0].name=simple_evals.mmlu"}).ok());

  CHECK(ErrorOf(Parse(kBase, {"~evaluation.tasks[1].env_vars.HF_TOKEN"})) ==
        "task 'gpqa_diamond' (evaluation.tasks[1]) requires environment variable HF_TOKEN: add "
        "`HF_TOKEN: <NAME_OF_A_HOST_VARIABLE_HOLDING_IT>` to evaluation.tasks[1].env_vars (or "
        "to evaluation.env_vars)");
  CHECK(Parse(kBase, {"~evaluation.tasks[1].env_vars.HF_TOKEN", "+evaluation.env_vars.HF_TOKEN=G"})
            .ok());

  CHECK(absl::StartsWith(
      ErrorOf(Parse(kBase, {"deployment=vllm", "deployment.checkpoint_path=/c",
                            "deployment.served_model_name=served"})),
      "target.api_endpoint.url must not be set when a deployment is configured (deployment.type: "
      "vllm)"));
  CHECK(absl::StartsWith(
      ErrorOf(Parse(kBase, {"deployment=vllm", "deployment.checkpoint_path=/c",
                            "deployment.served_model_name=served", "~target.api_endpoint.url"})),
      "target.api_endpoint.model_id must not be set when a deployment is configured"));
  auto deployed = Parse(kBase, {"deployment=vllm", "deployment.checkpoint_path=/c",
                                "deployment.served_model_name=served", "~target.api_endpoint.url",
                                "~target.api_endpoint.model_id"});
  REQUIRE(deployed.ok());
  CHECK(deployed->deployment_type == "vllm");
  CHECK(deployed->target.model_id == "served");
  CHECK(deployed->target.url.empty());

  // Wrong types are named as such, not as "not set" (schema.h reports them first, at submit).
  CHECK(ErrorOf(Parse(kBase, {"execution.output_dir=[1,2]"})) ==
        "execution.output_dir must be an absolute path (a string), not a list");
  CHECK(ErrorOf(Parse(kBase, {"target.api_endpoint.url=12345"})) ==
        "target.api_endpoint.url must be a URL (a string), not an integer");
  CHECK(ErrorOf(Parse(kBase, {"~target.api_endpoint.url"})) ==
        "target.api_endpoint.url is not set; give the full URL of the endpoint (e.g. "
        "https://integrate.api.nvidia.com/v1/chat/completions)");
  CHECK(absl::StartsWith(ErrorOf(Parse(kBase, {"~target.api_endpoint.model_id"})),
                         "target.api_endpoint.model_id is not set"));
  CHECK(ErrorOf(Parse(kBase, {"+evaluation.tasks[0].env_vars={API_KEY: X}"})) ==
        "evaluation.tasks[0]: env_vars maps API_KEY, which evald sets from "
        "target.api_endpoint.api_key_name; remove it there or set api_key_name to null");
  CHECK(Parse(kBase, {"+evaluation.tasks[0].env_vars={API_KEY: X}",
                      "target.api_endpoint.api_key_name=null"})
            .ok());
  CHECK(absl::StrContains(ErrorOf(Parse(kBase, {"target.api_endpoint.api_key_name=nvapi-secret"})),
                          "not the key itself"));
  CHECK_FALSE(absl::StrContains(
      ErrorOf(Parse(kBase, {"target.api_endpoint.api_key_name=nvapi-secret"})), "nvapi-secret"));
  CHECK(absl::StrContains(ErrorOf(Parse(kBase, {"evaluation.tasks[1].env_vars.HF_TOKEN=hf_abc-1"})),
                          "must be the name of a host environment variable"));
  CHECK(ErrorOf(Parse(kBase, {"+evaluation.tasks[0].container=x",
                              "evaluation.tasks[0].name=native_gsm8k"})) ==
        "evaluation.tasks[0].container: 'native_gsm8k' is a native task run by evalrun; it takes "
        "no container");
  CHECK(ErrorOf(Parse(kBase, {"evaluation.tasks[2].endpoint_type=embeddings"})) ==
        "evaluation.tasks[2].endpoint_type must be one of chat, completions, vlm");
}

TEST_CASE("The default config needs an API key name and tasks") {
  ComposeRequest req;
  req.primary_path = PackagedDir() + "/default.yaml";
  req.packaged_dir = PackagedDir();
  req.env = testing::GoldenEnv();
  req.overrides = {"execution.output_dir=/o",
                   "target.api_endpoint.url=http://h/v1/chat/completions",
                   "target.api_endpoint.model_id=m"};
  auto composed = Compose(req);
  REQUIRE(composed.ok());
  auto rc = ParseRunConfig(*composed, Catalog());
  REQUIRE_FALSE(rc.ok());
  CHECK(rc.status().message() ==
        "target.api_endpoint.api_key_name is still the placeholder '<YOUR_API_KEY_NAME>': set it "
        "to the name of the environment variable that holds your API key (e.g. -o "
        "target.api_endpoint.api_key_name=NGC_API_KEY), or to null if the endpoint needs no key");

  req.overrides.push_back("target.api_endpoint.api_key_name=NGC_API_KEY");
  auto composed2 = Compose(req);
  REQUIRE(composed2.ok());
  auto rc2 = ParseRunConfig(*composed2, Catalog());
  REQUIRE_FALSE(rc2.ok());
  CHECK(rc2.status().message() == "no tasks: add evaluation.tasks (a list of - name: <task>)");

  CHECK(ErrorOf(Parse("execution: {type: local, output_dir: /o}\ntarget: {api_endpoint: {url: u, "
                      "model_id: m}}\nevaluation: [ifeval]\n")) ==
        "evaluation must be a mapping with tasks (and optionally overrides, env_vars, config), "
        "not a list");
  CHECK(ErrorOf(Parse("execution: {type: local, output_dir: /o}\ntarget: {api_endpoint: {url: u, "
                      "model_id: m}}\nevaluation: {tasks: [ifeval]}\n")) ==
        "evaluation.tasks[0] must be a mapping such as `- name: ifeval`, not a string");
  auto relative = ParseYaml("execution: {type: local, output_dir: rel}\n", "x.yaml");
  REQUIRE(relative.ok());
  CHECK(ErrorOf(ParseRunConfig(*relative, Catalog())) ==
        "execution.output_dir must be an absolute path, got 'rel' (relative paths are made "
        "absolute when the config is composed with a working directory)");
  CHECK(ErrorOf(Parse("a: 1\n")) ==
        "execution must be a mapping with at least type and output_dir; start from a packaged "
        "group (defaults: - execution: local)");
}

TEST_CASE("The task filter selects by name or by name and position") {
  auto all = Parse(kBase);
  REQUIRE(all.ok());
  auto by_name = Parse(kBase, {}, {"ifeval"});
  REQUIRE(by_name.ok());
  REQUIRE(by_name->tasks.size() == 2);
  CHECK(by_name->tasks[0].index == 0);
  CHECK(by_name->tasks[1].index == 2);
  auto second = Parse(kBase, {}, {"ifeval.1"});
  REQUIRE(second.ok());
  REQUIRE(second->tasks.size() == 1);
  CHECK(second->tasks[0].index == 2);
  CHECK(second->tasks[0].container == "my/image:1");
  auto both = Parse(kBase, {}, {"gpqa_diamond.0", "ifeval.0"});
  REQUIRE(both.ok());
  REQUIRE(both->tasks.size() == 2);
  CHECK(both->tasks[0].index == 0);
  CHECK(both->tasks[1].index == 1);
  // Only the selected tasks' sources are secrets.
  CHECK(second->secret_names == std::vector<std::string>{"NGC_API_KEY", "SHARED_SRC"});

  CHECK(ErrorOf(Parse(kBase, {}, {"mbpp"})) ==
        "task filter 'mbpp' matches no task; tasks in the config: ifeval, gpqa_diamond");
  CHECK(ErrorOf(Parse(kBase, {}, {"ifeval.2"})) ==
        "task filter 'ifeval.2': the config has 2 tasks named 'ifeval' (ifeval.0 to ifeval.1)");
  auto qualified =
      Parse(kBase, {"evaluation.tasks[0].name=simple_evals.mmlu"}, {"simple_evals.mmlu"});
  REQUIRE(qualified.ok());
  REQUIRE(qualified->tasks.size() == 1);
  CHECK(qualified->tasks[0].def.harness == "simple_evals");
  // A filter only validates what it selects.
  auto unknown_elsewhere =
      Parse(kBase, {"evaluation.tasks[0].name=no_such_task"}, {"gpqa_diamond"});
  CHECK(unknown_elsewhere.ok());
}

TEST_CASE("User-defined tasks come from their task file") {
  TempDir dir;
  std::string file = dir.Write("my_task.yaml", "endpoint_type: completions\nprompt: x\n");
  std::string bad = dir.Write("bad_task.yaml", "endpoint_type: vision\n");
  std::string yaml = absl::StrCat(
      "execution: {type: local, output_dir: /o}\ntarget: {api_endpoint: {url: u, model_id: m}}\n"
      "evaluation:\n  tasks:\n    - name: my_task\n      task_file: ",
      file, "\n      dataset: ", dir.path(), "/d.jsonl\n    - name: native_gsm8k\n");
  auto rc = Parse(yaml);
  REQUIRE(rc.ok());
  const TaskSpec& mine = rc->tasks[0];
  CHECK(mine.def.native());
  CHECK(mine.def.name == "my_task");
  CHECK(mine.endpoint_type == "completions");
  CHECK(mine.task_file == file);
  CHECK(mine.dataset == dir.path() + "/d.jsonl");
  CHECK(mine.container.empty());
  CHECK(rc->tasks[1].def.native());
  CHECK(rc->tasks[1].endpoint_type == "chat");

  auto missing = Parse(yaml, {"evaluation.tasks[0].task_file=/nonexistent/t.yaml"});
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().message() ==
        "evaluation.tasks[0] (my_task): task_file '/nonexistent/t.yaml' does not exist");
  auto wrong = Parse(yaml, {absl::StrCat("evaluation.tasks[0].task_file=", bad)});
  REQUIRE_FALSE(wrong.ok());
  CHECK(wrong.status().message() == bad + ":1:16: endpoint_type must be chat or completions");
  auto is_dir = Parse(yaml, {absl::StrCat("evaluation.tasks[0].task_file=", dir.path())});
  REQUIRE_FALSE(is_dir.ok());
  CHECK(absl::StrContains(is_dir.status().message(), "is not a regular file"));
}

TEST_CASE("Lepton jobs may map required env vars in the platform environment") {
  const char* cfg = R"(defaults:
  - execution: lepton/default
  - deployment: none
  - _self_
execution:
  output_dir: /o
  lepton_platform:
    tasks:
      env_vars:
        HF_TOKEN: {value_from: {secret_name_ref: HUGGING_FACE_HUB_TOKEN}}
target:
  api_endpoint: {url: u, model_id: m, api_key_name: API_KEY}
evaluation:
  tasks:
    - name: gpqa_diamond
)";
  // What the executor list gives ParseRunConfig for Lepton (executors/lepton/lepton_config.h).
  ExecutorJobEnv lepton_env = [](const std::string& executor, const YAML::Node& execution) {
    return executor == "lepton" ? executors::LeptonJobEnvNames(execution)
                                : std::vector<std::string>();
  };
  auto parse = [&](std::vector<std::string> overrides) -> absl::StatusOr<RunConfig> {
    auto composed = ComposeText(cfg, std::move(overrides));
    if (!composed.ok()) return composed.status();
    return ParseRunConfig(*composed, Catalog(), {}, lepton_env);
  };
  auto rc = parse({});
  CAPTURE(ErrorOf(rc));
  REQUIRE(rc.ok());
  CHECK(rc->executor == "lepton");
  CHECK_FALSE(parse({"~execution.lepton_platform.tasks.env_vars.HF_TOKEN"}).ok());
  CHECK_FALSE(Parse(cfg).ok());  // without the executor's environment: required, not mapped
}

}  // namespace
}  // namespace evald::config
