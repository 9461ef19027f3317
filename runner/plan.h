// File: plan.h
//
// The runner plan (docs/design/job-contract.md): what `evalrun --plan plan.yaml` evaluates,
// against which endpoint, with which params and interceptors, and where it writes. The executor
// writes the file; LoadPlan validates it and fills in defaults. Every error names the file, the
// line and the key path.
//
//   EVALD_ASSIGN_OR_RETURN(Plan plan, LoadPlan("/jobs/x/gsm8k/plan.yaml",
//   {"config.params.limit_samples=5"})); plan.params.parallelism;  plan.endpoint.url;
//   plan.adapter.caching.enabled;
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "runner/adapter_config.h"

namespace evald::runner {

enum class EndpointType { kChat, kCompletions };
const char* EndpointTypeName(EndpointType type);

// `config.params`, reference names. Absent optional fields are not sent to the endpoint.
struct Params {
  std::optional<int64_t> limit_samples;  // first N rows of the dataset
  int parallelism = 1;                   // requests in flight
  std::optional<double> temperature;
  std::optional<double> top_p;
  std::optional<int64_t> max_new_tokens;  // sent as max_tokens
  double request_timeout_s = 60;
  int max_retries = 5;  // retries after the first attempt
  // config.params.extra
  int n_samples = 1;            // repeats per sample
  std::optional<int64_t> seed;  // request `seed` (+ repeat index) and option shuffling
  std::string dataset;          // path or URL; empty: the task's default
  std::optional<int64_t> num_fewshot;
  std::optional<bool> shuffle_choices;  // multiple choice; default on for GPQA only
  double retry_base_delay_s = 0.5;      // first backoff step; doubles per retry, with jitter
  double retry_max_delay_s = 30;
  double max_failed_fraction = 0.0;  // samples allowed to fail on transport errors (exit 3 above)
};

struct Endpoint {
  std::string url;  // full URL, e.g. http://host:8000/v1/chat/completions
  std::string model_id;
  EndpointType type = EndpointType::kChat;
  bool type_given = false;  // false: the task's endpoint_type decides
  std::string api_key_env;  // name of the env var holding the key; empty: send no key
};

struct Plan {
  std::string path;  // absolute path of plan.yaml ("" when parsed from text)
  std::string task;  // config.type
  std::string output_dir;
  std::string task_file;  // config.task_file (user-defined tasks); absolute
  Params params;
  Endpoint endpoint;
  AdapterConfig adapter;
  nlohmann::json config = nlohmann::json::object();  // the plan's `config` map, as given
  nlohmann::json target = nlohmann::json::object();  // the plan's `target` map, as given
};

// Reads and validates a plan file; `overrides` are dotted `key=value` assignments applied first
// (values parsed as YAML), as `run_eval --overrides` does. Relative paths in the plan are taken
// relative to the plan's folder.
absl::StatusOr<Plan> LoadPlan(const std::string& path,
                              const std::vector<std::string>& overrides = {});
// Same from text; `name` is used in error messages and `base_dir` resolves relative paths.
absl::StatusOr<Plan> ParsePlan(const std::string& text, const std::string& name,
                               const std::string& base_dir,
                               const std::vector<std::string>& overrides = {});

// Joins `path` to `base_dir` unless it is absolute or a URL.
std::string ResolvePath(const std::string& base_dir, const std::string& path);
bool IsUrl(const std::string& s);

}  // namespace evald::runner
