// File: format.h
//
// Everything evalctl prints, as pure functions of API messages: aligned tables, durations and
// ages, progress text and bars, the JSON objects scripts rely on, results CSV, and the parsing of
// `ls runs --since`. No I/O and no gRPC, so every output format is unit-tested without a server.
//
// Callers: the commands in cli/commands/ and the watch view (cli/watch_model.h).
//
//   Table t({"job_id", "task", "state"});
//   t.AddRow({"1a2b3c4d.0", "gsm8k", "running"});
//   std::cout << t.Render();
//   std::cout << InvocationStatusJson(inv).dump(2) << "\n";
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "evald/v1/evald.pb.h"
#include "nlohmann/json.hpp"
#include "proto/state_enums.h"

namespace evald::cli {

// Insertion-ordered JSON, so objects print keys in the documented order.
using Json = nlohmann::ordered_json;

// ---- Names -------------------------------------------------------------------------------------

// The API's enums in core's vocabulary (core/lifecycle.h, mapped by proto/state_enums.h): these
// adapters define no names of their own. Lower-case names: pending, submitted, running,
// succeeded, failed, killed, lost ("unknown" for an unspecified or unknown value).
std::string StateName(v1::JobState state);
std::optional<v1::JobState> ParseStateName(absl::string_view name);
bool IsTerminal(v1::JobState state);
// killed_by_user, timeout, ... ; "" when unspecified.
std::string ExitReasonName(v1::ExitReason reason);
std::string DeploymentStateName(v1::DeploymentState state);
// A `.` marks a job id (<invocation>.<n>); anything else is an invocation id.
bool IsJobId(absl::string_view id);

// ---- Time --------------------------------------------------------------------------------------

// Compact duration: "850ms", "42s", "3m12s", "2h05m", "3d4h".
std::string FormatDuration(int64_t ms);
// "5m ago", "just now" (under a second), "-" when `then_ms` is 0.
std::string FormatAge(int64_t then_ms, int64_t now_ms);
// Local time, ISO 8601 without fractions: "2026-01-02T15:04:05"; "-" when 0.
std::string FormatLocalTime(int64_t ms);
// `--since`: YYYY-MM-DD (local midnight), YYYY-MM-DDTHH:MM:SS (local), Nd or Nh (before now).
// Returns epoch ms; InvalidArgument "Invalid --since value: X. Use ..." otherwise.
absl::StatusOr<int64_t> ParseSince(absl::string_view text, int64_t now_ms);

// ---- Progress ----------------------------------------------------------------------------------

// "120/500 (24%)"; "120" when the total is unknown; "-" before any sample.
std::string FormatProgress(const v1::Progress& progress);
// "[#######-------------]" of `width` characters in total (brackets included, at least 3).
// An unknown total (0) renders an empty bar.
std::string RenderProgressBar(int64_t done, int64_t total, int width);
// The exit column: "-" while running, the exit code for a process exit ("0", "3"), else the
// reason ("timeout", "killed_by_user"), with the code when there is one ("timeout (137)").
std::string FormatExit(const v1::Job& job);

// ---- Tables ------------------------------------------------------------------------------------

// Columns separated by two spaces, a line of dashes under the header, the last column unpadded.
class Table {
 public:
  explicit Table(std::vector<std::string> header) : header_(std::move(header)) {}
  void AddRow(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  bool empty() const { return rows_.empty(); }
  std::string Render() const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

// `status`: per invocation a header line (id, state, age, executor), then its jobs' table.
std::string RenderInvocationHeader(const v1::Invocation& inv, int64_t now_ms);
std::string RenderStatusTable(const std::vector<v1::Invocation>& invocations, int64_t now_ms);

// `ls runs`: invocation_id, created, state, jobs, executor, tasks (sorted, unique).
std::string RenderRunsTable(const std::vector<v1::Invocation>& invocations);

// `ls tasks`: grouped by harness, then container, like the reference launcher; "No tasks found."
// when empty.
std::string RenderTasksTable(const v1::ListTasksResponse& tasks);

// `results`: job_id, task, metric, score, value, ± stderr, n; then one line per job whose scores
// are partial ("1a2b3c4d.0: partial (3 of 10 samples), job failed"); then the jobs without
// results.
std::string RenderResultsTable(const v1::GetResultsResponse& results);
// "partial (N of M samples)[, job <state>]" for a job whose scores cover part of its samples.
std::string PartialNote(const v1::JobResult& jr);

// `info`: everything known about an invocation, for humans.
std::string RenderInfo(const v1::Invocation& inv, int64_t now_ms);

// `submit`: the invocation id, one line per job and the follow-up commands.
std::string RenderSubmitted(const v1::SubmitResponse& response);
// `submit --dry-run`: resolved config, each job's script under a banner, the deployment command.
std::string RenderDryRun(const v1::SubmitResponse& response);

// ---- JSON / CSV --------------------------------------------------------------------------------

// {"done": n, "total": n, "rate": x}
Json ProgressJson(const v1::Progress& progress);
// {"job_id", "task", "state", "progress", "output_dir", "exit_reason", "exit_code", "attempt"}
// Auto-export states: pending, succeeded, failed.
std::string ExportStateName(v1::ExportState s);
// ... "exports": [{dest, state, attempts, message, run_url}] when the job has any.
Json JobStatusJson(const v1::Job& job);
// {"invocation_id", "state", "executor", "created", "jobs": [JobStatusJson...]}
Json InvocationStatusJson(const v1::Invocation& inv);
// {"invocation_id", "dry_run", "run_dir", "jobs": [{"job_id", "task", "output_dir"[, "script"]}]
//  [, "config", "deployment_command"]}
Json SubmitJson(const v1::SubmitResponse& response);
// [{"job_id", "task", "metric", "score", "value", "stderr", "count"[, "partial": true,
// "samples_scored", "samples_total"]}, ...]; stderr and count are null when results.yml gave only
// a value; the partial keys only for the scores of a job that did not score every sample.
Json ResultsJson(const v1::GetResultsResponse& results);
// `info --json`: the invocation with every job's paths and backend id, its deployments and
// "config" (the resolved YAML, or null).
Json InfoJson(const v1::Invocation& inv);
// The reference launcher's shape: {"tasks": [{"task", "endpoint_type", "harness", "container"}]}.
Json TasksJson(const v1::ListTasksResponse& tasks);

// One RFC 4180 field: quoted when it holds a comma, a quote, CR or LF; quotes doubled.
std::string CsvField(absl::string_view field);
// Header job_id,task,metric,score,value,stderr,count,partial then one row per metric ("\n" line
// ends); partial is "true" for the scores of a job that did not score every sample, else empty.
std::string ResultsCsv(const v1::GetResultsResponse& results);

}  // namespace evald::cli
