// Address resolution and the one status -> exit code mapping.
#include "cli/client.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <string>

#include "absl/strings/match.h"

namespace evald::cli {
namespace {

std::string MakeTempDir() {
  char tmpl[] = "/tmp/evalctl-test-XXXXXX";
  char* dir = mkdtemp(tmpl);
  REQUIRE(dir != nullptr);
  return dir;
}

TEST_CASE("address: --server wins over EVALD_ADDR, which wins over the default socket") {
  const std::string state = "/home/u/.local/state/evald";
  auto a = ResolveAddress(std::string("unix:///srv/evald.sock"), "localhost:7000", state);
  REQUIRE(a.ok());
  CHECK(a->target == "unix:///srv/evald.sock");
  CHECK(a->source == "--server");
  CHECK(a->unix_path == "/srv/evald.sock");

  a = ResolveAddress(std::nullopt, "localhost:7000", state);
  REQUIRE(a.ok());
  CHECK(a->target == "localhost:7000");
  CHECK(a->source == "EVALD_ADDR");
  CHECK(a->unix_path.empty());

  a = ResolveAddress(std::nullopt, nullptr, state);
  REQUIRE(a.ok());
  CHECK(a->target == "unix:///home/u/.local/state/evald/evald.sock");
  CHECK(a->source == "default");
  CHECK(a->unix_path == "/home/u/.local/state/evald/evald.sock");

  a = ResolveAddress(std::nullopt, "", state);  // empty EVALD_ADDR counts as unset
  REQUIRE(a.ok());
  CHECK(a->source == "default");
}

TEST_CASE("address forms: unix:///abs, unix:rel, /abs, host:port") {
  auto a = ResolveAddress(std::string("unix:run/evald.sock"), nullptr, "/s");
  REQUIRE(a.ok());
  CHECK(a->target == "unix:run/evald.sock");
  CHECK(a->unix_path == "run/evald.sock");
  a = ResolveAddress(std::string("/tmp/x/evald.sock"), nullptr, "/s");
  REQUIRE(a.ok());
  CHECK(a->target == "unix:///tmp/x/evald.sock");
  CHECK(a->unix_path == "/tmp/x/evald.sock");
  a = ResolveAddress(std::string("10.0.0.5:7443"), nullptr, "/s");
  REQUIRE(a.ok());
  CHECK(a->target == "10.0.0.5:7443");
  CHECK(ResolveAddress(std::string(""), nullptr, "/s").status().code() ==
        absl::StatusCode::kInvalidArgument);
}

TEST_CASE("status codes map to the documented exit codes") {
  using C = absl::StatusCode;
  auto code = [](C c, const char* msg = "x") { return ExitCodeFor(absl::Status(c, msg)); };
  CHECK(ExitCodeFor(absl::OkStatus()) == 0);
  CHECK(code(C::kInvalidArgument) == 2);
  CHECK(code(C::kOutOfRange) == 2);
  CHECK(code(C::kUnavailable) == 3);
  CHECK(code(C::kDeadlineExceeded) == 3);
  CHECK(code(C::kNotFound) == 4);
  CHECK(code(C::kFailedPrecondition) == 5);
  CHECK(code(C::kCancelled) == 130);
  for (C c : {C::kAborted, C::kAlreadyExists, C::kPermissionDenied, C::kUnauthenticated,
              C::kUnimplemented}) {
    CHECK(code(c) == 1);
  }
  // evald's own failures.
  for (C c : {C::kInternal, C::kUnknown, C::kDataLoss}) CHECK(code(c) == 6);
  // Too large a request is the user's input; a full disk on evald's side is not.
  CHECK(code(C::kResourceExhausted, "Received message larger than max (9000000 vs. 4194304)") == 2);
  CHECK(code(C::kResourceExhausted, "disk full while writing /s/evald.db") == 1);
  ServerAddress addr;
  CHECK(FailureMessage(absl::ResourceExhaustedError("disk full while writing x"), addr) ==
        "evald is out of resources: disk full while writing x");
  CHECK(FailureMessage(absl::ResourceExhaustedError("Received message larger than max (1 vs. 0)"),
                       addr) == "request too large: Received message larger than max (1 vs. 0)");
}

TEST_CASE("a stream evald cancelled went away, one cancelled by Ctrl-C was interrupted") {
  const absl::Status cancelled = absl::CancelledError("Cancelled");
  SetInterruptedForTest(false);
  CHECK(WentAway(cancelled, 3));
  CHECK(WentAway(cancelled, 0));
  SetInterruptedForTest(true);
  CHECK_FALSE(WentAway(cancelled, 3));
  SetInterruptedForTest(false);
  // The other codes as before: a broken connection went away, a refusal did not.
  CHECK(WentAway(absl::UnavailableError("Socket closed"), 1));
  CHECK_FALSE(WentAway(absl::PermissionDeniedError("no"), 1));
  CHECK_FALSE(WentAway(absl::InternalError("boom"), 1));
}

TEST_CASE("not found names the id the user gave") {
  ServerAddress addr;
  CHECK(FailureMessage(absl::NotFoundError("invocation abc not in db"), addr, "abc") ==
        "no invocation or job with id abc");
  CHECK(FailureMessage(absl::FailedPreconditionError("already finished"), addr, "abc") ==
        "already finished");
  CHECK(FailureMessage(absl::InternalError("boom\nsecond line"), addr) ==
        "evald failed: INTERNAL: boom second line");
}

TEST_CASE("unreachable: one line saying where evalctl looked and how to start evald") {
  std::string dir = MakeTempDir();
  ServerAddress addr;
  addr.target = "unix://" + dir + "/evald.sock";
  addr.unix_path = dir + "/evald.sock";
  std::string msg =
      FailureMessage(absl::UnavailableError("failed to connect to all addresses"), addr);
  CHECK(msg == "cannot reach evald at unix://" + dir + "/evald.sock (no such socket); " +
                   "start it with: evald --state-dir " + dir);
  CHECK(msg.find('\n') == std::string::npos);

  // A regular file where the socket should be.
  std::ofstream(dir + "/evald.sock") << "x";
  msg = FailureMessage(absl::UnavailableError("x"), addr);
  CHECK(absl::StrContains(msg, "(not a socket)"));
  unlink((dir + "/evald.sock").c_str());

  // A socket nobody listens on (a stale one left by a crashed daemon).
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::string path = dir + "/evald.sock";
  std::snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path.c_str());
  REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0);
  close(fd);
  msg = FailureMessage(absl::UnavailableError("Connection refused"), addr);
  CHECK(absl::StrContains(msg, "(connection refused: no evald is listening)"));
  unlink(path.c_str());
  rmdir(dir.c_str());

  ServerAddress tcp;
  tcp.target = "10.1.2.3:7443";
  msg = FailureMessage(absl::UnavailableError("failed to connect to all addresses"), tcp);
  CHECK(absl::StartsWith(msg, "cannot reach evald at 10.1.2.3:7443 ("));
  CHECK(absl::EndsWith(msg, "; start it with: evald --listen 10.1.2.3:7443 --insecure-tcp"));

  ServerAddress custom;
  custom.target = "unix:///run/eval/custom.sock";
  custom.unix_path = "/run/eval/custom.sock";
  CHECK(FailureMessage(absl::UnavailableError("x"), custom) ==
        "cannot reach evald at unix:///run/eval/custom.sock (no such socket); start it with: "
        "evald --listen unix:///run/eval/custom.sock");
}

TEST_CASE("a real gRPC call to a missing socket fails fast with Unavailable") {
  std::string dir = MakeTempDir();
  auto addr = ResolveAddress("unix://" + dir + "/evald.sock", nullptr, dir);
  REQUIRE(addr.ok());
  auto api = NewGrpcEvalApi(*addr);
  v1::Invocation inv;
  v1::GetInvocationRequest req;
  req.set_id("1a2b3c4d");
  absl::Status s = api->GetInvocation(req, &inv);
  CHECK(s.code() == absl::StatusCode::kUnavailable);
  v1::ServerInfo info;
  CHECK(api->GetServerInfo(true, &info).code() == absl::StatusCode::kUnavailable);
  int messages = 0;
  v1::WatchRequest wreq;
  wreq.set_id("1a2b3c4d");
  s = api->Watch(wreq, [&](const v1::WatchEvent&) { return ++messages > 0; });
  CHECK(s.code() == absl::StatusCode::kUnavailable);
  CHECK(messages == 0);
  rmdir(dir.c_str());
}

}  // namespace
}  // namespace evald::cli
