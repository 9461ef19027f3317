// Metrics (daemon/metrics.h): the families issue 12 asks for that the integration test
// (tests/integration/metrics_test.cc) cannot produce with one local run: RPC latency histograms by
// method and code, executor call errors, and deployment states read from the store at each scrape.
#include "daemon/metrics.h"

#include <catch2/catch.hpp>
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/time/time.h"
#include "core/ids.h"
#include "storage/store.h"
#include "tests/executors/local/test_util.h"

namespace evald::daemon {
namespace {

using evald::testing::TempDir;

std::unique_ptr<storage::Store> OpenStore(const TempDir& dir) {
  storage::StoreOptions options;
  options.db_path = dir.path() + "/evald.db";
  options.key_path = dir.path() + "/secrets.key";
  absl::StatusOr<std::unique_ptr<storage::Store>> store = storage::Store::Open(options);
  INFO(store.status().ToString());
  REQUIRE(store.ok());
  return *std::move(store);
}

// One local invocation with one job and the model server it waits for.
void CreateInvocationWithServer(storage::Store& store, const std::string& id) {
  InvocationRecord inv;
  inv.id = id;
  inv.executor = "local";
  inv.config_yaml = "execution:\n  type: local\n";
  inv.run_dir = "/runs/" + id;
  inv.mode = "parallel";
  inv.tasks = {"arith"};
  inv.created_ms = 1000;
  JobRecord job;
  job.index = 0;
  job.id = JobId(id, 0);
  job.invocation_id = id;
  job.task = "arith";
  job.harness = "native";
  job.endpoint_type = "chat";
  job.spec_yaml = "task: arith\n";
  DeploymentRecord server;
  server.id = DeploymentId(id, 0);
  server.invocation_id = id;
  server.type = "vllm";
  server.spec_yaml = "type: vllm\nport: auto\n";
  server.command = "vllm serve m --port {port}";
  server.log_path = "/runs/" + id + "/server.log";
  absl::Status s = store.CreateInvocation(inv, {job}, {server}, {}, 1000, nullptr);
  INFO(s.ToString());
  REQUIRE(s.ok());
}

TEST_CASE("metrics: RPC latency by method and code, executor errors, deployment states") {
  TempDir dir;
  std::unique_ptr<storage::Store> store = OpenStore(dir);
  CreateInvocationWithServer(*store, "0000aaaa");
  Metrics metrics(store.get(), dir.path() + "/evald.db");
  metrics.ObserveRpc("Submit", "OK", absl::Milliseconds(3));
  metrics.ObserveRpc("Kill", "PERMISSION_DENIED", absl::Microseconds(300));
  metrics.ObserveExecutorCall("slurm", "Poll", absl::Seconds(2));
  metrics.CountExecutorError("slurm", "Poll");

  const std::string text = metrics.Render();
  INFO(text);
  CHECK(absl::StrContains(text, "# TYPE evald_rpc_duration_seconds histogram"));
  // 3 ms: above the 2 ms bucket, inside the 5 ms one.
  CHECK(absl::StrContains(
      text, "evald_rpc_duration_seconds_bucket{code=\"OK\",method=\"Submit\",le=\"0.002\"} 0"));
  CHECK(absl::StrContains(
      text, "evald_rpc_duration_seconds_bucket{code=\"OK\",method=\"Submit\",le=\"0.005\"} 1"));
  CHECK(absl::StrContains(
      text, "evald_rpc_duration_seconds_count{code=\"PERMISSION_DENIED\",method=\"Kill\"} 1"));
  CHECK(absl::StrContains(
      text, "evald_rpc_requests_total{code=\"PERMISSION_DENIED\",method=\"Kill\"} 1"));
  CHECK(absl::StrContains(text,
                          "evald_executor_call_errors_total{call=\"Poll\",executor=\"slurm\"} 1"));
  CHECK(absl::StrContains(text,
                          "evald_executor_call_seconds_count{call=\"Poll\",executor=\"slurm\"} 1"));
  CHECK(absl::StrContains(text, "# TYPE evald_deployments gauge"));
  CHECK(absl::StrContains(text, "evald_deployments{executor=\"local\",state=\"pending\"} 1"));
  CHECK(absl::StrContains(text, "evald_jobs{executor=\"local\",state=\"pending\"} 1"));
  CHECK(absl::StrContains(text, "evald_invocations{executor=\"local\",state=\"pending\"} 1"));
  CHECK_FALSE(absl::StrContains(text, "evald_db_size_bytes 0\n"));
}

}  // namespace
}  // namespace evald::daemon
