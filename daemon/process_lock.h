// File: process_lock.h
//
// The pidfile lock that keeps two evald processes off one state dir (and so off one database).
// Taken with flock() on <state dir>/evald.pid before anything else is opened; the kernel drops it
// when the process dies, even by kill -9, so a stale file never blocks a restart.
//
//   EVALD_ASSIGN_OR_RETURN(ProcessLock lock, ProcessLock::Acquire(state_dir + "/evald.pid"));
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace evald::daemon {

class ProcessLock {
 public:
  // FailedPrecondition "another evald (pid 123) is running with state dir X" when held.
  static absl::StatusOr<ProcessLock> Acquire(const std::string& path);
  ProcessLock(ProcessLock&& other) noexcept;
  ProcessLock& operator=(ProcessLock&& other) = delete;
  ProcessLock(const ProcessLock&) = delete;
  ~ProcessLock();

 private:
  ProcessLock(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  int fd_ = -1;
  std::string path_;
};

}  // namespace evald::daemon
