#include "daemon/export/mlflow_client.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "executors/common/http_attempt.h"

namespace evald::daemon::exporters {
namespace {

using json = nlohmann::json;

constexpr size_t kMaxMetricsPerBatch = 1000;
constexpr size_t kMaxParamsPerBatch = 100;
constexpr size_t kMaxTagsPerBatch = 100;

// `error_code: message` from MLflow's error body, else the start of the body as text.
std::string BodyMessage(const std::string& body) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_object() && (j.contains("message") || j.contains("error_code"))) {
    std::string code = j.value("error_code", std::string());
    std::string msg = j.contains("message") && j["message"].is_string()
                          ? j["message"].get<std::string>()
                          : std::string();
    return code.empty() ? msg : absl::StrCat(code, ": ", msg);
  }
  std::string text(absl::StripAsciiWhitespace(body.substr(0, 300)));
  return text.empty() ? "(empty body)" : text;
}

std::string EscapePath(const std::string& path) {
  // Each segment escaped, the slashes kept (artifact paths are folders).
  std::string out;
  for (absl::string_view seg : absl::StrSplit(path, '/')) {
    if (!out.empty()) out += '/';
    out += http::UrlEscape(seg);
  }
  return out;
}

}  // namespace

MlflowClient::MlflowClient(Options options)
    : options_(std::move(options)),
      uri_(std::string(absl::StripSuffix(options_.tracking_uri, "/"))),
      rest_("MLflow",
            RestClientOptions{.request_timeout = options_.request_timeout,
                              .connect_timeout = options_.connect_timeout,
                              .max_attempts = options_.max_attempts,
                              .backoff_base = options_.backoff_base,
                              .backoff_max = options_.backoff_max,
                              .max_total = options_.max_total},
            {options_.token}, BodyMessage) {
  while (absl::EndsWith(uri_, "/")) uri_.pop_back();
}

absl::StatusOr<json> MlflowClient::Call(const std::string& method, const std::string& route,
                                        const std::string& query, const std::string* body,
                                        const char* content_type) const {
  RestCall call{.method = method,
                .url = absl::StrCat(uri_, route, query.empty() ? "" : "?", query),
                .route = route,
                .body = body,
                .content_type = content_type,
                .bearer_token = options_.token.empty() ? nullptr : &options_.token,
                .unauthorized_hint = options_.token.empty()
                                         ? "the server wants credentials: set MLFLOW_TRACKING_TOKEN"
                                         : "the token was refused"};
  return rest_.CallJson(call);
}

absl::StatusOr<json> MlflowClient::Post(const std::string& route, const json& body) const {
  const std::string text = body.dump();
  return Call("POST", route, "", &text);
}

absl::StatusOr<std::string> MlflowClient::GetExperimentIdByName(const std::string& name) const {
  absl::StatusOr<json> r = Call("GET", "/api/2.0/mlflow/experiments/get-by-name",
                                absl::StrCat("experiment_name=", http::UrlEscape(name)), nullptr);
  if (!r.ok()) return r.status();
  const json& e = (*r)["experiment"];
  if (!e.is_object() || !e.contains("experiment_id")) {
    return absl::InternalError("MLflow experiments/get-by-name: no experiment.experiment_id");
  }
  return e["experiment_id"].is_string() ? e["experiment_id"].get<std::string>()
                                        : e["experiment_id"].dump();
}

absl::StatusOr<std::string> MlflowClient::CreateExperiment(const std::string& name) const {
  absl::StatusOr<json> r = Post("/api/2.0/mlflow/experiments/create", json{{"name", name}});
  if (!r.ok()) return r.status();
  if (!r->contains("experiment_id")) {
    return absl::InternalError("MLflow experiments/create: no experiment_id");
  }
  return (*r)["experiment_id"].is_string() ? (*r)["experiment_id"].get<std::string>()
                                           : (*r)["experiment_id"].dump();
}

absl::StatusOr<std::string> MlflowClient::GetOrCreateExperiment(const std::string& name) const {
  absl::StatusOr<std::string> id = GetExperimentIdByName(name);
  if (id.ok() || id.status().code() != absl::StatusCode::kNotFound) return id;
  id = CreateExperiment(name);
  if (!id.ok() && absl::StrContains(id.status().message(), "RESOURCE_ALREADY_EXISTS")) {
    return GetExperimentIdByName(name);
  }
  return id;
}

absl::StatusOr<std::vector<json>> MlflowClient::SearchRuns(const std::string& experiment_id,
                                                           const std::string& filter) const {
  std::vector<json> runs;
  std::string token;
  for (int page = 0; page < 1000; ++page) {
    json body = {{"experiment_ids", json::array({experiment_id})},
                 {"filter", filter},
                 {"max_results", 1000}};
    if (!token.empty()) body["page_token"] = token;
    absl::StatusOr<json> r = Post("/api/2.0/mlflow/runs/search", body);
    if (!r.ok()) return r.status();
    if (r->contains("runs") && (*r)["runs"].is_array()) {
      for (json& run : (*r)["runs"]) runs.push_back(std::move(run));
    }
    token = r->value("next_page_token", std::string());
    if (token.empty()) break;
  }
  return runs;
}

absl::StatusOr<json> MlflowClient::CreateRun(const std::string& experiment_id,
                                             const std::string& run_name, int64_t start_time_ms,
                                             const KeyValues& tags) const {
  json t = json::array();
  for (const auto& [k, v] : tags) t.push_back({{"key", k}, {"value", v}});
  json body = {{"experiment_id", experiment_id},
               {"run_name", run_name},
               {"start_time", start_time_ms},
               {"tags", t}};
  absl::StatusOr<json> r = Post("/api/2.0/mlflow/runs/create", body);
  if (!r.ok()) return r.status();
  const json& info = (*r)["run"]["info"];
  if (!info.is_object() || !info.contains("run_id")) {
    return absl::InternalError("MLflow runs/create: no run.info.run_id");
  }
  return info;
}

absl::Status MlflowClient::LogBatch(const std::string& run_id,
                                    const std::vector<MlflowMetric>& metrics,
                                    const KeyValues& params, const KeyValues& tags) const {
  size_t m = 0, p = 0, t = 0;
  do {
    json body = {{"run_id", run_id},
                 {"metrics", json::array()},
                 {"params", json::array()},
                 {"tags", json::array()}};
    size_t items = 0;
    for (size_t n = 0; m < metrics.size() && n < kMaxMetricsPerBatch && items < 1000;
         ++m, ++n, ++items) {
      body["metrics"].push_back({{"key", metrics[m].key},
                                 {"value", metrics[m].value},
                                 {"timestamp", metrics[m].timestamp_ms},
                                 {"step", metrics[m].step}});
    }
    for (size_t n = 0; p < params.size() && n < kMaxParamsPerBatch && items < 1000;
         ++p, ++n, ++items) {
      body["params"].push_back({{"key", params[p].first}, {"value", params[p].second}});
    }
    for (size_t n = 0; t < tags.size() && n < kMaxTagsPerBatch && items < 1000; ++t, ++n, ++items) {
      body["tags"].push_back({{"key", tags[t].first}, {"value", tags[t].second}});
    }
    absl::StatusOr<json> r = Post("/api/2.0/mlflow/runs/log-batch", body);
    if (!r.ok()) return r.status();
  } while (m < metrics.size() || p < params.size() || t < tags.size());
  return absl::OkStatus();
}

absl::Status MlflowClient::UpdateRun(const std::string& run_id, const std::string& status,
                                     int64_t end_time_ms) const {
  return Post("/api/2.0/mlflow/runs/update",
              json{{"run_id", run_id}, {"status", status}, {"end_time", end_time_ms}})
      .status();
}

absl::Status MlflowClient::UploadArtifact(const std::string& artifact_uri,
                                          const std::string& artifact_path,
                                          const std::string& content) const {
  // mlflow-artifacts:/<exp>/<run>/artifacts or mlflow-artifacts://host:port/<exp>/<run>/artifacts
  absl::string_view rest = artifact_uri;
  if (!absl::ConsumePrefix(&rest, "mlflow-artifacts:")) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the run's artifact_uri '", artifact_uri,
        "' is not served by the tracking server's artifact proxy (mlflow-artifacts:); start it "
        "with --serve-artifacts or set log_artifacts: false"));
  }
  if (absl::ConsumePrefix(&rest, "//")) {
    size_t slash = rest.find('/');
    rest = slash == absl::string_view::npos ? absl::string_view() : rest.substr(slash);
  }
  std::string base(absl::StripPrefix(rest, "/"));
  while (!base.empty() && base.back() == '/') base.pop_back();
  const std::string route = absl::StrCat("/api/2.0/mlflow-artifacts/artifacts/",
                                         EscapePath(absl::StrCat(base, "/", artifact_path)));
  return Call("PUT", route, "", &content, "application/octet-stream").status();
}

}  // namespace evald::daemon::exporters
