#include "executors/common/last_states.h"

#include <algorithm>
#include <utility>

namespace evald::executors {

std::string LastStates::Set(const std::string& key, const std::string& state, bool final) {
  absl::MutexLock lock(&mu_);
  std::string& slot = states_[key];
  std::string previous = std::exchange(slot, state);
  if (!final) return previous;
  // A job reported final twice (each poll until evald records the end) is listed once.
  if (std::find(final_order_.rbegin(), final_order_.rend(), key) == final_order_.rend()) {
    final_order_.push_back(key);
  }
  while (final_order_.size() > keep_final_) {
    states_.erase(final_order_.front());
    final_order_.pop_front();
  }
  return previous;
}

std::optional<std::string> LastStates::Get(const std::string& key) const {
  absl::MutexLock lock(&mu_);
  auto it = states_.find(key);
  if (it == states_.end()) return std::nullopt;
  return it->second;
}

size_t LastStates::size() const {
  absl::MutexLock lock(&mu_);
  return states_.size();
}

}  // namespace evald::executors
