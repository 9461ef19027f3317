// File: interceptors.h
//
// The reference's interceptors, as plain functions and small stateful classes the runner calls
// around each request: system message and payload modifier (request side), OpenAI response
// parsing, reasoning stripping with its stats, response stats (latency percentiles, token usage,
// finish reasons, status codes) and bounded request/response logs. Caching lives in
// response_cache.h and progress in progress.h. All single-threaded (the runner's loop).
//
//   nlohmann::json body = ...;
//   ApplySystemMessage(body, "You are terse.");
//   EVALD_ASSIGN_OR_RETURN(ParsedResponse r, ParseOpenAIResponse(text, EndpointType::kChat));
//   reasoning.Apply(r);   // r.content without <think>...</think>
//   stats.AddResponse(r, latency_s, 200, /*cached=*/false);
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"
#include "runner/adapter_config.h"
#include "runner/plan.h"

namespace evald::runner {

// ---- request side ---------------------------------------------------------------------------

// Replaces any system message and puts `message` first (chat bodies; no-op without messages).
void ApplySystemMessage(nlohmann::json& body, const std::string& message);
// Removes, renames, then deep-merges the added params (objects merge, other values replace).
void ApplyPayloadModifier(nlohmann::json& body, const AdapterConfig::PayloadModifier& modifier);

// ---- response parsing -----------------------------------------------------------------------

struct ParsedResponse {
  std::string content;                   // choices[0].message.content or choices[0].text
  std::optional<std::string> reasoning;  // reasoning_content, or the stripped <think> part
  std::string finish_reason;
  bool has_usage = false;
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t total_tokens = 0;
};

// InvalidArgument when `body` is not a complete OpenAI response of that endpoint type (not JSON,
// truncated, no choices, ...); the runner treats that as a retryable malformed answer.
absl::StatusOr<ParsedResponse> ParseOpenAIResponse(absl::string_view body, EndpointType type);

// The server's message from an OpenAI-style error body ({"error": {"message": ...}}), else the
// start of the body.
std::string ErrorMessageFromBody(absl::string_view body);

// ---- reasoning ------------------------------------------------------------------------------

class ReasoningStripper {
 public:
  explicit ReasoningStripper(const AdapterConfig::Reasoning& config) : config_(config) {}
  // Strips the reasoning from `r.content` (up to and including the end token) and records it
  // in `r.reasoning`; `reasoning_content` from the server counts as finished reasoning.
  void Apply(ParsedResponse& r);
  nlohmann::json StatsJson() const;

 private:
  AdapterConfig::Reasoning config_;
  int64_t responses_ = 0;
  int64_t with_reasoning_ = 0;
  int64_t finished_ = 0;
  int64_t unfinished_ = 0;
  int64_t reasoning_words_ = 0;
  int64_t max_reasoning_words_ = 0;
  int64_t content_words_ = 0;
};

// ---- response stats -------------------------------------------------------------------------

class ResponseStats {
 public:
  explicit ResponseStats(const AdapterConfig::Stats& config) : config_(config) {}
  // A usable answer (network or cache).
  void AddResponse(const ParsedResponse& r, double latency_s, long status, bool cached);
  // A failed attempt (it may be retried).
  void AddFailedAttempt(const std::string& kind, long status, double latency_s);
  nlohmann::json ToJson() const;
  // eval_factory_metrics.json evaluation.token_usage
  nlohmann::json TokenUsageJson() const;

  int64_t prompt_tokens() const { return prompt_tokens_; }
  int64_t completion_tokens() const { return completion_tokens_; }

 private:
  AdapterConfig::Stats config_;
  std::vector<float> latencies_ms_;  // successful network answers
  std::map<std::string, int64_t> status_codes_;
  std::map<std::string, int64_t> finish_reasons_;
  std::map<std::string, int64_t> failed_attempts_;
  int64_t responses_ = 0;
  int64_t cached_ = 0;
  int64_t with_usage_ = 0;
  int64_t prompt_tokens_ = 0;
  int64_t completion_tokens_ = 0;
  int64_t total_tokens_ = 0;
  int64_t max_completion_tokens_ = 0;
};

// p in [0, 100] of unsorted values (nearest-rank on a copy); 0 when empty.
double Percentile(std::vector<float> values, double p);

// ---- bounded logs ---------------------------------------------------------------------------

// The first `max_lines` JSON lines written to a file (request_log.jsonl, response_log.jsonl).
class BoundedLog {
 public:
  BoundedLog() = default;
  ~BoundedLog();
  BoundedLog(const BoundedLog&) = delete;
  BoundedLog& operator=(const BoundedLog&) = delete;
  absl::Status Open(const std::string& path, int64_t max_lines);
  bool wants_more() const { return file_ != nullptr && written_ < max_lines_; }
  void Write(const nlohmann::json& line);
  void Close();

 private:
  FILE* file_ = nullptr;
  int64_t max_lines_ = 0;
  int64_t written_ = 0;
};

}  // namespace evald::runner
