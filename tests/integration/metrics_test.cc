// evald's HTTP endpoint: /metrics checked by promtool and scraped by a real Prometheus server
// (Debian's), /healthz. Real evald, evalctl, evalrun and reference model processes.
#include <signal.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <functional>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "executors/common/net.h"
#include "nlohmann/json.hpp"
#include "tests/integration/fixture.h"

namespace evald::testing {
namespace {

// GET http://127.0.0.1:<port><path> with curl; "" on failure. Sets `code` to the HTTP status.
std::string Get(int port, const std::string& path, int* code = nullptr) {
  TempDir scratch;
  std::string body = scratch.path() + "/body";
  CommandResult r = Run({"curl", "-s", "-o", body, "-w", "%{http_code}", "--max-time", "5",
                                absl::StrCat("http://127.0.0.1:", port, path)},
                               {}, 10);
  if (code != nullptr) *code = std::atoi(r.out.c_str());
  return Slurp(body);
}

// Polls `done` every 200 ms until it holds or `seconds` pass.
bool WaitFor(const std::function<bool()>& done, double seconds) {
  for (double waited = 0; waited < seconds; waited += 0.2) {
    if (done()) return true;
    usleep(200 * 1000);
  }
  return done();
}

bool HaveTool(const std::string& name) {
  return Run({"sh", "-c", "command -v " + name}, {}, 5).exit_code == 0;
}

TEST_CASE("metrics: families after a run pass promtool, healthz answers ok", "[metrics]") {
  if (!HaveTool("promtool") || !HaveTool("curl")) {
    WARN("promtool or curl missing (scripts/setup installs prometheus and curl)");
    REQUIRE(HaveTool("promtool"));
  }
  TempDir dir;
  RefEndpoint model(dir, ArithModelFlags());
  absl::StatusOr<int> port = executors::PickFreePort();
  REQUIRE(port.ok());
  Evald evald(dir, {"--metrics-listen", absl::StrCat("127.0.0.1:", *port)});
  std::string cfg = WriteConfig(dir, "run.yaml", ArithConfig(dir, model, {.tasks = 2}));
  CommandResult r = evald.Ctl({"submit", cfg, "--wait"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);

  int code = 0;
  CHECK(Get(*port, "/healthz", &code) == "ok\n");
  CHECK(code == 200);
  std::string text = Get(*port, "/metrics", &code);
  REQUIRE(code == 200);
  INFO(text);
  for (const char* line :
       {"evald_jobs{executor=\"local\",state=\"succeeded\"} 2",
        "evald_invocations{executor=\"local\",state=\"succeeded\"} 1",
        "evald_rpc_requests_total{code=\"OK\",method=\"Submit\"} 1",
        "evald_job_duration_seconds_count{executor=\"local\",state=\"succeeded\"} 2",
        "evald_executor_call_seconds_count{call=\"Start\",executor=\"local\"} 2"}) {
    CHECK(absl::StrContains(text, line));
  }
  CHECK(absl::StrContains(text, "# TYPE evald_reconcile_pass_seconds histogram"));
  CHECK(absl::StrContains(text, "evald_db_size_bytes "));
  // A refused call is counted under its code.
  CHECK(evald.Ctl({"status", "ffffffff"}).exit_code != 0);
  CHECK(absl::StrContains(Get(*port, "/metrics"),
                          "evald_rpc_requests_total{code=\"NOT_FOUND\",method=\"GetInvocation\"} 1"));

  std::string file = dir.path() + "/metrics.txt";
  std::ofstream(file) << Get(*port, "/metrics");
  CommandResult check = Run({"sh", "-c", "promtool check metrics < " + file}, {}, 30);
  INFO(check.out << check.err);
  CHECK(check.exit_code == 0);
}

TEST_CASE("metrics: a real Prometheus server scrapes evald", "[metrics]") {
  if (!HaveTool("prometheus")) {
    WARN("prometheus missing (scripts/setup installs it)");
    REQUIRE(HaveTool("prometheus"));
  }
  TempDir dir;
  absl::StatusOr<int> port = executors::PickFreePort();
  absl::StatusOr<int> prom_port = executors::PickFreePort();
  REQUIRE(port.ok());
  REQUIRE(prom_port.ok());
  Evald evald(dir, {"--metrics-listen", absl::StrCat("127.0.0.1:", *port)});
  std::string config = dir.path() + "/prometheus.yml";
  std::ofstream(config) << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                        << "scrape_configs:\n  - job_name: evald\n    static_configs:\n"
                        << "      - targets: ['127.0.0.1:" << *port << "']\n";
  Process prometheus({"prometheus", "--config.file=" + config,
                      "--storage.tsdb.path=" + dir.path() + "/tsdb",
                      absl::StrCat("--web.listen-address=127.0.0.1:", *prom_port)},
                     {}, dir.path() + "/prometheus");
  // Up, and evald's own series queryable, within a few scrapes.
  bool scraped = WaitFor(
      [&] {
        std::string answer = Get(*prom_port, "/api/v1/query?query=evald_up_since_timestamp_seconds");
        nlohmann::json j = nlohmann::json::parse(answer, nullptr, false);
        return !j.is_discarded() && j.value("status", "") == "success" &&
               j["data"]["result"].size() == 1;
      },
      60);
  INFO(prometheus.Stderr());
  REQUIRE(scraped);
  std::string up = Get(*prom_port, "/api/v1/query?query=up%7Bjob%3D%22evald%22%7D");
  nlohmann::json j = nlohmann::json::parse(up, nullptr, false);
  REQUIRE_FALSE(j.is_discarded());
  REQUIRE(j["data"]["result"].size() == 1);
  CHECK(j["data"]["result"][0]["value"][1] == "1");
  prometheus.Stop(SIGTERM, 20);
}

}  // namespace
}  // namespace evald::testing
