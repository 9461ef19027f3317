// File: exit_watcher.h
//
// Tells, without polling, when watched processes end: one thread waits (epoll) on a pidfd per
// process and calls a callback each time one of them exits. The local executor uses it to wake
// the Supervisor as soon as a job ends, instead of at the Supervisor's next tick. Needs pidfds
// (Linux 5.3 and later); without them Watch() fails and the caller's polling still sees the exit.
//
// Thread-safe. The callback runs on the watcher's thread; SetCallback waits for a call in
// progress, so after SetCallback(nullptr) returns the old callback is never called again.
//
//   ExitWatcher exits;
//   exits.SetCallback([&sup] { sup.Wake(); });
//   exits.Watch(process).IgnoreError();  // best effort: polling stays the fallback
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <thread>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "executors/local/process.h"

namespace evald::executors {

class ExitWatcher {
 public:
  ExitWatcher();
  ~ExitWatcher();  // stops the thread and closes every pidfd
  ExitWatcher(const ExitWatcher&) = delete;
  ExitWatcher& operator=(const ExitWatcher&) = delete;

  // Called once per watched process that exits, from now on; empty: nobody is told.
  void SetCallback(std::function<void()> on_exit);

  // Watches `process` until it exits. OK when it already is watched. NotFound when it is gone or
  // its pid now belongs to another process (start time differs); Unavailable without pidfds.
  absl::Status Watch(const ProcessId& process);

  // Processes watched now (tests).
  size_t watched() const;

 private:
  void Loop();

  int epoll_fd_ = -1;
  int stop_fd_ = -1;  // eventfd: readable when the thread must end
  mutable absl::Mutex mu_;
  struct Watched {
    int pidfd = -1;
    uint64_t start_ticks = 0;
    uint64_t id = 0;  // the epoll key: a stale event for a dropped watch matches nothing
  };
  std::map<pid_t, Watched> watched_ ABSL_GUARDED_BY(mu_);
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;  // 0 is the stop eventfd
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
  absl::Mutex callback_mu_;  // held while the callback runs
  std::function<void()> on_exit_ ABSL_GUARDED_BY(callback_mu_);
};

}  // namespace evald::executors
