// File: lepton_config.h
//
// The Lepton executor's part of `execution:` (configs/execution/lepton/default.yaml): its keys for
// the schema check, the env vars a Lepton job gets from lepton_platform.tasks.env_vars (they
// satisfy a task's required env vars), and the typed settings the executor reads from a job's
// `execution` section (ParseLeptonConfig). No backend code here: evalctl links this file.
// Callers: the executor list (builtin_executors.cc), the Lepton executor.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/config/schema.h"
#include "nlohmann/json.hpp"
#include "yaml-cpp/yaml.h"

namespace evald::executors {

std::vector<config::SchemaRule> LeptonExecutionKeys();
std::vector<std::string> LeptonJobEnvNames(const YAML::Node& execution);

// One entry of lepton_platform.tasks.env_vars: a plain value or a workspace secret by name.
struct LeptonEnvVar {
  std::string name;
  std::string value;       // when secret_ref is empty
  std::string secret_ref;  // value_from.secret_name_ref
};

// One entry of lepton_platform.tasks.mounts. `local_path` (evald's own key) is where `path` of
// that storage is mounted on the evald host: a task dir under it is reachable by the job at
// mount_path + the rest, which is how evald reads the job's results (see docs/lepton.md).
struct LeptonMount {
  std::string from;
  std::string path;
  std::string mount_path;
  std::string local_path;
  std::string mount_options_json;  // "" or a JSON object
};

struct LeptonConfig {
  std::string api_url = "https://gateway.dgxc-lepton.nvidia.com";
  std::string workspace_id;
  // The env var holding the workspace token: in evald's environment, or sent by evalctl as a
  // secret when evaluation.env_vars maps it (the job never gets it).
  std::string token_env = "LEPTON_API_TOKEN";
  std::string resource_shape = "cpu.small";
  bool use_shared_storage = true;
  std::string runner_image;                // native tasks: an image with evalrun
  std::string runner_command = "evalrun";  // evalrun inside runner_image
  std::string node_group;                  // a name; resolved to its id at Start
  std::vector<LeptonEnvVar> env_vars;
  std::vector<LeptonMount> mounts;
  std::vector<std::string> image_pull_secrets;
  int ttl_seconds_after_finished = 600;
  // evaluation_tasks.timeout in whole seconds (rounded up); 0: none. The job script runs the
  // evaluation under timeout(1): past it the evaluation is stopped and the job exits 124.
  int64_t task_timeout_s = 0;
};

// Parses a job's `execution` section (JobSpec::execution_yaml). InvalidArgument naming the key.
// An empty workspace_id is allowed here (dry runs render without one); running needs it
// (LeptonWorkspaceError).
absl::StatusOr<LeptonConfig> ParseLeptonConfig(const std::string& execution_yaml);

// InvalidArgument when the config cannot address a workspace (no workspace_id), else OK.
absl::Status LeptonWorkspaceError(const LeptonConfig& config);

// A YAML node as JSON for a Lepton payload: maps and lists as such, `true`/`false` and numbers
// typed, other scalars strings, null as null.
nlohmann::json LeptonYamlToJson(const YAML::Node& node);

}  // namespace evald::executors
