// File: process_lock.h
//
// The lock that keeps two evald processes off one state dir (and so off one database). main()
// takes it with flock() on the state directory itself before anything else is opened; the kernel
// drops it when the process dies, even by kill -9, so nothing stale ever blocks a restart. A
// directory cannot be deleted while it holds files, nor swapped for another without changing the
// inode at its path, which CheckHeld() notices; the Supervisor calls it before starting each job.
// evald.pid is still written, for people and systemd, but is not the lock: deleting it changes
// nothing.
//
//   EVALD_ASSIGN_OR_RETURN(ProcessLock lock, ProcessLock::Acquire(state_dir));
//   EVALD_RETURN_IF_ERROR(lock.Pin(state_dir + "/evald.db"));
//   ...
//   EVALD_RETURN_IF_ERROR(lock.CheckHeld());  // before each job start
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace evald::daemon {

class ProcessLock {
 public:
  // Locks `state_dir` (which must exist) and writes <state_dir>/evald.pid. FailedPrecondition
  // "another evald (pid 123) is already running with state dir X" when held.
  static absl::StatusOr<ProcessLock> Acquire(const std::string& state_dir);
  ProcessLock(ProcessLock&& other) noexcept;
  ProcessLock& operator=(ProcessLock&& other) = delete;
  ProcessLock(const ProcessLock&) = delete;
  ~ProcessLock();

  // Remembers which file is at `path` now (the database), so CheckHeld fails once it is removed
  // or replaced. Call before any thread calls CheckHeld.
  absl::Status Pin(const std::string& path);
  // OK while the locked directory is still the one at the state dir's path and every pinned file
  // is still the one at its path; FailedPrecondition saying what changed otherwise. A process
  // that fails this no longer excludes a second evald from what is now at those paths.
  absl::Status CheckHeld() const;

 private:
  struct Pinned {
    std::string path;
    dev_t dev = 0;
    ino_t ino = 0;
  };
  ProcessLock(int fd, std::string state_dir) : fd_(fd), state_dir_(std::move(state_dir)) {}
  int fd_ = -1;  // the state directory, flock()ed
  std::string state_dir_;
  std::vector<Pinned> pinned_;
};

}  // namespace evald::daemon
