#include "daemon/watch_hub.h"

namespace evald::daemon {

uint64_t WatchHub::generation() const {
  absl::MutexLock lock(&mu_);
  return generation_;
}

void WatchHub::NotifyChanged() {
  absl::MutexLock lock(&mu_);
  ++generation_;
}

void WatchHub::PublishProgress(const std::string& invocation_id, const std::string& job_id,
                               const ProgressSnapshot& progress) {
  absl::MutexLock lock(&mu_);
  ++generation_;
  ProgressSnapshot& slot = progress_[invocation_id][job_id];
  slot = progress;
  slot.version = generation_;
}

void WatchHub::Forget(const std::string& invocation_id) {
  absl::MutexLock lock(&mu_);
  progress_.erase(invocation_id);
}

uint64_t WatchHub::WaitForChange(uint64_t seen, absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto changed = [this, seen]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return generation_ != seen || shutdown_;
  };
  mu_.AwaitWithTimeout(absl::Condition(&changed), timeout);
  return generation_;
}

std::vector<std::pair<std::string, ProgressSnapshot>> WatchHub::ProgressSince(
    const std::string& invocation_id, uint64_t since) const {
  absl::MutexLock lock(&mu_);
  std::vector<std::pair<std::string, ProgressSnapshot>> out;
  auto it = progress_.find(invocation_id);
  if (it == progress_.end()) return out;
  for (const auto& [job, p] : it->second) {
    if (p.version > since) out.emplace_back(job, p);
  }
  return out;
}

std::vector<WatchHub::JobProgressEntry> WatchHub::AllProgressSince(uint64_t since) const {
  absl::MutexLock lock(&mu_);
  std::vector<JobProgressEntry> out;
  for (const auto& [invocation, jobs] : progress_) {
    for (const auto& [job, p] : jobs) {
      if (p.version > since) out.push_back({invocation, job, p});
    }
  }
  return out;
}

void WatchHub::Shutdown() {
  absl::MutexLock lock(&mu_);
  shutdown_ = true;
  ++generation_;
}

bool WatchHub::shut_down() const {
  absl::MutexLock lock(&mu_);
  return shutdown_;
}

}  // namespace evald::daemon
