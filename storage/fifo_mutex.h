// File: fifo_mutex.h
//
// A mutex that hands the lock over in arrival order. Store serializes every operation on its one
// SQLite connection with it. With absl::Mutex, a thread that has just unlocked can take the lock
// again ahead of callers that are still being woken up; in evald_storage_bench, 8 threads
// submitting in a loop left some of them waiting 300-400 ms. In arrival order a caller waits at
// most for the operations already queued ahead of it.
//
// Callers: Store. Not reentrant.
//
//   FifoMutex mu;
//   { FifoLock lock(&mu); /* one caller at a time, first come first served */ }
#pragma once

#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace evald::storage {

class ABSL_LOCKABLE FifoMutex {
 public:
  FifoMutex() = default;
  FifoMutex(const FifoMutex&) = delete;
  FifoMutex& operator=(const FifoMutex&) = delete;

  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() {
    absl::MutexLock lock(&mu_);
    const uint64_t ticket = next_ticket_++;
    auto my_turn = [this, ticket]()
                       ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return now_serving_ == ticket; };
    mu_.Await(absl::Condition(&my_turn));
  }

  void Unlock() ABSL_UNLOCK_FUNCTION() {
    absl::MutexLock lock(&mu_);
    ++now_serving_;
  }

  // Holder plus waiters.
  uint64_t QueueLengthForTest() {
    absl::MutexLock lock(&mu_);
    return next_ticket_ - now_serving_;
  }

 private:
  absl::Mutex mu_;
  uint64_t next_ticket_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t now_serving_ ABSL_GUARDED_BY(mu_) = 0;
};

class ABSL_SCOPED_LOCKABLE FifoLock {
 public:
  explicit FifoLock(FifoMutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) { mu_->Lock(); }
  ~FifoLock() ABSL_UNLOCK_FUNCTION() { mu_->Unlock(); }
  FifoLock(const FifoLock&) = delete;
  FifoLock& operator=(const FifoLock&) = delete;

 private:
  FifoMutex* const mu_;
};

}  // namespace evald::storage
