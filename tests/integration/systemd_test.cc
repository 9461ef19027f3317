// evald under systemd's notify protocol (issue 12, systemd): the test plays systemd's part with a
// unix datagram NOTIFY_SOCKET of its own and starts the real evald binary with NOTIFY_SOCKET and
// WATCHDOG_USEC, as a Type=notify unit with WatchdogSec would. Also checks deploy/'s unit, sysusers
// and tmpfiles files with systemd's own tools.
#include <grpcpp/grpcpp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "tests/integration/harness.h"

namespace evald::testing {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct Notification {
  Clock::time_point at;
  std::string text;
};

// The socket systemd creates for a Type=notify service.
class NotifySocket {
 public:
  explicit NotifySocket(std::string path) : path_(std::move(path)) {
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    REQUIRE(path_.size() < sizeof(addr.sun_path));
    std::strncpy(addr.sun_path, path_.c_str(), sizeof(addr.sun_path) - 1);
    REQUIRE(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  }
  ~NotifySocket() { close(fd_); }
  const std::string& path() const { return path_; }

  std::optional<Notification> Receive(double timeout_s) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(timeout_s * 1000)) <= 0) return std::nullopt;
    char buf[4096];
    ssize_t n = recv(fd_, buf, sizeof(buf), 0);
    if (n < 0) return std::nullopt;
    return Notification{Clock::now(), std::string(buf, static_cast<size_t>(n))};
  }

  // Everything that arrives within `seconds`.
  std::vector<Notification> CollectFor(double seconds) {
    std::vector<Notification> out;
    Clock::time_point end = Clock::now() + std::chrono::milliseconds(int(seconds * 1000));
    while (Clock::now() < end) {
      double left = std::chrono::duration<double>(end - Clock::now()).count();
      if (std::optional<Notification> n = Receive(std::max(left, 0.001))) out.push_back(*n);
    }
    return out;
  }

 private:
  std::string path_;
  int fd_ = -1;
};

bool CanConnect(const std::string& socket_path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, socket_path.c_str(), sizeof(addr.sun_path) - 1);
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

bool Has(const Notification& n, const std::string& line) {
  for (absl::string_view l : absl::StrSplit(n.text, '\n')) {
    if (l == line) return true;
  }
  return false;
}

std::vector<Clock::time_point> Watchdogs(const std::vector<Notification>& all) {
  std::vector<Clock::time_point> out;
  for (const Notification& n : all) {
    if (Has(n, "WATCHDOG=1")) out.push_back(n.at);
  }
  return out;
}

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// Starts evald on `dir` with `env` and waits for READY=1 on `notify`; at that moment its API
// socket must already accept connections.
Notification WaitReady(NotifySocket& notify, Process& evald, const std::string& api_socket) {
  Clock::time_point give_up = Clock::now() + std::chrono::seconds(30);
  while (Clock::now() < give_up) {
    std::optional<Notification> n = notify.Receive(0.5);
    if (!n) {
      INFO("evald stderr:\n" << evald.Stderr());
      REQUIRE(evald.Alive());
      continue;
    }
    if (Has(*n, "READY=1")) {
      CHECK(CanConnect(api_socket));
      return *n;
    }
  }
  INFO("evald stderr:\n" << evald.Stderr());
  FAIL("no READY=1 within 30 s");
  return {};
}

TEST_CASE("evald tells systemd READY after it listens, STATUS, WATCHDOG from the loop, STOPPING") {
  TempDir dir;
  NotifySocket notify(dir.path() + "/notify.sock");
  const std::string state = dir.path() + "/state";
  Process evald({BinDir() + "/evald", "--state-dir", state, "--tick-ms", "100"},
                {{"NOTIFY_SOCKET", notify.path()}, {"WATCHDOG_USEC", "1000000"}},
                dir.path() + "/evald");
  Notification ready = WaitReady(notify, evald, state + "/evald.sock");
  INFO("READY message: " << ready.text);
  CHECK(absl::StrContains(ready.text, "STATUS=listening on unix://" + state + "/evald.sock"));
  {
    // READY means the API answers.
    auto channel =
        grpc::CreateChannel("unix://" + state + "/evald.sock", grpc::InsecureChannelCredentials());
    auto stub = v1::EvalService::NewStub(channel);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::ServerInfo info;
    CHECK(stub->GetServerInfo(&ctx, v1::GetServerInfoRequest(), &info).ok());
  }

  // WATCHDOG=1 every half interval (0.5 s), and STATUS= every 5 s.
  std::vector<Notification> running = notify.CollectFor(6.5);
  std::vector<Clock::time_point> pings = Watchdogs(running);
  INFO("WATCHDOG=1 count in 6.5 s: " << pings.size());
  CHECK(pings.size() >= 8);
  double max_gap = pings.empty() ? 0 : Seconds(pings.front() - ready.at);
  for (size_t i = 1; i < pings.size(); ++i)
    max_gap = std::max(max_gap, Seconds(pings[i] - pings[i - 1]));
  INFO("longest gap between keep-alives: " << max_gap << " s (WatchdogSec 1 s)");
  CHECK(max_gap < 1.0);
  bool status = false;
  for (const Notification& n : running) {
    status |= absl::StrContains(n.text, "STATUS=0 jobs running, 0 pending; last reconcile ");
  }
  CHECK(status);

  CHECK(evald.Stop(SIGTERM, 15) == 0);
  bool stopping = false;
  for (const Notification& n : notify.CollectFor(0.3)) stopping |= Has(n, "STOPPING=1");
  CHECK(stopping);
}

TEST_CASE("with the reconcile loop wedged, WATCHDOG=1 stops while the API still answers") {
  TempDir dir;
  NotifySocket notify(dir.path() + "/notify.sock");
  const std::string state = dir.path() + "/state";
  // Test-only switch: the loop hangs for good 3 s after start.
  Process evald({BinDir() + "/evald", "--state-dir", state, "--tick-ms", "100"},
                {{"NOTIFY_SOCKET", notify.path()},
                 {"WATCHDOG_USEC", "600000"},
                 {"EVALD_TEST_WEDGE_RECONCILE", "3"}},
                dir.path() + "/evald");
  Notification ready = WaitReady(notify, evald, state + "/evald.sock");
  std::vector<Notification> all = notify.CollectFor(6);
  Clock::time_point end = Clock::now();
  std::vector<Clock::time_point> pings = Watchdogs(all);
  INFO("evald stderr:\n" << evald.Stderr());
  REQUIRE(!pings.empty());  // fed while the loop ran
  double silent = Seconds(end - pings.back());
  INFO("keep-alives: " << pings.size() << ", silent for the last " << silent << " s");
  // More than 4 intervals of 0.6 s without one: systemd would have killed evald and restarted it.
  CHECK(silent > 2.4);
  CHECK(absl::StrContains(evald.Stderr(), "wedged on purpose"));
  // Only the loop hangs: the process lives and serves reads, so only the watchdog can tell.
  CHECK(evald.Alive());
  CHECK(CanConnect(state + "/evald.sock"));
  // Shutdown releases the test wedge, so a SIGTERM still ends evald cleanly.
  CHECK(evald.Stop(SIGTERM, 15) == 0);
  bool stopping = false;
  for (const Notification& n : notify.CollectFor(0.3)) stopping |= Has(n, "STOPPING=1");
  CHECK(stopping);
  (void)ready;
}

TEST_CASE("deploy: systemd-analyze verify accepts the unit, sysusers and tmpfiles apply") {
  if (Run({"sh", "-c", "command -v systemd-analyze"}).exit_code != 0) {
    WARN("skipped: systemd-analyze is missing (Debian package systemd; scripts/setup installs it)");
    return;
  }
  TempDir dir;
  // verify checks that ExecStart's binary exists: point it at this build's evald.
  std::string unit = Slurp(SourceDir() + "/deploy/systemd/evald.service");
  REQUIRE(absl::StrContains(unit, "ExecStart=/usr/local/bin/evald "));
  absl::StrReplaceAll({{"/usr/local/bin/evald", BinDir() + "/evald"}}, &unit);
  const std::string unit_path = dir.path() + "/evald.service";
  Spit(unit_path, unit);
  CommandResult verify = Run({"systemd-analyze", "verify", unit_path}, {}, 60);
  INFO("systemd-analyze verify: exit " << verify.exit_code << "\n" << verify.out << verify.err);
  CHECK(verify.exit_code == 0);
  // verify exits 0 on unknown keys and bad values too, and only warns: any output is a finding.
  CHECK(verify.err.empty());
  CHECK(absl::StrContains(unit, "Type=notify\n"));
  CHECK(absl::StrContains(unit, "WatchdogSec="));
  CHECK(absl::StrContains(unit, "NotifyAccess=main\n"));
  // A watchdog timeout is a failure (SIGABRT): this is what restarts a wedged evald.
  CHECK(absl::StrContains(unit, "Restart=on-failure\n"));
  CHECK(absl::StrContains(unit, "ExecReload=/bin/kill -HUP $MAINPID\n"));

  // sysusers and tmpfiles into a scratch root, with systemd's own tools.
  const std::string root = dir.path() + "/root";
  fs::create_directories(root + "/etc");
  CommandResult users =
      Run({"systemd-sysusers", "--root=" + root, SourceDir() + "/deploy/evald.sysusers"});
  INFO("systemd-sysusers: " << users.out << users.err);
  REQUIRE(users.exit_code == 0);
  CHECK(absl::StrContains(Slurp(root + "/etc/passwd"),
                          ":evald evaluation daemon:/var/lib/evald:/usr/sbin/nologin"));
  if (geteuid() != 0) {
    WARN("tmpfiles part skipped: creating evald-owned directories needs root");
    return;
  }
  CommandResult tmpfiles = Run(
      {"systemd-tmpfiles", "--root=" + root, "--create", SourceDir() + "/deploy/evald.tmpfiles"});
  INFO("systemd-tmpfiles: " << tmpfiles.out << tmpfiles.err);
  CHECK(tmpfiles.exit_code == 0);
  CHECK(tmpfiles.err.empty());
  CHECK((fs::status(root + "/var/lib/evald").permissions() & fs::perms::all) ==
        fs::perms::owner_all);
  CHECK(fs::is_directory(root + "/var/lib/evald/runs"));
  CHECK(fs::is_directory(root + "/etc/evald"));
}

}  // namespace
}  // namespace evald::testing
