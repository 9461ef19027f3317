// File: adapter_config.h
//
// The interceptor settings of a run, parsed from the reference's
// `target.api_endpoint.adapter_config`: either the `interceptors` list
// ([{name, enabled, config}] or bare names) or, when no list is given, the legacy flat flags
// (use_caching, use_system_prompt, params_to_add, use_reasoning, ...), converted the way the
// reference converts them. Called by the plan parser; the runner reads the result.
//
//   EVALD_ASSIGN_OR_RETURN(AdapterConfig ac,
//                          ParseAdapterConfig(doc, node, "target.api_endpoint.adapter_config"));
//   if (ac.caching.enabled) ...
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "runner/yaml_util.h"

namespace evald::runner {

struct AdapterConfig {
  // system_message: prepended to chat messages, replacing any system message already there.
  std::optional<std::string> system_message;

  // payload_modifier: applied to every request body, in this order: remove, rename, add.
  struct PayloadModifier {
    bool enabled = false;
    nlohmann::json params_to_add = nlohmann::json::object();            // deep-merged into the body
    std::vector<std::string> params_to_remove;                          // top-level keys
    std::vector<std::pair<std::string, std::string>> params_to_rename;  // old -> new
  } payload;

  // reasoning: strips the reasoning part of each answer before scoring.
  struct Reasoning {
    bool enabled = false;
    std::string start_token = "<think>";
    std::string end_token = "</think>";
    bool include_if_not_finished = true;  // false: an unfinished reasoning scores as empty
    bool tracking = true;                 // reasoning stats in eval_factory_metrics.json
  } reasoning;

  // caching: SQLite response cache under artifacts/cache (or cache_dir); on by default.
  struct Caching {
    bool enabled = true;
    std::string dir;           // empty: <output_dir>/cache
    bool reuse_cached = true;  // false: never read the cache, only fill it
    bool save_requests = false;
  } caching;

  // request_logging / response_logging: the first N requests/responses as JSON lines in
  // artifacts/request_log.jsonl / response_log.jsonl (no headers, so never the API key).
  struct Logging {
    bool requests = false;
    int64_t max_requests = 2;
    bool responses = false;
    int64_t max_responses = 1000;
    bool failed_requests = false;  // log_failed_requests: every >= 400 answer to stderr
  } logging;

  // response_stats: latency percentiles, token usage and finish reasons; on by default.
  struct Stats {
    bool enabled = true;
    bool collect_token_stats = true;
    bool collect_finish_reasons = true;
  } stats;

  // progress_tracking: POST {"samples_processed": n} to `url` every `interval` samples. The
  // progress files of the job contract are written whatever this says.
  struct Progress {
    bool enabled = false;
    std::string url;
    int64_t interval = 1;
  } progress;

  // Interceptors the configuration named that evalrun accepts but does not implement.
  std::vector<std::string> ignored;
};

// `node` is the adapter_config map (absent or null: the reference defaults). `path` is its key
// path, for error messages.
absl::StatusOr<AdapterConfig> ParseAdapterConfig(const YamlDoc& doc, const YAML::Node& node,
                                                 const std::string& path);

}  // namespace evald::runner
