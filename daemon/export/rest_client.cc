#include "daemon/export/rest_client.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "executors/common/http_attempt.h"

namespace evald::daemon::exporters {
namespace {

using json = nlohmann::json;

constexpr char kHttpStatusPayload[] = "evald.export/rest-http-status";

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

}  // namespace

std::string BodyStart(const std::string& body) {
  std::string text(absl::StripAsciiWhitespace(body.substr(0, 300)));
  return text.empty() ? "(empty body)" : text;
}

int RestHttpStatusOf(const absl::Status& status) {
  auto p = status.GetPayload(kHttpStatusPayload);
  int v = 0;
  if (!p || !absl::SimpleAtoi(std::string(*p), &v)) return 0;
  return v;
}

RestClient::RestClient(std::string service, RestClientOptions options,
                       std::vector<std::string> secrets,
                       std::function<std::string(const std::string&)> error_text)
    : service_(std::move(service)),
      options_(options),
      secrets_(std::move(secrets)),
      error_text_(std::move(error_text)) {
  options_.max_attempts = std::max(options_.max_attempts, 1);
  secrets_.erase(std::remove_if(secrets_.begin(), secrets_.end(),
                                [](const std::string& s) { return s.size() < 4; }),
                 secrets_.end());
}

std::string RestClient::Scrub(std::string text) const {
  for (const std::string& s : secrets_) text = absl::StrReplaceAll(text, {{s, "<redacted>"}});
  return text;
}

absl::StatusOr<std::string> RestClient::Call(const RestCall& call) const {
  if (call.bearer_token != nullptr) {
    if (absl::Status s = http::CheckHeaderToken(*call.bearer_token, service_ + " token"); !s.ok()) {
      return s;
    }
  }
  for (const std::string& h : call.headers) {
    if (absl::Status s = http::CheckHeaderToken(h, service_ + " credentials"); !s.ok()) return s;
  }
  const absl::Time deadline = absl::Now() + options_.max_total;
  auto error_for = [&](const http::HttpAttempt& r) {
    absl::StatusCode code;
    std::string message;
    if (r.http_status == 0) {
      code = absl::StatusCode::kUnavailable;
      message = absl::StrCat(service_, " ", call.method, " ", call.route, ": ", r.transport_error);
    } else {
      code = CodeForHttp(r.http_status);
      message = absl::StrCat(service_, " ", call.method, " ", call.route, ": HTTP ", r.http_status,
                             ": ", error_text_ ? error_text_(r.body) : BodyStart(r.body));
      if (r.http_status == 401 && !call.unauthorized_hint.empty()) {
        absl::StrAppend(&message, " (", call.unauthorized_hint, ")");
      }
    }
    // A server that echoes the request must not leak a credential into our errors.
    absl::Status status(code, Scrub(message));
    status.SetPayload(kHttpStatusPayload, absl::Cord(absl::StrCat(r.http_status)));
    return status;
  };
  for (int attempt = 1;; ++attempt) {
    http::HttpRequest request;
    request.method = call.method;
    request.url = call.url;
    request.bearer_token = call.bearer_token;
    request.extra_headers = call.headers;
    request.body = call.body;
    request.content_type = call.content_type;
    request.request_timeout = options_.request_timeout;
    request.connect_timeout = options_.connect_timeout;
    http::HttpAttempt r = http::PerformHttpAttempt(request, deadline);
    if (r.http_status >= 200 && r.http_status < 300) return std::move(r.body);
    const bool retryable = r.http_status == 0 || http::IsRetryableHttpStatus(r.http_status);
    if (!retryable || attempt >= options_.max_attempts) return error_for(r);
    const absl::Duration wait =
        r.retry_after ? std::min(*r.retry_after, options_.backoff_max)
                      : http::JitteredBackoff(options_.backoff_base, options_.backoff_max, attempt);
    if (absl::Now() + wait >= deadline) return error_for(r);
    absl::SleepFor(wait);
  }
}

absl::StatusOr<json> RestClient::CallJson(const RestCall& call) const {
  absl::StatusOr<std::string> body = Call(call);
  if (!body.ok()) return body.status();
  if (absl::StripAsciiWhitespace(*body).empty()) return json::object();
  json j = json::parse(*body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return absl::InternalError(
        absl::StrCat(service_, " ", call.method, " ", call.route,
                     ": an answer that is not JSON: ", Scrub(BodyStart(*body))));
  }
  return j;
}

}  // namespace evald::daemon::exporters
