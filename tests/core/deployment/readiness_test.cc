#include "core/deployment/readiness.h"

#include <catch2/catch.hpp>
#include <string>

namespace evald::deployment {
namespace {

constexpr double kStart = 1000;  // any clock; only differences matter

ReadinessOptions Options(double timeout_s = 600, double interval_s = 5) {
  ReadinessOptions options;
  options.timeout_s = timeout_s;
  options.interval_s = interval_s;
  return options;
}

ProbeResult Http(int status) {
  ProbeResult r;
  r.http_status = status;
  return r;
}

ProbeResult Error(const std::string& error) {
  ProbeResult r;
  r.error = error;
  return r;
}

ProcessState Alive() { return ProcessState{}; }

ProcessState Exited(int code) {
  ProcessState p;
  p.alive = false;
  p.exit_code = code;
  return p;
}

TEST_CASE("healthy on the first 200, with the time it took", "[readiness]") {
  HealthWaiter waiter(Options(), kStart);
  CHECK(waiter.ProbeDue(kStart));
  const ProbeResult refused = Error("connection refused");
  CHECK(waiter.Observe(kStart, Alive(), &refused) == Readiness::kWaiting);
  CHECK(waiter.last_answer() == "connection refused");
  const ProbeResult busy = Http(503);
  CHECK(waiter.Observe(kStart + 5, Alive(), &busy) == Readiness::kWaiting);
  CHECK(waiter.last_answer() == "HTTP 503");
  const ProbeResult ok = Http(200);
  CHECK(waiter.Observe(kStart + 12.5, Alive(), &ok) == Readiness::kHealthy);
  CHECK(waiter.state() == Readiness::kHealthy);
  CHECK(waiter.healthy_after_s() == Approx(12.5));
  CHECK(waiter.reason().empty());
}

TEST_CASE("only 200 counts, as in the reference's wait loop", "[readiness]") {
  HealthWaiter waiter(Options(), kStart);
  for (int status : {204, 301, 404, 500, 503}) {
    const ProbeResult r = Http(status);
    CHECK(waiter.Observe(kStart + 1, Alive(), &r) == Readiness::kWaiting);
  }
}

TEST_CASE("a server that exits during start-up fails the wait", "[readiness]") {
  SECTION("exit code") {
    HealthWaiter waiter(Options(), kStart);
    CHECK(waiter.Observe(kStart + 3, Exited(3), nullptr) == Readiness::kFailed);
    CHECK(waiter.reason() == "server process exited with code 3 during start-up");
  }
  SECTION("exit code 0 is still a failure") {
    HealthWaiter waiter(Options(), kStart);
    CHECK(waiter.Observe(kStart + 3, Exited(0), nullptr) == Readiness::kFailed);
    CHECK(waiter.reason() == "server process exited with code 0 during start-up");
  }
  SECTION("signal") {
    HealthWaiter waiter(Options(), kStart);
    ProcessState killed;
    killed.alive = false;
    killed.signal = 9;
    CHECK(waiter.Observe(kStart + 3, killed, nullptr) == Readiness::kFailed);
    CHECK(waiter.reason() == "server process was killed by signal 9 during start-up");
  }
  SECTION("unknown exit code (not our child)") {
    HealthWaiter waiter(Options(), kStart);
    CHECK(waiter.Observe(kStart + 3, Exited(-1), nullptr) == Readiness::kFailed);
    CHECK(waiter.reason() == "server process exited during start-up");
  }
}

TEST_CASE("a 200 while our process is dead came from someone else's server", "[readiness]") {
  HealthWaiter waiter(Options(), kStart);
  const ProbeResult ok = Http(200);
  CHECK(waiter.Observe(kStart + 1, Exited(1), &ok) == Readiness::kFailed);
  CHECK(waiter.reason() == "server process exited with code 1 during start-up");
}

TEST_CASE("timeout reports the last answer", "[readiness]") {
  SECTION("last answer HTTP") {
    HealthWaiter waiter(Options(600), kStart);
    const ProbeResult busy = Http(503);
    CHECK(waiter.Observe(kStart + 595, Alive(), &busy) == Readiness::kWaiting);
    CHECK(waiter.Observe(kStart + 600, Alive(), nullptr) == Readiness::kFailed);
    CHECK(waiter.reason() == "not healthy after 600 s: last answer HTTP 503");
  }
  SECTION("transport error") {
    HealthWaiter waiter(Options(600), kStart);
    const ProbeResult refused = Error("connection refused");
    CHECK(waiter.Observe(kStart + 601, Alive(), &refused) == Readiness::kFailed);
    CHECK(waiter.reason() == "not healthy after 600 s: connection refused");
  }
  SECTION("never probed") {
    HealthWaiter waiter(Options(0.5, 0.1), kStart);
    CHECK(waiter.Observe(kStart + 0.25, Alive(), nullptr) == Readiness::kWaiting);
    CHECK(waiter.Observe(kStart + 0.5, Alive(), nullptr) == Readiness::kFailed);
    CHECK(waiter.reason() == "not healthy after 0.5 s: no answer yet");
  }
  SECTION("a 200 at the deadline still counts") {
    HealthWaiter waiter(Options(10), kStart);
    const ProbeResult ok = Http(200);
    CHECK(waiter.Observe(kStart + 10, Alive(), &ok) == Readiness::kHealthy);
  }
}

TEST_CASE("probes are due at once, then every interval", "[readiness]") {
  HealthWaiter waiter(Options(600, 5), kStart);
  CHECK(waiter.ProbeDue(kStart));
  const ProbeResult busy = Http(503);
  waiter.Observe(kStart + 1, Alive(), &busy);
  CHECK_FALSE(waiter.ProbeDue(kStart + 3));
  CHECK(waiter.ProbeDue(kStart + 6));
  waiter.Observe(kStart + 6, Alive(), nullptr);  // a tick without a probe changes nothing
  CHECK(waiter.ProbeDue(kStart + 6));
}

TEST_CASE("probe timeout is the interval clamped to 1..10 s", "[readiness]") {
  CHECK(HealthWaiter(Options(600, 0.1), 0).ProbeTimeout() == 1);
  CHECK(HealthWaiter(Options(600, 5), 0).ProbeTimeout() == 5);
  CHECK(HealthWaiter(Options(600, 30), 0).ProbeTimeout() == 10);
}

TEST_CASE("the result is final once reached", "[readiness]") {
  HealthWaiter waiter(Options(), kStart);
  const ProbeResult ok = Http(200);
  REQUIRE(waiter.Observe(kStart + 1, Alive(), &ok) == Readiness::kHealthy);
  CHECK(waiter.Observe(kStart + 2, Exited(1), nullptr) == Readiness::kHealthy);
  CHECK_FALSE(waiter.ProbeDue(kStart + 100));

  HealthWaiter failed(Options(), kStart);
  REQUIRE(failed.Observe(kStart + 1, Exited(2), nullptr) == Readiness::kFailed);
  CHECK(failed.Observe(kStart + 2, Alive(), &ok) == Readiness::kFailed);
  CHECK(failed.reason() == "server process exited with code 2 during start-up");
}

TEST_CASE("without a health path the server is ready after server_timeout alive", "[readiness]") {
  ReadinessOptions options = Options();
  options.health_check = false;
  options.no_health_wait_s = 60;
  HealthWaiter waiter(options, kStart);
  CHECK_FALSE(waiter.ProbeDue(kStart));
  CHECK(waiter.Observe(kStart + 59, Alive(), nullptr) == Readiness::kWaiting);
  CHECK(waiter.Observe(kStart + 60, Alive(), nullptr) == Readiness::kHealthy);
  CHECK(waiter.healthy_after_s() == 60);

  HealthWaiter dies(options, kStart);
  CHECK(dies.Observe(kStart + 30, Exited(1), nullptr) == Readiness::kFailed);
}

TEST_CASE("options come from the spec", "[readiness]") {
  DeploymentSpec spec;
  spec.readiness_timeout_s = 30;
  spec.readiness_interval_s = 0.2;
  spec.no_health_wait_s = 7;
  spec.endpoints = {{"chat", "/c"}, {"health", "/h"}};
  ReadinessOptions options = ReadinessOptionsOf(spec);
  CHECK(options.timeout_s == 30);
  CHECK(options.interval_s == Approx(0.2));
  CHECK(options.health_check);
  CHECK(options.no_health_wait_s == 7);
  spec.endpoints.erase("health");
  CHECK_FALSE(ReadinessOptionsOf(spec).health_check);
}

TEST_CASE("FormatSeconds", "[readiness]") {
  CHECK(FormatSeconds(600) == "600");
  CHECK(FormatSeconds(0.5) == "0.5");
  CHECK(FormatSeconds(1.25) == "1.25");
}

}  // namespace
}  // namespace evald::deployment
