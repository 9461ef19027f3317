// File: http_attempt.h
//
// The libcurl side shared by evald's REST JSON clients (executors/lepton/lepton_client.h and
// daemon/export/mlflow_client.h): one HTTP attempt with a bearer token, a total and a connect
// timeout that never run past the caller's deadline, Retry-After read from the answer, and
// transport failures as text; plus the jittered exponential backoff and the checks both clients
// make. Each client keeps its own retry loop and error wording (which answers are retried, what a
// failure is called), since those differ by API.
//
// No proxy for loopback addresses, redirects never followed, no `Expect: 100-continue`.
// Thread-safe (one curl handle per attempt).
//
//   HttpAttempt a = PerformHttpAttempt({.method = "GET", .url = url, .bearer_token = &token,
//                                       .request_timeout = absl::Seconds(60),
//                                       .connect_timeout = absl::Seconds(10)}, deadline);
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace evald::http {

struct HttpRequest {
  std::string method;  // GET, POST, PUT, PATCH, DELETE
  std::string url;     // query included
  // Sent as `Authorization: Bearer <token>` when set (even empty); never copied into errors.
  const std::string* bearer_token = nullptr;
  std::vector<std::string> extra_headers;  // whole header lines
  const std::string* body = nullptr;
  const char* content_type = "application/json";       // sent with a body only
  absl::Duration request_timeout = absl::Seconds(60);  // one attempt, connect included
  absl::Duration connect_timeout = absl::Seconds(10);
};

struct HttpAttempt {
  long http_status = 0;  // 0: no HTTP answer
  std::string body;
  std::optional<absl::Duration> retry_after;  // Retry-After in seconds, when sent
  int curl_code = 0;                          // CURLcode of the transfer
  std::string transport_error;                // set when http_status is 0
  // The request may have reached the server (everything but a refused or unresolved connect).
  bool maybe_sent = true;
};

// One attempt, no retries: at most min(request_timeout, deadline - now), at least 1 ms.
HttpAttempt PerformHttpAttempt(const HttpRequest& request, absl::Time deadline);

// 429 and 5xx: the server may answer differently later.
inline bool IsRetryableHttpStatus(long status) { return status == 429 || status >= 500; }

// base * 2^(attempt-1), capped at `max`, times a jitter in [0.5, 1] so concurrent clients spread.
absl::Duration JitteredBackoff(absl::Duration base, absl::Duration max, int attempt);

// InvalidArgument when `token` holds a control character: in a header line a CR or LF would end
// the line and start another header. `what` names the token ("the MLflow token").
absl::Status CheckHeaderToken(const std::string& token, absl::string_view what);

// Percent-encoding of one URL component (path segment or query key/value).
std::string UrlEscape(absl::string_view s);

}  // namespace evald::http
