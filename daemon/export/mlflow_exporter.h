// File: mlflow_exporter.h
//
// The `mlflow` exporter (peer-launcher.md 6.3) over MlflowClient: one MLflow run per job (or one
// per invocation with the union of its jobs' metrics) in experiment `experiment_name`, with the
// extracted metrics (metrics_extract.h), params (invocation_id, executor, timestamp [, jobs_count]
// + extra_metadata; keys and values cut to 250 characters, empty ones dropped), tags (the user's
// `tags`, then invocation_id, job_id, task_name, benchmark, harness, executor; description as
// mlflow.note.content; values cut to 5000), the artifacts (config.yaml at the root, the job's
// required and optional artifacts under `<benchmark>/`) and the run FINISHED. `skip_existing`
// looks for a run tagged with the invocation (and, per job, the job) first. Called by the Export
// RPC and auto-export (daemon/export_runner.cc).
//
//   EVALD_ASSIGN_OR_RETURN(MlflowExporter m, MlflowExporter::FromConfig(cfg, token));
//   JobExportResult r = m.ExportJob(job);   // r.metadata["run_url"]
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "daemon/export/export_types.h"
#include "daemon/export/mlflow_client.h"
#include "nlohmann/json.hpp"

namespace evald::daemon::exporters {

struct MlflowExportOptions {
  std::string tracking_uri;  // required
  std::string experiment_name = "nemo-evaluator-launcher";
  std::string run_name;  // default eval-<inv>-<benchmark> per job, eval-<inv> per invocation
  std::string description;
  KeyValues tags;
  KeyValues extra_metadata;
  std::vector<std::string> log_metrics;
  bool log_artifacts = true;
  bool skip_existing = false;
};

absl::StatusOr<MlflowExportOptions> ParseMlflowConfig(const nlohmann::json& cfg);

class MlflowExporter {
 public:
  // `client` carries the tracking URI from `options` and the token; its retry settings are kept.
  MlflowExporter(MlflowExportOptions options, MlflowClient::Options client);
  // The token comes from the caller (MLFLOW_TRACKING_TOKEN as an invocation secret), never from
  // the config, so it is never stored or printed with it.
  static absl::StatusOr<MlflowExporter> FromConfig(const nlohmann::json& cfg,
                                                   const std::string& token,
                                                   MlflowClient::Options client = {});

  JobExportResult ExportJob(const JobExportInput& job) const;
  InvocationExportResult ExportInvocation(const std::vector<JobExportInput>& jobs) const;

 private:
  struct RunSpec;
  JobExportResult ExportRun(const RunSpec& spec) const;

  MlflowExportOptions options_;
  MlflowClient client_;
};

}  // namespace evald::daemon::exporters
