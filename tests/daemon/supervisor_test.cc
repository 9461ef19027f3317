// ServerCore and the Supervisor with a real store, the real local executor (a stub runner) and a
// scriptable fake executor: submit, start, observe, kill, resume, lost, restart recovery, and a
// hung backend that must not delay the other executor's jobs.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "daemon/server_core.h"
#include "tests/daemon/fake_executor.h"
#include "tests/executors/local/test_util.h"

namespace evald::daemon {
namespace {

using evald::testing::FakeExecutor;
using evald::testing::Spit;
using evald::testing::TempDir;
using evald::testing::WaitFor;

// evald's own parts around a temp state dir, with a fake executor registered as "fake" whose
// jobs run for `polls` polls and then exit with `code`.
struct Daemon {
  Daemon(const TempDir& dir, int polls, int code, bool start_loop = true,
         int max_running_jobs = 64) {
    auto owned = std::make_unique<FakeExecutor>("fake");
    fake = owned.get();
    fake->ExitAfterPolls(polls, code);
    ServerConfig config;
    config.state_dir = dir.path() + "/state";
    config.configs_dir = std::string(EVALD_SOURCE_DIR) + "/configs";
    config.runner_path = dir.path() + "/runner.sh";
    config.tick = absl::Milliseconds(200);
    config.stop_grace = absl::Seconds(2);
    config.max_running_jobs = max_running_jobs;
    Spit(config.runner_path, "#!/bin/bash\nsleep 0.3\nexit 0\n", /*executable=*/true);
    REQUIRE(FinalizeServerConfig(config).ok());
    std::vector<std::unique_ptr<executors::Executor>> extra;
    extra.push_back(std::move(owned));
    absl::StatusOr<std::unique_ptr<ServerCore>> created =
        ServerCore::Create(config, nullptr, std::move(extra));
    REQUIRE(created.ok());
    core = std::move(*created);
    if (start_loop) core->StartSupervisor();
  }

  std::string Submit(const TempDir& dir, const std::string& executor, int tasks = 1,
                     Caller caller = LocalCaller(geteuid())) {
    std::string yaml = absl::StrCat(
        "execution:\n  type: ", executor, "\n  output_dir: ", dir.path(), "/out-", executor,
        "\ntarget:\n  api_endpoint:\n    url: http://127.0.0.1:9/v1/chat/completions\n"
        "    model_id: m\n    api_key_name: null\nevaluation:\n  tasks:\n");
    for (int i = 0; i < tasks; ++i) absl::StrAppend(&yaml, "    - name: native_gsm8k\n");
    v1::SubmitRequest request;
    request.set_config_yaml(yaml);
    request.set_composed(true);
    v1::SubmitResponse response;
    absl::Status s = core->Submit(caller, request, &response);
    INFO(s.ToString());
    REQUIRE(s.ok());
    return response.invocation_id();
  }

  v1::Invocation Get(const std::string& id) {
    v1::GetInvocationRequest request;
    request.set_id(id);
    v1::Invocation inv;
    REQUIRE(core->GetInvocation(request, &inv).ok());
    return inv;
  }

  v1::JobState StateOf(const std::string& id) { return Get(id).state(); }

  bool WaitState(const std::string& id, v1::JobState state, double seconds = 10) {
    return WaitFor([&] { return StateOf(id) == state; }, seconds);
  }
  // The first job's state (an invocation with a lost job is failed).
  bool WaitJobState(const std::string& id, v1::JobState state, double seconds = 10) {
    return WaitFor([&] { return Get(id).jobs(0).state() == state; }, seconds);
  }

  FakeExecutor* fake = nullptr;  // owned by core
  std::unique_ptr<ServerCore> core;
};

TEST_CASE("a fake executor's job goes pending, submitted, running, succeeded", "[supervisor]") {
  TempDir dir;
  Daemon d(dir, 2, 0);
  FakeExecutor* fake = d.fake;
  std::string id = d.Submit(dir, "fake");
  REQUIRE(d.WaitState(id, v1::JOB_STATE_SUCCEEDED));
  v1::Invocation inv = d.Get(id);
  REQUIRE(inv.jobs_size() == 1);
  CHECK(inv.jobs(0).backend_id() == absl::StrCat("fake ", inv.jobs(0).job_id(), "#1"));
  // The executor's own details reach the API (evalctl info shows them).
  CHECK(inv.jobs(0).backend_details().at("backend") == "fake");
  CHECK(inv.jobs(0).exit_code() == 0);
  CHECK(fake->starts() == 1);
  // Every step is an event, in order.
  absl::StatusOr<std::vector<EventRecord>> events = d.core->store().ListEvents(id, 0, 100);
  REQUIRE(events.ok());
  std::vector<std::string> steps;
  for (const EventRecord& e : *events) {
    if (e.kind == "job.state") steps.push_back(e.from_state + ">" + e.to_state);
  }
  CHECK(steps ==
        std::vector<std::string>{"pending>submitted", "submitted>running", "running>succeeded"});
}

TEST_CASE("kill stops a fake job through its executor, resume starts attempt 2", "[supervisor]") {
  TempDir dir;
  Daemon d(dir, 1000, 0);
  FakeExecutor* fake = d.fake;
  std::string id = d.Submit(dir, "fake");
  REQUIRE(d.WaitState(id, v1::JOB_STATE_RUNNING));
  v1::KillRequest kill;
  kill.set_id(id);
  v1::KillResponse killed;
  REQUIRE(d.core->Kill(LocalCaller(geteuid()), kill, &killed).ok());
  REQUIRE(d.WaitState(id, v1::JOB_STATE_KILLED));
  CHECK(fake->stopped() == std::vector<std::string>{id + ".0"});
  CHECK(d.Get(id).jobs(0).exit_reason() == v1::EXIT_REASON_KILLED_BY_USER);

  fake->ExitAfterPolls(1, 0);
  v1::ResumeRequest resume;
  resume.set_invocation_id(id);
  v1::ResumeResponse resumed;
  absl::Status s = d.core->Resume(LocalCaller(geteuid()), resume, &resumed);
  INFO(s.ToString());
  REQUIRE(s.ok());
  REQUIRE(d.WaitState(id, v1::JOB_STATE_SUCCEEDED));
  CHECK(fake->starts() == 2);
  CHECK(d.Get(id).jobs(0).backend_id() == absl::StrCat("fake ", id, ".0#2"));
}

TEST_CASE("a job its backend lost is lost, a start the backend refuses fails", "[supervisor]") {
  TempDir dir;
  Daemon d(dir, 1000, 0);
  FakeExecutor* fake = d.fake;
  std::string lost = d.Submit(dir, "fake");
  REQUIRE(d.WaitState(lost, v1::JOB_STATE_RUNNING));
  fake->Vanish(lost + ".0");
  REQUIRE(d.WaitJobState(lost, v1::JOB_STATE_LOST));
  CHECK(d.Get(lost).jobs(0).message() == "the fake backend lost it");

  fake->FailStarts(absl::UnavailableError("quota exceeded"));
  std::string refused = d.Submit(dir, "fake");
  REQUIRE(d.WaitState(refused, v1::JOB_STATE_FAILED));
  CHECK(d.Get(refused).jobs(0).exit_reason() == v1::EXIT_REASON_START_FAILED);
  CHECK(d.Get(refused).jobs(0).message() == "quota exceeded");
}

TEST_CASE("ReconcileOnce without the loop: Settle drives a job to its end", "[supervisor]") {
  TempDir dir;
  Daemon d(dir, 1, 3, /*start_loop=*/false);
  std::string id = d.Submit(dir, "fake", 2);
  CHECK(d.StateOf(id) == v1::JOB_STATE_PENDING);
  // One pass queues the starts; nothing is recorded until their results are applied.
  d.core->supervisor().ReconcileOnce();
  bool done = false;
  // Polls come at the executor's interval (the 200 ms tick here), not at every pass.
  for (int i = 0; i < 50 && !done; ++i) {
    d.core->supervisor().Settle(absl::Seconds(2));
    done = d.StateOf(id) == v1::JOB_STATE_FAILED;
    absl::SleepFor(absl::Milliseconds(50));
  }
  REQUIRE(done);
  v1::Invocation inv = d.Get(id);
  for (const v1::Job& job : inv.jobs()) {
    CHECK(job.state() == v1::JOB_STATE_FAILED);
    CHECK(job.exit_code() == 3);
  }
}

// The job ids started so far (queued or recorded), per invocation.
std::map<std::string, int> StartedPer(Daemon& d, const std::vector<std::string>& ids) {
  std::map<std::string, int> out;
  for (const std::string& id : ids) {
    const v1::Invocation inv = d.Get(id);
    for (const v1::Job& job : inv.jobs()) {
      out[id] += job.state() == v1::JOB_STATE_SUBMITTED || job.state() == v1::JOB_STATE_RUNNING;
    }
  }
  return out;
}

TEST_CASE("jobs start in turns between owners: one user's burst does not hold the queue",
          "[supervisor]") {
  TempDir dir;
  Daemon d(dir, 1000, 0, /*start_loop=*/false, /*max_running_jobs=*/3);
  auto as = [](const std::string& user) {
    Caller c;
    c.user = user;
    c.role = Role::kAdmin;  // not confined to output roots: this test is about start order
    c.via = "test";
    return c;
  };
  // alice's burst first: four invocations of two jobs each; then bob's one job.
  std::vector<std::string> alice;
  for (int i = 0; i < 4; ++i) {
    alice.push_back(d.Submit(dir, "fake", 2, as("alice")));
    absl::SleepFor(absl::Milliseconds(3));  // distinct creation times: oldest first
  }
  std::string bob = d.Submit(dir, "fake", 1, as("bob"));
  d.core->supervisor().ReconcileOnce();
  d.core->supervisor().Settle(absl::Seconds(5));
  std::vector<std::string> all = alice;
  all.push_back(bob);
  std::map<std::string, int> started = StartedPer(d, all);
  // Three slots: bob gets one although he came last; alice's two go to her oldest invocation.
  CHECK(started[bob] == 1);
  CHECK(started[alice[0]] == 2);
  CHECK(started[alice[1]] + started[alice[2]] + started[alice[3]] == 0);
  CHECK(d.fake->starts() == 3);
}

TEST_CASE("a restarted evald continues a fake job from its stored handle", "[supervisor]") {
  TempDir dir;
  std::string id;
  {
    Daemon d(dir, 1000, 0);
    id = d.Submit(dir, "fake");
    REQUIRE(d.WaitState(id, v1::JOB_STATE_RUNNING));
  }
  Daemon d(dir, 0, 0);  // the backend says: it finished meanwhile
  FakeExecutor* fake = d.fake;
  REQUIRE(d.WaitState(id, v1::JOB_STATE_SUCCEEDED));
  CHECK(fake->starts() == 0);  // observed from the stored handle, not started again
}

// What a Watch stream delivered, with when.
struct Watched {
  absl::Mutex mu;
  std::vector<std::pair<std::string, absl::Time>> states ABSL_GUARDED_BY(mu);
  bool ended ABSL_GUARDED_BY(mu) = false;
};

TEST_CASE("a hung backend does not delay local jobs, and their watch stays live", "[supervisor]") {
  TempDir dir;
  Daemon d(dir, 1000, 0);
  FakeExecutor* fake = d.fake;

  // Baseline: a local job alone.
  absl::Time t0 = absl::Now();
  std::string first = d.Submit(dir, "local");
  REQUIRE(d.WaitState(first, v1::JOB_STATE_SUCCEEDED));
  absl::Duration alone = absl::Now() - t0;

  // The fake backend now hangs in Poll (and would answer in 60 s at best).
  std::string stuck = d.Submit(dir, "fake");
  REQUIRE(d.WaitState(stuck, v1::JOB_STATE_RUNNING));
  fake->HangPolls(true);
  REQUIRE(WaitFor([&] { return fake->in_call(); }, 5));

  Watched watched;
  t0 = absl::Now();
  std::string second = d.Submit(dir, "local");
  std::thread watcher([&] {
    v1::WatchRequest request;
    request.set_id(second);
    StreamSink<v1::WatchEvent> sink;
    sink.cancelled = [] { return false; };
    sink.write = [&](const v1::WatchEvent& e) {
      absl::MutexLock lock(&watched.mu);
      if (e.has_event() && e.event().kind() == "job.state") {
        watched.states.emplace_back(e.event().to_state(), absl::Now());
      }
      return true;
    };
    d.core->Watch(request, sink).IgnoreError();
    absl::MutexLock lock(&watched.mu);
    watched.ended = true;
  });
  bool finished = d.WaitState(second, v1::JOB_STATE_SUCCEEDED, 10);
  absl::Duration with_hang = absl::Now() - t0;
  bool watch_ended = WaitFor(
      [&] {
        absl::MutexLock lock(&watched.mu);
        return watched.ended;
      },
      5);
  CHECK(fake->in_call());  // still hung all along
  CHECK(d.StateOf(stuck) == v1::JOB_STATE_RUNNING);
  fake->Release();
  watcher.join();
  REQUIRE(finished);
  REQUIRE(watch_ended);
  INFO("local job alone " << absl::FormatDuration(alone) << ", beside a hung backend "
                          << absl::FormatDuration(with_hang));
  // Same order of time: the run script's 0.3 s plus a few passes, never a backend's hang.
  CHECK(with_hang < alone + absl::Seconds(1));
  absl::MutexLock lock(&watched.mu);
  std::vector<std::string> seen;
  for (const auto& [state, when] : watched.states) seen.push_back(state);
  CHECK(seen.back() == "succeeded");
  CHECK(std::find(seen.begin(), seen.end(), "submitted") != seen.end());
}

TEST_CASE("a slow backend is polled at its own pace, not once per pass", "[supervisor]") {
  TempDir dir;
  Daemon d(dir, 1000, 0);
  FakeExecutor* fake = d.fake;
  fake->SetPollLatency(absl::Milliseconds(700));
  std::string id = d.Submit(dir, "fake");
  REQUIRE(d.WaitState(id, v1::JOB_STATE_RUNNING));
  int before = fake->polls();
  absl::SleepFor(absl::Seconds(2));
  int polls = fake->polls() - before;
  // One poll in flight at a time: at most one per 700 ms, though passes run every 200 ms.
  CHECK(polls <= 4);
  CHECK(polls >= 1);
  fake->Release();
}

}  // namespace
}  // namespace evald::daemon
