#include "executors/common/net.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

namespace evald::executors {
namespace {

// A TCP socket bound to host:0 (the kernel picks the port), listening unless told otherwise.
class TestSocket {
 public:
  explicit TestSocket(in_addr_t host, bool listen = true) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in addr;
    std::memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(host);
    addr.sin_port = 0;
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    if (listen) REQUIRE(::listen(fd_, 8) == 0);
    socklen_t len = sizeof(addr);
    REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port_ = ntohs(addr.sin_port);
  }
  ~TestSocket() { Close(); }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

std::string InUseMessage(int port) {
  return absl::StrCat("port ", port,
                      " is already in use on 127.0.0.1 (another server?); set deployment.port to "
                      "a free port or `auto`");
}

TEST_CASE("PickFreePort returns a port that is free", "[net]") {
  auto port = PickFreePort();
  REQUIRE(port.ok());
  CHECK(*port >= 1);
  CHECK(*port <= 65535);
  CHECK(CheckPortFree(*port).ok());
}

TEST_CASE("a listener on 127.0.0.1 makes the port busy", "[net]") {
  TestSocket listener(INADDR_LOOPBACK);
  absl::Status status = CheckPortFree(listener.port());
  CHECK(status.code() == absl::StatusCode::kFailedPrecondition);
  CHECK(status.message() == InUseMessage(listener.port()));
}

TEST_CASE("a listener on 0.0.0.0 makes the port busy", "[net]") {
  TestSocket listener(INADDR_ANY);
  absl::Status status = CheckPortFree(listener.port());
  CHECK(status.code() == absl::StatusCode::kFailedPrecondition);
  CHECK(status.message() == InUseMessage(listener.port()));
}

TEST_CASE("a bound socket that does not listen yet also counts", "[net]") {
  // A server between bind() and listen() must not look free.
  TestSocket bound(INADDR_ANY, /*listen=*/false);
  absl::Status status = CheckPortFree(bound.port());
  CHECK(status.code() == absl::StatusCode::kFailedPrecondition);
  CHECK(status.message() ==
        absl::StrCat("port ", bound.port(),
                     " is already in use on 127.0.0.1 (another server?); set deployment.port to "
                     "a free port or `auto`"));
}

TEST_CASE("the port is free again once the listener closes", "[net]") {
  TestSocket listener(INADDR_LOOPBACK);
  const int port = listener.port();
  REQUIRE_FALSE(CheckPortFree(port).ok());  // this check connects once; TIME_WAIT must not count
  listener.Close();
  CHECK(CheckPortFree(port).ok());
}

TEST_CASE("a listener whose backlog is full is reported busy, without hanging", "[net]") {
  TestSocket listener(INADDR_LOOPBACK);  // listen(fd, 8) and never accept()
  std::vector<int> clients;
  for (int i = 0; i < 32; ++i) {  // more than the backlog holds: later SYNs are dropped
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    REQUIRE(fd >= 0);
    sockaddr_in addr;
    std::memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(listener.port()));
    ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    clients.push_back(fd);
  }
  absl::Status status = CheckPortFree(listener.port());
  for (int fd : clients) ::close(fd);
  CHECK(status.code() == absl::StatusCode::kFailedPrecondition);
  CHECK(status.message() == InUseMessage(listener.port()));
}

TEST_CASE("ports outside 1..65535 are rejected", "[net]") {
  for (int port : {0, -1, 65536}) {
    absl::Status status = CheckPortFree(port);
    CHECK(status.code() == absl::StatusCode::kInvalidArgument);
    CHECK(status.message() == absl::StrCat("port ", port, " is not in 1..65535"));
  }
}

}  // namespace
}  // namespace evald::executors
