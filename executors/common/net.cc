#include "executors/common/net.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace evald::executors {
namespace {

// Closes the descriptor when it goes out of scope.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

sockaddr_in Address(in_addr_t host, int port) {
  sockaddr_in addr;
  std::memset(&addr, 0, sizeof(addr));
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(host);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  return addr;
}

absl::Status InUse(int port, const char* host) {
  return absl::FailedPreconditionError(
      absl::StrCat("port ", port, " is already in use on ", host,
                   " (another server?); set deployment.port to a free port or `auto`"));
}

// Binds (and drops) a TCP socket on host:port. SO_REUSEADDR, as servers set it, so a
// connection in TIME_WAIT does not count as "in use"; a listener always does on Linux.
absl::Status TryBind(in_addr_t host, const char* host_text, int port) {
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) {
    return absl::InternalError(absl::StrCat("socket(): ", std::strerror(errno)));
  }
  const int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr = Address(host, port);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    if (errno == EADDRINUSE) return InUse(port, host_text);
    return absl::FailedPreconditionError(
        absl::StrCat("cannot bind port ", port, " on ", host_text, ": ", std::strerror(errno),
                     "; set deployment.port to a free port or `auto`"));
  }
  return absl::OkStatus();
}

// True when something accepts connections on 127.0.0.1:port. Non-blocking with a 1 s cap: a
// listener whose backlog is full drops the SYN, and a blocking connect would then hang for
// minutes; no answer within the cap counts as "something is there".
bool SomethingListens(int port) {
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (fd.get() < 0) return false;
  sockaddr_in addr = Address(INADDR_LOOPBACK, port);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) return true;
  if (errno != EINPROGRESS && errno != EINTR) return false;  // ECONNREFUSED: nobody listens
  pollfd pfd{fd.get(), POLLOUT, 0};
  int rc;
  do {
    rc = ::poll(&pfd, 1, 1000);
  } while (rc < 0 && errno == EINTR);
  if (rc == 0) return true;
  if (rc < 0) return false;
  int error = 0;
  socklen_t len = sizeof(error);
  if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &error, &len) != 0) return false;
  return error == 0;
}

}  // namespace

absl::StatusOr<int> PickFreePort() {
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) {
    return absl::InternalError(absl::StrCat("socket(): ", std::strerror(errno)));
  }
  sockaddr_in addr = Address(INADDR_LOOPBACK, 0);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot bind a free port on 127.0.0.1: ", std::strerror(errno)));
  }
  socklen_t len = sizeof(addr);
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return absl::InternalError(absl::StrCat("getsockname(): ", std::strerror(errno)));
  }
  return static_cast<int>(ntohs(addr.sin_port));
}

absl::Status CheckPortFree(int port) {
  if (port < 1 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("port ", port, " is not in 1..65535"));
  }
  // A listener bound to another address (or with SO_REUSEPORT) may let bind() pass; a
  // connection attempt catches it.
  if (SomethingListens(port)) return InUse(port, "127.0.0.1");
  if (absl::Status s = TryBind(INADDR_LOOPBACK, "127.0.0.1", port); !s.ok()) return s;
  return TryBind(INADDR_ANY, "0.0.0.0", port);
}

}  // namespace evald::executors
