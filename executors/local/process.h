// File: process.h
//
// POSIX process control for the local executor: spawn a command detached in its own session
// (process group id == pid, so a whole job tree can be signalled at once), find it again by pid
// plus kernel start time (a recycled pid never passes for our job), reap our own children, and
// signal a group. Used by LocalExecutor only; safe to call from a multi-threaded daemon (the child
// runs only async-signal-safe calls between clone and exec, and shares the daemon's memory until
// exec instead of copying it, so a busy daemon's other threads do not slow down).
//
//   EVALD_ASSIGN_OR_RETURN(ProcessId p, SpawnDetached({.argv = {"bash", "run.sh"}, ...}));
//   if (Inspect(p).status == ProcessStatus::kAlive) SignalGroup(p.pid, SIGTERM);
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace evald::executors {

struct ProcessId {
  pid_t pid = 0;
  uint64_t start_ticks = 0;  // field 22 of /proc/<pid>/stat
};

struct SpawnOptions {
  std::vector<std::string> argv;
  // Set (or replace) these in the child's copy of the parent's environment.
  std::map<std::string, std::string> env;
  std::string cwd;
  std::string stdout_path;  // opened for append; empty = /dev/null
  std::string stderr_path;  // opened for append; empty = /dev/null
  // Written by the child itself ("<pid>\n") before exec, so the file exists before anything the
  // command does, even if the spawning process dies right after fork.
  std::string pid_file;
  // Added to the child's nice value before exec (0 = evald's own priority); a positive value is
  // also the nice value of the child's new session's autogroup (see sched(7)).
  int nice = 0;
};

// Starts argv[0] (searched on PATH) in a new session. Errors (bad cwd, missing binary, unwritable
// log file) come back as Status from the child through a close-on-exec pipe.
absl::StatusOr<ProcessId> SpawnDetached(const SpawnOptions& options);

enum class ProcessStatus {
  kAlive,   // running, same start time
  kExited,  // was our child and has exited (reaped now); exit_code is set
  kGone,    // no such process, or the pid now belongs to another process
};

struct ProcessState {
  ProcessStatus status = ProcessStatus::kGone;
  std::optional<int> exit_code;  // 128+signal when killed by a signal
};

// Looks at a process; reaps it when it is our exited child.
ProcessState Inspect(const ProcessId& process);

// Start time of a live process (NotFound when there is none).
absl::StatusOr<uint64_t> StartTicks(pid_t pid);

// Sends `signal` to every process of group `pgid`. A group that no longer exists is OK.
absl::Status SignalGroup(pid_t pgid, int signal);

// True while any process of the group exists.
bool GroupAlive(pid_t pgid);

// The command line of a live process with NULs turned into spaces ("" when gone).
std::string CommandLine(pid_t pid);

}  // namespace evald::executors
