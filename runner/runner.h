// File: runner.h
//
// One evaluation run: plan -> task -> requests -> scores -> artifacts. Called by evalrun's main
// (and by tests, in-process). The loop runs on the calling thread: it keeps `parallelism`
// requests in flight through HttpClient, answers from the response cache first, retries by
// RetryPolicy, scores each answer as it arrives, streams samples.jsonl and keeps the progress
// files current. A stop signal (SIGTERM/SIGINT, noticed through `stop_signal` and `wake_fd`)
// stops sending, flushes the cache and writes what finished.
//
//   RunnerOptions opts;  opts.stop_signal = &g_signal;  opts.wake_fd = pipe_read_end;
//   EVALD_ASSIGN_OR_RETURN(Plan plan, LoadPlan(path));
//   RunOutcome out = RunEvaluation(plan, opts);
//   return ExitCode(out);
#pragma once

#include <atomic>
#include <cstdint>
#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "runner/plan.h"

namespace evald::runner {

// Exit codes of docs/design/job-contract.md.
enum ExitCodes : int {
  kExitOk = 0,
  kExitInternal = 1,
  kExitBadInput = 2,
  kExitUnreachable = 3,
  kExitScoring = 4,
  kExitAuth = 5,
};

struct RunnerOptions {
  const std::atomic<int>* stop_signal = nullptr;  // non-zero: the signal that asked us to stop
  int wake_fd = -1;                               // readable when a signal arrived
  std::string command;                            // for results.yml / run_config.yml
  std::ostream* out = nullptr;                    // summary table (stdout); nullptr: none
};

struct RunOutcome {
  absl::Status status;  // OK, or why the run stopped
  int signal = 0;       // the stop signal, when one ended the run
  int64_t total = 0;
  int64_t done = 0;
  int64_t errored = 0;
  int64_t cached = 0;
  int64_t sent = 0;  // HTTP requests sent (retries included)
};

// Runs the plan to the end (or to a stop). Never throws.
RunOutcome RunEvaluation(const Plan& plan, const RunnerOptions& options);

// Validates the plan, task and dataset and prints the first request (no secret), the sample
// count and the endpoint; sends nothing and writes nothing.
absl::Status DryRun(const Plan& plan, std::ostream& out);

// Maps an outcome to the contract's exit code (signal: 128 + signal number).
int ExitCode(const RunOutcome& outcome);
int ExitCodeForStatus(const absl::Status& status);

// Marks statuses whose exit code is 4 (scoring or result writing), whatever their code.
absl::Status ScoringError(absl::string_view message);

}  // namespace evald::runner
