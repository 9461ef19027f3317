#include "executors/common/http_probe.h"

#include <httplib.h>
#include <stdlib.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/deployment/readiness.h"
#include "executors/common/net.h"

namespace evald::executors {
namespace {

// A real HTTP server on 127.0.0.1 with a kernel-picked port.
class TestServer {
 public:
  TestServer() {
    server_.Get("/health", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("ok", "text/plain");
    });
    server_.Get("/busy", [](const httplib::Request&, httplib::Response& res) {
      res.status = 503;
      res.set_content("loading", "text/plain");
    });
    server_.Get("/redirect", [](const httplib::Request&, httplib::Response& res) {
      res.set_redirect("http://example.invalid/health");
    });
    server_.Get("/slow", [this](const httplib::Request&, httplib::Response& res) {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, std::chrono::seconds(30), [this] { return released_; });
      res.set_content("late", "text/plain");
    });
    server_.Get("/flaky", [this](const httplib::Request&, httplib::Response& res) {
      if (flaky_calls_++ < 2) res.status = 503;
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    REQUIRE(port_ > 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // stop() is a no-op until the accept loop runs; without this wait a test that never reaches
    // the server could stop it too early and join forever.
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }

  ~TestServer() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      released_ = true;
    }
    cv_.notify_all();
    server_.stop();
    thread_.join();
  }

  std::string Url(const std::string& path) const {
    return absl::StrCat("http://127.0.0.1:", port_, path);
  }

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  bool released_ = false;
  std::atomic<int> flaky_calls_{0};
};

TEST_CASE("200 from a healthy server", "[http_probe]") {
  TestServer server;
  ProbeResult r = HttpGet(server.Url("/health"), 5);
  CHECK(r.http_status == 200);
  CHECK(r.error.empty());
  CHECK(r.seconds >= 0);
}

TEST_CASE("503 is an answer, not an error", "[http_probe]") {
  TestServer server;
  ProbeResult r = HttpGet(server.Url("/busy"), 5);
  CHECK(r.http_status == 503);
  CHECK(r.error.empty());
}

TEST_CASE("nothing listening: connection refused", "[http_probe]") {
  auto port = PickFreePort();
  REQUIRE(port.ok());
  ProbeResult r = HttpGet(absl::StrCat("http://127.0.0.1:", *port, "/health"), 5);
  CHECK(r.http_status == 0);
  CHECK(r.error == "connection refused");
}

TEST_CASE("a server that does not answer in time: timed out", "[http_probe]") {
  TestServer server;
  ProbeResult r = HttpGet(server.Url("/slow"), 0.3);
  CHECK(r.http_status == 0);
  CHECK(r.error == "timed out after 0.3 s");
}

TEST_CASE("redirects are not followed", "[http_probe]") {
  TestServer server;
  ProbeResult r = HttpGet(server.Url("/redirect"), 5);
  CHECK(r.http_status == 302);
  CHECK(r.error.empty());
}

TEST_CASE("proxy settings of the environment are ignored", "[http_probe]") {
  TestServer server;
  // A proxy that does not exist: going through it would fail.
  auto dead = PickFreePort();
  REQUIRE(dead.ok());
  const std::string proxy = absl::StrCat("http://127.0.0.1:", *dead);
  ::setenv("http_proxy", proxy.c_str(), 1);
  ::setenv("all_proxy", proxy.c_str(), 1);
  ProbeResult r = HttpGet(server.Url("/health"), 5);
  ::unsetenv("http_proxy");
  ::unsetenv("all_proxy");
  CHECK(r.http_status == 200);
  CHECK(r.error.empty());
}

TEST_CASE("only http and https URLs are fetched", "[http_probe]") {
  ProbeResult r = HttpGet("file:///etc/hostname", 5);
  CHECK(r.http_status == 0);
  CHECK_FALSE(r.error.empty());
}

// The readiness policy fed with real probes (made-up clock): 503, 503, then 200.
TEST_CASE("HealthWaiter with real probes becomes healthy", "[http_probe]") {
  TestServer server;
  deployment::ReadinessOptions options;
  options.timeout_s = 60;
  options.interval_s = 1;
  deployment::HealthWaiter waiter(options, 0);
  deployment::ProcessState alive;
  int probes = 0;
  for (double now = 0; now < 10 && waiter.state() == deployment::Readiness::kWaiting; now += 0.5) {
    if (!waiter.ProbeDue(now)) {
      waiter.Observe(now, alive, nullptr);
      continue;
    }
    ++probes;
    ProbeResult r = HttpGet(server.Url("/flaky"), waiter.ProbeTimeout());
    waiter.Observe(now, alive, &r);
  }
  CHECK(waiter.state() == deployment::Readiness::kHealthy);
  CHECK(probes == 3);
  CHECK(waiter.healthy_after_s() == 2);
}

TEST_CASE("HealthWaiter with real probes times out on connection refused", "[http_probe]") {
  auto port = PickFreePort();
  REQUIRE(port.ok());
  const std::string url = absl::StrCat("http://127.0.0.1:", *port, "/health");
  deployment::ReadinessOptions options;
  options.timeout_s = 3;
  options.interval_s = 1;
  deployment::HealthWaiter waiter(options, 0);
  for (double now = 0; waiter.state() == deployment::Readiness::kWaiting; now += 1) {
    ProbeResult r = HttpGet(url, waiter.ProbeTimeout());
    waiter.Observe(now, deployment::ProcessState{}, &r);
  }
  CHECK(waiter.state() == deployment::Readiness::kFailed);
  CHECK(waiter.reason() == "not healthy after 3 s: connection refused");
}

}  // namespace
}  // namespace evald::executors
