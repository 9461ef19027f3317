// File: deployment_spec.h
//
// The `deployment` section of a composed config, decoded and validated into a typed
// DeploymentSpec, plus the URL rules of the reference launcher (peer-launcher §1.5): a co-located
// server answers at http://127.0.0.1:<port><endpoints.<type>> and is healthy when
// http://127.0.0.1:<port><endpoints.health> answers 200. Pure: no sockets, processes or files.
//
// Callers: config validation (evald Submit, evalctl dry runs), the local executor (through
// local_launch.h), and later the SLURM (in-job server) and Lepton (endpoint) executors.
//
//   EVALD_ASSIGN_OR_RETURN(DeploymentSpec spec,
//                          ParseDeploymentSpec(cfg["deployment"], cfg["execution"]));
//   if (spec.type != DeploymentType::kNone) {
//     std::string url = EndpointUrl(spec, port, "chat");   // http://127.0.0.1:8000/v1/chat/...
//     std::string health = HealthUrl(spec, port);           // "" when health checks are off
//   }
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "yaml-cpp/yaml.h"

namespace evald::deployment {

enum class DeploymentType { kNone, kVllm, kSglang, kNim, kTrtllm, kCommand };

// "none", "vllm", "sglang", "nim", "trtllm", "command".
std::string ToString(DeploymentType type);
// Accepts the names above and `generic` (the newer reference's name for `command`).
std::optional<DeploymentType> ParseDeploymentType(absl::string_view name);

// How the local executor may start the server (deployment.local_launch); see local_launch.h.
enum class LocalLaunchMode { kAuto, kHost, kContainer };

struct DeploymentSpec {
  DeploymentType type = DeploymentType::kNone;

  std::string image;              // container image; required for nim, optional otherwise
  std::string checkpoint_path;    // host path, mounted at /checkpoint:ro in containers; may be ""
  std::string hf_model_handle;    // HF id; the group files select it over /checkpoint
  std::string cache_path;         // host path mounted at /cache (nim: /opt/nim/.cache); optional
  std::string served_model_name;  // the model id the evaluation sends

  int port = 0;            // fixed port 1..65535; 0 when port_auto
  bool port_auto = false;  // `port: auto`: the command says ${EVALD_PORT}, the executor picks

  int tensor_parallel_size = 1;
  int pipeline_parallel_size = 1;
  int data_parallel_size = 1;
  std::string extra_args;

  // endpoint type (chat, completions, ...) -> path starting with '/'. `health` is absent when the
  // config set `endpoints.health: null` (health checks off: see no_health_wait_s).
  std::map<std::string, std::string> endpoints;

  // The server command, composed (interpolations resolved, `${EVALD_PORT}` left for the shell
  // when port_auto). Empty for nim, which runs its container entrypoint.
  std::string command;

  // Literal, non-secret environment of the server: deployment.env_vars then
  // execution.env_vars.deployment (the reference's preferred place; it wins on the same name).
  std::map<std::string, std::string> env_vars;
  // Secret environment: server variable NAME -> host variable NAME, from env_vars values written
  // `$host:NAME`. Only names live here; the executor fills the values from the invocation's
  // secrets.
  std::map<std::string, std::string> secret_env_vars;
  // Extra container mounts, host path -> container path (execution.mounts.deployment).
  std::map<std::string, std::string> mounts;

  bool shared = true;                   // one server per invocation (false: one per task)
  double readiness_timeout_s = 600;     // endpoint_readiness_timeout
  double readiness_interval_s = 5;      // endpoint_readiness_interval (> 0, may be < 1)
  double no_health_wait_s = 60;         // server_timeout: wait when health checks are off
  double stop_grace_s = 30;             // stop_grace_period: SIGTERM -> SIGKILL
  bool stop_on_evald_shutdown = false;  // stop_on_evald_shutdown
  LocalLaunchMode local_launch = LocalLaunchMode::kAuto;

  // The `deployment` and `execution` sections as parsed, as YAML text, for a backend that reads
  // keys of its own (Lepton: deployment.lepton_config and execution.lepton_platform).
  std::string deployment_yaml;
  std::string execution_yaml;
};

// Decodes `deployment` (the section; a missing/null node means type none) with the readiness
// fallbacks from `execution` (may be null). Errors are InvalidArgument naming `deployment.<key>`
// and what was expected, e.g. "deployment.port: expected an integer 1..65535 or `auto`, got
// '80000'", "deployment.type: unknown type 'vlm'; known: none, vllm, sglang, nim, trtllm, command".
absl::StatusOr<DeploymentSpec> ParseDeploymentSpec(const YAML::Node& deployment,
                                                   const YAML::Node& execution);

// The same from the two sections as YAML text (JobSpec::deployment_yaml and execution_yaml of a
// job that runs its server inside itself); text that is not YAML is InvalidArgument naming the
// section.
absl::StatusOr<DeploymentSpec> ParseDeploymentSpecYaml(const std::string& deployment_yaml,
                                                       const std::string& execution_yaml);

// The host variables a composed config's model server reads (its `$host:NAME` values, from
// `deployment.env_vars` and `execution.env_vars.deployment`): what a client sends as secrets with
// it. Empty when there is no deployment or its section does not parse (Submit reports that).
std::vector<std::string> HostSecretNames(const YAML::Node& config);

// http://127.0.0.1:<port>
std::string BaseUrl(int port);
// BaseUrl + endpoints[endpoint_type]; `vlm` falls back to `chat` when no `vlm` path is
// configured. "" when the spec has no path for that type.
std::string EndpointUrl(const DeploymentSpec& spec, int port, const std::string& endpoint_type);
// BaseUrl + endpoints.health; "" when health checks are off.
std::string HealthUrl(const DeploymentSpec& spec, int port);

// The server command exactly as the reference's SLURM executor passes it to srun: the composed
// `command` (nim: "" unless the config gives one). Other executors start from this string.
std::string ReferenceCommand(const DeploymentSpec& spec);

}  // namespace evald::deployment
