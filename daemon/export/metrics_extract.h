// File: metrics_extract.h
//
// The reference exporters' metric extraction and naming rules (peer-launcher.md 6.1), shared by
// every exporter: which scores of a job's results.yml become exported metrics and under which
// keys, the `log_metrics` filter, and the benchmark and model names. Called by the exporters
// (local_exporter.cc, mlflow_exporter.cc).
//
//   EVALD_ASSIGN_OR_RETURN(MetricMap m, ExtractMetrics(job.artifacts_dir, {"accuracy"}));
//   // {"gsm8k_exact_match_strict": 0.75, ...}
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "yaml-cpp/yaml.h"

namespace evald::daemon::exporters {

using MetricMap = std::map<std::string, double>;

// Whether the lower-cased metric name contains acc, accuracy, score, exact_match, f1, em, pass@1
// or pass@k.
bool IsExportedMetricName(const std::string& metric);

// From results.yml, sections `groups` then `tasks`, for each `<task>.metrics.<metric>` with an
// exported name: `{value: x}` -> `<task>_<metric>`, `{scores: {<s>: {value: x}}}` ->
// `<task>_<metric>_<s>`, a bare number -> `<task>_<metric>`; non-numeric values (strings, bools,
// null) are skipped. Then each `json_files` entry (stem, text) with a numeric top-level `score`
// adds `<stem>_score` unless results.yml gave that key. The same key with two different values
// is InvalidArgument naming the key, both values and where each came from; the same value twice
// is fine. Then `log_metrics` keeps the keys containing any filter (case-insensitive).
// `results_yml` empty: no results.yml (only the json files count).
absl::StatusOr<MetricMap> ExtractMetricsFromText(
    const std::string& results_yml, const std::string& source,
    const std::vector<std::pair<std::string, std::string>>& json_files,
    const std::vector<std::string>& log_metrics);

// The same on a job's artifacts dir: `results.yml` and every other top-level `*.json`.
absl::StatusOr<MetricMap> ExtractMetrics(const std::string& artifacts_dir,
                                         const std::vector<std::string>& log_metrics);

// Keeps the keys that contain any of `filters` (case-insensitive); no filters keeps all.
MetricMap FilterMetrics(const MetricMap& metrics, const std::vector<std::string>& filters);

// The task name without the `<harness>.` prefix (`simple_evals.gpqa_diamond` -> `gpqa_diamond`).
std::string BenchmarkName(const std::string& task_name, const std::string& harness);

// The model name: the config's `model_name`, else `target.api_endpoint.model_id`, else
// `deployment.served_model_name`, else `fallback`, else `unknown_model_<job_id>`.
std::string ResolveModelName(const YAML::Node& config, const std::string& fallback,
                             const std::string& job_id);

// A metric value as the summaries and errors print it (Python's repr of a float: 0.75, 1.0).
std::string MetricText(double v);

}  // namespace evald::daemon::exporters
