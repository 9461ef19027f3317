// File: wandb_exporter.h
//
// The Weights & Biases destination of `evalctl export --dest wandb` and auto-export (issue 13,
// peer-launcher.md 6.4), over the HTTP API W&B's own Python client uses: GraphQL at
// `<base_url>/graphql` (RunResumeStatus and Runs to find an existing run, UpsertBucket to create
// or resume it with config, tags, notes, group and job type, RunUploadUrls for run files) and the
// file stream `<base_url>/files/<entity>/<project>/<run>/file_stream` for the history line and
// summary. The API key (WANDB_API_KEY, a secret of the request or evald's environment) is sent
// only as HTTP basic auth `api:<key>` and scrubbed from every error. Called by ServerCore::Export
// and the AutoExporter, like the MLflow exporter; retries are rest_client.h's.
//
// per_task (default): one run per job named eval-<inv>-<benchmark>; an export again finds the
// run by that display name and resumes it (no second run). multi_task: one run per invocation, id
// `run_id` or the invocation id, resumed by every job, with config.benchmarks/harnesses lists.
// The history line of a job is logged at step <job index> once: a resumed run whose summary
// `_step` is already at or past it gets only the summary update (W&B drops such steps too).
//
//   EVALD_ASSIGN_OR_RETURN(WandbExporter e, WandbExporter::FromConfig(cfg, api_key));
//   JobExportResult r = e.ExportJob(job);   // metadata: run_id, run_url, metrics_logged, ...
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "daemon/export/export_types.h"
#include "daemon/export/rest_client.h"
#include "nlohmann/json.hpp"

namespace evald::daemon::exporters {

struct WandbExportOptions {
  // evald's addition (the Python client's WANDB_BASE_URL): a W&B server other than the cloud's.
  std::string base_url = "https://api.wandb.ai";
  std::string entity;   // empty: the API key's default entity
  std::string project;  // required
  std::string name;     // run display name; default eval-<inv>-<benchmark> | eval-<inv>
  std::string group;    // default: the invocation id
  std::string job_type = "evaluation";
  std::vector<std::string> tags;
  std::string description;            // the run's notes
  std::string log_mode = "per_task";  // or multi_task
  std::string run_id;                 // multi_task: the run's id (default: the invocation id)
  std::vector<std::string> log_metrics;
  bool log_artifacts = true;
  nlohmann::json extra_metadata = nlohmann::json::object();  // into the run config
};

absl::StatusOr<WandbExportOptions> ParseWandbConfig(const nlohmann::json& cfg);

class WandbExporter {
 public:
  // `api_key` is WANDB_API_KEY; empty is refused (W&B has no anonymous API for this).
  static absl::StatusOr<WandbExporter> FromConfig(const nlohmann::json& cfg,
                                                  const std::string& api_key,
                                                  RestClientOptions client = {});

  JobExportResult ExportJob(const JobExportInput& job) const;
  // Every job in order (per_task: a run each; multi_task: all into one run).
  InvocationExportResult ExportInvocation(const std::vector<JobExportInput>& jobs) const;

 private:
  WandbExporter(WandbExportOptions options, std::string api_key, RestClientOptions client);

  struct Run;
  absl::StatusOr<nlohmann::json> Graphql(const std::string& operation, const std::string& query,
                                         const nlohmann::json& variables) const;
  absl::StatusOr<std::string> FindRunByDisplayName(const std::string& display_name) const;
  absl::StatusOr<Run> ResumeStatus(const std::string& run_id) const;
  absl::Status FileStream(const std::string& entity, const std::string& run_id,
                          const nlohmann::json& body) const;
  absl::StatusOr<std::vector<std::string>> UploadFiles(
      const std::string& entity, const std::string& run_id,
      const std::vector<std::pair<std::string, std::string>>& files) const;  // (name, content)

  WandbExportOptions options_;
  std::string auth_header_;  // Authorization: Basic base64(api:<key>)
  RestClient client_;
};

}  // namespace evald::daemon::exporters
