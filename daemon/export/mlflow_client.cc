#include "daemon/export/mlflow_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

namespace evald::daemon::exporters {
namespace {

using json = nlohmann::json;

constexpr char kHttpStatusPayload[] = "evald.export/mlflow-http-status";
constexpr size_t kMaxMetricsPerBatch = 1000;
constexpr size_t kMaxParamsPerBatch = 100;
constexpr size_t kMaxTagsPerBatch = 100;

void InitCurlOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

size_t AppendBody(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

absl::StatusCode CodeForHttp(long status) {
  switch (status) {
    case 400:
      return absl::StatusCode::kInvalidArgument;
    case 401:
      return absl::StatusCode::kUnauthenticated;
    case 403:
      return absl::StatusCode::kPermissionDenied;
    case 404:
      return absl::StatusCode::kNotFound;
    case 409:
      return absl::StatusCode::kAlreadyExists;
    case 429:
      return absl::StatusCode::kResourceExhausted;
    default:
      return status >= 500 ? absl::StatusCode::kUnavailable : absl::StatusCode::kUnknown;
  }
}

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
    char* e = curl_easy_escape(nullptr, seg.data(), static_cast<int>(seg.size()));
    if (e != nullptr) {
      out += e;
      curl_free(e);
    }
  }
  return out;
}

std::string EscapeQuery(const std::string& s) {
  char* e = curl_easy_escape(nullptr, s.c_str(), static_cast<int>(s.size()));
  std::string out = e != nullptr ? e : "";
  curl_free(e);
  return out;
}

}  // namespace

int MlflowHttpStatusOf(const absl::Status& status) {
  auto p = status.GetPayload(kHttpStatusPayload);
  int v = 0;
  if (!p || !absl::SimpleAtoi(std::string(*p), &v)) return 0;
  return v;
}

struct MlflowClient::Response {
  long http_status = 0;  // 0: no HTTP answer
  std::string body;
  std::optional<absl::Duration> retry_after;
  std::string transport_error;
};

MlflowClient::MlflowClient(Options options) : options_(std::move(options)) {
  InitCurlOnce();
  uri_ = std::string(absl::StripSuffix(options_.tracking_uri, "/"));
  while (absl::EndsWith(uri_, "/")) uri_.pop_back();
  options_.max_attempts = std::max(options_.max_attempts, 1);
}

MlflowClient::Response MlflowClient::Perform(const std::string& method, const std::string& route,
                                             const std::string& query, const std::string* body,
                                             const char* content_type, absl::Time deadline) const {
  Response out;
  const absl::Duration timeout =
      std::max(std::min(options_.request_timeout, deadline - absl::Now()), absl::Milliseconds(1));
  const absl::Duration connect_timeout = std::min(options_.connect_timeout, timeout);
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) {
    out.transport_error = "curl_easy_init failed";
    return out;
  }
  std::string url = absl::StrCat(uri_, route, query.empty() ? "" : "?", query);
  struct curl_slist* headers = nullptr;
  std::string auth;
  if (!options_.token.empty()) {
    auth = "Authorization: Bearer " + options_.token;
    headers = curl_slist_append(headers, auth.c_str());
    std::fill(auth.begin(), auth.end(), '\0');
  }
  headers = curl_slist_append(headers, "Accept: application/json");
  std::string ct = absl::StrCat("Content-Type: ", content_type);
  if (body != nullptr) headers = curl_slist_append(headers, ct.c_str());
  headers = curl_slist_append(headers, "Expect:");
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> header_guard(headers,
                                                                           curl_slist_free_all);
  auto header_cb = +[](char* data, size_t size, size_t n, void* user) -> size_t {
    absl::string_view line(data, size * n);
    auto* resp = static_cast<Response*>(user);
    if (absl::StartsWithIgnoreCase(line, "retry-after:")) {
      double seconds = 0;
      if (absl::SimpleAtod(absl::StripAsciiWhitespace(line.substr(12)), &seconds) && seconds >= 0 &&
          std::isfinite(seconds)) {
        resp->retry_after = absl::Seconds(seconds);
      }
    }
    return size * n;
  };
  char errbuf[CURL_ERROR_SIZE] = {0};
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(absl::ToInt64Milliseconds(timeout)));
  curl_easy_setopt(
      c, CURLOPT_CONNECTTIMEOUT_MS,
      static_cast<long>(std::max<int64_t>(absl::ToInt64Milliseconds(connect_timeout), 1)));
  curl_easy_setopt(c, CURLOPT_NOPROXY, "localhost,127.0.0.1,::1");
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, AppendBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &out.body);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_cb);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &out);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  if (method == "GET") {
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
  } else {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
  }
  if (body != nullptr) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body->data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body->size()));
  }
  CURLcode rc = curl_easy_perform(c);
  if (rc != CURLE_OK) {
    if (rc == CURLE_OPERATION_TIMEDOUT) {
      out.transport_error = absl::StrCat("timed out after ", absl::FormatDuration(timeout));
    } else if (rc == CURLE_GOT_NOTHING) {
      out.transport_error = "connection closed without an answer";
    } else {
      out.transport_error = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc);
    }
    return out;
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out.http_status);
  return out;
}

absl::Status MlflowClient::ErrorFor(const std::string& method, const std::string& route,
                                    const Response& response) const {
  std::string message;
  absl::StatusCode code;
  if (response.http_status == 0) {
    code = absl::StatusCode::kUnavailable;
    message = absl::StrCat("MLflow ", method, " ", route, ": ", response.transport_error);
  } else {
    code = CodeForHttp(response.http_status);
    message = absl::StrCat("MLflow ", method, " ", route, ": HTTP ", response.http_status, ": ",
                           BodyMessage(response.body));
    if (response.http_status == 401) {
      absl::StrAppend(&message, options_.token.empty()
                                    ? " (the server wants credentials: set MLFLOW_TRACKING_TOKEN)"
                                    : " (the token was refused)");
    }
  }
  // A server that echoes the request must not leak the token into our errors.
  if (!options_.token.empty()) {
    message = absl::StrReplaceAll(message, {{options_.token, "<redacted>"}});
  }
  absl::Status status(code, message);
  status.SetPayload(kHttpStatusPayload, absl::Cord(absl::StrCat(response.http_status)));
  return status;
}

absl::Duration MlflowClient::Backoff(int attempt, const Response& response) const {
  if (response.retry_after) return std::min(*response.retry_after, options_.backoff_max);
  thread_local std::mt19937_64 rng{std::random_device{}()};
  absl::Duration cap = options_.backoff_base * std::pow(2.0, std::min(attempt - 1, 20));
  cap = std::min(cap, options_.backoff_max);
  std::uniform_real_distribution<double> dist(0.5, 1.0);  // jitter: concurrent exports spread
  return cap * dist(rng);
}

absl::StatusOr<json> MlflowClient::Call(const std::string& method, const std::string& route,
                                        const std::string& query, const std::string* body,
                                        const char* content_type) const {
  for (char ch : options_.token) {
    if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) {
      return absl::InvalidArgumentError(
          "the MLflow token holds a control character (a line break?); check the secret");
    }
  }
  const absl::Time deadline = absl::Now() + options_.max_total;
  for (int attempt = 1;; ++attempt) {
    Response r = Perform(method, route, query, body, content_type, deadline);
    if (r.http_status >= 200 && r.http_status < 300) {
      if (absl::StripAsciiWhitespace(r.body).empty()) return json::object();
      json j = json::parse(r.body, nullptr, /*allow_exceptions=*/false);
      if (j.is_discarded()) {
        return absl::InternalError(absl::StrCat("MLflow ", method, " ", route, ": HTTP ",
                                                r.http_status, " with a body that is not JSON"));
      }
      return j;
    }
    const bool retryable = r.http_status == 0 || r.http_status == 429 || r.http_status >= 500;
    if (!retryable || attempt >= options_.max_attempts) return ErrorFor(method, route, r);
    const absl::Duration wait = Backoff(attempt, r);
    if (absl::Now() + wait >= deadline) return ErrorFor(method, route, r);
    absl::SleepFor(wait);
  }
}

absl::StatusOr<json> MlflowClient::Post(const std::string& route, const json& body) const {
  const std::string text = body.dump();
  return Call("POST", route, "", &text);
}

absl::StatusOr<std::string> MlflowClient::GetExperimentIdByName(const std::string& name) const {
  absl::StatusOr<json> r = Call("GET", "/api/2.0/mlflow/experiments/get-by-name",
                                absl::StrCat("experiment_name=", EscapeQuery(name)), nullptr);
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
