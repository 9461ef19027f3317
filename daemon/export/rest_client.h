// File: rest_client.h
//
// The retrying JSON-over-HTTP call shared by the W&B and Google Sheets exporters
// (wandb_exporter.h, gsheets_exporter.h): one attempt is executors/common/http_attempt.h's; 429
// (Retry-After honoured), 5xx, timeouts and dropped connections are retried with jittered
// exponential backoff within max_attempts and max_total, as the MLflow client does. Errors read
// "<service> <METHOD> <route>: HTTP <status>: <message from the body>" so the AutoExporter's
// permanent-error rule (HTTP 400/401/403/404) applies to every destination alike, and every
// secret the caller names (API key, access token, JWT) is scrubbed from them. Thread-safe.
//
//   RestClient client("W&B", options, {api_key}, WandbErrorText);
//   EVALD_ASSIGN_OR_RETURN(nlohmann::json j,
//       client.CallJson({.method = "POST", .url = url, .route = "/graphql", .body = &text}));
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace evald::daemon::exporters {

struct RestClientOptions {
  absl::Duration request_timeout = absl::Seconds(60);
  absl::Duration connect_timeout = absl::Seconds(10);
  int max_attempts = 6;
  absl::Duration backoff_base = absl::Milliseconds(500);
  absl::Duration backoff_max = absl::Seconds(30);
  absl::Duration max_total = absl::Minutes(3);
};

struct RestCall {
  std::string method;  // GET, POST, PUT
  std::string url;     // full URL, query included
  std::string route;   // what errors name (the path without host and query)
  const std::string* body = nullptr;
  const char* content_type = "application/json";
  const std::string* bearer_token = nullptr;  // Authorization: Bearer
  std::vector<std::string> headers;           // whole header lines (e.g. Basic auth)
  std::string unauthorized_hint;              // appended to a 401's message
};

// The HTTP status a RestClient error carries (0 when no HTTP answer came back).
int RestHttpStatusOf(const absl::Status& status);

class RestClient {
 public:
  // `error_text` turns an error answer's body into the message (the service's error shape).
  RestClient(std::string service, RestClientOptions options, std::vector<std::string> secrets,
             std::function<std::string(const std::string& body)> error_text);

  // The body of a 2xx answer.
  absl::StatusOr<std::string> Call(const RestCall& call) const;
  // The same parsed as JSON (an empty body is {}).
  absl::StatusOr<nlohmann::json> CallJson(const RestCall& call) const;

  // `text` with every secret replaced by <redacted>.
  std::string Scrub(std::string text) const;
  const std::string& service() const { return service_; }

 private:
  std::string service_;
  RestClientOptions options_;
  std::vector<std::string> secrets_;
  std::function<std::string(const std::string&)> error_text_;
};

// The first 300 characters of a body, trimmed, or "(empty body)": the fallback error text.
std::string BodyStart(const std::string& body);

}  // namespace evald::daemon::exporters
