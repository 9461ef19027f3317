#include "daemon/unix_listener.h"

#include <grp.h>
#include <grpcpp/server.h>
#include <grpcpp/server_posix.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace evald::daemon {

void UnixPeers::Set(int fd, PeerCred cred) {
  absl::MutexLock lock(&mu_);
  by_fd_[fd] = cred;
}

std::optional<PeerCred> UnixPeers::Lookup(const std::string& peer) const {
  int fd = -1;
  if (!absl::StartsWith(peer, "fd:") || !absl::SimpleAtoi(peer.substr(3), &fd)) return std::nullopt;
  absl::MutexLock lock(&mu_);
  auto it = by_fd_.find(fd);
  if (it == by_fd_.end()) return std::nullopt;
  return it->second;
}

absl::StatusOr<std::unique_ptr<UnixListener>> UnixListener::Bind(const std::string& path, int mode,
                                                                 const std::string& group) {
  auto fail = [&](const std::string& what) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot listen on unix socket ", path, ": ", what, ": ", strerror(errno)));
  };
  sockaddr_un addr{};
  if (path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("socket path ", path, " is too long"));
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return fail("socket");
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size());
  unlink(path.c_str());  // a stale file; main() already checked that nobody listens on it
  // Created private; opened to the configured mode and group only once both are set.
  mode_t old_umask = umask(0077);
  int rc = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  umask(old_umask);
  if (rc != 0 || listen(fd, 128) != 0) {
    absl::Status s = fail(rc != 0 ? "bind" : "listen");
    close(fd);
    return s;
  }
  if (!group.empty()) {
    struct group* g = getgrnam(group.c_str());
    if (g == nullptr || chown(path.c_str(), static_cast<uid_t>(-1), g->gr_gid) != 0) {
      absl::Status s = fail(absl::StrCat("set group '", group, "'"));
      close(fd);
      return s;
    }
  }
  if (chmod(path.c_str(), static_cast<mode_t>(mode)) != 0) {
    char octal[8];
    std::snprintf(octal, sizeof(octal), "%04o", mode);
    absl::Status s = fail(absl::StrCat("chmod ", octal));
    close(fd);
    return s;
  }
  return std::unique_ptr<UnixListener>(new UnixListener(fd, path));
}

UnixListener::~UnixListener() {
  Stop();
  close(fd_);
}

void UnixListener::Start(grpc::Server* server, UnixPeers* peers) {
  thread_ = std::thread([this, server, peers] { AcceptLoop(server, peers); });
}

void UnixListener::Stop() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
}

void UnixListener::AcceptLoop(grpc::Server* server, UnixPeers* peers) {
  while (!stopping_) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, 200) <= 0) continue;
    // Non-blocking: gRPC's poller reads the fd and must never block on it.
    int conn = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (conn < 0) {
      if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
        spdlog::warn("accept on {}: {}", path_, strerror(errno));
      }
      continue;
    }
    ucred cred{};
    socklen_t len = sizeof(cred);
    if (getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
      spdlog::warn("SO_PEERCRED on {}: {}; connection refused", path_, strerror(errno));
      close(conn);
      continue;
    }
    peers->Set(conn, {cred.pid, cred.uid, cred.gid});
    grpc::AddInsecureChannelFromFd(server, conn);  // gRPC owns (and closes) the fd from here
  }
}

}  // namespace evald::daemon
