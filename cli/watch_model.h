// File: watch_model.h
//
// What `evalctl watch` knows about the jobs it follows, built from the Watch stream (a snapshot,
// then events, progress and log lines), and the lines it prints. Pure: the command (cli/commands/
// watch.cc) owns the terminal, the clock and the throttling; this class owns the state and the
// text, so both the TTY view and the plain CI view are unit-tested.
//
//   WatchModel model("");                       // every job of the invocation
//   for (const v1::WatchEvent& ev : stream) {
//     for (const std::string& line : model.Apply(ev)) Print(line);
//   }
//   return model.ExitCode();                    // 0 only if every job succeeded
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "evald/v1/evald.pb.h"

namespace evald::cli {

struct WatchJob {
  std::string job_id;
  std::string task;
  v1::JobState state = v1::JOB_STATE_UNSPECIFIED;
  v1::Progress progress;
  std::string exit;  // FormatExit() once known, else ""
};

class WatchModel {
 public:
  // `only_job`: follow this job of the invocation only ("" = all jobs).
  explicit WatchModel(std::string only_job) : only_job_(std::move(only_job)) {}

  // Applies one stream message and returns the event lines it produces (no timestamps, no
  // newline). A snapshot replaces every job's state and produces no line.
  std::vector<std::string> Apply(const v1::WatchEvent& message);

  bool has_snapshot() const { return has_snapshot_; }
  const std::string& invocation_id() const { return invocation_id_; }
  const std::vector<WatchJob>& jobs() const { return jobs_; }
  // Index of a job in jobs(), -1 when not followed.
  int IndexOf(const std::string& job_id) const;
  bool AllTerminal() const;
  // 0 when every followed job succeeded, 1 otherwise (some failed, were killed or lost, or the
  // snapshot had no job).
  int ExitCode() const;
  // "3 jobs: 2 succeeded, 1 failed".
  std::string Summary() const;

 private:
  std::string only_job_;
  bool has_snapshot_ = false;
  std::string invocation_id_;
  std::vector<WatchJob> jobs_;
};

// The TTY line of one job, at most `width` columns:
//   "1a2b3c4d.0  gsm8k     [#####-----]  50%  500/1000  12.5/s  running"
// `task_width` aligns the task column across jobs.
std::string RenderWatchBarLine(const WatchJob& job, size_t task_width, int width);
// The plain (non-TTY) progress line: "1a2b3c4d.0 gsm8k: progress 500/1000 (50%), 12.5/s".
std::string RenderWatchProgressLine(const WatchJob& job);

}  // namespace evald::cli
