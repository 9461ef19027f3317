// File: mlflow_client.h
//
// A small client of the MLflow tracking server's REST API 2.0: experiments (get-by-name, create),
// runs (search, create, log-batch, update) and artifact upload through the tracking server's
// artifact proxy (`PUT /api/2.0/mlflow-artifacts/artifacts/<path>`, `mlflow server
// --serve-artifacts`, the default since MLflow 2.0). Called by the MLflow exporter
// (mlflow_exporter.h). Thread-safe (one curl handle per request).
//
// Robustness: every call goes through RestClient (rest_client.h, shared with the W&B and Sheets
// exporters): per-attempt timeouts, 429 (Retry-After honoured), 5xx, timeouts and dropped
// connections retried with jittered backoff within max_attempts and max_total. Errors are
// absl::Status values saying the method, route, HTTP status, MLflow's error_code and message;
// the token (sent only as `Authorization: Bearer`) never appears in them.
// A runs/create whose answer is lost can leave a second run on retry: MLflow has no idempotency
// key; the exporter tags runs so `skip_existing` finds them.
//
//   MlflowClient client({.tracking_uri = "http://mlflow:5000", .token = token});
//   EVALD_ASSIGN_OR_RETURN(std::string eid, client.GetOrCreateExperiment("evals"));
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "daemon/export/rest_client.h"
#include "nlohmann/json.hpp"

namespace evald::daemon::exporters {

struct MlflowMetric {
  std::string key;
  double value = 0;
  int64_t timestamp_ms = 0;
  int64_t step = 0;
};
using KeyValues = std::vector<std::pair<std::string, std::string>>;

class MlflowClient {
 public:
  struct Options {
    std::string tracking_uri;  // http(s)://host:port[/prefix], trailing '/' ignored
    std::string token;         // MLFLOW_TRACKING_TOKEN; empty: no Authorization header
    absl::Duration request_timeout = absl::Seconds(60);
    absl::Duration connect_timeout = absl::Seconds(10);
    int max_attempts = 6;
    absl::Duration backoff_base = absl::Milliseconds(500);
    absl::Duration backoff_max = absl::Seconds(30);
    absl::Duration max_total = absl::Minutes(3);
  };

  explicit MlflowClient(Options options);

  const std::string& tracking_uri() const { return uri_; }

  // NotFound (RESOURCE_DOES_NOT_EXIST) when there is no such experiment.
  absl::StatusOr<std::string> GetExperimentIdByName(const std::string& name) const;
  absl::StatusOr<std::string> CreateExperiment(const std::string& name) const;
  // Get, else create; a create that lost a race (RESOURCE_ALREADY_EXISTS) gets again.
  absl::StatusOr<std::string> GetOrCreateExperiment(const std::string& name) const;
  // Every page of runs/search; each item is a Run ({info, data}).
  absl::StatusOr<std::vector<nlohmann::json>> SearchRuns(const std::string& experiment_id,
                                                         const std::string& filter) const;
  // Returns run.info ({run_id, experiment_id, artifact_uri, ...}).
  absl::StatusOr<nlohmann::json> CreateRun(const std::string& experiment_id,
                                           const std::string& run_name, int64_t start_time_ms,
                                           const KeyValues& tags) const;
  // Split into requests within MLflow's limits (1000 metrics, 100 params, 100 tags, 1000 items).
  absl::Status LogBatch(const std::string& run_id, const std::vector<MlflowMetric>& metrics,
                        const KeyValues& params, const KeyValues& tags) const;
  // status: FINISHED, FAILED or KILLED.
  absl::Status UpdateRun(const std::string& run_id, const std::string& status,
                         int64_t end_time_ms) const;
  // Uploads `content` as `<artifact_path>` of a run whose artifact_uri is `mlflow-artifacts:/...`
  // (the proxy); FailedPrecondition for another scheme (s3://, file://: the server does not proxy).
  absl::Status UploadArtifact(const std::string& artifact_uri, const std::string& artifact_path,
                              const std::string& content) const;

 private:
  // With retries; the parsed JSON body (an empty body is {}).
  absl::StatusOr<nlohmann::json> Call(const std::string& method, const std::string& route,
                                      const std::string& query, const std::string* body,
                                      const char* content_type = "application/json") const;
  absl::StatusOr<nlohmann::json> Post(const std::string& route, const nlohmann::json& body) const;

  Options options_;
  std::string uri_;
  RestClient rest_;
};

}  // namespace evald::daemon::exporters
