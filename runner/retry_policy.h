// File: retry_policy.h
//
// What the runner does with each HTTP outcome: accept it, retry it after a delay (the server's
// Retry-After plus a little jitter when it gives one, else exponential backoff with jitter), fail
// the sample, or stop the run because the endpoint refused the credentials. Retryable: connection
// errors and timeouts, 408, 429, 5xx, and 200 answers that are not a complete OpenAI JSON body
// (malformed, truncated, dropped). Other 4xx fail the sample with the server's message; 401/403
// stop the run.
//
//   RetryPolicy policy({.max_retries = 5, .base_delay_s = 0.5, .max_delay_s = 30}, /*seed=*/1);
//   FailureKind k = ClassifyHttp(curl_code, status);
//   if (IsRetryable(k) && policy.ShouldRetry(attempt)) delay = policy.Delay(attempt, retry_after);
#pragma once

#include <cstdint>
#include <random>
#include <string>

namespace evald::runner {

enum class FailureKind {
  kNone,         // a 2xx answer (its body may still turn out malformed: kMalformed)
  kConnection,   // connect failure, reset, dropped mid-answer, timeout
  kServer,       // 5xx
  kThrottled,    // 429 or 408
  kMalformed,    // 2xx whose body is not a complete OpenAI response
  kAuth,         // 401 or 403
  kClientError,  // other 4xx (and 1xx/3xx that should not happen)
};

const char* FailureKindName(FailureKind kind);

// Retryable kinds: connection, server, throttled, malformed.
bool IsRetryable(FailureKind kind);
// Transport kinds count as "endpoint unreachable" when they exhaust the retries (exit code 3):
// connection, server, throttled.
bool IsTransport(FailureKind kind);

// From libcurl's result code and the HTTP status.
FailureKind ClassifyHttp(int curl_code, long status);

class RetryPolicy {
 public:
  struct Options {
    int max_retries = 5;             // retries after the first attempt
    double base_delay_s = 0.5;       // delay before the first retry (before jitter)
    double max_delay_s = 30;         // cap of the exponential part
    double max_retry_after_s = 600;  // cap on a server's Retry-After
  };

  RetryPolicy(const Options& options, uint64_t seed) : options_(options), rng_(seed) {}

  // `attempts` = attempts made so far (1 after the first failure).
  bool ShouldRetry(int attempts) const { return attempts <= options_.max_retries; }

  // Delay before retry number `attempts` (1-based). With a server hint (`retry_after_s` >= 0):
  // that hint, capped, plus 0 to kRetryAfterJitterS, so `Retry-After: 0` retries at once. Without
  // one: min(max, base * 2^(attempts-1)) times a jitter factor in [0.5, 1].
  double Delay(int attempts, double retry_after_s);

  static constexpr double kRetryAfterJitterS = 0.05;

  const Options& options() const { return options_; }

 private:
  Options options_;
  std::mt19937_64 rng_;
};

}  // namespace evald::runner
