#include "daemon/process_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace evald::daemon {

absl::StatusOr<ProcessLock> ProcessLock::Acquire(const std::string& path) {
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot open pidfile ", path, ": ", std::strerror(errno)));
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    char buf[32] = {};
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    close(fd);
    std::string holder = n > 0 ? std::string(absl::StripAsciiWhitespace(std::string(buf, n))) : "?";
    return absl::FailedPreconditionError(absl::StrCat(
        "another evald (pid ", holder, ") is already running with state dir ",
        std::filesystem::path(path).parent_path().string(),
        "; stop it first or use another --state-dir"));
  }
  std::string pid = absl::StrCat(getpid(), "\n");
  if (ftruncate(fd, 0) != 0 || pwrite(fd, pid.data(), pid.size(), 0) < 0) {
    close(fd);
    return absl::FailedPreconditionError(
        absl::StrCat("cannot write pidfile ", path, ": ", std::strerror(errno)));
  }
  return ProcessLock(fd, path);
}

ProcessLock::ProcessLock(ProcessLock&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), path_(std::move(other.path_)) {}

ProcessLock::~ProcessLock() {
  if (fd_ >= 0) {
    // Truncate rather than unlink: unlinking would let a third process lock a new inode while a
    // second one still waits on the old file.
    [[maybe_unused]] int ignored = ftruncate(fd_, 0);
    close(fd_);
  }
}

}  // namespace evald::daemon
