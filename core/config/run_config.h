// File: run_config.h
//
// A composed config, validated and decoded into what evald runs: the executor type and its
// settings, the target endpoint, the deployment section, and one TaskSpec per selected task.
// Validation rejects what the reference rejects, with clearer messages naming the key path:
// `???` left (path, list elements as `a.b[2]`), url/model_id under target.api_endpoint while a
// deployment is configured, unknown/ambiguous task (with suggestions), a task's required env var
// not mapped in its env_vars, an unknown execution.type or execution.mode, a user task_file that
// does not exist. Unknown keys and the types and limits of every key are schema.h's
// (CheckConfigSchema), which Submit runs first; this keeps only what decoding needs.
//
// Callers: evald (Submit) and evalctl (early errors, secret names).
//
//   EVALD_ASSIGN_OR_RETURN(RunConfig rc, ParseRunConfig(composed, catalog, {"gsm8k"}));
//   for (const TaskSpec& t : rc.tasks) ...
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "core/config/task_catalog.h"
#include "yaml-cpp/yaml.h"

namespace evald::config {

struct TargetSpec {
  std::string url;           // target.api_endpoint.url (empty with a deployment)
  std::string model_id;      // target.api_endpoint.model_id, or deployment.served_model_name
  std::string api_key_name;  // env var NAME holding the key; empty = no key
};

struct TaskSpec {
  int index = 0;          // position in evaluation.tasks (job id suffix)
  std::string name;       // as written in the config
  TaskDef def;            // from the catalog, or synthesized for a user task_file
  std::string task_file;  // absolute; user-defined native tasks only
  std::string dataset;    // absolute path or URL from tasks[].dataset; optional
  std::string container;  // tasks[].container, else def.container (empty = native)
  // evaluation.overrides then tasks[].overrides; a task's key replaces the global one in place.
  std::vector<std::pair<std::string, YAML::Node>> overrides;
  // CONTAINER_VAR -> HOST_VAR: evaluation.env_vars then tasks[].env_vars (task wins); with
  // api_key_name set, API_KEY -> <api_key_name> is added.
  std::vector<std::pair<std::string, std::string>> env_vars;
  // evaluation.config shallow-updated with tasks[].config (reference rule).
  YAML::Node config;
  std::string endpoint_type;  // def.endpoint_type unless tasks[].endpoint_type says otherwise
};

struct RunConfig {
  YAML::Node root;         // the whole composed config
  std::string executor;    // execution.type
  std::string output_dir;  // execution.output_dir (absolute)
  std::string mode;        // execution.mode: parallel (default) | sequential
  YAML::Node execution;
  YAML::Node deployment;        // the deployment section (type none when absent)
  std::string deployment_type;  // none | vllm | sglang | nim | trtllm | command
  TargetSpec target;
  std::vector<TaskSpec> tasks;  // selected tasks, in config order (index kept)
  // Host env var names whose values the jobs need (sources of env_vars, api_key_name), sorted
  // and unique. The submitter sends their values as secrets.
  std::vector<std::string> secret_names;
};

// The host env var names a composed config needs from the submitter (target.api_endpoint.
// api_key_name, the sources of evaluation.env_vars and every tasks[].env_vars), sorted, unique.
// Needs no catalog, so evalctl can collect the secret values before it submits.
std::vector<std::string> SecretNamesOf(const YAML::Node& composed);

// Environment variables the selected executor itself gives every job (e.g. a platform's job
// environment), by the `execution:` section; they satisfy a task's required env vars. Given by
// the executor registry; null = none.
using ExecutorJobEnv =
    std::function<std::vector<std::string>(const std::string& executor, const YAML::Node& execution)>;

// `task_filter`: empty = all tasks; else `name` (all tasks of that name) or `name.N` (the N-th
// task of that name, 0-based), as the reference's `run -t`. A filter matching nothing is an error.
// The executor name is not checked here (the schema and the registry do).
absl::StatusOr<RunConfig> ParseRunConfig(const YAML::Node& composed, const TaskCatalog& catalog,
                                         const std::vector<std::string>& task_filter = {},
                                         const ExecutorJobEnv& executor_env = nullptr);

}  // namespace evald::config
