// File: watch_hub.h
//
// Wakes Watch and StreamLogs streams when something changed, and holds the latest progress of
// every job (progress is not stored as events). Events themselves are always read from the
// database by sequence number, so a slow or reconnecting watcher never loses one and the hub needs
// no per-watcher queue.
//
// Publishers: the Supervisor (after each committed transition and progress update) and ServerCore
// (after Submit/Kill/Resume). Readers: one thread per open stream. Thread-safe.
//
//   uint64_t seen = hub.generation();
//   while (!cancelled) { seen = hub.WaitForChange(seen, absl::Milliseconds(250)); ... }
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace evald::daemon {

struct ProgressSnapshot {
  int64_t done = 0;
  int64_t total = 0;
  int64_t errors = 0;
  double rate = 0;
  int64_t updated_ms = 0;
  uint64_t version = 0;  // hub generation when it last changed
};

class WatchHub {
 public:
  uint64_t generation() const;
  // Something was committed (events appended): wake everyone.
  void NotifyChanged();
  void PublishProgress(const std::string& invocation_id, const std::string& job_id,
                       const ProgressSnapshot& progress);
  // Drops the progress of an invocation that ended.
  void Forget(const std::string& invocation_id);
  // Blocks until the generation differs from `seen`, the timeout passes, or Shutdown; returns the
  // current generation.
  uint64_t WaitForChange(uint64_t seen, absl::Duration timeout) const;
  // Progress entries of an invocation changed after `since` (a generation).
  std::vector<std::pair<std::string, ProgressSnapshot>> ProgressSince(
      const std::string& invocation_id, uint64_t since) const;
  // Progress entries of every invocation changed after `since`: (invocation id, job id, progress).
  struct JobProgressEntry {
    std::string invocation_id;
    std::string job_id;
    ProgressSnapshot progress;
  };
  std::vector<JobProgressEntry> AllProgressSince(uint64_t since) const;
  void Shutdown();
  bool shut_down() const;

 private:
  mutable absl::Mutex mu_;
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, std::map<std::string, ProgressSnapshot>> progress_ ABSL_GUARDED_BY(mu_);
};

}  // namespace evald::daemon
