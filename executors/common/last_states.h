// File: last_states.h
//
// The last raw backend state an executor saw per job ("RUNNING", "Completed", ...), kept for
// Describe (evalctl info's backend details). Thread-safe: the driver thread writes from
// Start/Poll/Recover, gRPC threads read from Describe. Memory is bounded however many jobs an
// evald runs over its life: live jobs stay, and of the jobs that reached a final state only the
// newest `keep_final` are remembered. Used by the SLURM and Lepton executors.
//
//   LastStates states(1000);
//   std::string before = states.Set(key, "RUNNING");
//   states.Set(key, "COMPLETED", /*final=*/true);
//   std::optional<std::string> s = states.Get(key);
#pragma once

#include <cstddef>
#include <deque>
#include <map>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace evald::executors {

class LastStates {
 public:
  explicit LastStates(size_t keep_final) : keep_final_(keep_final) {}

  // Records `state` for `key` and returns the state recorded before ("" if none). A final state
  // enters the bounded history; the oldest final states beyond keep_final are forgotten.
  std::string Set(const std::string& key, const std::string& state, bool final = false);
  std::optional<std::string> Get(const std::string& key) const;
  size_t size() const;

 private:
  const size_t keep_final_;
  mutable absl::Mutex mu_;
  std::map<std::string, std::string> states_ ABSL_GUARDED_BY(mu_);
  std::deque<std::string> final_order_ ABSL_GUARDED_BY(mu_);  // keys, oldest first
};

}  // namespace evald::executors
