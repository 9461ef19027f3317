// Model deployments on the local executor, with the reference endpoint as a `command` deployment:
// the healthy path, start-up failures, port collisions, kills, and an evald crash while serving.
// Every case checks the process table afterwards: no server may outlive its deployment.
#include <signal.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "nlohmann/json.hpp"
#include "tests/integration/fixture.h"

namespace evald::testing {
namespace {

struct DeployOptions {
  std::string port = "auto";
  std::string server_flags;        // extra ref_endpoint flags
  std::string readiness_timeout = "20";
  bool shared = true;
  int tasks = 2;
  int limit_samples = 6;
  int parallelism = 2;
  std::string server_latency_ms = "0";
};

std::string DeployConfig(const TempDir& dir, const DeployOptions& o) {
  std::string yaml = absl::StrCat(
      "defaults:\n  - execution: local\n  - deployment: command\n  - _self_\n",
      "execution:\n  output_dir: ", dir.path(), "/out\n",
      "deployment:\n  command: ", BinDir(), "/ref_endpoint --host 127.0.0.1 --port ${deployment.port}",
      " --port-file ", dir.path(), "/server-port",
      " --keys ", DataDir(), "/arith_keys.jsonl --model-id ref-model --latency-ms ",
      o.server_latency_ms, " ", o.server_flags, "\n",
      "  served_model_name: ref-model\n  port: ", o.port, "\n",
      "  shared: ", o.shared ? "true" : "false", "\n",
      "  endpoint_readiness_timeout: ", o.readiness_timeout, "\n",
      "  endpoint_readiness_interval: 0.1\n  stop_grace_period: 2\n",
      "target:\n  api_endpoint:\n    api_key_name: null\n",
      "evaluation:\n  overrides:\n    config.params.limit_samples: ", o.limit_samples, "\n",
      "    config.params.parallelism: ", o.parallelism, "\n  tasks:\n");
  for (int i = 0; i < o.tasks; ++i) {
    absl::StrAppend(&yaml, "    - name: arith\n      task_file: ", DataDir(), "/arith_task.yaml\n");
  }
  return yaml;
}

std::string Submit(const Evald& evald, const std::string& cfg) {
  CommandResult r = evald.Ctl({"submit", cfg, "--json"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  std::string inv = InvocationIdFromJson(r.out);
  REQUIRE(inv.size() == 8);
  return inv;
}

int ServerPid(const v1::Deployment& d) {
  int pid = 0;
  absl::SimpleAtoi(absl::StripPrefix(d.backend_id(), "pid "), &pid);
  return pid;
}

// True once no process of this test's deployments is left (their command lines carry the
// test's own --port-file path) and no job process either.
bool NoServerLeft(const TempDir& dir) {
  return Run({"pgrep", "-f", "port-file " + dir.path() + "/server-port"}).exit_code == 1 &&
         Run({"pgrep", "-f", dir.path() + "/out/"}).exit_code == 1;
}

TEST_CASE("a command deployment serves every task and is gone afterwards") {
  TempDir dir;
  Evald evald(dir);
  std::string inv = Submit(evald, WriteConfig(dir, "d.yaml", DeployConfig(dir, {})));
  v1::Invocation serving;
  REQUIRE(WaitFor(
      [&] {
        serving = evald.Get(inv);
        return serving.deployments_size() == 1 &&
               serving.deployments(0).state() == v1::DEPLOYMENT_STATE_HEALTHY;
      },
      30));
  const v1::Deployment& d = serving.deployments(0);
  CHECK(d.port() > 0);
  CHECK(d.url() == absl::StrCat("http://127.0.0.1:", d.port()));
  CHECK(d.health_url() == d.url() + "/health");
  CHECK(d.time_to_healthy_ms() >= 0);
  int pid = ServerPid(d);
  REQUIRE(PidAlive(pid));

  v1::Invocation done = evald.WaitTerminal(inv, 60);
  REQUIRE(done.state() == v1::JOB_STATE_SUCCEEDED);
  CHECK(WaitFor([&] {
    return evald.Get(inv).deployments(0).state() == v1::DEPLOYMENT_STATE_STOPPED;
  }, 20));
  CHECK(WaitFor([&] { return !PidAlive(pid); }, 10));
  // The jobs talked to the deployment: its log shows the server, evalctl logs shows it too.
  CommandResult logs = evald.Ctl({"logs", inv + ".0", "--source", "server"});
  INFO(logs.err);
  CHECK(logs.exit_code == 0);
  CHECK(absl::StrContains(logs.out, "starting deployment"));
  CommandResult status = evald.Ctl({"status", inv});
  CHECK(status.exit_code == 0);
}

TEST_CASE("one deployment per task when not shared") {
  TempDir dir;
  Evald evald(dir);
  std::string inv =
      Submit(evald, WriteConfig(dir, "d.yaml", DeployConfig(dir, {.shared = false})));
  v1::Invocation done = evald.WaitTerminal(inv, 60);
  REQUIRE(done.state() == v1::JOB_STATE_SUCCEEDED);
  REQUIRE(done.deployments_size() == 2);
  CHECK(done.deployments(0).job_id() == inv + ".0");
  CHECK(done.deployments(1).job_id() == inv + ".1");
  CHECK(done.deployments(0).port() != done.deployments(1).port());
  CHECK(WaitFor([&] { return NoServerLeft(dir); }, 20));
}

TEST_CASE("a server that exits during start-up fails the deployment and its tasks") {
  TempDir dir;
  Evald evald(dir);
  std::string inv = Submit(
      evald, WriteConfig(dir, "d.yaml",
                         DeployConfig(dir, {.server_flags = "--startup-delay-ms 10000 "
                                                            "--exit-after-ms 300"})));
  v1::Invocation done = evald.WaitTerminal(inv, 30);
  CHECK(done.state() == v1::JOB_STATE_FAILED);
  REQUIRE(done.deployments_size() == 1);
  CHECK(done.deployments(0).state() == v1::DEPLOYMENT_STATE_FAILED);
  CHECK(absl::StrContains(done.deployments(0).message(), "exited with code 1"));
  for (const v1::Job& job : done.jobs()) {
    CHECK(job.exit_reason() == v1::EXIT_REASON_ENDPOINT_UNHEALTHY);
    CHECK(absl::StrContains(job.message(), "deployment"));
  }
  CHECK(WaitFor([&] { return NoServerLeft(dir); }, 10));
}

TEST_CASE("a server that never becomes healthy times out and is removed") {
  TempDir dir;
  Evald evald(dir);
  std::string inv = Submit(
      evald, WriteConfig(dir, "d.yaml",
                         DeployConfig(dir, {.server_flags = "--never-healthy",
                                            .readiness_timeout = "2"})));
  v1::Invocation done = evald.WaitTerminal(inv, 30);
  CHECK(done.state() == v1::JOB_STATE_FAILED);
  CHECK(done.deployments(0).state() == v1::DEPLOYMENT_STATE_FAILED);
  CHECK(absl::StrContains(done.deployments(0).message(), "not healthy after 2 s"));
  CHECK(absl::StrContains(done.deployments(0).message(), "503"));
  CHECK(WaitFor([&] { return NoServerLeft(dir); }, 10));
}

TEST_CASE("a fixed port that is taken is reported and the other server is left alone") {
  TempDir dir;
  RefEndpoint squatter(dir, {"--model-id", "someone-else"});
  Evald evald(dir);
  std::string inv = Submit(
      evald, WriteConfig(dir, "d.yaml",
                         DeployConfig(dir, {.port = std::to_string(squatter.port())})));
  v1::Invocation done = evald.WaitTerminal(inv, 30);
  CHECK(done.state() == v1::JOB_STATE_FAILED);
  CHECK(done.deployments(0).state() == v1::DEPLOYMENT_STATE_FAILED);
  CHECK(absl::StrContains(done.deployments(0).message(), std::to_string(squatter.port())));
  CHECK(absl::StrContains(done.deployments(0).message(), "in use"));
  // The squatter still answers.
  CHECK(absl::StrContains(squatter.Stats(), "total"));
}

TEST_CASE("kill during start-up stops the server") {
  TempDir dir;
  Evald evald(dir);
  std::string inv = Submit(
      evald, WriteConfig(dir, "d.yaml",
                         DeployConfig(dir, {.server_flags = "--startup-delay-ms 30000"})));
  v1::Invocation starting;
  REQUIRE(WaitFor(
      [&] {
        starting = evald.Get(inv);
        return starting.deployments_size() == 1 &&
               starting.deployments(0).state() == v1::DEPLOYMENT_STATE_STARTING;
      },
      20));
  int pid = ServerPid(starting.deployments(0));
  REQUIRE(PidAlive(pid));
  REQUIRE(evald.Ctl({"kill", inv}).exit_code == 0);
  v1::Invocation done = evald.WaitTerminal(inv, 30);
  CHECK(done.state() == v1::JOB_STATE_KILLED);
  CHECK(WaitFor([&] {
    return evald.Get(inv).deployments(0).state() == v1::DEPLOYMENT_STATE_STOPPED;
  }, 20));
  CHECK(WaitFor([&] { return !PidAlive(pid); }, 10));
  CHECK(NoServerLeft(dir));
}

TEST_CASE("kill during evaluation stops jobs and server with no orphan") {
  TempDir dir;
  Evald evald(dir);
  std::string inv = Submit(
      evald, WriteConfig(dir, "d.yaml",
                         DeployConfig(dir, {.limit_samples = 30, .parallelism = 1,
                                            .server_latency_ms = "200"})));
  std::optional<v1::Invocation> working = evald.WaitWorking(inv);
  REQUIRE(working.has_value());
  const v1::Invocation& running = *working;
  int server = ServerPid(running.deployments(0));
  REQUIRE(evald.Ctl({"kill", inv}).exit_code == 0);
  v1::Invocation done = evald.WaitTerminal(inv, 30);
  CHECK(done.state() == v1::JOB_STATE_KILLED);
  CHECK(WaitFor([&] { return !PidAlive(server); }, 15));
  CHECK(WaitFor([&] { return NoServerLeft(dir); }, 15));
}

TEST_CASE("after kill -9 of evald a serving deployment is re-attached, not started twice") {
  TempDir dir;
  auto evald = std::make_unique<Evald>(dir);
  std::string inv = Submit(
      *evald, WriteConfig(dir, "d.yaml",
                          DeployConfig(dir, {.limit_samples = 20, .parallelism = 1,
                                             .server_latency_ms = "100"})));
  v1::Invocation serving;
  REQUIRE(WaitFor(
      [&] {
        serving = evald->Get(inv);
        return serving.jobs(0).state() == v1::JOB_STATE_RUNNING;
      },
      30));
  int server = ServerPid(serving.deployments(0));
  int port = serving.deployments(0).port();
  evald->Kill9();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  REQUIRE(PidAlive(server));  // evald's death does not take the server down
  evald->Start();
  v1::Invocation after = evald->Get(inv);
  CHECK(ServerPid(after.deployments(0)) == server);
  CHECK(after.deployments(0).port() == port);
  v1::Invocation done = evald->WaitTerminal(inv, 90);
  CHECK(done.state() == v1::JOB_STATE_SUCCEEDED);
  CHECK(WaitFor([&] {
    return evald->Get(inv).deployments(0).state() == v1::DEPLOYMENT_STATE_STOPPED;
  }, 20));
  CHECK(WaitFor([&] { return !PidAlive(server); }, 10));
  // Exactly one server was ever started for it.
  std::string log = Slurp(done.run_dir() + "/deployment/server.log");
  size_t starts = 0;
  for (size_t at = log.find("starting deployment"); at != std::string::npos;
       at = log.find("starting deployment", at + 1)) {
    ++starts;
  }
  CHECK(starts == 1);
}

TEST_CASE("a deployment config's dry run shows the server command") {
  TempDir dir;
  Evald evald(dir);
  CommandResult r = evald.Ctl(
      {"submit", WriteConfig(dir, "d.yaml", DeployConfig(dir, {})), "--dry-run", "--json"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  nlohmann::json j = nlohmann::json::parse(r.out);
  // The jobs' endpoint waits for the port evald picks at start.
  CHECK(absl::StrContains(j["jobs"][0]["script"].get<std::string>(), "evalrun"));
  CHECK(absl::StrContains(j.dump(), "${EVALD_PORT}"));
}

}  // namespace
}  // namespace evald::testing
