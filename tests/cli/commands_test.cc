// The commands against a scripted EvalApi: what they send, print and exit with.
#include "cli/commands/commands.h"

#include <catch2/catch.hpp>
#include <cmath>

#include "absl/strings/match.h"
#include "cli/format.h"
#include "fake_api.h"

namespace evald::cli {
namespace {

using testing::FakeApi;
using testing::Harness;
using testing::MakeInvocation;
using testing::MakeJob;

constexpr char kSecretValue[] = "hf_SUPERSECRETvalue42";

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// A stand-in for the config library: the config needs HF_TOKEN and NGC_API_KEY.
ComposeFn FakeCompose(ComposeInput* seen = nullptr) {
  return [seen](const ComposeInput& in) -> absl::StatusOr<ComposedConfig> {
    if (seen != nullptr) *seen = in;
    ComposedConfig c;
    c.yaml = "execution:\n  type: local\nevaluation:\n  tasks:\n  - name: gsm8k\n";
    c.secret_names = {"HF_TOKEN", "NGC_API_KEY"};
    c.secret_uses = {{"HF_TOKEN", "evaluation.tasks[1].env_vars.HF_TOKEN"},
                     {"NGC_API_KEY", "target.api_endpoint.api_key_name"}};
    return c;
  };
}

v1::SubmitResponse SubmitResponse(bool dry_run) {
  v1::SubmitResponse r;
  r.set_invocation_id("1a2b3c4d");
  r.set_run_dir("/out/20260101_000000-1a2b3c4d");
  r.set_dry_run(dry_run);
  v1::JobRef* j = r.add_jobs();
  j->set_job_id("1a2b3c4d.0");
  j->set_task("gsm8k");
  j->set_output_dir("/out/20260101_000000-1a2b3c4d/gsm8k");
  if (dry_run) {
    r.set_config_yaml("execution:\n  type: local\n");
    // A careless server echoing a value: evalctl must still not print it.
    j->set_script(std::string("#!/bin/bash\nexport LEAK=") + kSecretValue + "\n");
  }
  return r;
}

v1::WatchEvent Snapshot(const v1::Invocation& inv) {
  v1::WatchEvent ev;
  *ev.mutable_snapshot() = inv;
  return ev;
}

v1::WatchEvent StateEvent(const std::string& job, const std::string& from, const std::string& to) {
  v1::WatchEvent ev;
  v1::Event* e = ev.mutable_event();
  e->set_invocation_id(job.substr(0, job.find('.')));
  e->set_job_id(job);
  e->set_kind("job.state");
  e->set_from_state(from);
  e->set_to_state(to);
  e->set_time_ms(1767225600000);
  return ev;
}

v1::WatchEvent ProgressEvent(const std::string& job, int64_t done, int64_t total) {
  v1::WatchEvent ev;
  ev.mutable_progress()->set_job_id(job);
  ev.mutable_progress()->mutable_progress()->set_done(done);
  ev.mutable_progress()->mutable_progress()->set_total(total);
  return ev;
}

// ---- submit ------------------------------------------------------------------------------------

TEST_CASE("submit sends the composed config, the secrets and the client identity") {
  FakeApi api;
  api.submit_response = SubmitResponse(false);
  Harness h(&api);
  h.env = {{"HF_TOKEN", kSecretValue}, {"NGC_API_KEY", "nvapi-abcdef"}};
  SubmitOptions o;
  o.config_path = "cfg.yaml";
  o.overrides = {"execution.output_dir=/out"};
  o.tasks = {"gsm8k"};
  ComposeInput seen;
  REQUIRE(RunSubmit(h.ctx, o, FakeCompose(&seen)) == 0);
  CHECK(seen.primary_path == "cfg.yaml");
  CHECK(seen.overrides == std::vector<std::string>{"execution.output_dir=/out"});
  CHECK(seen.working_dir == "/work/dir");
  REQUIRE(api.submits.size() == 1);
  const v1::SubmitRequest& req = api.submits[0];
  CHECK(absl::StartsWith(req.config_yaml(), "execution:"));
  CHECK(req.secrets().at("HF_TOKEN") == kSecretValue);
  CHECK(req.secrets().at("NGC_API_KEY") == "nvapi-abcdef");
  CHECK(req.secrets().size() == 2);
  CHECK(req.tasks_size() == 1);
  CHECK_FALSE(req.dry_run());
  CHECK(req.working_dir() == "/work/dir");
  CHECK(req.client() == std::string("evalctl/") + EvalctlVersion());
  CHECK(req.environment().empty());  // the environment is never sent wholesale
  CHECK(Contains(h.out.str(), "Submitted invocation 1a2b3c4d"));
  CHECK(Contains(h.out.str(), "evalctl watch 1a2b3c4d"));
  CHECK_FALSE(Contains(h.all(), kSecretValue));
}

TEST_CASE("submit: an unset variable stops everything before a request is sent") {
  FakeApi api;
  Harness h(&api);
  h.env = {{"NGC_API_KEY", "nvapi-abcdef"}};
  SubmitOptions o;
  o.config_path = "cfg.yaml";
  CHECK(RunSubmit(h.ctx, o, FakeCompose()) == kExitBadInput);
  CHECK(api.calls == 0);
  CHECK(h.err.str() ==
        "evalctl: Trying to pass an unset environment variable HF_TOKEN (needed by "
        "evaluation.tasks[1].env_vars.HF_TOKEN)\n");
  CHECK_FALSE(Contains(h.all(), "nvapi-abcdef"));
}

TEST_CASE("submit: composition errors are printed as they are, exit 2") {
  FakeApi api;
  Harness h(&api);
  SubmitOptions o;
  o.config_path = "missing.yaml";
  ComposeFn failing = [](const ComposeInput&) -> absl::StatusOr<ComposedConfig> {
    return absl::NotFoundError("missing.yaml: no such file");
  };
  CHECK(RunSubmit(h.ctx, o, failing) == kExitBadInput);
  CHECK(h.err.str() == "evalctl: missing.yaml: no such file\n");
  CHECK(api.calls == 0);
}

TEST_CASE("submit: server rejections") {
  FakeApi api;
  Harness h(&api);
  h.env = {{"HF_TOKEN", kSecretValue}, {"NGC_API_KEY", "nvapi-abcdef"}};
  SubmitOptions o;
  o.config_path = "cfg.yaml";
  SECTION("invalid config -> 2, message as given (secret values scrubbed)") {
    api.submit_status = absl::InvalidArgumentError(
        std::string("evaluation.tasks[0].name: task 'gsm8kk' does not exist; token ") +
        kSecretValue);
    CHECK(RunSubmit(h.ctx, o, FakeCompose()) == kExitBadInput);
    CHECK(Contains(h.err.str(), "evalctl: evaluation.tasks[0].name: task 'gsm8kk' does not exist"));
    CHECK_FALSE(Contains(h.all(), kSecretValue));
  }
  SECTION("too large -> 2, 'config too large'") {
    api.submit_status =
        absl::ResourceExhaustedError("Received message larger than max (9000000 vs. 4194304)");
    CHECK(RunSubmit(h.ctx, o, FakeCompose()) == kExitBadInput);
    CHECK(absl::StartsWith(h.err.str(), "evalctl: config too large: Received message larger"));
  }
  SECTION("evald out of disk -> 1, said as it is") {
    api.submit_status = absl::ResourceExhaustedError("disk full while writing /s/evald.db");
    CHECK(RunSubmit(h.ctx, o, FakeCompose()) == kExitFailed);
    CHECK(h.err.str() ==
          "evalctl: evald is out of resources: disk full while writing /s/evald.db\n");
  }
  SECTION("daemon down -> 3, one line") {
    api.submit_status = absl::UnavailableError("failed to connect to all addresses");
    CHECK(RunSubmit(h.ctx, o, FakeCompose()) == kExitUnreachable);
    CHECK(absl::StartsWith(h.err.str(),
                           "evalctl: cannot reach evald at unix:///tmp/evald-test/evald.sock"));
    std::string err = h.err.str();
    CHECK(std::count(err.begin(), err.end(), '\n') == 1);
  }
}

TEST_CASE("submit --dry-run prints config and scripts, never a secret value") {
  FakeApi api;
  api.submit_response = SubmitResponse(true);
  Harness h(&api);
  h.env = {{"HF_TOKEN", kSecretValue}, {"NGC_API_KEY", "nvapi-abcdef"}};
  SubmitOptions o;
  o.config_path = "cfg.yaml";
  o.dry_run = true;
  SECTION("human") {
    REQUIRE(RunSubmit(h.ctx, o, FakeCompose()) == 0);
    CHECK(api.submits.at(0).dry_run());
    CHECK(Contains(h.out.str(), "# Resolved config"));
    CHECK(Contains(h.out.str(), "job 1a2b3c4d.0: gsm8k"));
    CHECK(Contains(h.out.str(), "export LEAK=<secret:HF_TOKEN>"));
  }
  SECTION("json") {
    o.json = true;
    REQUIRE(RunSubmit(h.ctx, o, FakeCompose()) == 0);
    Json j = Json::parse(h.out.str());
    CHECK(j["invocation_id"] == "1a2b3c4d");
    CHECK(j["config"] == "execution:\n  type: local\n");
    CHECK(j["jobs"][0]["job_id"] == "1a2b3c4d.0");
    CHECK(j["jobs"][0]["task"] == "gsm8k");
    CHECK(Contains(j["jobs"][0]["script"].get<std::string>(), "#!/bin/bash"));
  }
  CHECK_FALSE(Contains(h.all(), kSecretValue));
  CHECK_FALSE(Contains(h.all(), "nvapi-abcdef"));
}

TEST_CASE("submit --json prints exactly one JSON object") {
  FakeApi api;
  api.submit_response = SubmitResponse(false);
  Harness h(&api);
  h.env = {{"HF_TOKEN", kSecretValue}, {"NGC_API_KEY", "nvapi-abcdef"}};
  SubmitOptions o;
  o.config_path = "cfg.yaml";
  o.json = true;
  REQUIRE(RunSubmit(h.ctx, o, FakeCompose()) == 0);
  Json j = Json::parse(h.out.str());
  CHECK(j["invocation_id"] == "1a2b3c4d");
  CHECK(j["jobs"].size() == 1);
  CHECK(j["jobs"][0]["job_id"] == "1a2b3c4d.0");
  CHECK_FALSE(j.contains("config"));
}

TEST_CASE("submit --wait follows the invocation and exits like watch") {
  FakeApi api;
  api.submit_response = SubmitResponse(false);
  v1::Invocation inv = MakeInvocation("1a2b3c4d", v1::JOB_STATE_RUNNING,
                                      {MakeJob("1a2b3c4d.0", "gsm8k", v1::JOB_STATE_RUNNING)});
  api.watch_messages = {Snapshot(inv)};
  Harness h(&api);
  h.env = {{"HF_TOKEN", kSecretValue}, {"NGC_API_KEY", "nvapi-abcdef"}};
  SubmitOptions o;
  o.config_path = "cfg.yaml";
  o.wait = true;
  SECTION("succeeded -> 0") {
    api.watch_messages.push_back(StateEvent("1a2b3c4d.0", "running", "succeeded"));
    CHECK(RunSubmit(h.ctx, o, FakeCompose()) == 0);
    REQUIRE(api.watches.size() == 1);
    CHECK(api.watches[0].id() == "1a2b3c4d");
  }
  SECTION("failed -> 1") {
    api.watch_messages.push_back(StateEvent("1a2b3c4d.0", "running", "failed"));
    CHECK(RunSubmit(h.ctx, o, FakeCompose()) == 1);
  }
  SECTION("--json keeps stdout one JSON object; the live view goes to stderr") {
    o.json = true;
    api.watch_messages.push_back(StateEvent("1a2b3c4d.0", "running", "succeeded"));
    CHECK(RunSubmit(h.ctx, o, FakeCompose()) == 0);
    CHECK(Json::parse(h.out.str())["invocation_id"] == "1a2b3c4d");
    CHECK(Contains(h.err.str(), "finished"));
  }
}

TEST_CASE("run -d D -c N finds D/N.yaml") {
  CHECK(RunPrimaryPath("/cfg", "local_limit") == "/cfg/local_limit.yaml");
  CHECK(RunPrimaryPath("/cfg/", "x.yaml") == "/cfg/x.yaml");
  CHECK(RunPrimaryPath("/cfg", "x.yml") == "/cfg/x.yml");
  CHECK(RunPrimaryPath(EVALD_SOURCE_DIR, "CMakeLists.txt") ==
        std::string(EVALD_SOURCE_DIR) + "/CMakeLists.txt");
}

// ---- status ------------------------------------------------------------------------------------

FakeApi WithTwoInvocations() {
  FakeApi api;
  v1::Job j0 = MakeJob("1a2b3c4d.0", "gsm8k", v1::JOB_STATE_RUNNING);
  j0.mutable_progress()->set_done(5);
  j0.mutable_progress()->set_total(10);
  api.invocations["1a2b3c4d"] =
      MakeInvocation("1a2b3c4d", v1::JOB_STATE_RUNNING,
                     {j0, MakeJob("1a2b3c4d.1", "mmlu", v1::JOB_STATE_PENDING)});
  api.invocations["99999999"] =
      MakeInvocation("99999999", v1::JOB_STATE_SUCCEEDED,
                     {MakeJob("99999999.0", "ifeval", v1::JOB_STATE_SUCCEEDED)});
  return api;
}

TEST_CASE("status <id> --json prints one object") {
  FakeApi api = WithTwoInvocations();
  Harness h(&api);
  StatusOptions o;
  o.ids = {"1a2b3c4d"};
  o.json = true;
  REQUIRE(RunStatus(h.ctx, o) == 0);
  Json j = Json::parse(h.out.str());
  REQUIRE(j.is_object());
  CHECK(j["invocation_id"] == "1a2b3c4d");
  CHECK(j["state"] == "running");
  REQUIRE(j["jobs"].size() == 2);
  CHECK(j["jobs"][0]["progress"] == Json::parse(R"({"done": 5, "total": 10, "rate": 0.0})"));
  CHECK(j["jobs"][1]["state"] == "pending");
}

TEST_CASE("status with several ids (jobs and invocations) prints an array") {
  FakeApi api = WithTwoInvocations();
  Harness h(&api);
  StatusOptions o;
  o.ids = {"1a2b3c4d.1", "99999999"};
  o.json = true;
  REQUIRE(RunStatus(h.ctx, o) == 0);
  Json j = Json::parse(h.out.str());
  REQUIRE(j.is_array());
  REQUIRE(j.size() == 2);
  REQUIRE(j[0]["jobs"].size() == 1);  // only the job asked for
  CHECK(j[0]["jobs"][0]["job_id"] == "1a2b3c4d.1");
  CHECK(j[1]["state"] == "succeeded");
}

TEST_CASE("status of an unknown id: message and exit 4, the known ones still shown") {
  FakeApi api = WithTwoInvocations();
  Harness h(&api);
  StatusOptions o;
  o.ids = {"deadbeef", "99999999", "99999999.7"};
  CHECK(RunStatus(h.ctx, o) == kExitNotFound);
  CHECK(h.err.str() ==
        "evalctl: no invocation or job with id deadbeef\n"
        "evalctl: no invocation or job with id 99999999.7\n");
  CHECK(Contains(h.out.str(), "invocation 99999999: succeeded"));
}

TEST_CASE("status without ids: the active invocations and the recent ones, once each") {
  FakeApi api = WithTwoInvocations();
  v1::ListInvocationsResponse recent;
  *recent.add_invocations() = api.invocations["99999999"];
  *recent.add_invocations() = api.invocations["1a2b3c4d"];
  api.list_pages[v1::JOB_STATE_UNSPECIFIED] = {recent};
  v1::ListInvocationsResponse running;
  *running.add_invocations() = api.invocations["1a2b3c4d"];
  v1::Invocation old = MakeInvocation("0000aaaa", v1::JOB_STATE_RUNNING,
                                      {MakeJob("0000aaaa.0", "old", v1::JOB_STATE_RUNNING)});
  old.set_created_ms(1000);
  running.set_next_page_token("1");
  v1::ListInvocationsResponse running2;
  *running2.add_invocations() = old;
  api.list_pages[v1::JOB_STATE_RUNNING] = {running, running2};
  Harness h(&api);
  StatusOptions o;
  o.json = true;
  REQUIRE(RunStatus(h.ctx, o) == 0);
  Json j = Json::parse(h.out.str());
  REQUIRE(j.is_array());
  REQUIRE(j.size() == 3);
  CHECK(j[2]["invocation_id"] == "0000aaaa");  // newest first
  CHECK(api.lists[0].limit() == 10);
  CHECK(api.lists[0].include_jobs());
}

TEST_CASE("status when evald is down: exit 3") {
  FakeApi api;
  api.list_status = absl::UnavailableError("connect failed");
  Harness h(&api);
  CHECK(RunStatus(h.ctx, StatusOptions()) == kExitUnreachable);
  CHECK(absl::StartsWith(h.err.str(), "evalctl: cannot reach evald at "));
  CHECK(Contains(h.err.str(), "start it with: evald --state-dir /tmp/evald-test"));
}

// ---- watch -------------------------------------------------------------------------------------

struct WatchFixture {
  WatchFixture() : h(&api) {
    inv = MakeInvocation("1a2b3c4d", v1::JOB_STATE_RUNNING,
                         {MakeJob("1a2b3c4d.0", "gsm8k", v1::JOB_STATE_RUNNING),
                          MakeJob("1a2b3c4d.1", "mmlu", v1::JOB_STATE_RUNNING)});
    api.watch_messages = {Snapshot(inv), ProgressEvent("1a2b3c4d.0", 50, 100)};
  }
  int Run(const std::string& id = "1a2b3c4d") {
    WatchOptions o;
    o.id = id;
    return RunWatch(h.ctx, o);
  }
  FakeApi api;
  Harness h;
  v1::Invocation inv;
};

TEST_CASE("watch exits 0 only when every job succeeded") {
  WatchFixture f;
  f.api.watch_messages.push_back(StateEvent("1a2b3c4d.0", "running", "succeeded"));
  f.api.watch_messages.push_back(StateEvent("1a2b3c4d.1", "running", "succeeded"));
  CHECK(f.Run() == 0);
  CHECK(f.api.watches[0].include_progress());
  std::string out = f.h.out.str();
  CHECK(Contains(out, "1a2b3c4d.0 gsm8k: running -> succeeded"));
  CHECK(Contains(out, "1a2b3c4d.0 gsm8k: progress 50/100 (50%)"));
  CHECK(Contains(out, "invocation 1a2b3c4d finished: 2 jobs: 2 succeeded"));
  CHECK_FALSE(Contains(out, "\x1b["));  // not a terminal: no escape sequences
}

TEST_CASE("watch: a job.starting event is one line and the typed state wins over the text") {
  WatchFixture f;
  v1::WatchEvent starting = StateEvent("1a2b3c4d.0", "pending", "pending");
  starting.mutable_event()->set_kind("job.starting");
  starting.mutable_event()->set_message("starting attempt 2");
  f.api.watch_messages.push_back(starting);
  // Only the enums set: the model must not need the text forms.
  v1::WatchEvent typed = StateEvent("1a2b3c4d.0", "", "");
  typed.mutable_event()->set_from_job_state(v1::JOB_STATE_RUNNING);
  typed.mutable_event()->set_to_job_state(v1::JOB_STATE_SUCCEEDED);
  f.api.watch_messages.push_back(typed);
  f.api.watch_messages.push_back(StateEvent("1a2b3c4d.1", "running", "succeeded"));
  CHECK(f.Run() == 0);
  std::string out = f.h.out.str();
  CHECK(Contains(out, "1a2b3c4d.0 gsm8k: starting attempt 2\n"));
  CHECK_FALSE(Contains(out, "pending -> pending"));
  CHECK(Contains(out, "invocation 1a2b3c4d finished: 2 jobs: 2 succeeded"));
}

TEST_CASE("watch exits 1 when a job failed, was killed or lost") {
  for (const char* end : {"failed", "killed", "lost"}) {
    WatchFixture f;
    f.api.watch_messages.push_back(StateEvent("1a2b3c4d.0", "running", "succeeded"));
    f.api.watch_messages.push_back(StateEvent("1a2b3c4d.1", "running", end));
    INFO(end);
    CHECK(f.Run() == 1);
    CHECK(Contains(f.h.out.str(), "evalctl logs 1a2b3c4d.1"));
  }
}

TEST_CASE("watch of one job follows only that job") {
  WatchFixture f;
  f.api.watch_messages.push_back(StateEvent("1a2b3c4d.1", "running", "failed"));
  f.api.watch_messages.push_back(StateEvent("1a2b3c4d.0", "running", "succeeded"));
  CHECK(f.Run("1a2b3c4d.0") == 0);
  CHECK_FALSE(Contains(f.h.out.str(), "mmlu"));
}

TEST_CASE("watch: evald going away is exit 3 and says so") {
  WatchFixture f;
  f.api.watch_end = absl::UnavailableError("Socket closed");
  CHECK(f.Run() == kExitUnreachable);
  CHECK(f.h.err.str() ==
        "evalctl: evald went away (connection lost: Socket closed) while watching 1a2b3c4d; the "
        "jobs keep running; run `evalctl watch 1a2b3c4d` once evald is back\n");

  WatchFixture never;
  never.api.watch_messages.clear();
  never.api.watch_end = absl::UnavailableError("failed to connect to all addresses");
  CHECK(never.Run() == kExitUnreachable);
  CHECK(Contains(never.h.err.str(), "cannot reach evald"));
}

TEST_CASE("watch: a stream that ends early is checked once more") {
  WatchFixture f;  // the stream ends with both jobs running
  v1::Invocation done = f.inv;
  done.mutable_jobs(0)->set_state(v1::JOB_STATE_SUCCEEDED);
  done.mutable_jobs(1)->set_state(v1::JOB_STATE_SUCCEEDED);
  f.api.invocations["1a2b3c4d"] = done;
  CHECK(f.Run() == 0);

  WatchFixture g;
  g.api.invocations["1a2b3c4d"] = g.inv;  // still running
  CHECK(g.Run() == kExitUnreachable);
  CHECK(Contains(g.h.err.str(), "before it finished"));
}

TEST_CASE("watch: the final state comes from one last look at the invocation") {
  WatchFixture f;  // the stream's last progress of job 0 is 50/100
  f.api.watch_messages.push_back(StateEvent("1a2b3c4d.0", "running", "succeeded"));
  f.api.watch_messages.push_back(StateEvent("1a2b3c4d.1", "running", "failed"));
  v1::Invocation done = f.inv;
  done.mutable_jobs(0)->set_state(v1::JOB_STATE_SUCCEEDED);
  done.mutable_jobs(0)->mutable_progress()->set_done(100);
  done.mutable_jobs(0)->mutable_progress()->set_total(100);
  done.mutable_jobs(1)->set_state(v1::JOB_STATE_FAILED);
  done.mutable_jobs(1)->set_exit_reason(v1::EXIT_REASON_EXIT_CODE);
  done.mutable_jobs(1)->set_exit_code(2);
  f.api.invocations["1a2b3c4d"] = done;
  f.h.ctx.tty = true;
  CHECK(f.Run() == 1);
  std::string out = f.h.out.str();
  size_t summary = out.find("finished: 2 jobs: 1 succeeded, 1 failed");
  REQUIRE(summary != std::string::npos);
  std::string before = out.substr(0, summary);
  std::string last_bars = before.substr(before.rfind("\x1b[J"));
  CHECK(Contains(last_bars, "100/100"));
  CHECK(Contains(last_bars, "failed (2)"));
}

TEST_CASE("watch of an unknown id: exit 4") {
  WatchFixture f;
  f.api.watch_messages.clear();
  f.api.watch_end = absl::NotFoundError("no such invocation");
  CHECK(f.Run("ffffffff") == kExitNotFound);
  CHECK(f.h.err.str() == "evalctl: no invocation or job with id ffffffff\n");
}

TEST_CASE("watch: Ctrl-C stops watching only, exit 130") {
  WatchFixture f;
  SetInterruptedForTest(true);
  f.api.watch_end = absl::CancelledError("Cancelled");
  int rc = f.Run();
  SetInterruptedForTest(false);
  CHECK(rc == kExitInterrupted);
  CHECK(Contains(f.h.err.str(), "the jobs keep running"));
  CHECK(f.api.calls == 1);  // nothing was killed
}

TEST_CASE("watch on a terminal redraws one bar per job in place") {
  WatchFixture f;
  f.h.ctx.tty = true;
  f.h.ctx.terminal_width = 100;
  f.api.watch_messages.push_back(StateEvent("1a2b3c4d.0", "running", "succeeded"));
  f.api.watch_messages.push_back(StateEvent("1a2b3c4d.1", "running", "succeeded"));
  CHECK(f.Run() == 0);
  std::string out = f.h.out.str();
  CHECK(Contains(out, "\x1b[2A\r\x1b[J"));  // up over two bars, clear
  CHECK(Contains(out, "[####"));
  CHECK(Contains(out, "gsm8k: running -> succeeded"));
}

// ---- logs / kill / resume / results ------------------------------------------------------------

TEST_CASE("logs of an invocation prefix each line with its job id") {
  FakeApi api;
  v1::LogChunk c;
  c.set_job_id("1a2b3c4d.0");
  c.set_source("stderr");
  c.add_lines("hello");
  c.add_lines("world");
  api.log_chunks = {c};
  Harness h(&api);
  LogsOptions o;
  o.id = "1a2b3c4d";
  o.tail = 5;
  REQUIRE(RunLogs(h.ctx, o) == 0);
  CHECK(h.out.str() == "1a2b3c4d.0: hello\n1a2b3c4d.0: world\n");
  CHECK(api.log_requests[0].tail_lines() == 5);
  CHECK(api.log_requests[0].source() == "stdout");

  Harness h2(&api);
  o.id = "1a2b3c4d.0";
  o.source = "all";
  o.follow = true;
  REQUIRE(RunLogs(h2.ctx, o) == 0);
  CHECK(h2.out.str() == "[stderr] hello\n[stderr] world\n");
  CHECK(api.log_requests[1].follow());

  Harness h3(&api);
  o.source = "journal";
  CHECK(RunLogs(h3.ctx, o) == kExitBadInput);
  CHECK(Contains(h3.err.str(), "invalid --source 'journal'"));
}

TEST_CASE("kill prints the jobs it stops, an already finished one is exit 5") {
  FakeApi api;
  api.kill_response.add_job_ids("1a2b3c4d.0");
  api.kill_response.add_job_ids("1a2b3c4d.1");
  Harness h(&api);
  KillOptions o;
  o.id = "1a2b3c4d";
  REQUIRE(RunKill(h.ctx, o) == 0);
  CHECK(Contains(h.out.str(), "Stopping 2 jobs:\n  1a2b3c4d.0\n  1a2b3c4d.1\n"));

  api.kill_status = absl::FailedPreconditionError("1a2b3c4d: every job already finished");
  Harness h2(&api);
  CHECK(RunKill(h2.ctx, o) == kExitRefused);
  CHECK(h2.err.str() == "evalctl: 1a2b3c4d: every job already finished\n");

  api.kill_status = absl::NotFoundError("nope");
  Harness h3(&api);
  CHECK(RunKill(h3.ctx, o) == kExitNotFound);
}

TEST_CASE("resume resends the secrets it has and says which one evald still needs") {
  FakeApi api = WithTwoInvocations();
  api.invocations["1a2b3c4d"].add_secret_names("HF_TOKEN");
  api.invocations["1a2b3c4d"].add_secret_names("NGC_API_KEY");
  api.resume_response.add_job_ids("1a2b3c4d.1");
  Harness h(&api);
  h.env = {{"HF_TOKEN", kSecretValue}};
  ResumeOptions o;
  o.id = "1a2b3c4d";
  REQUIRE(RunResume(h.ctx, o) == 0);
  REQUIRE(api.resumes.size() == 1);
  CHECK(api.resumes[0].invocation_id() == "1a2b3c4d");
  CHECK(api.resumes[0].secrets().size() == 1);
  CHECK(api.resumes[0].secrets().at("HF_TOKEN") == kSecretValue);
  CHECK(Contains(h.out.str(), "Resumed 1 job of invocation 1a2b3c4d:\n  1a2b3c4d.1\n"));

  api.resume_status = absl::FailedPreconditionError("secret NGC_API_KEY was deleted; resend it");
  Harness h2(&api);
  h2.env = {{"HF_TOKEN", kSecretValue}};
  CHECK(RunResume(h2.ctx, o) == kExitRefused);
  CHECK(Contains(h2.err.str(), "export NGC_API_KEY and run evalctl resume 1a2b3c4d again"));
  CHECK_FALSE(Contains(h.all() + h2.all(), kSecretValue));

  Harness h3(&api);
  o.id = "1a2b3c4d.1";  // a job id resumes that job
  api.resume_status = absl::OkStatus();
  REQUIRE(RunResume(h3.ctx, o) == 0);
  CHECK(api.resumes.back().job_ids_size() == 1);
  CHECK(api.resumes.back().job_ids(0) == "1a2b3c4d.1");
}

TEST_CASE("results: table, JSON and CSV") {
  FakeApi api;
  v1::JobResult* jr = api.results_response.add_jobs();
  jr->set_job_id("1a2b3c4d.0");
  jr->set_task("gsm8k");
  v1::Metric* m = jr->add_metrics();
  m->set_metric("exact_match");
  m->set_value(0.5);
  ResultsOptions o;
  o.id = "1a2b3c4d";
  Harness table(&api);
  REQUIRE(RunResults(table.ctx, o) == 0);
  CHECK(Contains(table.out.str(), "0.5000"));
  Harness json(&api);
  o.json = true;
  REQUIRE(RunResults(json.ctx, o) == 0);
  CHECK(Json::parse(json.out.str())[0]["value"] == 0.5);
  Harness csv(&api);
  o.json = false;
  o.csv = true;
  REQUIRE(RunResults(csv.ctx, o) == 0);
  CHECK(csv.out.str() ==
        "job_id,task,metric,score,value,stderr,count,partial\n"
        "1a2b3c4d.0,gsm8k,exact_match,,0.5,,,\n");
}

// ---- results --fail-under -----------------------------------------------------------------------

v1::Metric* AddMetric(v1::JobResult* jr, const std::string& metric, const std::string& score,
                      double value) {
  v1::Metric* m = jr->add_metrics();
  m->set_metric(metric);
  m->set_score(score);
  m->set_value(value);
  return m;
}

// gsm8k (one score per metric) and mmlu (accuracy has two scores), both succeeded.
FakeApi GatedResults() {
  FakeApi api;
  api.results_response.set_invocation_id("1a2b3c4d");
  v1::JobResult* g = api.results_response.add_jobs();
  g->set_job_id("1a2b3c4d.0");
  g->set_task("gsm8k");
  g->set_state(v1::JOB_STATE_SUCCEEDED);
  AddMetric(g, "exact_match", "", 0.83);
  AddMetric(g, "f1", "macro", 0.7);
  v1::JobResult* m = api.results_response.add_jobs();
  m->set_job_id("1a2b3c4d.1");
  m->set_task("mmlu");
  m->set_state(v1::JOB_STATE_SUCCEEDED);
  AddMetric(m, "accuracy", "micro", 0.6);
  AddMetric(m, "accuracy", "macro", 0.5);
  AddMetric(m, "f1", "macro", 0.9);
  return api;
}

ResultsOptions Gated(std::vector<std::string> gates) {
  ResultsOptions o;
  o.id = "1a2b3c4d";
  o.fail_under = std::move(gates);
  return o;
}

TEST_CASE("results --fail-under: a score at or above the threshold passes") {
  FakeApi api = GatedResults();
  Harness h(&api);
  REQUIRE(RunResults(h.ctx, Gated({"gsm8k.exact_match=0.83"})) == kExitOk);
  CHECK(Contains(h.out.str(), "exact_match"));  // the table is still printed
  CHECK(Contains(h.out.str(), "\nPASS gsm8k.exact_match 0.83 >= 0.83\n"));
  CHECK_FALSE(Contains(h.all(), "FAIL"));
}

TEST_CASE("results --fail-under: a score under the threshold fails with exit 7") {
  FakeApi api = GatedResults();
  Harness h(&api);
  REQUIRE(RunResults(h.ctx, Gated({"gsm8k.exact_match=0.84"})) == kExitGateFailed);
  CHECK(kExitGateFailed == 7);
  CHECK(Contains(h.out.str(), "FAIL gsm8k.exact_match 0.83 < 0.84\n"));
  CHECK(Contains(h.err.str(), "1 of 1 gate checks failed"));
}

TEST_CASE("results --fail-under: several gates, scores named, the * task") {
  FakeApi api = GatedResults();
  Harness h(&api);
  REQUIRE(RunResults(h.ctx, Gated({"gsm8k.exact_match=0.8", "mmlu.accuracy.micro=0.55",
                                   "mmlu.accuracy.macro=0.55", "*.f1=0.75",
                                   "gsm8k.f1.macro=0.5"})) == kExitGateFailed);
  std::string out = h.out.str();
  CHECK(Contains(out, "PASS gsm8k.exact_match 0.83 >= 0.8\n"));
  CHECK(Contains(out, "PASS mmlu.accuracy.micro 0.6 >= 0.55\n"));
  CHECK(Contains(out, "FAIL mmlu.accuracy.macro 0.5 < 0.55\n"));
  // `*` gates every task having the metric, one line each.
  CHECK(Contains(out, "FAIL gsm8k.f1 0.7 < 0.75\n"));
  CHECK(Contains(out, "PASS mmlu.f1 0.9 >= 0.75\n"));
  CHECK(Contains(out, "PASS gsm8k.f1.macro 0.7 >= 0.5\n"));
  CHECK(Contains(h.err.str(), "2 of 6 gate checks failed"));

  Harness ok(&api);
  CHECK(RunResults(ok.ctx, Gated({"gsm8k.exact_match=0.8", "*.f1=0.7"})) == kExitOk);
}

TEST_CASE("results --fail-under: an unknown metric or task is a usage error listing the names") {
  FakeApi api = GatedResults();
  for (std::string gate : {"gsm8k.accuracy=0.5", "nosuch.exact_match=0.5", "*.bleu=1",
                           "gsm8k.exact_match.micro=0.5"}) {
    Harness h(&api);
    INFO(gate);
    REQUIRE(RunResults(h.ctx, Gated({"gsm8k.exact_match=0.1", gate})) == kExitBadInput);
    CHECK(h.out.str().empty());  // nothing half-printed for CI to parse
    CHECK(Contains(h.err.str(),
                   "no such task.metric; available: gsm8k.exact_match, gsm8k.f1, "
                   "mmlu.accuracy.macro, mmlu.accuracy.micro, mmlu.f1\n"));
  }
  // A metric with several scores must be named with its score.
  Harness h(&api);
  REQUIRE(RunResults(h.ctx, Gated({"mmlu.accuracy=0.5"})) == kExitBadInput);
  CHECK(Contains(h.err.str(),
                 "mmlu.accuracy has several scores; name one: mmlu.accuracy.micro, "
                 "mmlu.accuracy.macro"));
  // Malformed gates are refused before asking evald.
  for (std::string gate :
       {"gsm8k.exact_match", "exact_match=0.5", "gsm8k.em=abc", "gsm8k.em=nan", "gsm8k.em="}) {
    Harness bad(&api);
    INFO(gate);
    api.calls = 0;
    CHECK(RunResults(bad.ctx, Gated({gate})) == kExitBadInput);
    CHECK(api.calls == 0);
    CHECK(Contains(bad.err.str(), "--fail-under"));
  }
}

TEST_CASE("results --fail-under: partial results and jobs without results fail the gate") {
  FakeApi api = GatedResults();
  v1::JobResult* g = api.results_response.mutable_jobs(0);
  g->set_state(v1::JOB_STATE_FAILED);
  g->set_partial(true);
  g->set_samples_scored(4);
  g->set_samples_total(10);
  v1::JobResult* none = api.results_response.add_jobs();
  none->set_job_id("1a2b3c4d.2");
  none->set_task("arith");
  none->set_state(v1::JOB_STATE_KILLED);
  Harness h(&api);
  // 0.83 >= 0.5, but a score over 4 of 10 samples is not the task's result.
  REQUIRE(RunResults(h.ctx, Gated({"gsm8k.exact_match=0.5", "arith.accuracy=0.5"})) ==
          kExitGateFailed);
  CHECK(Contains(h.out.str(),
                 "FAIL gsm8k.exact_match 0.83 vs 0.5: partial (4 of 10 samples), job failed\n"));
  CHECK(Contains(h.out.str(), "FAIL arith.accuracy: no results (job killed)\n"));

  // A succeeded job whose results.yml says partial fails too; `*` also catches the job without
  // results.
  g->set_state(v1::JOB_STATE_SUCCEEDED);
  Harness h2(&api);
  REQUIRE(RunResults(h2.ctx, Gated({"*.f1=0.1"})) == kExitGateFailed);
  CHECK(Contains(h2.out.str(), "FAIL gsm8k.f1 0.7 vs 0.1: partial (4 of 10 samples)\n"));
  CHECK(Contains(h2.out.str(), "PASS mmlu.f1 0.9 >= 0.1\n"));
  CHECK(Contains(h2.out.str(), "FAIL arith.f1: no results (job killed)\n"));

  // NaN is never >= anything.
  FakeApi nan_api = GatedResults();
  nan_api.results_response.mutable_jobs(0)->mutable_metrics(0)->set_value(std::nan(""));
  Harness h3(&nan_api);
  CHECK(RunResults(h3.ctx, Gated({"gsm8k.exact_match=0"})) == kExitGateFailed);
  CHECK(Contains(h3.out.str(), "FAIL gsm8k.exact_match nan vs 0: not a number\n"));
}

TEST_CASE("results --fail-under: an unfinished invocation is refused, not gated") {
  FakeApi api = GatedResults();
  api.results_response.mutable_jobs(1)->set_state(v1::JOB_STATE_RUNNING);
  Harness h(&api);
  REQUIRE(RunResults(h.ctx, Gated({"gsm8k.exact_match=0.5"})) == kExitRefused);
  CHECK(h.out.str().empty());
  CHECK(Contains(h.err.str(), "1a2b3c4d is not finished (1a2b3c4d.1 running)"));
  CHECK(Contains(h.err.str(), "evalctl watch 1a2b3c4d"));
  // Without gates, results of an unfinished invocation print as before.
  Harness plain(&api);
  CHECK(RunResults(plain.ctx, Gated({})) == kExitOk);
}

TEST_CASE("results --fail-under: the same task in two jobs names the job on each line") {
  FakeApi api = GatedResults();
  v1::JobResult* again = api.results_response.add_jobs();
  *again = api.results_response.jobs(0);
  again->set_job_id("1a2b3c4d.2");
  again->mutable_metrics(0)->set_value(0.2);
  Harness h(&api);
  REQUIRE(RunResults(h.ctx, Gated({"gsm8k.exact_match=0.5"})) == kExitGateFailed);
  CHECK(Contains(h.out.str(), "PASS gsm8k.exact_match 0.83 >= 0.5 (job 1a2b3c4d.0)\n"));
  CHECK(Contains(h.out.str(), "FAIL gsm8k.exact_match 0.2 < 0.5 (job 1a2b3c4d.2)\n"));
}

TEST_CASE("results --fail-under: --json holds results, gates and passed, --csv keeps stdout CSV") {
  FakeApi api = GatedResults();
  Harness h(&api);
  ResultsOptions o = Gated({"gsm8k.exact_match=0.80", "mmlu.accuracy.macro=0.55"});
  o.json = true;
  REQUIRE(RunResults(h.ctx, o) == kExitGateFailed);
  Json j = Json::parse(h.out.str());
  CHECK(j["passed"] == false);
  CHECK(j["results"].size() == 5);
  REQUIRE(j["gates"].size() == 2);
  CHECK(j["gates"][0] == Json::parse(R"({"gate": "gsm8k.exact_match=0.80",
      "key": "gsm8k.exact_match", "job_id": "1a2b3c4d.0", "value": 0.83, "threshold": 0.8,
      "passed": true, "reason": null})"));
  CHECK(j["gates"][1]["key"] == "mmlu.accuracy.macro");
  CHECK(j["gates"][1]["passed"] == false);
  CHECK(j["gates"][1]["value"] == 0.5);

  Harness pass(&api);
  o.fail_under = {"gsm8k.exact_match=0.80"};
  REQUIRE(RunResults(pass.ctx, o) == kExitOk);
  CHECK(Json::parse(pass.out.str())["passed"] == true);

  Harness csv(&api);
  o.json = false;
  o.csv = true;
  o.fail_under = {"gsm8k.exact_match=0.9"};
  REQUIRE(RunResults(csv.ctx, o) == kExitGateFailed);
  CHECK(csv.out.str().rfind("job_id,task,metric,score,value,stderr,count,partial\n", 0) == 0);
  CHECK_FALSE(Contains(csv.out.str(), "FAIL"));
  CHECK(Contains(csv.err.str(), "FAIL gsm8k.exact_match 0.83 < 0.9\n"));
}

// ---- ls / info / version -----------------------------------------------------------------------

TEST_CASE("ls runs: filters go to the server, pages are followed up to --limit") {
  FakeApi api = WithTwoInvocations();
  v1::ListInvocationsResponse p0, p1;
  *p0.add_invocations() = api.invocations["1a2b3c4d"];
  p0.set_next_page_token("1");
  *p1.add_invocations() = api.invocations["99999999"];
  p1.set_next_page_token("2");
  api.list_pages[v1::JOB_STATE_FAILED] = {p0, p1, p0};
  Harness h(&api);
  LsRunsOptions o;
  o.limit = 2;
  o.since = "7d";
  o.state = "failed";
  o.executor = "SLURM";
  REQUIRE(RunLsRuns(h.ctx, o) == 0);
  REQUIRE(api.lists.size() == 2);
  CHECK(api.lists[0].limit() == 2);
  CHECK(api.lists[1].limit() == 1);
  CHECK(api.lists[0].state() == v1::JOB_STATE_FAILED);
  CHECK(api.lists[0].executor() == "SLURM");
  CHECK(api.lists[0].since_ms() == h.now - 7 * 86400000LL);
  CHECK(Contains(h.out.str(), "1a2b3c4d"));
  CHECK(Contains(h.out.str(), "99999999"));
}

TEST_CASE("ls runs: bad input is exit 2 before any call, --limit 0 prints the header only") {
  FakeApi api;
  Harness h(&api);
  LsRunsOptions o;
  o.since = "last tuesday";
  CHECK(RunLsRuns(h.ctx, o) == kExitBadInput);
  CHECK(h.err.str() ==
        "Invalid --since value: last tuesday. Use YYYY-MM-DD, "
        "YYYY-MM-DDTHH:MM:SS, Nd or Nh\n");
  Harness h2(&api);
  o.since = "";
  o.state = "done";
  CHECK(RunLsRuns(h2.ctx, o) == kExitBadInput);
  CHECK(Contains(h2.err.str(), "invalid --state 'done'"));
  Harness h3(&api);
  o.state = "";
  o.limit = 0;
  CHECK(RunLsRuns(h3.ctx, o) == 0);
  CHECK(absl::StartsWith(h3.out.str(), "invocation_id"));
  CHECK(api.calls == 0);
}

TEST_CASE("ls tasks --json is the reference's object") {
  FakeApi api;
  v1::TaskInfo* t = api.tasks_response.add_tasks();
  t->set_name("gsm8k");
  t->set_harness("lm-evaluation-harness");
  t->set_container("nvcr.io/x:1");
  t->set_endpoint_type("completions");
  Harness h(&api);
  LsTasksOptions o;
  o.json = true;
  REQUIRE(RunLsTasks(h.ctx, o) == 0);
  CHECK(Json::parse(h.out.str()) ==
        Json::parse(R"({"tasks": [{"task": "gsm8k", "endpoint_type": "completions",
                        "harness": "lm-evaluation-harness", "container": "nvcr.io/x:1"}]})"));
}

TEST_CASE("info asks for the config and narrows to one job for a job id") {
  FakeApi api = WithTwoInvocations();
  api.invocations["1a2b3c4d"].set_config_yaml("a: 1\n");
  Harness h(&api);
  InfoOptions o;
  o.id = "1a2b3c4d.1";
  REQUIRE(RunInfo(h.ctx, o) == 0);
  CHECK(api.gets[0].include_config());
  CHECK(Contains(h.out.str(), "job 1a2b3c4d.1  mmlu"));
  CHECK_FALSE(Contains(h.out.str(), "job 1a2b3c4d.0"));
  CHECK(Contains(h.out.str(), "resolved config:"));
  Harness h2(&api);
  o.id = "nope";
  CHECK(RunInfo(h2.ctx, o) == kExitNotFound);
}

TEST_CASE("version: the daemon being down is not an error") {
  FakeApi api;
  api.info_status = absl::UnavailableError("failed to connect");
  Harness h(&api);
  CHECK(RunVersion(h.ctx) == 0);
  CHECK(absl::StartsWith(h.out.str(), std::string("evalctl ") + EvalctlVersion() + "\n"));
  CHECK(Contains(h.out.str(), "evald: not reachable (cannot reach evald at"));

  FakeApi up;
  up.info_response.set_version("0.1.0");
  up.info_response.set_api_version("evald.v1");
  Harness h2(&up);
  CHECK(RunVersion(h2.ctx) == 0);
  CHECK(
      Contains(h2.out.str(), "evald 0.1.0 (api evald.v1) at unix:///tmp/evald-test/evald.sock\n"));
}

}  // namespace
}  // namespace evald::cli
