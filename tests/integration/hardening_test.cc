// End to end, the issue-8 hardening items that need every process: a job's exit wakes the
// supervisor (no waiting for its tick), secret values interpolated into a config are masked
// wherever evald returns the config, and the scores of a job that stopped early are partial.
#include <catch2/catch.hpp>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "nlohmann/json.hpp"
#include "tests/integration/fixture.h"

namespace evald::testing {
namespace {

using Json = nlohmann::json;

TEST_CASE("a job's exit wakes the supervisor: sequential jobs run back to back with a 60 s tick") {
  TempDir dir;
  RefEndpoint model(dir, ArithModelFlags());
  std::string server_cfg = WriteConfig(dir, "evald.yaml", "max_running_jobs: 1\n");
  // Only a submit and the jobs' own exits can start a pass: the tick never comes in this test.
  Evald evald(dir, {"--config", server_cfg, "--tick-ms", "60000"});
  std::string cfg =
      WriteConfig(dir, "run.yaml", ArithConfig(dir, model, {.tasks = 5, .limit_samples = 1}));
  CommandResult r = evald.Ctl({"submit", cfg, "--json"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  std::string inv = InvocationIdFromJson(r.out);
  v1::Invocation done = evald.WaitTerminal(inv, 45);
  REQUIRE(done.jobs_size() == 5);
  for (const v1::Job& job : done.jobs()) {
    INFO(job.job_id());
    CHECK(job.state() == v1::JOB_STATE_SUCCEEDED);
  }
}

TEST_CASE("a secret interpolated with oc.env is masked in info, status and the stored config") {
  TempDir dir;
  const std::string secret = "sk-CANARY-oc-env-91c3";
  RefEndpoint model(dir, ArithModelFlags({"--require-api-key", secret}));
  Evald evald(dir);
  // MY_KEY is a secret (api_key_name); the config also copies it into a task parameter.
  std::string yaml = absl::StrCat(
      "defaults:\n  - execution: local\n  - deployment: none\n  - _self_\n"
      "execution:\n  output_dir: ",
      dir.path(), "/out\n", "target:\n  api_endpoint:\n    url: ", model.chat_url(),
      "\n    model_id: ref-model\n", "    api_key_name: MY_KEY\n",
      "evaluation:\n  overrides:\n    config.params.limit_samples: 2\n",
      "    config.params.extra.key_copy: ${oc.env:MY_KEY}\n  tasks:\n",
      "    - name: arith\n      task_file: ", DataDir(), "/arith_task.yaml\n");
  std::string cfg = WriteConfig(dir, "run.yaml", yaml);
  std::map<std::string, std::string> env = {{"MY_KEY", secret}};

  CommandResult dry = evald.Ctl({"submit", cfg, "--dry-run", "--json"}, env);
  INFO(dry.out << dry.err);
  REQUIRE(dry.exit_code == 0);
  CHECK_FALSE(absl::StrContains(dry.out, secret));

  CommandResult r = evald.Ctl({"submit", cfg, "--json"}, env);
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  std::string inv = InvocationIdFromJson(r.out);
  v1::Invocation done = evald.WaitTerminal(inv, 60);
  REQUIRE(done.jobs_size() == 1);
  CHECK(done.jobs(0).state() == v1::JOB_STATE_SUCCEEDED);

  // The RPC that returns the stored config, and every command that prints it.
  auto stub = evald.Stub();
  grpc::ClientContext ctx;
  v1::GetInvocationRequest req;
  req.set_id(inv);
  req.set_include_config(true);
  v1::Invocation got;
  REQUIRE(stub->GetInvocation(&ctx, req, &got).ok());
  CHECK_FALSE(absl::StrContains(got.config_yaml(), secret));
  CHECK(absl::StrContains(got.config_yaml(), "key_copy: <secret:MY_KEY>"));
  for (const std::vector<std::string>& args : {std::vector<std::string>{"info", inv},
                                               {"info", inv, "--json"},
                                               {"info", inv + ".0"},
                                               {"status", inv, "--json"}}) {
    CommandResult shown = evald.Ctl(args);
    INFO(absl::StrJoin(args, " ") << "\n" << shown.out << shown.err);
    CHECK(shown.exit_code == 0);
    CHECK_FALSE(absl::StrContains(shown.out + shown.err, secret));
  }
  CHECK(absl::StrContains(evald.Ctl({"info", inv}).out, "<secret:MY_KEY>"));
  // Nor is it in the database in clear.
  for (const char* name : {"/evald.db", "/evald.db-wal"}) {
    std::string path = evald.state_dir() + name;
    if (std::filesystem::exists(path)) CHECK_FALSE(absl::StrContains(Slurp(path), secret));
  }
  // The job itself ran with the real value (the planner put it back).
  std::string plan = Slurp(done.jobs(0).output_dir() + "/plan.yaml");
  CHECK(absl::StrContains(plan, secret));
}

TEST_CASE("the scores of a job the endpoint failed part-way are shown as partial") {
  TempDir dir;
  // Every attempt of some bodies fails with 500 and none may fail: the job stops with exit 3
  // after scoring the samples before the first such body (parallelism 1 keeps the order).
  RefEndpoint model(
      dir, ArithModelFlags({"--fault-500-rate", "0.3", "--fault-attempts", "0", "--seed", "3"}));
  Evald evald(dir);
  ArithOptions o{.limit_samples = 10, .parallelism = 1};
  std::string yaml = ArithConfig(dir, model, o);
  // max_retries 0: the first 500 loses the sample.
  yaml = absl::StrReplaceAll(
      yaml, {{"    config.params.parallelism: 1\n",
              "    config.params.parallelism: 1\n    config.params.max_retries: 0\n"}});
  std::string cfg = WriteConfig(dir, "run.yaml", yaml);
  CommandResult r = evald.Ctl({"submit", cfg, "--json"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  std::string inv = InvocationIdFromJson(r.out);
  v1::Invocation done = evald.WaitTerminal(inv, 60);
  REQUIRE(done.jobs_size() == 1);
  REQUIRE(done.jobs(0).state() == v1::JOB_STATE_FAILED);
  std::string results_yml = Slurp(done.jobs(0).output_dir() + "/artifacts/results.yml");
  INFO(results_yml);
  REQUIRE(absl::StrContains(results_yml, "partial: true"));

  CommandResult table = evald.Ctl({"results", inv});
  INFO(table.out << table.err);
  REQUIRE(table.exit_code == 0);
  CHECK(absl::StrContains(table.out, "exact_match"));          // the scores are shown ...
  CHECK(absl::StrContains(table.out, inv + ".0: partial ("));  // ... as partial
  CHECK(absl::StrContains(table.out, " of 10 samples), job failed"));
  CommandResult json = evald.Ctl({"results", inv, "--json"});
  REQUIRE(json.exit_code == 0);
  Json rows = Json::parse(json.out);
  REQUIRE(!rows.empty());
  CHECK(rows[0]["partial"] == true);
  CHECK(rows[0]["samples_total"] == 10);
  CHECK(rows[0]["samples_scored"].get<int64_t>() < 10);
}

}  // namespace
}  // namespace evald::testing
