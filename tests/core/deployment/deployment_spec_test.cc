#include "core/deployment/deployment_spec.h"

#include <catch2/catch.hpp>
#include <string>

#include "absl/strings/str_cat.h"
#include "yaml-cpp/yaml.h"

namespace evald::deployment {
namespace {

constexpr char kVllm[] = R"(
type: vllm
image: vllm/vllm-openai:latest
checkpoint_path: /models/llama
served_model_name: llama
port: 8000
tensor_parallel_size: 8
pipeline_parallel_size: 1
data_parallel_size: 1
extra_args: ""
env_vars: {}
endpoints:
  chat: /v1/chat/completions
  completions: /v1/completions
  health: /health
command: vllm serve /checkpoint --port 8000 --served-model-name llama
)";

absl::StatusOr<DeploymentSpec> Parse(const std::string& deployment,
                                     const std::string& execution = "") {
  return ParseDeploymentSpec(YAML::Load(deployment), YAML::Load(execution));
}

// `yaml` without `key`, or with `key` set to `value` (YAML text), re-emitted.
std::string Without(const std::string& yaml, const std::string& key) {
  YAML::Node node = YAML::Clone(YAML::Load(yaml));
  node.remove(key);
  YAML::Emitter out;
  out << node;
  return out.c_str();
}

std::string With(const std::string& yaml, const std::string& key, const std::string& value) {
  YAML::Node node = YAML::Clone(YAML::Load(yaml));
  node[key] = YAML::Load(value);
  YAML::Emitter out;
  out << node;
  return out.c_str();
}

std::string ErrorOf(const absl::StatusOr<DeploymentSpec>& result) {
  REQUIRE_FALSE(result.ok());
  CHECK(result.status().code() == absl::StatusCode::kInvalidArgument);
  return std::string(result.status().message());
}

TEST_CASE("no deployment section or type none gives a none spec", "[deployment_spec]") {
  for (const char* yaml : {"", "~", "type: none", "type: none\nport: 1234"}) {
    auto spec = Parse(yaml);
    REQUIRE(spec.ok());
    CHECK(spec->type == DeploymentType::kNone);
    CHECK(ReferenceCommand(*spec).empty());
  }
}

TEST_CASE("vllm spec decodes every field with its defaults", "[deployment_spec]") {
  auto spec = Parse(kVllm);
  REQUIRE(spec.ok());
  CHECK(spec->type == DeploymentType::kVllm);
  CHECK(spec->image == "vllm/vllm-openai:latest");
  CHECK(spec->checkpoint_path == "/models/llama");
  CHECK(spec->hf_model_handle.empty());
  CHECK(spec->served_model_name == "llama");
  CHECK(spec->port == 8000);
  CHECK_FALSE(spec->port_auto);
  CHECK(spec->tensor_parallel_size == 8);
  CHECK(spec->pipeline_parallel_size == 1);
  CHECK(spec->data_parallel_size == 1);
  CHECK(spec->extra_args.empty());
  CHECK(spec->endpoints.at("chat") == "/v1/chat/completions");
  CHECK(spec->endpoints.at("completions") == "/v1/completions");
  CHECK(spec->endpoints.at("health") == "/health");
  CHECK(spec->command == "vllm serve /checkpoint --port 8000 --served-model-name llama");
  CHECK(spec->env_vars.empty());
  CHECK(spec->secret_env_vars.empty());
  CHECK(spec->shared);
  CHECK(spec->readiness_timeout_s == 600);
  CHECK(spec->readiness_interval_s == 5);
  CHECK(spec->no_health_wait_s == 60);
  CHECK(spec->stop_grace_s == 30);
  CHECK_FALSE(spec->stop_on_evald_shutdown);
  CHECK(spec->local_launch == LocalLaunchMode::kAuto);
}

TEST_CASE("sglang, trtllm and command types need a command", "[deployment_spec]") {
  for (const char* type : {"vllm", "sglang", "trtllm", "command", "generic"}) {
    INFO(type);
    const std::string base = With(kVllm, "type", type);
    auto spec = Parse(base);
    REQUIRE(spec.ok());
    CHECK(ToString(spec->type) == (std::string(type) == "generic" ? "command" : type));
    CHECK(ErrorOf(Parse(Without(base, "command"))) ==
          absl::StrCat("deployment.command: missing; expected a non-empty string (the server "
                       "command line of a ",
                       ToString(spec->type), " deployment)"));
    CHECK(ErrorOf(Parse(With(base, "command", "''"))).find("deployment.command: missing") == 0);
    CHECK(ErrorOf(Parse(With(base, "command", "[vllm, serve]"))) ==
          "deployment.command: expected a string, got a list");
  }
}

TEST_CASE("nim runs its entrypoint and needs an image", "[deployment_spec]") {
  auto spec = Parse(R"(
type: nim
image: nvcr.io/nim/meta/llama-3.1-8b-instruct:1.8.6
served_model_name: meta/llama-3.1-8b-instruct
port: 8000
)");
  REQUIRE(spec.ok());
  CHECK(spec->type == DeploymentType::kNim);
  CHECK(spec->command.empty());
  CHECK(ReferenceCommand(*spec).empty());
  CHECK(spec->endpoints.at("health") == "/health");

  CHECK(ErrorOf(Parse("type: nim\nserved_model_name: m\n")).find("deployment.image: missing") == 0);
  // The newer reference's nim group gives the entrypoint as a command; it is kept.
  auto with_command =
      Parse("type: nim\nimage: i\nserved_model_name: m\ncommand: /opt/nim/start_server.sh\n");
  REQUIRE(with_command.ok());
  CHECK(with_command->command == "/opt/nim/start_server.sh");
}

TEST_CASE("unknown or missing type names the known ones", "[deployment_spec]") {
  CHECK(ErrorOf(Parse(With(kVllm, "type", "vlm"))) ==
        "deployment.type: unknown type 'vlm'; known: none, vllm, sglang, nim, trtllm, command");
  CHECK(ErrorOf(Parse(Without(kVllm, "type"))) ==
        "deployment.type: expected one of none, vllm, sglang, nim, trtllm, command, got nothing");
  CHECK(ErrorOf(Parse(With(kVllm, "type", "{a: 1}"))) ==
        "deployment.type: expected one of none, vllm, sglang, nim, trtllm, command, got a "
        "mapping");
  CHECK(ErrorOf(Parse("[1, 2]")) == "deployment: expected a mapping, got a list");
}

TEST_CASE("port is 1..65535 or auto", "[deployment_spec]") {
  for (const char* bad : {"0", "65536", "-1", "80000", "abc", "true", "8000.5", "[8000]", "AUTO"}) {
    INFO(bad);
    std::string error = ErrorOf(Parse(With(kVllm, "port", bad)));
    CHECK(error.find("deployment.port: expected an integer 1..65535 or `auto`, got ") == 0);
  }
  CHECK(ErrorOf(Parse(With(kVllm, "port", "80000"))) ==
        "deployment.port: expected an integer 1..65535 or `auto`, got '80000'");
  auto high = Parse(With(kVllm, "port", "65535"));
  REQUIRE(high.ok());
  CHECK(high->port == 65535);
  auto absent = Parse(Without(kVllm, "port"));
  REQUIRE(absent.ok());
  CHECK(absent->port == 8000);

  auto automatic = Parse(With(With(kVllm, "port", "auto"), "command",
                              "'vllm serve /checkpoint --port ${EVALD_PORT}'"));
  REQUIRE(automatic.ok());
  CHECK(automatic->port_auto);
  CHECK(automatic->port == 0);
}

TEST_CASE("port auto needs the port in the command", "[deployment_spec]") {
  CHECK(ErrorOf(Parse(With(kVllm, "port", "auto"))) ==
        "deployment.port: `auto` needs the port in deployment.command (write --port "
        "${deployment.port} in the command), or set a fixed port");
  // nim takes its port from NIM_SERVER_PORT.
  CHECK(Parse("type: nim\nimage: i\nserved_model_name: m\nport: auto\n").ok());
}

TEST_CASE("served_model_name is required", "[deployment_spec]") {
  CHECK(ErrorOf(Parse(Without(kVllm, "served_model_name"))) ==
        "deployment.served_model_name: missing; expected a non-empty string (the model name the "
        "evaluation sends)");
  CHECK(ErrorOf(Parse(With(kVllm, "served_model_name", "'??\?'"))) ==
        "deployment.served_model_name: missing mandatory value `???` (set it in the config or "
        "with -o)");
  CHECK(ErrorOf(Parse(With(kVllm, "served_model_name", "{a: b}"))) ==
        "deployment.served_model_name: expected a string, got a mapping");
}

TEST_CASE("optional strings may be null but not structures", "[deployment_spec]") {
  auto spec = Parse(With(With(kVllm, "checkpoint_path", "~"), "hf_model_handle", "org/model"));
  REQUIRE(spec.ok());
  CHECK(spec->checkpoint_path.empty());
  CHECK(spec->hf_model_handle == "org/model");
  for (const char* key :
       {"image", "checkpoint_path", "hf_model_handle", "cache_path", "extra_args"}) {
    INFO(key);
    CHECK(ErrorOf(Parse(With(kVllm, key, "[a]"))) ==
          absl::StrCat("deployment.", key, ": expected a string, got a list"));
  }
}

TEST_CASE("parallel sizes are integers >= 1", "[deployment_spec]") {
  for (const char* key : {"tensor_parallel_size", "pipeline_parallel_size", "data_parallel_size"}) {
    INFO(key);
    CHECK(ErrorOf(Parse(With(kVllm, key, "0"))) ==
          absl::StrCat("deployment.", key, ": expected an integer >= 1, got '0'"));
    CHECK(ErrorOf(Parse(With(kVllm, key, "two"))) ==
          absl::StrCat("deployment.", key, ": expected an integer >= 1, got 'two'"));
    auto spec = Parse(With(kVllm, key, "4"));
    REQUIRE(spec.ok());
  }
  auto defaults = Parse(Without(Without(kVllm, "tensor_parallel_size"), "data_parallel_size"));
  REQUIRE(defaults.ok());
  CHECK(defaults->tensor_parallel_size == 1);
  CHECK(defaults->data_parallel_size == 1);
}

TEST_CASE("endpoints merge over the defaults, health null turns checks off", "[deployment_spec]") {
  auto partial = Parse(With(kVllm, "endpoints", "{chat: /chat}"));
  REQUIRE(partial.ok());
  CHECK(partial->endpoints.at("chat") == "/chat");
  CHECK(partial->endpoints.at("completions") == "/v1/completions");
  CHECK(partial->endpoints.at("health") == "/health");

  auto no_health = Parse(With(kVllm, "endpoints", "{health: null}"));
  REQUIRE(no_health.ok());
  CHECK(no_health->endpoints.count("health") == 0);
  CHECK(HealthUrl(*no_health, 8000).empty());

  CHECK(ErrorOf(Parse(With(kVllm, "endpoints", "{chat: v1/chat}"))) ==
        "deployment.endpoints.chat: expected a URL path starting with '/', got 'v1/chat'");
  CHECK(ErrorOf(Parse(With(kVllm, "endpoints", "[/a]"))) ==
        "deployment.endpoints: expected a mapping type: /path, got a list");
}

TEST_CASE("env_vars: literal values, $host: secrets by name, bad names rejected",
          "[deployment_spec]") {
  auto spec = Parse(With(kVllm, "env_vars",
                         "{VLLM_LOGGING_LEVEL: DEBUG, N: 3, HF_TOKEN: '$host:MY_HF_TOKEN', "
                         "RAW: '$lit:$host:x', EMPTY: null}"));
  REQUIRE(spec.ok());
  CHECK(spec->env_vars.at("VLLM_LOGGING_LEVEL") == "DEBUG");
  CHECK(spec->env_vars.at("N") == "3");
  CHECK(spec->env_vars.at("RAW") == "$host:x");
  CHECK(spec->env_vars.at("EMPTY").empty());
  CHECK(spec->env_vars.count("HF_TOKEN") == 0);
  CHECK(spec->secret_env_vars.at("HF_TOKEN") == "MY_HF_TOKEN");

  CHECK(ErrorOf(Parse(With(kVllm, "env_vars", "{BAD-NAME: x}"))) ==
        "deployment.env_vars: 'BAD-NAME' is not a valid environment variable name "
        "([A-Za-z_][A-Za-z0-9_]*)");
  CHECK(ErrorOf(Parse(With(kVllm, "env_vars", "[A, B]"))) ==
        "deployment.env_vars: expected a mapping NAME: value, got a list");
  CHECK(ErrorOf(Parse(With(kVllm, "env_vars", "{A: {b: c}}"))) ==
        "deployment.env_vars.A: expected a string value, got a mapping");
  CHECK(ErrorOf(Parse(With(kVllm, "env_vars", "{A: '$host:1x'}"))) ==
        "deployment.env_vars.A: expected `$host:NAME` with a valid variable name, got '$host:1x'");
  CHECK(ErrorOf(Parse(With(kVllm, "env_vars", "{A: '$runtime:X'}"))) ==
        "deployment.env_vars.A: `$runtime:` values are not supported for deployments; use a "
        "literal value or `$host:NAME`");
  CHECK(ErrorOf(Parse(With(kVllm, "env_vars", "{EVALD_PORT: '1'}"))) ==
        "deployment.env_vars.EVALD_PORT: EVALD_PORT is set by evald (the server's port)");
}

TEST_CASE("HostSecretNames lists the $host: variables of both places, once each",
          "[deployment_spec]") {
  YAML::Node cfg = YAML::Load(
      "deployment: {type: vllm, command: vllm serve m, served_model_name: m, port: 8000,\n"
      "  env_vars: {HF_TOKEN: '$host:MY_HF', PLAIN: v, RAW: '$lit:$host:X'}}\n"
      "execution: {env_vars: {deployment: {NGC: '$host:MY_NGC', AGAIN: '$host:MY_HF'}}}\n");
  auto spec = ParseDeploymentSpec(cfg["deployment"], cfg["execution"]);
  INFO(spec.status().message());
  REQUIRE(spec.ok());
  CHECK(HostSecretNames(cfg) == std::vector<std::string>{"MY_HF", "MY_NGC"});
  CHECK(HostSecretNames(YAML::Load("deployment: {type: none}")).empty());
  CHECK(HostSecretNames(YAML::Load("deployment: {type: vllm, port: bad}")).empty());
  CHECK(HostSecretNames(YAML::Load("[1, 2]")).empty());
}

TEST_CASE("execution.env_vars.deployment and mounts.deployment join the spec",
          "[deployment_spec]") {
  auto spec = Parse(With(kVllm, "env_vars", "{A: from_deployment, B: b}"),
                    "env_vars: {deployment: {A: from_execution, C: '$host:SECRET'}, "
                    "evaluation: {X: y}}\nmounts: {deployment: {/data: /data:ro}}\n");
  REQUIRE(spec.ok());
  CHECK(spec->env_vars.at("A") == "from_execution");
  CHECK(spec->env_vars.at("B") == "b");
  CHECK(spec->env_vars.count("X") == 0);
  CHECK(spec->secret_env_vars.at("C") == "SECRET");
  CHECK(spec->mounts.at("/data") == "/data:ro");

  CHECK(ErrorOf(Parse(kVllm, "env_vars: {deployment: {1A: x}}")) ==
        "execution.env_vars.deployment: '1A' is not a valid environment variable name "
        "([A-Za-z_][A-Za-z0-9_]*)");
  CHECK(ErrorOf(Parse(kVllm, "mounts: {deployment: {/a: [x]}}")) ==
        "execution.mounts.deployment./a: expected a container path, got a list");
}

TEST_CASE("readiness timeout: deployment, then execution, then lepton, then 600",
          "[deployment_spec]") {
  auto from_deployment =
      Parse(With(kVllm, "endpoint_readiness_timeout", "1200"), "endpoint_readiness_timeout: 30");
  REQUIRE(from_deployment.ok());
  CHECK(from_deployment->readiness_timeout_s == 1200);

  auto from_execution = Parse(kVllm, "endpoint_readiness_timeout: 30");
  REQUIRE(from_execution.ok());
  CHECK(from_execution->readiness_timeout_s == 30);

  auto from_lepton =
      Parse(kVllm, "lepton_platform: {deployment: {endpoint_readiness_timeout: 900}}");
  REQUIRE(from_lepton.ok());
  CHECK(from_lepton->readiness_timeout_s == 900);

  CHECK(ErrorOf(Parse(kVllm, "endpoint_readiness_timeout: 0")) ==
        "execution.endpoint_readiness_timeout: expected a number of seconds > 0, got '0'");
  CHECK(ErrorOf(Parse(With(kVllm, "endpoint_readiness_timeout", "soon"))) ==
        "deployment.endpoint_readiness_timeout: expected a number of seconds > 0, got 'soon'");
  CHECK(ErrorOf(Parse(With(kVllm, "endpoint_readiness_timeout", "-5"))) ==
        "deployment.endpoint_readiness_timeout: expected a number of seconds > 0, got '-5'");
}

TEST_CASE("readiness interval allows sub-second values", "[deployment_spec]") {
  auto spec = Parse(With(kVllm, "endpoint_readiness_interval", "0.2"));
  REQUIRE(spec.ok());
  CHECK(spec->readiness_interval_s == Approx(0.2));
  auto from_execution = Parse(kVllm, "endpoint_readiness_interval: 0.05");
  REQUIRE(from_execution.ok());
  CHECK(from_execution->readiness_interval_s == Approx(0.05));
  CHECK(ErrorOf(Parse(With(kVllm, "endpoint_readiness_interval", "0"))) ==
        "deployment.endpoint_readiness_interval: expected a number of seconds > 0, got '0'");
}

TEST_CASE("teardown and sharing settings", "[deployment_spec]") {
  auto spec =
      Parse(With(With(With(With(kVllm, "shared", "false"), "stop_on_evald_shutdown", "true"),
                      "stop_grace_period", "0"),
                 "server_timeout", "2.5"));
  REQUIRE(spec.ok());
  CHECK_FALSE(spec->shared);
  CHECK(spec->stop_on_evald_shutdown);
  CHECK(spec->stop_grace_s == 0);
  CHECK(spec->no_health_wait_s == Approx(2.5));

  CHECK(ErrorOf(Parse(With(kVllm, "shared", "maybe"))) ==
        "deployment.shared: expected true or false, got 'maybe'");
  CHECK(ErrorOf(Parse(With(kVllm, "stop_on_evald_shutdown", "[x]"))) ==
        "deployment.stop_on_evald_shutdown: expected true or false, got a list");
  CHECK(ErrorOf(Parse(With(kVllm, "stop_grace_period", "-1"))) ==
        "deployment.stop_grace_period: expected a number of seconds >= 0, got '-1'");
}

TEST_CASE("local_launch is auto, host or container", "[deployment_spec]") {
  auto host = Parse(With(kVllm, "local_launch", "host"));
  REQUIRE(host.ok());
  CHECK(host->local_launch == LocalLaunchMode::kHost);
  auto container = Parse(With(kVllm, "local_launch", "container"));
  REQUIRE(container.ok());
  CHECK(container->local_launch == LocalLaunchMode::kContainer);
  CHECK(ErrorOf(Parse(With(kVllm, "local_launch", "docker"))) ==
        "deployment.local_launch: expected one of auto, host, container, got 'docker'");
}

TEST_CASE("URLs follow the reference rules", "[deployment_spec]") {
  auto spec = Parse(kVllm);
  REQUIRE(spec.ok());
  CHECK(BaseUrl(8000) == "http://127.0.0.1:8000");
  CHECK(EndpointUrl(*spec, 8000, "chat") == "http://127.0.0.1:8000/v1/chat/completions");
  CHECK(EndpointUrl(*spec, 41234, "completions") == "http://127.0.0.1:41234/v1/completions");
  CHECK(EndpointUrl(*spec, 8000, "vlm") == "http://127.0.0.1:8000/v1/chat/completions");
  CHECK(EndpointUrl(*spec, 8000, "embedding").empty());
  CHECK(HealthUrl(*spec, 8000) == "http://127.0.0.1:8000/health");

  auto with_vlm = Parse(With(kVllm, "endpoints", "{vlm: /v1/vlm, health: /v1/health/ready}"));
  REQUIRE(with_vlm.ok());
  CHECK(EndpointUrl(*with_vlm, 9000, "vlm") == "http://127.0.0.1:9000/v1/vlm");
  CHECK(HealthUrl(*with_vlm, 9000) == "http://127.0.0.1:9000/v1/health/ready");
}

TEST_CASE("type names round-trip", "[deployment_spec]") {
  for (DeploymentType t :
       {DeploymentType::kNone, DeploymentType::kVllm, DeploymentType::kSglang, DeploymentType::kNim,
        DeploymentType::kTrtllm, DeploymentType::kCommand}) {
    CHECK(ParseDeploymentType(ToString(t)) == t);
  }
  CHECK(ParseDeploymentType("generic") == DeploymentType::kCommand);
  CHECK_FALSE(ParseDeploymentType("VLLM").has_value());
}

}  // namespace
}  // namespace evald::deployment
