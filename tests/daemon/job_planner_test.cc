#include "daemon/job_planner.h"

#include <catch2/catch.hpp>
#include <map>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace evald::daemon {
namespace {

executors::JobSpec ContainerSpec(const std::string& secret) {
  executors::JobSpec spec;
  spec.job_id = "0badf00d.0";
  spec.invocation_id = "0badf00d";
  spec.task = "ifeval";
  spec.task_dir = "/runs/x/ifeval";
  spec.native = false;
  spec.image = "nvcr.io/harness:1";
  std::string config = absl::StrCat("config:\n  params:\n    extra:\n      token: ", secret, "\n");
  spec.container_command =
      absl::StrCat("echo \"", absl::Base64Escape(config),
                   "\" | base64 -d > config_ef.yaml && nv_eval run_eval --model_url "
                   "'http://127.0.0.1:${EVALD_PORT}/v1' --output_dir /results");
  spec.env_vars = {{"API_KEY", "MY_KEY"}, {"HF_TOKEN", "HF_SRC"}};
  spec.execution_yaml = "type: local\n";
  return spec;
}

TEST_CASE("a stored plan masks secret values, also inside the container's base64 config",
          "[job_planner]") {
  const std::string secret = "s3cr3t-value-42";
  executors::JobSpec spec = ContainerSpec(secret);
  spec.plan_yaml = absl::StrCat("target:\n  key_hint: ", secret, "\n");
  std::map<std::string, std::string> secrets = {{"HF_SRC", secret}};
  std::string stored = JobPlanner::EncodeSpec(spec, secrets);
  INFO(stored);
  CHECK_FALSE(absl::StrContains(stored, secret));
  // Neither as base64 at any alignment: the decoded config is what gets stored, masked.
  for (int pad = 0; pad < 3; ++pad) {
    std::string b64 = absl::Base64Escape(std::string(pad, 'x') + secret);
    CHECK_FALSE(absl::StrContains(stored, b64.substr(4, 12)));
  }
  CHECK(absl::StrContains(stored, "<secret:HF_SRC>"));

  absl::StatusOr<executors::JobSpec> decoded = JobPlanner::DecodeSpec(stored);
  REQUIRE(decoded.ok());
  CHECK(decoded->env_vars == spec.env_vars);
  CHECK(decoded->image == spec.image);
  CHECK(decoded->task == "ifeval");
  CHECK_FALSE(decoded->native);
}

TEST_CASE("the spec to start with: secrets put back, the server's port filled in",
          "[job_planner]") {
  const std::string secret = "s3cr3t-value-42";
  executors::JobSpec spec = ContainerSpec(secret);
  std::map<std::string, std::string> secrets = {{"HF_SRC", secret}};
  JobRecord job;
  job.id = spec.job_id;
  job.output_dir = spec.task_dir;
  job.attempt = 2;
  job.spec_yaml = JobPlanner::EncodeSpec(spec, secrets);
  DeploymentRecord server;
  server.port = 43121;
  JobPlanner planner(nullptr, "nv_eval");
  absl::StatusOr<executors::JobSpec> start =
      planner.SpecForStart(InvocationRecord{}, job, &server, secrets);
  REQUIRE(start.ok());
  CHECK(start->attempt == 2);
  CHECK(absl::StrContains(start->container_command, "'http://127.0.0.1:43121/v1'"));
  std::string b64 = start->container_command.substr(6, start->container_command.find('"', 6) - 6);
  std::string config;
  REQUIRE(absl::Base64Unescape(b64, &config));
  CHECK(absl::StrContains(config, "token: " + secret));

  absl::StatusOr<std::map<std::string, std::string>> env =
      JobPlanner::JobEnvironment(*start, {{"MY_KEY", "k-1"}, {"HF_SRC", secret}});
  REQUIRE(env.ok());
  CHECK(*env == std::map<std::string, std::string>{{"API_KEY", "k-1"}, {"HF_TOKEN", secret}});
  CHECK(JobPlanner::JobEnvironment(*start, {}).status().code() ==
        absl::StatusCode::kFailedPrecondition);
}

TEST_CASE("a server inside the job is stored with the job and gets its secrets from the env",
          "[job_planner]") {
  const std::string secret = "s3cr3t-server-token";
  executors::JobSpec spec = ContainerSpec("unrelated");
  spec.execution_yaml = "type: slurm\nenv_vars:\n  deployment:\n    NGC_KEY: $host:NGC_SRC\n";
  spec.deployment_yaml = absl::StrCat(
      "type: command\ncommand: serve --port 8000 --hint ", secret,
      "\nport: 8000\nserved_model_name: m\nenv_vars:\n  SERVER_TOKEN: $host:TOKEN_SRC\n"
      "endpoints:\n  chat: /v1/chat/completions\n  health: /health\n");
  std::map<std::string, std::string> secrets = {
      {"MY_KEY", "k-1"}, {"HF_SRC", "hf-1"}, {"TOKEN_SRC", secret}, {"NGC_SRC", "ngc-1"}};
  JobRecord job;
  job.id = spec.job_id;
  job.output_dir = spec.task_dir;
  job.spec_yaml = JobPlanner::EncodeSpec(spec, secrets);
  INFO(job.spec_yaml);
  CHECK_FALSE(absl::StrContains(job.spec_yaml, secret));  // masked in the stored deployment too
  JobPlanner planner(nullptr, "nv_eval");
  absl::StatusOr<executors::JobSpec> start =
      planner.SpecForStart(InvocationRecord{}, job, nullptr, secrets);
  REQUIRE(start.ok());
  CHECK(start->deployment_yaml == spec.deployment_yaml);
  absl::StatusOr<std::map<std::string, std::string>> env =
      JobPlanner::JobEnvironment(*start, secrets);
  REQUIRE(env.ok());
  CHECK(*env == std::map<std::string, std::string>{{"API_KEY", "k-1"},
                                                   {"HF_TOKEN", "hf-1"},
                                                   {"NGC_KEY", "ngc-1"},
                                                   {"SERVER_TOKEN", secret}});
  secrets.erase("TOKEN_SRC");
  absl::StatusOr<std::map<std::string, std::string>> missing =
      JobPlanner::JobEnvironment(*start, secrets);
  CHECK(missing.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK(absl::StrContains(missing.status().message(), "model server"));
  CHECK(absl::StrContains(missing.status().message(), "TOKEN_SRC"));
  // A spec stored without a server reads back without one.
  executors::JobSpec plain = ContainerSpec("x");
  absl::StatusOr<executors::JobSpec> decoded =
      JobPlanner::DecodeSpec(JobPlanner::EncodeSpec(plain, {}));
  REQUIRE(decoded.ok());
  CHECK(decoded->deployment_yaml.empty());
}

TEST_CASE("an unreadable stored plan is a clear error, not a crash", "[job_planner]") {
  CHECK(JobPlanner::DecodeSpec("").status().code() == absl::StatusCode::kDataLoss);
  CHECK(JobPlanner::DecodeSpec("{\"version\": 1}").status().code() ==
        absl::StatusCode::kDataLoss);
  CHECK(JobPlanner::DecodeSpec("[1,2]").status().code() == absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace evald::daemon
