#include "executors/local/exit_watcher.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace evald::executors {
namespace {

int PidfdOpen(pid_t pid) {
#ifdef SYS_pidfd_open
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));  // close-on-exec by definition
#else
  (void)pid;
  errno = ENOSYS;
  return -1;
#endif
}

}  // namespace

ExitWatcher::ExitWatcher() {
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (epoll_fd_ >= 0 && stop_fd_ >= 0) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = 0;
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, stop_fd_, &ev) != 0) {
      ::close(epoll_fd_);
      epoll_fd_ = -1;
    }
  }
}

ExitWatcher::~ExitWatcher() {
  if (thread_.joinable()) {
    uint64_t one = 1;
    (void)!::write(stop_fd_, &one, sizeof(one));
    thread_.join();
  }
  absl::MutexLock lock(&mu_);
  for (const auto& [pid, w] : watched_) ::close(w.pidfd);
  watched_.clear();
  if (epoll_fd_ >= 0) ::close(epoll_fd_);
  if (stop_fd_ >= 0) ::close(stop_fd_);
}

void ExitWatcher::SetCallback(std::function<void()> on_exit) {
  absl::MutexLock lock(&callback_mu_);
  on_exit_ = std::move(on_exit);
}

absl::Status ExitWatcher::Watch(const ProcessId& process) {
  if (process.pid <= 1) return absl::NotFoundError("no process");
  if (epoll_fd_ < 0 || stop_fd_ < 0) return absl::UnavailableError("no epoll or eventfd");
  absl::MutexLock lock(&mu_);
  auto it = watched_.find(process.pid);
  if (it != watched_.end()) {
    if (it->second.start_ticks == process.start_ticks) return absl::OkStatus();
    // The pid was recycled before the thread dropped the old watch: replace it.
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, it->second.pidfd, nullptr);
    ::close(it->second.pidfd);
    watched_.erase(it);
  }
  int pidfd = PidfdOpen(process.pid);
  if (pidfd < 0) {
    if (errno == ESRCH) return absl::NotFoundError(absl::StrCat("process ", process.pid, " gone"));
    return absl::UnavailableError(absl::StrCat("pidfd_open: ", std::strerror(errno)));
  }
  // Checked after opening: from here on the pidfd pins this very process, so the pid cannot be
  // recycled between the check and the watch.
  absl::StatusOr<uint64_t> ticks = StartTicks(process.pid);
  if (!ticks.ok() || *ticks != process.start_ticks) {
    ::close(pidfd);
    return absl::NotFoundError(absl::StrCat("process ", process.pid, " is not the one started"));
  }
  const uint64_t id = next_id_++;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = id;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, pidfd, &ev) != 0) {
    int err = errno;
    ::close(pidfd);
    return absl::UnavailableError(absl::StrCat("epoll_ctl: ", std::strerror(err)));
  }
  watched_[process.pid] = {pidfd, process.start_ticks, id};
  if (!started_) {
    started_ = true;
    thread_ = std::thread([this] { Loop(); });
  }
  return absl::OkStatus();
}

size_t ExitWatcher::watched() const {
  absl::MutexLock lock(&mu_);
  return watched_.size();
}

void ExitWatcher::Loop() {
  std::vector<epoll_event> events(16);
  while (true) {
    int n = ::epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    int exited = 0;
    for (int i = 0; i < n; ++i) {
      const uint64_t id = events[i].data.u64;
      if (id == 0) return;
      absl::MutexLock lock(&mu_);
      for (auto it = watched_.begin(); it != watched_.end(); ++it) {
        if (it->second.id != id) continue;
        ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, it->second.pidfd, nullptr);
        ::close(it->second.pidfd);
        watched_.erase(it);
        ++exited;
        break;
      }
    }
    if (exited > 0) {
      absl::MutexLock lock(&callback_mu_);
      if (on_exit_) on_exit_();
    }
  }
}

}  // namespace evald::executors
