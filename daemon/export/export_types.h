// File: export_types.h
//
// The plain inputs and outputs of evald's result exporters (issue 13, peer-launcher.md section 6):
// what one job is (ids, names, where its artifacts and logs are on evald's file system) and what
// an export of it returned. The Export RPC and auto-export (daemon/export_runner.cc) fill
// JobExportInput from the job's database row and task dir; the exporters (local_exporter.h,
// mlflow_exporter.h) never read the database themselves.
#pragma once

#include <string>
#include <vector>

#include "nlohmann/json.hpp"

namespace evald::daemon::exporters {

struct JobExportInput {
  std::string invocation_id;
  std::string job_id;  // "<invocation>.<index>"
  int job_index = 0;
  std::string task_name;  // as in the config's evaluation.tasks[i].name
  std::string harness;
  std::string container;
  std::string executor;       // local, slurm, lepton
  std::string model_name;     // see ResolveModelName; empty: unknown_model_<job_id>
  std::string artifacts_dir;  // <task dir>/artifacts on evald's file system
  std::string logs_dir;       // <task dir>/logs
  std::string timestamp;      // ISO 8601 UTC, when the job ended (or was exported)
  // The job's resolved config as YAML, secrets masked (MLflow's config.yaml artifact). Optional.
  std::string config_yaml;
};

struct JobExportResult {
  std::string job_id;
  bool success = false;
  std::string message;
  nlohmann::json metadata = nlohmann::json::object();
};

struct InvocationExportResult {
  bool success = false;
  std::string message;  // for a failure that is not one job's (config, MLflow run, summary)
  std::vector<JobExportResult> jobs;
  nlohmann::json metadata = nlohmann::json::object();
};

}  // namespace evald::daemon::exporters
