// SubmitPolicy (where non-admin callers' jobs may write, who may submit command deployments,
// per-user limits) on its own, and through ServerCore::Submit with a real store: a refused
// submit stores nothing.
#include "daemon/submit_policy.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "daemon/server_core.h"
#include "tests/executors/local/test_util.h"

namespace evald::daemon {
namespace {

namespace fs = std::filesystem;
using evald::testing::TempDir;

Caller User(const std::string& name, int64_t uid = -1) {
  return Caller{.user = name, .role = Role::kUser, .via = "test", .uid = uid};
}

TEST_CASE("a user's output_dir must resolve inside the state dir's runs or an output root") {
  TempDir dir;
  fs::create_directories(dir.path() + "/state/runs");
  fs::create_directories(dir.path() + "/shared/evals");
  fs::create_directory_symlink("/etc", dir.path() + "/shared/evals/escape");
  SubmitPolicy policy(
      {.state_dir = dir.path() + "/state", .output_roots = {dir.path() + "/shared/evals"}});
  const Caller alice = User("alice");
  CHECK(policy.CheckOutputDir(alice, dir.path() + "/state/runs").ok());
  CHECK(policy.CheckOutputDir(alice, dir.path() + "/state/runs/new/deeper").ok());
  CHECK(policy.CheckOutputDir(alice, dir.path() + "/shared/evals/team-a").ok());

  absl::Status etc = policy.CheckOutputDir(alice, "/etc/cron.d");
  CHECK(etc.code() == absl::StatusCode::kPermissionDenied);
  CHECK(absl::StrContains(etc.message(), "execution.output_dir: '/etc/cron.d' is outside"));
  CHECK(absl::StrContains(etc.message(), dir.path() + "/shared/evals"));
  // `..` and symlinks are resolved before the check, and a sibling with the root as a prefix is
  // not inside it.
  absl::Status dots = policy.CheckOutputDir(alice, dir.path() + "/state/runs/../../x");
  CHECK(dots.code() == absl::StatusCode::kPermissionDenied);
  CHECK(absl::StrContains(dots.message(), "(resolved: '" + dir.path() + "/x')"));
  CHECK(policy.CheckOutputDir(alice, dir.path() + "/shared/evals/escape/x").code() ==
        absl::StatusCode::kPermissionDenied);
  CHECK(policy.CheckOutputDir(alice, dir.path() + "/shared/evals2").code() ==
        absl::StatusCode::kPermissionDenied);
  // An admin (root or evald's own user) may write anywhere evald can.
  CHECK(policy.CheckOutputDir(LocalCaller(0), "/etc/cron.d").ok());
}

TEST_CASE("a user known by uid may also write under their home, a token user may not") {
  TempDir dir;
  SubmitPolicy policy({.state_dir = dir.path() + "/state"});
  // uid 0's passwd home is /root; the passwd entry decides, not $HOME.
  Caller by_uid = User("root-as-user", 0);
  CHECK(policy.CheckOutputDir(by_uid, "/root/evals").ok());
  CHECK(policy.CheckOutputDir(User("root-by-token"), "/root/evals").code() ==
        absl::StatusCode::kPermissionDenied);
}

TEST_CASE("command deployments: admins only by default, or everyone, or nobody") {
  using deployment::DeploymentType;
  SubmitPolicy admins({});
  CHECK(admins.CheckDeployment(User("alice"), DeploymentType::kVllm).ok());
  absl::Status s = admins.CheckDeployment(User("alice"), DeploymentType::kCommand);
  CHECK(s.code() == absl::StatusCode::kPermissionDenied);
  CHECK(absl::StrContains(s.message(), "only admins"));
  CHECK(admins.CheckDeployment(LocalCaller(0), DeploymentType::kCommand).ok());
  SubmitPolicy all({.command_deployments = CommandDeployments::kAll});
  CHECK(all.CheckDeployment(User("alice"), DeploymentType::kCommand).ok());
  SubmitPolicy none({.command_deployments = CommandDeployments::kNone});
  CHECK(none.CheckDeployment(LocalCaller(0), DeploymentType::kCommand).code() ==
        absl::StatusCode::kPermissionDenied);
}

TEST_CASE("per-user limits: submits in the last minute and unfinished jobs, each user apart") {
  SubmitPolicy policy({.submits_per_minute = 2, .active_jobs = 10});
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  CHECK(policy.Admit(User("alice"), 0, 3, t0).ok());
  CHECK(policy.Admit(User("alice"), 3, 3, t0 + absl::Seconds(10)).ok());
  absl::Status third = policy.Admit(User("alice"), 6, 1, t0 + absl::Seconds(20));
  CHECK(third.code() == absl::StatusCode::kResourceExhausted);
  CHECK(absl::StrContains(third.message(), "limit per user is 2"));
  CHECK(absl::StrContains(third.message(), "Try again in 41 s"));
  CHECK(policy.Admit(User("bob"), 0, 1, t0 + absl::Seconds(20)).ok());    // alice's burst is hers
  CHECK(policy.Admit(User("alice"), 6, 1, t0 + absl::Seconds(61)).ok());  // the first aged out

  absl::Status jobs = policy.Admit(User("carol"), 8, 3, t0);
  CHECK(jobs.code() == absl::StatusCode::kResourceExhausted);
  CHECK(absl::StrContains(jobs.message(), "carol has 8 job(s) not finished"));
  CHECK(policy.Admit(User("carol"), 7, 3, t0).ok());
  SubmitPolicy unlimited({});
  for (int i = 0; i < 100; ++i) CHECK(unlimited.Admit(User("dave"), 1000, 50, t0).ok());
}

// A ServerCore with the policy set in its server config; Submit is called as `caller`.
struct Core {
  explicit Core(const TempDir& dir) {
    ServerConfig config;
    config.state_dir = dir.path() + "/state";
    config.configs_dir = std::string(EVALD_SOURCE_DIR) + "/configs";
    config.runner_path = "/bin/true";
    config.output_roots = {dir.path() + "/team"};
    config.limit_active_jobs = 3;
    REQUIRE(FinalizeServerConfig(config).ok());
    absl::StatusOr<std::unique_ptr<ServerCore>> created = ServerCore::Create(config, nullptr, {});
    REQUIRE(created.ok());
    core = std::move(*created);
  }
  absl::Status Submit(const Caller& caller, const std::string& output_dir, int tasks,
                      const std::string& deployment = "") {
    // With a deployment evald derives the endpoint's url itself.
    std::string yaml = absl::StrCat(
        "execution:\n  type: local\n  output_dir: ", output_dir, "\ntarget:\n  api_endpoint:\n",
        deployment.empty() ? "    url: http://127.0.0.1:9/v1/chat/completions\n    model_id: m\n"
                           : "",
        "    api_key_name: null\n", deployment, "evaluation:\n  tasks:\n");
    for (int i = 0; i < tasks; ++i) absl::StrAppend(&yaml, "    - name: native_gsm8k\n");
    v1::SubmitRequest request;
    request.set_config_yaml(yaml);
    request.set_composed(true);
    v1::SubmitResponse response;
    return core->Submit(caller, request, &response);
  }
  int Stored() {
    v1::ListInvocationsResponse list;
    REQUIRE(core->ListInvocations(LocalCaller(0), {}, &list).ok());
    return list.invocations_size();
  }
  std::unique_ptr<ServerCore> core;
};

TEST_CASE("Submit applies the server's policy before storing anything") {
  TempDir dir;
  Core d(dir);
  const Caller alice = User("alice");
  absl::Status etc = d.Submit(alice, "/etc/evald-pwned", 1);
  CHECK(etc.code() == absl::StatusCode::kPermissionDenied);
  CHECK(absl::StrContains(etc.message(), "output_dir"));
  absl::Status command =
      d.Submit(alice, dir.path() + "/team/a", 1,
               "deployment:\n  type: command\n  command: touch /tmp/pwned\n  port: 8000\n"
               "  served_model_name: m\n");
  INFO(command.message());
  CHECK(command.code() == absl::StatusCode::kPermissionDenied);
  CHECK(d.Stored() == 0);

  REQUIRE(d.Submit(alice, dir.path() + "/team/a", 2).ok());
  absl::Status over = d.Submit(alice, dir.path() + "/team/a", 2);  // 2 unfinished + 2 > 3
  CHECK(over.code() == absl::StatusCode::kResourceExhausted);
  CHECK(d.Submit(User("bob"), dir.path() + "/state/runs", 3).ok());  // bob has his own limit
  CHECK(d.Submit(alice, dir.path() + "/team/a", 1).ok());
  CHECK(d.Stored() == 3);
  // An admin is not confined (the local evald's own user, root here).
  CHECK(d.Submit(LocalCaller(geteuid()), dir.path() + "/anywhere", 1).ok());
}

}  // namespace
}  // namespace evald::daemon
