// Job plans: the endpoint of a task, the reference's eval-factory command for container tasks,
// and the evalrun plan of native tasks (docs/design/job-contract.md).
#include "core/config/job_plan.h"

#include <catch2/catch.hpp>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/config/compose.h"
#include "nlohmann/json.hpp"
#include "runner/plan.h"
#include "tests/core/config/test_util.h"

namespace evald::config {
namespace {

using testing::ComposeText;
using testing::PackagedDir;
using testing::PeerExamplesDir;

const TaskCatalog& Catalog() {
  static const TaskCatalog* catalog = [] {
    auto c = TaskCatalog::LoadDir(PackagedDir() + "/tasks");
    REQUIRE(c.ok());
    return new TaskCatalog(std::move(*c));
  }();
  return *catalog;
}

RunConfig Example(const std::string& name, std::vector<std::string> overrides = {}) {
  ComposeRequest req;
  req.primary_path = PeerExamplesDir() + "/" + name;
  req.packaged_dir = PackagedDir();
  req.env = testing::GoldenEnv();
  req.working_dir = "/submit";
  req.overrides = std::move(overrides);
  auto composed = Compose(req);
  REQUIRE(composed.ok());
  auto rc = ParseRunConfig(*composed, Catalog());
  CAPTURE(rc.ok() ? "" : std::string(rc.status().message()));
  REQUIRE(rc.ok());
  return *rc;
}

RunConfig FromText(const std::string& yaml, std::vector<std::string> overrides = {}) {
  auto composed = ComposeText(yaml, std::move(overrides));
  REQUIRE(composed.ok());
  auto rc = ParseRunConfig(*composed, Catalog());
  CAPTURE(rc.ok() ? "" : std::string(rc.status().message()));
  REQUIRE(rc.ok());
  return *rc;
}

TEST_CASE("The eval-factory command matches the reference rendering") {
  RunConfig rc = Example("local_llama_3_1_8b_instruct.yaml");
  REQUIRE(rc.tasks.size() == 3);
  auto endpoint = EndpointForTask(rc, rc.tasks[1]);
  REQUIRE(endpoint.ok());
  CHECK(endpoint->url == "https://integrate.api.nvidia.com/v1/chat/completions");
  CHECK(endpoint->model_id == "meta/llama-3.1-8b-instruct");
  CHECK(endpoint->type == "chat");
  CHECK(endpoint->api_key_name == "API_KEY");
  CHECK(BuildEvalFactoryCommand(rc.tasks[1], *endpoint) ==
        "echo \"e30K\" | base64 -d > config_ef.yaml && cat config_ef.yaml && nv_eval run_eval "
        "--model_id meta/llama-3.1-8b-instruct --model_type chat --eval_type gpqa_diamond "
        "--model_url https://integrate.api.nvidia.com/v1/chat/completions --api_key_name API_KEY "
        "--output_dir /results --run_config config_ef.yaml --overrides "
        "'config.params.request_timeout=3600,target.api_endpoint.adapter_config.use_reasoning="
        "False,target.api_endpoint.adapter_config.use_system_prompt=True,target.api_endpoint."
        "adapter_config.custom_system_prompt=\"Think step by step.\",config.params.temperature="
        "0.6,config.params.top_p=0.95,config.params.max_new_tokens=8192,config.params."
        "parallelism=32'");
  // mbpp replaces the global system prompt in place.
  std::string mbpp = BuildEvalFactoryCommand(rc.tasks[2], *endpoint, "eval-factory");
  CHECK(absl::StrContains(mbpp, "&& eval-factory run_eval "));
  CHECK(absl::StrContains(mbpp, "--eval_type mbpp "));
  CHECK(absl::StrContains(
      mbpp,
      "use_system_prompt=True,target.api_endpoint.adapter_config.custom_system_prompt=\"You "
      "must only provide the code implementation\",config.params.temperature=0.2,"));
  CHECK(absl::StrContains(mbpp, "config.params.extra.n_samples=5,config.params.parallelism=32"));

  RunConfig nemotron =
      Example("slurm_no_deployment_llama_nemotron_super_v1_nemotron_benchmarks.yaml",
              {"execution.account=a", "execution.hostname=h", "evaluation.tasks[7].name=mtbench"});
  auto ep = EndpointForTask(nemotron, nemotron.tasks[6]);
  REQUIRE(ep.ok());
  std::string ifeval = BuildEvalFactoryCommand(nemotron.tasks[6], *ep);
  CHECK(absl::StrContains(ifeval,
                          "config.params.temperature=0,config.params.top_p=1e-05,"
                          "config.params.max_new_tokens=4096,"));
  CHECK(absl::StrContains(ifeval, "custom_system_prompt=\"detailed thinking off\""));
}

TEST_CASE("The eval-factory run config carries the task config") {
  RunConfig rc = Example("local_custom_config_seed_oss_36b_instruct.yaml");
  auto ep = EndpointForTask(rc, rc.tasks[0]);
  REQUIRE(ep.ok());
  std::string cmd = BuildEvalFactoryCommand(rc.tasks[0], *ep);
  REQUIRE(absl::StartsWith(cmd, "echo \""));
  std::string b64 = cmd.substr(6, cmd.find('"', 6) - 6);
  std::string yaml;
  REQUIRE(absl::Base64Unescape(b64, &yaml));
  auto parsed = ParseYaml(yaml, "config_ef.yaml");
  REQUIRE(parsed.ok());
  CHECK(ToYaml(*parsed) == ToYaml(rc.tasks[0].config));
  CHECK((*parsed)["target"]["api_endpoint"]["adapter_config"]["interceptors"][1]["name"].Scalar() ==
        "system_message");
  CHECK(absl::EndsWith(cmd, "--overrides config.params.request_timeout=3600"));

  RunConfig none = FromText(R"(defaults: [{execution: local}, _self_]
execution: {output_dir: /o}
target: {api_endpoint: {url: http://h/v1/completions, model_id: m}}
evaluation: {tasks: [{name: mmlu_instruct}]}
)");
  auto ep2 = EndpointForTask(none, none.tasks[0]);
  REQUIRE(ep2.ok());
  CHECK(ep2->api_key_name.empty());
  std::string plain = BuildEvalFactoryCommand(none.tasks[0], *ep2);
  CHECK(absl::EndsWith(plain,
                       "--api_key_name API_KEY --output_dir /results --run_config "
                       "config_ef.yaml"));
}

TEST_CASE("Endpoints follow the reference get_endpoint_url rules") {
  const char* deployed = R"(defaults:
  - execution: local
  - deployment: vllm
  - _self_
execution: {output_dir: /o}
deployment: {checkpoint_path: /c, served_model_name: served, port: 8123}
target: {api_endpoint: {api_key_name: null}}
evaluation:
  tasks:
    - name: ifeval
    - name: mmlu_instruct
      endpoint_type: completions
    - name: gpqa_diamond
      env_vars: {HF_TOKEN: H}
      overrides: {config.target.api_endpoint.url: "http://other:9/v1/chat/completions"}
)";
  RunConfig rc = FromText(deployed);
  auto chat = EndpointForTask(rc, rc.tasks[0]);
  REQUIRE(chat.ok());
  CHECK(chat->url == "http://127.0.0.1:8123/v1/chat/completions");
  CHECK(chat->model_id == "served");
  CHECK(chat->api_key_name.empty());
  auto completions = EndpointForTask(rc, rc.tasks[1]);
  REQUIRE(completions.ok());
  CHECK(completions->url == "http://127.0.0.1:8123/v1/completions");
  CHECK(completions->type == "completions");
  auto overridden = EndpointForTask(rc, rc.tasks[2]);
  REQUIRE(overridden.ok());
  CHECK(overridden->url == "http://other:9/v1/chat/completions");

  RunConfig auto_port = FromText(deployed, {"deployment.port=auto"});
  auto ep = EndpointForTask(auto_port, auto_port.tasks[0]);
  REQUIRE(ep.ok());
  CHECK(ep->url == "http://127.0.0.1:${EVALD_PORT}/v1/chat/completions");

  RunConfig no_path = FromText(deployed, {"~deployment.endpoints.completions"});
  auto missing = EndpointForTask(no_path, no_path.tasks[1]);
  REQUIRE_FALSE(missing.ok());
  CHECK(
      absl::StartsWith(missing.status().message(), "deployment.endpoints.completions is not set"));
}

TEST_CASE("Native plans follow the job contract") {
  const char* cfg = R"(defaults:
  - execution: local
  - deployment: none
  - _self_
execution: {output_dir: /o}
target: {api_endpoint: {url: http://127.0.0.1:8000/v1/chat/completions, model_id: m, api_key_name: KEY}}
evaluation:
  overrides:
    config.params.limit_samples: 10
    target.api_endpoint.adapter_config.custom_system_prompt: >-
      "Think step by step."
  config:
    config: {params: {parallelism: 4, extra: {seed: 7}}}
  tasks:
    - name: native_gsm8k
      dataset: /data/gsm8k.jsonl
      config:
        config: {params: {extra: {num_fewshot: 5}}}
      overrides:
        config.params.temperature: 0.0
    - name: ifeval
)";
  RunConfig rc = FromText(cfg);
  const TaskSpec& task = rc.tasks[0];
  auto ep = EndpointForTask(rc, task);
  REQUIRE(ep.ok());
  auto plan = BuildNativePlan(rc, task, *ep, "/o/run/native_gsm8k/artifacts");
  REQUIRE(plan.ok());
  auto want = nlohmann::ordered_json::parse(R"({
    "config": {
      "params": {"parallelism": 4, "extra": {"seed": 7, "num_fewshot": 5,
                 "dataset": "/data/gsm8k.jsonl"}, "limit_samples": 10, "temperature": 0.0},
      "type": "native_gsm8k",
      "output_dir": "/o/run/native_gsm8k/artifacts"
    },
    "target": {"api_endpoint": {"url": "http://127.0.0.1:8000/v1/chat/completions",
      "model_id": "m", "type": "chat", "api_key": "API_KEY",
      "adapter_config": {"custom_system_prompt": "Think step by step."}}}
  })");
  std::vector<std::string> diffs = testing::DiffAgainstJson(*plan, want);
  CAPTURE(absl::StrJoin(diffs, "\n"), ToYaml(*plan));
  CHECK(diffs.empty());

  auto container = BuildNativePlan(rc, rc.tasks[1], *ep, "/a");
  REQUIRE_FALSE(container.ok());
  CHECK(absl::StartsWith(container.status().message(),
                         "task 'ifeval' (evaluation.tasks[1]) runs "
                         "in container nvcr.io/"));

  RunConfig outside = FromText(cfg, {"+evaluation.tasks[0].overrides.params.x=1"});
  auto bad = BuildNativePlan(outside, outside.tasks[0], *ep, "/a");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().message() ==
        "task 'native_gsm8k' (evaluation.tasks[0]): override key 'params.x' is outside config. "
        "and target.; a native task's plan has only those sections");

  RunConfig through = FromText(cfg, {"+evaluation.tasks[0].overrides.config.type.x=1"});
  auto bad2 = BuildNativePlan(through, through.tasks[0], *ep, "/a");
  REQUIRE_FALSE(bad2.ok());
  CHECK(bad2.status().message() ==
        "task 'native_gsm8k' (evaluation.tasks[0]): override 'config.type.x=1': key path "
        "'config.type.x' goes through 'config.type', which is a string, not a mapping");

  RunConfig keyless = FromText(cfg, {"target.api_endpoint.api_key_name=null"});
  auto ep2 = EndpointForTask(keyless, keyless.tasks[0]);
  REQUIRE(ep2.ok());
  auto plan2 = BuildNativePlan(keyless, keyless.tasks[0], *ep2, "/a");
  REQUIRE(plan2.ok());
  CHECK((*plan2)["target"]["api_endpoint"]["api_key"].IsNull());
}

TEST_CASE("User-defined native tasks put their task file in the plan") {
  testing::TempDir dir;
  std::string file = dir.Write("t.yaml", "endpoint_type: completions\n");
  RunConfig rc = FromText(absl::StrCat(
      "execution: {type: local, output_dir: /o}\ntarget: {api_endpoint: {url: "
      "http://h/v1/completions, model_id: m}}\nevaluation: {tasks: [{name: my_task, task_file: ",
      file, "}]}\n"));
  auto ep = EndpointForTask(rc, rc.tasks[0]);
  REQUIRE(ep.ok());
  auto plan = BuildNativePlan(rc, rc.tasks[0], *ep, "/a");
  REQUIRE(plan.ok());
  CHECK((*plan)["config"]["type"].Scalar() == "my_task");
  CHECK((*plan)["config"]["task_file"].Scalar() == file);
  CHECK((*plan)["target"]["api_endpoint"]["type"].Scalar() == "completions");
}

TEST_CASE("The eval-factory command quotes every value it renders") {
  TaskSpec task;
  task.def.name = "mmlu\ntouch PWNED";
  task.overrides.emplace_back("config.params.x", YAML::Node("it's $(touch PWNED)"));
  EndpointSpec endpoint{.url = "http://h/v1?a=1&b=2",
                        .model_id = "m`touch PWNED`",
                        .type = "chat;touch PWNED",
                        .api_key_name = "K $(touch PWNED)"};
  CHECK(absl::StrContains(
      BuildEvalFactoryCommand(task, endpoint),
      "&& nv_eval run_eval --model_id 'm`touch PWNED`' --model_type 'chat;touch PWNED' "
      "--eval_type $'mmlu\\ntouch PWNED' --model_url 'http://h/v1?a=1&b=2' --api_key_name "
      "'K $(touch PWNED)' --output_dir /results --run_config config_ef.yaml --overrides "
      "'config.params.x=it'\\''s $(touch PWNED)'"));
}

// One applier and one scalar rule: what the daemon writes into plan.yaml for a task's overrides
// equals what evalrun makes of the override-free plan plus the same overrides on its command line.
TEST_CASE("Task overrides in plan.yaml equal evalrun --overrides of the same assignments") {
  const std::string head = R"(defaults:
  - execution: local
  - deployment: none
  - _self_
execution: {output_dir: /o}
target: {api_endpoint: {url: http://127.0.0.1:8000/v1/chat/completions, model_id: m}}
evaluation:
  config:
    config: {params: {top_p: 0.5, extra: {stop: [a, b], seed: 1}}}
  tasks:
    - name: native_gsm8k
)";
  // key, value as YAML text: list items, nested keys, new keys, YAML 1.1 types.
  const std::vector<std::pair<std::string, std::string>> assignments = {
      {"config.params.top_p", "1e-5"},
      {"config.params.extra.stop[1]", "'###'"},
      {"config.params.extra.stop.0", "x"},
      {"config.params.extra.seed", "0x1f"},
      {"config.params.extra.flag", "yes"},
      {"config.params.extra.word", "'yes'"},
      {"config.params.extra.minutes", "1:20"},
      {"config.params.extra.big", "1e16"},
      {"config.params.extra.new.deep", "[1, 2.5, null, off]"},
      {"target.api_endpoint.adapter_config.use_caching", "false"},
  };
  std::string with_overrides = head + "      overrides:\n";
  std::vector<std::string> cli;
  for (const auto& [key, value] : assignments) {
    absl::StrAppend(&with_overrides, "        \"", key, "\": ", value, "\n");
    cli.push_back(absl::StrCat(key, "=", value));
  }

  auto plan_text = [](const RunConfig& rc) {
    auto ep = EndpointForTask(rc, rc.tasks[0]);
    REQUIRE(ep.ok());
    auto plan = BuildNativePlan(rc, rc.tasks[0], *ep, "/a");
    CAPTURE(plan.ok() ? "" : std::string(plan.status().message()));
    REQUIRE(plan.ok());
    return ToYaml(*plan);
  };
  const std::string daemon = plan_text(FromText(with_overrides));
  CAPTURE(daemon);
  CHECK(absl::StrContains(daemon, "top_p: 1.0e-05\n"));
  CHECK(absl::StrContains(daemon, "big: 1.0e+16\n"));
  CHECK(absl::StrContains(daemon, "word: \"yes\"\n"));

  auto from_daemon = runner::ParsePlan(daemon, "plan.yaml", "/a");
  REQUIRE(from_daemon.ok());
  auto from_cli = runner::ParsePlan(plan_text(FromText(head)), "plan.yaml", "/a", cli);
  CAPTURE(from_cli.ok() ? "" : std::string(from_cli.status().message()));
  REQUIRE(from_cli.ok());
  // dump() tells 31 from 31.0 and true from "true".
  CHECK(from_daemon->config.dump() == from_cli->config.dump());
  CHECK(from_daemon->target.dump() == from_cli->target.dump());
  const nlohmann::json& extra = from_cli->config["params"]["extra"];
  CHECK(extra["stop"].dump() == R"(["x","###"])");
  CHECK(extra["seed"].dump() == "31");
  CHECK(extra["flag"].dump() == "true");
  CHECK(extra["word"].dump() == R"("yes")");
  CHECK(extra["minutes"].dump() == "80");
  CHECK(extra["new"]["deep"].dump() == "[1,2.5,null,false]");
  CHECK(from_cli->params.top_p == 1e-5);
  CHECK(from_cli->params.seed == 31);
  CHECK_FALSE(from_cli->adapter.caching.enabled);

  // The same bad paths fail the same way on both sides, naming the key path.
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"config.type.x",
       "key path 'config.type.x' goes through 'config.type', which is a string, "
       "not a mapping"},
      {"config.params.extra.stop[5]",
       "index 5 is out of range for 'config.params.extra.stop' (2 items)"},
      {"config.params.extra.stop.k",
       "'config.params.extra.stop' is a list; address its items by index"},
  };
  for (const auto& [key, want] : bad) {
    CAPTURE(key);
    RunConfig rc = FromText(head + "      overrides: {\"" + key + "\": 1}\n");
    auto ep = EndpointForTask(rc, rc.tasks[0]);
    REQUIRE(ep.ok());
    auto d = BuildNativePlan(rc, rc.tasks[0], *ep, "/a");
    REQUIRE_FALSE(d.ok());
    CHECK_THAT(std::string(d.status().message()), Catch::Contains(want));
    CHECK(absl::StartsWith(d.status().message(), "task 'native_gsm8k' (evaluation.tasks[0]): "));
    auto r = runner::ParsePlan(plan_text(FromText(head)), "plan.yaml", "/a", {key + "=1"});
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(std::string(r.status().message()), Catch::Contains(want));
    CHECK_THAT(std::string(r.status().message()), Catch::Contains("override '" + key + "=1'"));
  }
}

}  // namespace
}  // namespace evald::config
