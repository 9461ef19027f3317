// File: request_gate.h
//
// A counting semaphore for the memory-heavy part of an RPC: parsing, composing, validating and
// planning a submitted config (Submit, dry runs included). At most `slots` run at once, so a burst
// of large configs costs at most `slots` times one config's peak; a request finding no free slot
// waits up to `max_wait`, then gets RESOURCE_EXHAUSTED. A free slot costs one uncontended mutex.
//
// Owner: ServerCore, whose Submit holds a slot until its records are built (not while storing),
// and asks for malloc_trim when a large config is done: glibc keeps freed memory in per-thread
// arenas, so 8 large Submits on 8 gRPC threads kept ~140 MB resident without it.
//
//   EVALD_ASSIGN_OR_RETURN(RequestGate::Slot slot, gate.Acquire());
//   ... parse and plan ...
//   slot.Release();  // or let it go out of scope
#pragma once

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace evald::daemon {

class RequestGate {
 public:
  // A held slot; releasing it (or destroying it) lets one waiter in.
  class Slot {
   public:
    Slot(Slot&& other) noexcept : gate_(other.gate_), trim_(other.trim_) {
      other.gate_ = nullptr;
      other.trim_ = false;
    }
    Slot& operator=(Slot&& other) noexcept;
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
    ~Slot();
    void Release();
    // The destructor (after the request's own data is gone) also returns free heap memory to the
    // system: malloc_trim, a few ms on a large heap.
    void TrimAtEnd() { trim_ = true; }

   private:
    friend class RequestGate;
    explicit Slot(RequestGate* gate) : gate_(gate) {}
    RequestGate* gate_;
    bool trim_ = false;
  };

  RequestGate(int slots, absl::Duration max_wait) : slots_(slots), max_wait_(max_wait) {}
  RequestGate(const RequestGate&) = delete;
  RequestGate& operator=(const RequestGate&) = delete;

  // A slot, or RESOURCE_EXHAUSTED when none came free within max_wait.
  absl::StatusOr<Slot> Acquire();
  int in_use() const;

 private:
  bool HasFree() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return in_use_ < slots_; }

  const int slots_;
  const absl::Duration max_wait_;
  mutable absl::Mutex mu_;
  int in_use_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace evald::daemon
