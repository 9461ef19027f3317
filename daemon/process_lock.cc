#include "daemon/process_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace evald::daemon {
namespace {

std::string PidfilePath(const std::string& state_dir) { return state_dir + "/evald.pid"; }

// The pid in evald.pid, or a note on why it is not known.
std::string PidfileHolder(const std::string& state_dir) {
  int fd = open(PidfilePath(state_dir).c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return "pid unknown: no evald.pid";
  char buf[32] = {};
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  int pid = 0;
  if (n <= 0 || !absl::SimpleAtoi(absl::StripAsciiWhitespace(absl::string_view(buf, n)), &pid)) {
    return "pid unknown: evald.pid is empty";
  }
  return absl::StrCat("pid ", pid);
}

}  // namespace

absl::StatusOr<ProcessLock> ProcessLock::Acquire(const std::string& state_dir) {
  // O_CLOEXEC matters: a job that inherited the descriptor would keep the lock after evald died.
  int fd = open(state_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot open state dir ", state_dir, ": ", std::strerror(errno)));
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    close(fd);
    if (err != EWOULDBLOCK) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot lock state dir ", state_dir, ": ", std::strerror(err)));
    }
    return absl::FailedPreconditionError(absl::StrCat(
        "another evald (", PidfileHolder(state_dir), ") is already running with state dir ",
        state_dir, "; stop it first or use another --state-dir"));
  }
  ProcessLock lock(fd, state_dir);
  std::string pid = absl::StrCat(getpid(), "\n");
  int pid_fd = open(PidfilePath(state_dir).c_str(),
                    O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (pid_fd < 0 || write(pid_fd, pid.data(), pid.size()) != static_cast<ssize_t>(pid.size())) {
    std::string why = std::strerror(errno);
    if (pid_fd >= 0) close(pid_fd);
    return absl::FailedPreconditionError(
        absl::StrCat("cannot write pidfile ", PidfilePath(state_dir), ": ", why));
  }
  close(pid_fd);
  return absl::StatusOr<ProcessLock>(std::move(lock));
}

ProcessLock::ProcessLock(ProcessLock&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      state_dir_(std::move(other.state_dir_)),
      pinned_(std::move(other.pinned_)) {}

ProcessLock::~ProcessLock() {
  if (fd_ < 0) return;
  // Empty the pidfile while still holding the lock, so it never names a stopped evald; a file
  // that no longer names us belongs to someone else and is left alone.
  if (PidfileHolder(state_dir_) == absl::StrCat("pid ", getpid())) {
    [[maybe_unused]] int ignored = truncate(PidfilePath(state_dir_).c_str(), 0);
  }
  close(fd_);
}

absl::Status ProcessLock::Pin(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot stat ", path, ": ", std::strerror(errno)));
  }
  pinned_.push_back({.path = path, .dev = st.st_dev, .ino = st.st_ino});
  return absl::OkStatus();
}

absl::Status ProcessLock::CheckHeld() const {
  struct stat locked {};
  struct stat now {};
  if (fstat(fd_, &locked) != 0 || stat(state_dir_.c_str(), &now) != 0 ||
      now.st_dev != locked.st_dev || now.st_ino != locked.st_ino) {
    return absl::FailedPreconditionError(absl::StrCat(
        "state dir ", state_dir_,
        " is no longer the directory this evald locked at start (moved, removed or replaced), so "
        "another evald may be using that path"));
  }
  for (const Pinned& p : pinned_) {
    if (stat(p.path.c_str(), &now) != 0) {
      return absl::FailedPreconditionError(
          absl::StrCat(p.path, " was removed while evald ran (", std::strerror(errno),
                       "); this evald's records no longer reach that path"));
    }
    if (now.st_dev != p.dev || now.st_ino != p.ino) {
      return absl::FailedPreconditionError(
          absl::StrCat(p.path,
                       " was replaced by another file while evald ran; this evald's records no "
                       "longer reach that path"));
    }
  }
  return absl::OkStatus();
}

}  // namespace evald::daemon
