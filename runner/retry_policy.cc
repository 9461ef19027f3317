#include "runner/retry_policy.h"

#include <curl/curl.h>

#include <algorithm>
#include <cmath>

namespace evald::runner {

const char* FailureKindName(FailureKind kind) {
  switch (kind) {
    case FailureKind::kNone:
      return "ok";
    case FailureKind::kConnection:
      return "connection";
    case FailureKind::kServer:
      return "server_error";
    case FailureKind::kThrottled:
      return "throttled";
    case FailureKind::kMalformed:
      return "malformed_response";
    case FailureKind::kAuth:
      return "auth";
    case FailureKind::kClientError:
      return "client_error";
  }
  return "unknown";
}

bool IsRetryable(FailureKind kind) {
  return kind == FailureKind::kConnection || kind == FailureKind::kServer ||
         kind == FailureKind::kThrottled || kind == FailureKind::kMalformed;
}

bool IsTransport(FailureKind kind) {
  return kind == FailureKind::kConnection || kind == FailureKind::kServer ||
         kind == FailureKind::kThrottled;
}

FailureKind ClassifyHttp(int curl_code, long status) {
  if (curl_code != CURLE_OK) {
    // A body cut short after the headers arrived: the answer is incomplete, retry it.
    if (curl_code == CURLE_PARTIAL_FILE && status >= 200 && status < 300) {
      return FailureKind::kMalformed;
    }
    if (curl_code == CURLE_WRITE_ERROR) return FailureKind::kMalformed;  // oversized body
    return FailureKind::kConnection;
  }
  if (status >= 200 && status < 300) return FailureKind::kNone;
  if (status == 401 || status == 403) return FailureKind::kAuth;
  if (status == 408 || status == 429) return FailureKind::kThrottled;
  if (status >= 500) return FailureKind::kServer;
  return FailureKind::kClientError;
}

double RetryPolicy::Delay(int attempts, double retry_after_s) {
  if (retry_after_s >= 0) {
    // The server said when; a little spread keeps the clients it throttled together apart.
    std::uniform_real_distribution<double> spread(0.0, kRetryAfterJitterS);
    return std::min(retry_after_s, options_.max_retry_after_s) + spread(rng_);
  }
  const int exponent = std::clamp(attempts - 1, 0, 62);
  double backoff =
      std::min(options_.max_delay_s, options_.base_delay_s * std::ldexp(1.0, exponent));
  std::uniform_real_distribution<double> jitter(0.5, 1.0);
  return backoff * jitter(rng_);
}

}  // namespace evald::runner
