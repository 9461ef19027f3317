// File: job_plan.h
//
// What a job runs, as data: the runner plan of a native task (docs/design/job-contract.md) and
// the eval-factory command of a container task (the reference's `nv_eval run_eval ...`). Pure
// functions of the config; executors write the results into the job directory.
//
//   EVALD_ASSIGN_OR_RETURN(YAML::Node plan, BuildNativePlan(rc, rc.tasks[0], endpoint));
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "core/config/run_config.h"
#include "yaml-cpp/yaml.h"

namespace evald::config {

// Where a job's evaluation sends requests. With deployment none: target.api_endpoint.url (a task
// override `config.target.api_endpoint.url` wins, as in the reference); with a deployment the
// daemon fills it from the running deployment (`http://127.0.0.1:<port><endpoints.<type>>`).
struct EndpointSpec {
  std::string url;
  std::string model_id;
  std::string type;          // chat | completions | vlm
  std::string api_key_name;  // in the job's environment; "API_KEY" when a key is configured
};

// The endpoint of a task when no deployment is configured (reference get_endpoint_url rules).
absl::StatusOr<EndpointSpec> EndpointForTask(const RunConfig& rc, const TaskSpec& task);

// The plan of a native task: evaluation.config/tasks[].config (deep merge; evalrun fills in the
// task defaults for what stays unset),
// then config.type/output_dir/task_file and target.api_endpoint.{url,model_id,type,api_key}, then
// the dotted overrides (a bad path in an override is InvalidArgument naming it).
absl::StatusOr<YAML::Node> BuildNativePlan(const RunConfig& rc, const TaskSpec& task,
                                           const EndpointSpec& endpoint,
                                           const std::string& artifacts_dir);

// The container command of a harness task, as the reference renders it, on one line (wrapped
// here):
//   echo "<base64 config_ef.yaml>" | base64 -d > config_ef.yaml && cat config_ef.yaml &&
//   <binary> run_eval --model_id M --model_type T --eval_type <task> --model_url U
//     --api_key_name API_KEY --output_dir /results --run_config config_ef.yaml
//     [--overrides k1=v1,k2=v2]
// `binary` defaults to `nv_eval` (newer containers ship `eval-factory`). Unlike the reference,
// every value (M, T, task, U, the key name, the joined overrides) is ShellQuote'd (core/shell.h).
std::string BuildEvalFactoryCommand(const TaskSpec& task, const EndpointSpec& endpoint,
                                    const std::string& binary = "nv_eval");

}  // namespace evald::config
