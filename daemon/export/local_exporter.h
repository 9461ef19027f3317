// File: local_exporter.h
//
// The `local` exporter (peer-launcher.md 6.2): copies each job's artifacts (and logs) to
// `<output_dir>/<inv>/<job_id>/{artifacts,logs}/`, writes `job_metadata.json`, and upserts the
// jobs' metrics into summary files (`processed_results.json|csv`): one per invocation
// (`<output_dir>/<inv>/`) and, for exports of several invocations, a consolidated one
// (`<output_dir>/`). Summaries are rewritten atomically under a flock on `<summary>.lock`, so
// concurrent exports to one summary (auto-export of parallel jobs, an evalctl export meanwhile)
// each keep the others' rows. Called by the Export RPC and auto-export (daemon/export_runner.cc),
// and by bench/export.
//
//   EVALD_ASSIGN_OR_RETURN(LocalExporter local, LocalExporter::FromConfig(cfg));
//   InvocationExportResult r = local.Export(jobs, /*consolidated=*/false);
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "daemon/export/export_types.h"
#include "daemon/export/metrics_extract.h"
#include "nlohmann/json.hpp"

namespace evald::daemon::exporters {

// The artifacts every exporter needs, and the one it copies when present (6.1).
inline constexpr const char* kRequiredArtifacts[] = {"results.yml", "eval_factory_metrics.json"};
inline constexpr const char* kOptionalArtifacts[] = {"omni-info.json"};

struct ArtifactCheck {
  bool can_export = false;
  std::vector<std::string> present;  // required and optional files found, in list order
  // "All artifacts available", "Missing optional: omni-info.json", "Missing required: results.yml"
  std::string message;
};
ArtifactCheck CheckArtifacts(const std::string& artifacts_dir);

struct LocalExportOptions {
  std::string output_dir = "./nemo-evaluator-launcher-results";
  bool copy_logs = false;
  bool only_required = true;  // false: the whole artifacts tree and the logs
  // false: no artifact is copied (job_metadata.json and the summary only); the required ones are
  // still checked and read for the metrics.
  bool copy_artifacts = true;
  std::string format;         // "json", "csv" or "" (no summary)
  std::vector<std::string> log_metrics;
  std::string output_filename;  // default processed_results.<format>
};

// Reads the keys of 6.2 from a merged config (export_config.h); `format: none` (or null) is "".
absl::StatusOr<LocalExportOptions> ParseLocalConfig(const nlohmann::json& cfg);

// One job's row in a summary.
struct SummaryEntry {
  std::string invocation_id;
  std::string job_id;
  std::string benchmark;
  std::string model;
  std::string harness;
  std::string container;
  std::string executor;
  std::string timestamp;
  MetricMap metrics;
};

// Summary upserts on the text of an existing file ("" for none); exposed for tests. JSON:
// {"export_timestamp", "benchmarks": {<benchmark>: {"models": {<model>: [entry...]}}}}, an entry
// replaced wherever its (invocation, job) was. CSV: the 7 fixed columns, then metric columns
// (key minus `<benchmark>_`), sorted in a new file, new ones appended to an existing header; a
// row replaced in place by (Invocation ID, Job ID), else appended. InvalidArgument when the
// existing text is not such a summary (it is left alone).
absl::StatusOr<std::string> UpsertJsonSummary(const std::string& existing,
                                              const std::vector<SummaryEntry>& entries,
                                              const std::string& export_timestamp);
absl::StatusOr<std::string> UpsertCsvSummary(const std::string& existing,
                                             const std::vector<SummaryEntry>& entries);

class LocalExporter {
 public:
  explicit LocalExporter(LocalExportOptions options) : options_(std::move(options)) {}
  static absl::StatusOr<LocalExporter> FromConfig(const nlohmann::json& cfg);

  // Exports each job (one failing job does not stop the others), then upserts the successful
  // ones into their invocation's summary and, when `consolidated`, into
  // `<output_dir>/<output_filename>`. success: every job and summary succeeded.
  InvocationExportResult Export(const std::vector<JobExportInput>& jobs, bool consolidated) const;
  JobExportResult ExportJob(const JobExportInput& job) const;

  const LocalExportOptions& options() const { return options_; }

 private:
  // Copies one job's files; fills `entry` on success.
  JobExportResult CopyJob(const JobExportInput& job, SummaryEntry* entry, int* files) const;
  absl::Status UpsertSummary(const std::string& path,
                             const std::vector<SummaryEntry>& entries) const;
  std::string SummaryName() const;

  LocalExportOptions options_;
};

}  // namespace evald::daemon::exporters
