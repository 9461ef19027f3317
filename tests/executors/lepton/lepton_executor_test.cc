// Tests of LeptonExecutor against an in-process loopback Lepton API (LeptonFakeServer) with a
// frozen virtual clock: the job spec it posts, the state mapping, one list call per poll,
// archived and deleted jobs, stop+delete, Recover (finds this attempt's job, never re-creates),
// and that no secret value reaches a request outside the Authorization header.
#include "executors/lepton/lepton_executor.h"

#include <httplib.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "nlohmann/json.hpp"
#include "tests/executors/local/test_util.h"
#include "tests/fixtures/lepton_fake/server.h"

namespace evald::executors {
namespace {

using json = nlohmann::json;
using lepton_fake::FakeOptions;
using lepton_fake::LeptonFakeServer;
using Kind = Observation::Kind;
using testing::Slurp;
using testing::TempDir;

constexpr char kToken[] = "tok-lepton-4711";
constexpr char kApiKey[] = "sk-endpoint-secret-0815";

class Fake {
 public:
  Fake() {
    FakeOptions options;
    options.frozen_clock = true;
    options.tokens = {kToken};
    server_ = std::make_unique<LeptonFakeServer>(options, ref_endpoint::KeyIndex());
    absl::StatusOr<int> port = server_->Bind();
    REQUIRE(port.ok());
    port_ = *port;
    thread_ = std::thread([this] { server_->Run(); });
  }
  ~Fake() {
    server_->Stop();
    thread_.join();
  }
  int port() const { return port_; }
  void Scenario(const json& s) { REQUIRE(server_->ApplyScenario(s).ok()); }
  void Advance(double seconds) {
    httplib::Client c("127.0.0.1", port_);
    auto r = c.Post("/_fake/clock", json{{"advance_s", seconds}}.dump(), "application/json");
    REQUIRE(r);
    REQUIRE(r->status == 200);
  }
  json Requests() const { return server_->Requests(); }
  // Requests with this method whose path (after the workspace prefix) matches `re`.
  int Count(const std::string& method, const std::string& re) const {
    int n = 0;
    std::regex r(".*/workspaces/ws-test" + re);
    for (const json& q : Requests()) {
      if (q["method"] == method && std::regex_match(q["path"].get<std::string>(), r)) ++n;
    }
    return n;
  }

 private:
  std::unique_ptr<LeptonFakeServer> server_;
  std::thread thread_;
  int port_ = 0;
};

std::string ExecutionYaml(const Fake& fake, const std::string& dir) {
  return absl::StrCat(R"(type: lepton
output_dir: )",
                      dir, R"(
evaluation_tasks:
  resource_shape: cpu.small
  runner_image: nvcr.io/evald/runner:1
lepton_platform:
  api_url: http://127.0.0.1:)",
                      fake.port(), R"(
  workspace_id: ws-test
  api_token_env: LEPTON_TEST_TOKEN
  tasks:
    node_group: ng-h200-01
    env_vars:
      API_KEY:
        value_from:
          secret_name_ref: ENDPOINT_API_KEY
      MODE: fast
    mounts:
      - from: node-nfs:lepton-shared-fs
        path: /shared/evals
        mount_path: /workspace
        local_path: )",
                      dir, R"(
    image_pull_secrets: [lepton-nvidia]
)");
}

JobSpec Spec(const Fake& fake, const TempDir& dir, int index, int attempt = 1) {
  JobSpec s;
  s.invocation_id = "3f9a0c1e";
  s.job_id = absl::StrCat(s.invocation_id, ".", index);
  s.task = "arith";
  s.task_dir = absl::StrCat(dir.path(), "/run-3f9a0c1e/arith-", index);
  s.attempt = attempt;
  s.native = true;
  s.plan_yaml = "config:\n  output_dir: x\n";
  s.env_vars = {{"API_KEY", "API_KEY"}, {"LEPTON_TEST_TOKEN", "LEPTON_TEST_TOKEN"}};
  s.execution_yaml = ExecutionYaml(fake, dir.path());
  return s;
}

std::map<std::string, std::string> Env() {
  return {{"API_KEY", kApiKey}, {"LEPTON_TEST_TOKEN", kToken}};
}

JobRef RefOf(const JobSpec& spec, const JobHandle& handle) {
  return {spec.job_id, spec.invocation_id, spec.attempt, spec.task_dir, handle};
}

Observation PollOne(LeptonExecutor& ex, const JobRef& ref) {
  std::vector<Observation> obs = ex.Poll({ref});
  REQUIRE(obs.size() == 1);
  return obs[0];
}

TEST_CASE("lepton job states map onto observations, unknown ones keep the job polled") {
  using C = LeptonStateClass;
  CHECK(ClassifyLeptonJobState("Queueing") == C::kQueued);
  CHECK(ClassifyLeptonJobState("Awaiting") == C::kQueued);
  CHECK(ClassifyLeptonJobState("Starting") == C::kQueued);
  CHECK(ClassifyLeptonJobState("PendingRetry") == C::kQueued);
  CHECK(ClassifyLeptonJobState("Running") == C::kRunning);
  CHECK(ClassifyLeptonJobState("Restarting") == C::kRunning);
  CHECK(ClassifyLeptonJobState("Stopping") == C::kRunning);
  CHECK(ClassifyLeptonJobState("Completed") == C::kCompleted);
  CHECK(ClassifyLeptonJobState("Failed") == C::kFailed);
  CHECK(ClassifyLeptonJobState("Stopped") == C::kStopped);
  CHECK(ClassifyLeptonJobState("Deleting") == C::kGone);
  CHECK(ClassifyLeptonJobState("Deleted") == C::kGone);
  CHECK(ClassifyLeptonJobState("Archived") == C::kArchived);
  // The reference's states that Lepton never sends, and drift.
  for (const char* s : {"Succeeded", "Pending", "Cancelled", "", "UNK", "Migrating"}) {
    CHECK(ClassifyLeptonJobState(s) == C::kUnknown);
  }
}

TEST_CASE("lepton job names are valid, within 36 characters and unique per attempt") {
  std::regex valid("^[a-z]([-a-z0-9]*[a-z0-9])?$");
  std::string a1 = LeptonJobName("3f9a0c1e.12", 1);
  std::string a2 = LeptonJobName("3f9a0c1e.12", 2);
  CHECK(a1 == "evald-3f9a0c1e-12-a1");
  CHECK(a1 != a2);
  CHECK(LeptonJobName("3f9a0c1e.13", 1) != a1);
  std::string big = LeptonJobName("ffffffff.99999", 9999);
  CHECK(std::regex_match(big, valid));
  CHECK(big.size() <= 36);
  // Past 36 characters there is no name (Validate refuses the job) rather than a cut one that
  // could collide with another job's.
  CHECK(LeptonJobName("ffffffff.2147483647", 2147483647).empty());
  CHECK(LeptonJobName("not-a-job-id", 1).empty());
}

TEST_CASE("lepton start posts the job spec with resolved node group and secret refs only") {
  TempDir dir;
  Fake fake;
  LeptonExecutor ex({});
  JobSpec spec = Spec(fake, dir, 0);
  REQUIRE(ex.Validate(spec).ok());
  absl::StatusOr<JobHandle> h = ex.Start(spec, Env());
  REQUIRE(h.ok());
  CHECK(h->executor == "lepton");
  CHECK(!absl::StrContains(h->state, kToken));

  json posted;
  for (const json& r : fake.Requests()) {
    if (r["method"] == "POST" && absl::EndsWith(r["path"].get<std::string>(), "/jobs")) {
      posted = r["json"];
    }
  }
  REQUIRE(posted.is_object());
  CHECK(posted["metadata"]["name"] == "evald-3f9a0c1e-0-a1");
  CHECK(posted["metadata"]["id"] == "evald-3f9a0c1e-0-a1");
  const json& s = posted["spec"];
  CHECK(s["resource_shape"] == "cpu.small");
  CHECK(s["affinity"]["allowed_dedicated_node_groups"] == json::array({"ng-h200-01-abcd"}));
  CHECK(s["container"]["image"] == "nvcr.io/evald/runner:1");
  REQUIRE(s["container"]["command"].size() == 3);
  std::string script = s["container"]["command"][2];
  CHECK(absl::StrContains(script, "task_dir=/workspace/run-3f9a0c1e/arith-0"));
  CHECK(absl::StrContains(script, "evalrun --plan \"$task_dir/plan.yaml\""));
  CHECK(s["envs"] ==
        json::parse(R"([{"name":"API_KEY","value_from":{"secret_name_ref":"ENDPOINT_API_KEY"}},
                                     {"name":"MODE","value":"fast"}])"));
  CHECK(s["mounts"] == json::parse(R"([{"from":"node-nfs:lepton-shared-fs","path":"/shared/evals",
                                        "mount_path":"/workspace"}])"));
  CHECK(s["image_pull_secrets"] == json::array({"lepton-nvidia"}));
  CHECK(s["ttl_seconds_after_finished"] == 600);
  CHECK(!absl::StrContains(posted.dump(), "null"));
  // The plan and the recovery record are in the task dir, without secrets.
  CHECK(std::filesystem::exists(spec.task_dir + "/plan.yaml"));
  std::string record = Slurp(spec.task_dir + "/lepton-job.json");
  CHECK(absl::StrContains(record, "evald-3f9a0c1e-0-a1"));
  // No secret value anywhere but the bearer header.
  for (const json& r : fake.Requests()) {
    json copy = r;
    CHECK(copy["headers"]["authorization"] == absl::StrCat("Bearer ", kToken));
    copy["headers"].erase("authorization");
    CHECK(!absl::StrContains(copy.dump(), kToken));
    CHECK(!absl::StrContains(copy.dump(), kApiKey));
  }
  HandleInfo info = ex.Describe(*h);
  CHECK(info.backend_id == "lepton job evald-3f9a0c1e-0-a1");
}

TEST_CASE("lepton validate refuses what a Lepton job cannot get") {
  TempDir dir;
  Fake fake;
  LeptonExecutor ex({});
  JobSpec spec = Spec(fake, dir, 0);
  SECTION("a secret the config does not map to a workspace secret") {
    spec.env_vars.emplace_back("HF_TOKEN", "HF_TOKEN");
    absl::Status s = ex.Validate(spec);
    CHECK(absl::IsFailedPrecondition(s));
    CHECK(absl::StrContains(s.message(), "HF_TOKEN"));
    CHECK(absl::IsFailedPrecondition(ex.Start(spec, Env()).status()));
    CHECK(fake.Count("POST", "/jobs") == 0);
  }
  SECTION("config env var names that are no variable names") {
    JobSpec bad_env = spec;
    bad_env.execution_yaml =
        absl::StrReplaceAll(spec.execution_yaml, {{"      MODE: fast", "      MO-DE: fast"}});
    absl::Status s = ex.Validate(bad_env);
    CHECK(absl::IsFailedPrecondition(s));
    CHECK(absl::StrContains(s.message(), "env_vars.MO-DE"));
    JobSpec bad_token = spec;
    bad_token.execution_yaml = absl::StrReplaceAll(
        spec.execution_yaml, {{"api_token_env: LEPTON_TEST_TOKEN", "api_token_env: 1TOKEN"}});
    s = ex.Validate(bad_token);
    CHECK(absl::IsFailedPrecondition(s));
    CHECK(absl::StrContains(s.message(), "api_token_env"));
  }
  SECTION("a native task without a runner image") {
    spec.execution_yaml = absl::StrReplaceAll(spec.execution_yaml, {{"runner_image:", "x_:"}});
    spec.execution_yaml =
        absl::StrReplaceAll(spec.execution_yaml, {{"  x_: nvcr.io/evald/runner:1\n", ""}});
    CHECK(absl::StrContains(ex.Validate(spec).message(), "runner_image"));
  }
  SECTION("no token anywhere") {
    spec.env_vars = {{"API_KEY", "API_KEY"}};
    unsetenv("LEPTON_TEST_TOKEN");
    CHECK(ex.Validate(spec).ok());  // dry runs need no token
    absl::StatusOr<JobHandle> h = ex.Start(spec, {{"API_KEY", kApiKey}});
    CHECK(absl::IsFailedPrecondition(h.status()));
    CHECK(absl::StrContains(h.status().message(), "LEPTON_TEST_TOKEN"));
    CHECK(fake.Requests().empty());
  }
  SECTION("a task dir outside the storage evald shares with the job") {
    spec.task_dir = "/elsewhere/run/arith-0";
    CHECK(absl::StrContains(ex.Validate(spec).message(), "local_path"));
  }
  SECTION("without local_path the job writes under the first mount, as the reference") {
    spec.execution_yaml = absl::StrReplaceAll(spec.execution_yaml, {{"local_path:", "x_local:"}});
    spec.execution_yaml =
        spec.execution_yaml.substr(0, spec.execution_yaml.find("        x_local:")) +
        "    image_pull_secrets: [lepton-nvidia]\n";
    REQUIRE(ex.Validate(spec).ok());
    absl::StatusOr<RenderedJob> r = ex.Render(spec);
    REQUIRE(r.ok());
    CHECK(absl::StrContains(r->script, "task_dir=/workspace/arith-0"));
    CHECK(absl::StrContains(r->script, "\"path\": \"/shared/evals/3f9a0c1e\""));
    CHECK(fake.Requests().empty());  // rendering sends nothing
  }
  SECTION("no workspace: renders (dry runs), but does not start") {
    spec.execution_yaml =
        absl::StrReplaceAll(spec.execution_yaml, {{"  workspace_id: ws-test\n", ""}});
    CHECK(ex.Validate(spec).ok());
    absl::StatusOr<RenderedJob> r = ex.Render(spec);
    REQUIRE(r.ok());
    CHECK(absl::StrContains(r->script, "/workspaces/<workspace id>/jobs"));
    absl::StatusOr<JobHandle> h = ex.Start(spec, Env());
    CHECK(absl::StrContains(h.status().message(), "workspace_id"));
    CHECK(fake.Requests().empty());
  }
  SECTION("an unknown node group fails the start instead of running anywhere") {
    spec.execution_yaml =
        absl::StrReplaceAll(spec.execution_yaml, {{"node_group: ng-h200-01", "node_group: nope"}});
    absl::StatusOr<JobHandle> h = ex.Start(spec, Env());
    CHECK(absl::StrContains(h.status().message(), "nope"));
    CHECK(fake.Count("POST", "/jobs") == 0);
  }
}

TEST_CASE("lepton poll follows a job from Queueing to Completed") {
  TempDir dir;
  Fake fake;
  fake.Scenario({{"jobs", {{{"match", "*"}, {"scenario", "pending_retry"}}}}});
  LeptonExecutor ex({});
  JobSpec spec = Spec(fake, dir, 0);
  absl::StatusOr<JobHandle> h = ex.Start(spec, Env());
  REQUIRE(h.ok());
  JobRef ref = RefOf(spec, *h);
  // The raw Lepton state the poll saw, as `evalctl info` shows it.
  auto raw_state = [&] {
    for (const auto& [k, v] : ex.Describe(*h).details) {
      if (k == "lepton_state") return v;
    }
    return std::string("(none)");
  };
  CHECK(PollOne(ex, ref).kind == Kind::kSubmitted);
  CHECK(raw_state() == "Queueing");
  fake.Advance(1.5);
  CHECK(PollOne(ex, ref).kind == Kind::kSubmitted);
  CHECK(raw_state() == "Starting");
  fake.Advance(1);
  CHECK(PollOne(ex, ref).kind == Kind::kRunning);
  for (int i = 0; i < 10; ++i) {
    fake.Advance(1);
    Observation o = PollOne(ex, ref);
    if (o.kind == Kind::kExited) {
      CHECK(raw_state() == "Completed");
      CHECK(o.exit_code == 0);
      // No results on the "shared storage": a clear message, not a crash.
      CHECK(absl::StrContains(o.message, "results.yml does not exist"));
      return;
    }
    CHECK(o.kind != Kind::kVanished);
  }
  FAIL("the job never completed");
}

TEST_CASE("lepton poll reads the exit code and progress the job wrote on shared storage") {
  TempDir dir;
  Fake fake;
  fake.Scenario({{"jobs", {{{"match", "*"}, {"scenario", "fail"}}}}});
  LeptonExecutor ex({});
  JobSpec spec = Spec(fake, dir, 0);
  absl::StatusOr<JobHandle> h = ex.Start(spec, Env());
  REQUIRE(h.ok());
  std::ofstream(spec.task_dir + "/logs/stage.exit") << "2026-01-01T00:00:00Z 2\n";
  std::ofstream(spec.task_dir + "/artifacts/progress.json")
      << R"({"done": 7, "total": 10, "errors": 1, "rate": 0.5})";
  fake.Advance(30);
  Observation o = PollOne(ex, RefOf(spec, *h));
  CHECK(o.kind == Kind::kExited);
  CHECK(o.exit_code == 2);
  CHECK(o.has_progress);
  CHECK(o.progress_done == 7);
  CHECK(o.progress_total == 10);
  CHECK(o.progress_errors == 1);
  CHECK(absl::StrContains(o.message, "Failed"));
}

TEST_CASE("lepton poll of 100 jobs costs one list call") {
  TempDir dir;
  Fake fake;
  fake.Scenario({{"jobs", {{{"match", "*"}, {"scenario", "run_forever"}}}}});
  LeptonExecutor ex({});
  std::vector<JobRef> refs;
  for (int i = 0; i < 100; ++i) {
    JobSpec spec = Spec(fake, dir, i);
    absl::StatusOr<JobHandle> h = ex.Start(spec, Env());
    REQUIRE(h.ok());
    refs.push_back(RefOf(spec, *h));
  }
  fake.Advance(5);
  const int lists_before = fake.Count("GET", "/jobs");
  const int gets_before = fake.Count("GET", "/jobs/.*");
  std::vector<Observation> obs = ex.Poll(refs);
  const int lists = fake.Count("GET", "/jobs") - lists_before;
  const int gets = fake.Count("GET", "/jobs/.*") - gets_before;
  WARN("polling 100 live Lepton jobs: " << lists << " list call(s), " << gets << " job get(s)");
  CHECK(lists == 1);
  CHECK(gets == 0);
  REQUIRE(obs.size() == 100);
  for (const Observation& o : obs) CHECK(o.kind == Kind::kRunning);
}

TEST_CASE("lepton job archived before the next poll ends with its outcome, not running") {
  TempDir dir;
  Fake fake;
  fake.Scenario({{"jobs", {{{"match", "*"}, {"scenario", "complete"}, {"ttl_s", 1}}}}});
  LeptonExecutor ex({});
  JobSpec spec = Spec(fake, dir, 0);
  absl::StatusOr<JobHandle> h = ex.Start(spec, Env());
  REQUIRE(h.ok());
  std::filesystem::create_directories(spec.task_dir + "/artifacts");
  std::ofstream(spec.task_dir + "/artifacts/results.yml") << "results: {}\n";
  fake.Advance(60);  // completed and archived
  const int gets_before = fake.Count("GET", "/jobs/.*");
  Observation o = PollOne(ex, RefOf(spec, *h));
  CHECK(fake.Count("GET", "/jobs/.*") - gets_before == 1);
  CHECK(o.kind == Kind::kExited);
  CHECK(o.exit_code == 0);
  CHECK(absl::StrContains(o.message, "archived"));
  CHECK(!absl::StrContains(o.message, "results.yml does not exist"));
}

TEST_CASE("lepton stop patches and deletes the job, idempotently, and the job then ends") {
  TempDir dir;
  Fake fake;
  fake.Scenario({{"jobs", {{{"match", "*"}, {"scenario", "run_forever"}}}}});
  LeptonExecutor ex({});
  JobSpec spec = Spec(fake, dir, 0);
  absl::StatusOr<JobHandle> h = ex.Start(spec, Env());
  REQUIRE(h.ok());
  JobRef ref = RefOf(spec, *h);
  fake.Advance(5);
  REQUIRE(ex.Stop(ref, absl::Seconds(5)).ok());
  CHECK(fake.Count("PATCH", "/jobs/evald-3f9a0c1e-0-a1") == 1);
  CHECK(fake.Count("DELETE", "/jobs/evald-3f9a0c1e-0-a1") == 1);
  CHECK(ex.Stop(ref, absl::Seconds(5)).ok());  // again: still fine
  Observation o = PollOne(ex, ref);
  CHECK(o.kind == Kind::kVanished);
  fake.Advance(10);  // the delete is done: 404
  CHECK(ex.Stop(ref, absl::Seconds(5)).ok());
  o = PollOne(ex, ref);
  CHECK(o.kind == Kind::kVanished);
  CHECK(absl::StrContains(o.message, "no longer exists"));
}

TEST_CASE("lepton recover finds this attempt's job and never creates one") {
  TempDir dir;
  Fake fake;
  fake.Scenario({{"jobs", {{{"match", "*"}, {"scenario", "run_forever"}}}}});
  setenv("LEPTON_TEST_TOKEN", kToken, 1);
  JobSpec spec = Spec(fake, dir, 0);
  absl::StatusOr<JobHandle> started;
  {
    LeptonExecutor before_restart({});
    started = before_restart.Start(spec, Env());
    REQUIRE(started.ok());
  }
  LeptonExecutor ex({});  // a restarted evald: token from its environment
  JobRef ref = RefOf(spec, JobHandle{.version = 1, .executor = "lepton", .state = ""});
  absl::StatusOr<std::optional<JobHandle>> found = ex.Recover(ref);
  REQUIRE(found.ok());
  REQUIRE(found->has_value());
  CHECK((*found)->state == started->state);
  CHECK(PollOne(ex, RefOf(spec, **found)).kind == Kind::kSubmitted);

  // The next attempt never started: its record is not there, a previous attempt's job is not it.
  JobRef next = ref;
  next.attempt = 2;
  found = ex.Recover(next);
  REQUIRE(found.ok());
  CHECK(!found->has_value());
  // A record written, but the POST never made it.
  JobSpec other = Spec(fake, dir, 1);
  std::filesystem::create_directories(other.task_dir);
  std::ofstream(other.task_dir + "/lepton-job.json") << json{
      {"name", "evald-3f9a0c1e-1-a1"},
      {"attempt", 1},
      {"target",
       {{"api_url", absl::StrCat("http://127.0.0.1:", fake.port())},
        {"workspace_id", "ws-test"},
        {"token_env", "LEPTON_TEST_TOKEN"}}}}.dump();
  found = ex.Recover(RefOf(other, JobHandle{.version = 1, .executor = "lepton", .state = ""}));
  REQUIRE(found.ok());
  CHECK(!found->has_value());
  CHECK(fake.Count("POST", "/jobs") == 1);
  unsetenv("LEPTON_TEST_TOKEN");
}

TEST_CASE("lepton poll keeps a job in an unknown state and leaves out an unobservable one") {
  TempDir dir;
  Fake fake;
  fake.Scenario({{"jobs", {{{"match", "*"}, {"scenario", "run_forever"}}}}});
  LeptonExecutor ex({});
  JobSpec spec = Spec(fake, dir, 0);
  absl::StatusOr<JobHandle> h = ex.Start(spec, Env());
  REQUIRE(h.ok());
  fake.Advance(5);
  fake.Scenario(
      {{"faults",
        {{{"method", "GET"}, {"path", "/jobs"}, {"kind", "state"}, {"state", "Migrating"}}}}});
  Observation o = PollOne(ex, RefOf(spec, *h));
  CHECK(o.kind == Kind::kSubmitted);
  bool shown = false;
  for (const auto& [k, v] : ex.Describe(*h).details)
    shown |= k == "lepton_state" && v == "Migrating";
  CHECK(shown);
  fake.Scenario({{"faults", {{{"method", "GET"}, {"path", "/jobs"}, {"status", 401}}}}});
  CHECK(ex.Poll({RefOf(spec, *h)}).empty());  // not observed is never failed
}

TEST_CASE("lepton job scripts are valid bash for native and container tasks") {
  TempDir dir;
  Fake fake;
  LeptonExecutor ex({});
  JobSpec native = Spec(fake, dir, 0);
  JobSpec container = Spec(fake, dir, 1);
  container.native = false;
  container.image = "nvcr.io/nvidia/eval-factory/simple-evals:25.08";
  container.container_command =
      "echo \"e30K\" | base64 -d > config_ef.yaml && nv_eval run_eval --model_id 'a b' "
      "--output_dir /results --run_config config_ef.yaml";
  for (const JobSpec& spec : {native, container}) {
    absl::StatusOr<RenderedJob> r = ex.Render(spec);
    REQUIRE(r.ok());
    json job = json::parse(r->script.substr(r->script.find('\n') + 1));
    std::string script = job["spec"]["container"]["command"][2];
    std::string path = dir.path() + "/script.sh";
    std::ofstream(path) << script;
    INFO(script);
    CHECK(std::system(("bash -n " + path).c_str()) == 0);
    if (!spec.native) {
      CHECK(absl::StrContains(script, "--output_dir \"$task_dir/artifacts\""));
      CHECK(job["spec"]["container"]["image"] == spec.image);
    }
  }
}

TEST_CASE("lepton job script runs under bash: stage files, exit code, hostile values stay data") {
  TempDir dir;
  Fake fake;
  LeptonExecutor ex({});
  // The job sees the task dir at the same path as evald (mount_path == local_path), so the
  // script can run here; the runner stands in for evalrun.
  const std::string runner = dir.path() + "/fake evalrun";
  std::ofstream(runner) << "#!/bin/bash\necho \"runner: $*\"\necho runner-err >&2\nexit 3\n";
  std::filesystem::permissions(runner, std::filesystem::perms::owner_all);
  JobSpec spec = Spec(fake, dir, 0);
  spec.execution_yaml = absl::StrReplaceAll(
      spec.execution_yaml,
      {{"mount_path: /workspace", "mount_path: " + dir.path()},
       {"  runner_image:", "  runner_command: '" + runner + "'\n  runner_image:"}});
  spec.task = "arith'; touch pwned-task; '";
  spec.task_dir = dir.path() + "/run-3f9a0c1e/it's $(touch pwned-dir) `touch pwned-tick`";
  REQUIRE(ex.Validate(spec).ok());
  absl::StatusOr<RenderedJob> r = ex.Render(spec);
  REQUIRE(r.ok());
  json job = json::parse(r->script.substr(r->script.find('\n') + 1));
  const std::string script = job["spec"]["container"]["command"][2];
  const std::string path = dir.path() + "/script.sh";
  std::ofstream(path) << script;
  INFO(script);
  const std::string cmd = absl::StrCat("cd ", dir.path(), " && bash ", path, " >/dev/null 2>&1");
  const int status = std::system(cmd.c_str());
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 3);
  const std::regex stamp("^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ");
  CHECK(std::regex_search(Slurp(spec.task_dir + "/logs/stage.pre-start"), stamp));
  CHECK(std::regex_search(Slurp(spec.task_dir + "/logs/stage.running"), stamp));
  const std::string exit_line = Slurp(spec.task_dir + "/logs/stage.exit");
  CHECK(std::regex_search(exit_line, stamp));
  CHECK(absl::EndsWith(exit_line, " 3\n"));
  CHECK(!std::filesystem::exists(spec.task_dir + "/logs/stage.exit.tmp"));
  CHECK(absl::StrContains(
      Slurp(spec.task_dir + "/logs/stdout.log"),
      absl::StrCat("runner: --plan ", spec.task_dir,
                   "/plan.yaml -o config.output_dir=", spec.task_dir, "/artifacts")));
  CHECK(Slurp(spec.task_dir + "/logs/stderr.log") == "runner-err\n");
  for (const char* f : {"pwned-task", "pwned-dir", "pwned-tick"}) {
    CHECK(!std::filesystem::exists(dir.path() + "/" + f));
  }
}

TEST_CASE("lepton evaluation_tasks.timeout stops the evaluation inside the job with exit 124") {
  TempDir dir;
  Fake fake;
  LeptonExecutor ex({});
  const std::string runner = dir.path() + "/slow-evalrun";
  std::ofstream(runner) << "#!/bin/bash\necho started\nsleep 60\necho not-reached\n";
  std::filesystem::permissions(runner, std::filesystem::perms::owner_all);
  JobSpec spec = Spec(fake, dir, 0);
  spec.execution_yaml = absl::StrReplaceAll(
      spec.execution_yaml,
      {{"mount_path: /workspace", "mount_path: " + dir.path()},
       {"  runner_image:", "  timeout: 0.5\n  runner_command: '" + runner + "'\n  runner_image:"}});
  absl::StatusOr<RenderedJob> r = ex.Render(spec);
  REQUIRE(r.ok());
  json job = json::parse(r->script.substr(r->script.find('\n') + 1));
  const std::string script = job["spec"]["container"]["command"][2];
  INFO(script);
  CHECK(absl::StrContains(script, "timeout --kill-after=30 1)"));  // 0.5 s rounds up to 1
  const std::string path = dir.path() + "/script.sh";
  std::ofstream(path) << script;
  const int status = std::system(absl::StrCat("bash ", path, " >/dev/null 2>&1").c_str());
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 124);
  CHECK(absl::EndsWith(Slurp(spec.task_dir + "/logs/stage.exit"), " 124\n"));
  const std::string out = Slurp(spec.task_dir + "/logs/stdout.log");
  CHECK(absl::StrContains(out, "started"));
  CHECK_FALSE(absl::StrContains(out, "not-reached"));

  // Without the key the script has no limit; a bad value is refused naming the key.
  JobSpec plain = Spec(fake, dir, 1);
  absl::StatusOr<RenderedJob> r2 = ex.Render(plain);
  REQUIRE(r2.ok());
  CHECK_FALSE(absl::StrContains(r2->script, "timeout --kill-after"));
  JobSpec bad = Spec(fake, dir, 2);
  bad.execution_yaml = absl::StrReplaceAll(bad.execution_yaml,
                                           {{"  runner_image:", "  timeout: -3\n  runner_image:"}});
  absl::Status v = ex.Validate(bad);
  REQUIRE_FALSE(v.ok());
  CHECK(absl::StrContains(v.message(), "evaluation_tasks.timeout"));
}

TEST_CASE("lepton validate, render and start refuse a value a job script cannot carry") {
  TempDir dir;
  Fake fake;
  LeptonExecutor ex({});
  JobSpec spec = Spec(fake, dir, 0);
  std::string what;
  SECTION("a NUL byte in the task name") {
    spec.task = std::string("ari\0th", 6);
    what = "task name";
  }
  SECTION("a NUL byte in the runner command") {
    spec.execution_yaml = absl::StrReplaceAll(
        spec.execution_yaml,
        {{"  runner_image:", "  runner_command: \"evalrun\\0x\"\n  runner_image:"}});
    what = "runner_command";
  }
  SECTION("an env_vars name that is no variable name") {
    spec.env_vars.emplace_back("A-B", "A_B");
    what = "env_vars";
  }
  absl::Status v = ex.Validate(spec);
  CHECK(absl::IsInvalidArgument(v));
  CHECK(absl::StrContains(v.message(), what));
  CHECK(absl::IsInvalidArgument(ex.Render(spec).status()));
  CHECK(absl::IsInvalidArgument(ex.Start(spec, Env()).status()));
  CHECK(fake.Count("POST", "/jobs") == 0);
}

}  // namespace
}  // namespace evald::executors
