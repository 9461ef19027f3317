// Store::TransitionJob / TransitionDeployment (state + event in one transaction, compare-and-set,
// illegal edges, derived invocation state), RequestStop, MarkStarting and the active lists.
#include "storage_test_util.h"

namespace evald::storage {
namespace {

using testing::CountRows;
using testing::CreateSimple;
using testing::MakeDeployment;
using testing::MakeInvocation;
using testing::MakeJobs;
using testing::Move;
using testing::OpenStore;
using testing::TempDir;

std::vector<EventRecord> Events(Store& store, const std::string& inv) {
  auto events = store.ListEvents(inv, 0, 0);
  REQUIRE_OK(events);
  return *events;
}

TEST_CASE("A legal job transition writes state and event together") {
  TempDir dir;
  auto store = OpenStore(dir);
  CreateSimple(*store, "10000001", 1000);

  JobTransition t = Move("10000001.0", JobState::kPending, JobState::kSubmitted);
  t.handle = JobHandle{2, "local", "pid=4242 start=99"};
  t.output_dir = "/runs/x/task_0";
  t.message = "started by local executor";
  auto events = store->TransitionJob(t, 2000);
  REQUIRE_OK(events);

  // Returned events: the job's, then the invocation's derived change.
  REQUIRE(events->size() == 2);
  REQUIRE((*events)[0].kind == "job.state");
  REQUIRE((*events)[0].job_id == "10000001.0");
  REQUIRE((*events)[0].invocation_id == "10000001");
  REQUIRE((*events)[0].from_state == "pending");
  REQUIRE((*events)[0].to_state == "submitted");
  REQUIRE((*events)[0].message == "started by local executor");
  REQUIRE((*events)[0].time_ms == 2000);
  REQUIRE((*events)[1].kind == "invocation.state");
  REQUIRE((*events)[1].job_id.empty());
  REQUIRE((*events)[1].from_state == "pending");
  REQUIRE((*events)[1].to_state == "submitted");

  // Both are really stored.
  auto job = store->GetJob("10000001.0");
  REQUIRE_OK(job);
  REQUIRE(job->state == JobState::kSubmitted);
  REQUIRE(job->handle.version == 2);
  REQUIRE(job->handle.executor == "local");
  REQUIRE(job->handle.state == "pid=4242 start=99");
  REQUIRE(job->output_dir == "/runs/x/task_0");
  REQUIRE(job->message == "started by local executor");
  REQUIRE(job->submitted_ms == 2000);
  REQUIRE(job->started_ms == 0);
  REQUIRE(job->ended_ms == 0);
  std::vector<EventRecord> stored = Events(*store, "10000001");
  REQUIRE(stored.size() == 3);  // submitted + job.state + invocation.state
  REQUIRE(stored[1].seq == (*events)[0].seq);
  REQUIRE(stored[1].to_state == "submitted");
  REQUIRE(stored[2].seq == (*events)[1].seq);

  auto view = store->GetInvocation("10000001");
  REQUIRE_OK(view);
  REQUIRE(view->invocation.state == JobState::kSubmitted);
  REQUIRE(view->invocation.updated_ms == 2000);
  REQUIRE(view->invocation.ended_ms == 0);
  REQUIRE(view->last_event_seq == stored.back().seq);
}

TEST_CASE("Running and ending a job set started_ms ended_ms exit code and reason") {
  TempDir dir;
  auto store = OpenStore(dir);
  CreateSimple(*store, "10000002", 1000, "local", 1);
  REQUIRE_OK(
      store->TransitionJob(Move("10000002.0", JobState::kPending, JobState::kSubmitted), 2000));
  REQUIRE_OK(
      store->TransitionJob(Move("10000002.0", JobState::kSubmitted, JobState::kRunning), 3000));
  auto job = store->GetJob("10000002.0");
  REQUIRE_OK(job);
  REQUIRE(job->started_ms == 3000);
  REQUIRE(job->submitted_ms == 2000);

  JobTransition done = Move("10000002.0", JobState::kRunning, JobState::kFailed);
  done.reason = ExitReason::kExitCode;
  done.exit_code = 3;
  done.message = "exit code 3";
  auto events = store->TransitionJob(done, 4000);
  REQUIRE_OK(events);
  REQUIRE(events->size() == 2);
  REQUIRE((*events)[1].kind == "invocation.state");
  REQUIRE((*events)[1].from_state == "running");
  REQUIRE((*events)[1].to_state == "failed");

  job = store->GetJob("10000002.0");
  REQUIRE_OK(job);
  REQUIRE(job->state == JobState::kFailed);
  REQUIRE(job->exit_reason == ExitReason::kExitCode);
  REQUIRE(job->exit_code == 3);
  REQUIRE(job->ended_ms == 4000);
  REQUIRE(job->started_ms == 3000);
  auto view = store->GetInvocation("10000002");
  REQUIRE_OK(view);
  REQUIRE(view->invocation.state == JobState::kFailed);
  REQUIRE(view->invocation.ended_ms == 4000);
}

// A job submitted at 2000 and seen next at 2500 already in `to`, never having shown kRunning.
JobRecord SubmittedThenSeen(JobState to) {
  TempDir dir;
  auto store = OpenStore(dir);
  CreateSimple(*store, "10000003", 1000, "local", 1);
  REQUIRE_OK(
      store->TransitionJob(Move("10000003.0", JobState::kPending, JobState::kSubmitted), 2000));
  REQUIRE_OK(store->TransitionJob(Move("10000003.0", JobState::kSubmitted, to), 2500));
  auto job = store->GetJob("10000003.0");
  REQUIRE_OK(job);
  return *job;
}

TEST_CASE("A job that ran between two observations starts at its submission") {
  JobRecord job = SubmittedThenSeen(JobState::kSucceeded);
  REQUIRE(job.started_ms == 2000);
  REQUIRE(job.submitted_ms == 2000);
  REQUIRE(job.ended_ms == 2500);
}

TEST_CASE("A job killed before it ran keeps started_ms at 0") {
  JobRecord job = SubmittedThenSeen(JobState::kKilled);
  REQUIRE(job.started_ms == 0);
  REQUIRE(job.ended_ms == 2500);
}

TEST_CASE("Pending straight to running also sets submitted_ms") {
  TempDir dir;
  auto store = OpenStore(dir);
  CreateSimple(*store, "10000004", 1000, "local", 1);
  REQUIRE_OK(
      store->TransitionJob(Move("10000004.0", JobState::kPending, JobState::kRunning), 2000));
  auto job = store->GetJob("10000004.0");
  REQUIRE_OK(job);
  REQUIRE(job->submitted_ms == 2000);
  REQUIRE(job->started_ms == 2000);
}

TEST_CASE("A stale from is Aborted and writes nothing") {
  TempDir dir;
  auto store = OpenStore(dir);
  CreateSimple(*store, "10000005", 1000);
  const std::string db = dir / "state/evald.db";
  const std::string before = testing::ReadFileBytes(db) + testing::ReadFileBytes(db + "-wal");
  const int64_t events_before = CountRows(db, "events");

  JobTransition t = Move("10000005.0", JobState::kRunning, JobState::kSucceeded);
  t.exit_code = 0;
  auto r = store->TransitionJob(t, 2000);
  REQUIRE_CODE(r, absl::StatusCode::kAborted);
  REQUIRE(testing::Contains(std::string(r.status().message()), "10000005.0"));

  auto job = store->GetJob("10000005.0");
  REQUIRE_OK(job);
  REQUIRE(job->state == JobState::kPending);
  REQUIRE_FALSE(job->exit_code.has_value());
  REQUIRE(job->ended_ms == 0);
  REQUIRE(CountRows(db, "events") == events_before);
  auto view = store->GetInvocation("10000005");
  REQUIRE_OK(view);
  REQUIRE(view->invocation.updated_ms == 1000);
  REQUIRE(testing::ReadFileBytes(db) + testing::ReadFileBytes(db + "-wal") == before);
}

TEST_CASE("An illegal edge is Internal and writes nothing") {
  TempDir dir;
  auto store = OpenStore(dir);
  CreateSimple(*store, "10000006", 1000);
  const std::string db = dir / "state/evald.db";
  const int64_t events_before = CountRows(db, "events");
  // pending -> succeeded is not an edge, even though the row is pending.
  REQUIRE_CODE(
      store->TransitionJob(Move("10000006.0", JobState::kPending, JobState::kSucceeded), 2000),
      absl::StatusCode::kInternal);
  // from == to is not an edge either.
  REQUIRE_CODE(
      store->TransitionJob(Move("10000006.0", JobState::kPending, JobState::kPending), 2000),
      absl::StatusCode::kInternal);
  auto job = store->GetJob("10000006.0");
  REQUIRE_OK(job);
  REQUIRE(job->state == JobState::kPending);
  REQUIRE(CountRows(db, "events") == events_before);
}

TEST_CASE("The invocation state is derived from all its jobs") {
  TempDir dir;
  auto store = OpenStore(dir);
  CreateSimple(*store, "10000007", 1000, "local", 3);
  auto state = [&] {
    auto v = store->GetInvocation("10000007");
    REQUIRE_OK(v);
    return v->invocation;
  };
  REQUIRE_OK(
      store->TransitionJob(Move("10000007.0", JobState::kPending, JobState::kRunning), 2000));
  REQUIRE(state().state == JobState::kRunning);
  REQUIRE_OK(
      store->TransitionJob(Move("10000007.0", JobState::kRunning, JobState::kSucceeded), 3000));
  // A finished job with others still pending: running, not ended.
  auto events =
      store->TransitionJob(Move("10000007.1", JobState::kPending, JobState::kKilled), 3500);
  REQUIRE_OK(events);
  REQUIRE(events->size() == 1);  // no invocation.state: still running
  REQUIRE(state().state == JobState::kRunning);
  REQUIRE(state().ended_ms == 0);
  REQUIRE(state().updated_ms == 3500);
  JobTransition lost = Move("10000007.2", JobState::kPending, JobState::kSubmitted);
  REQUIRE_OK(store->TransitionJob(lost, 3600));
  REQUIRE_OK(store->TransitionJob(Move("10000007.2", JobState::kSubmitted, JobState::kLost), 4000));
  REQUIRE(state().state == JobState::kFailed);  // lost counts as failed
  REQUIRE(state().ended_ms == 4000);
  // The lost job turns out to have succeeded: the invocation is now killed (one job killed).
  events = store->TransitionJob(Move("10000007.2", JobState::kLost, JobState::kSucceeded), 5000);
  REQUIRE_OK(events);
  REQUIRE(events->size() == 2);
  REQUIRE((*events)[1].from_state == "failed");
  REQUIRE((*events)[1].to_state == "killed");
  REQUIRE(state().state == JobState::kKilled);
  REQUIRE(state().ended_ms == 5000);
}

TEST_CASE("Resume clears the exit fields and sets desired run") {
  TempDir dir;
  auto store = OpenStore(dir);
  CreateSimple(*store, "10000008", 1000, "local", 1);
  REQUIRE_OK(store->MarkStarting("10000008.0", 1500));
  JobTransition sub = Move("10000008.0", JobState::kPending, JobState::kSubmitted);
  sub.handle = JobHandle{1, "local", "pid=1"};
  sub.output_dir = "/runs/a/task_0";
  REQUIRE_OK(store->TransitionJob(sub, 2000));
  REQUIRE_OK(
      store->TransitionJob(Move("10000008.0", JobState::kSubmitted, JobState::kRunning), 2100));
  ProgressUpdate p;
  p.job_id = "10000008.0";
  p.done = 5;
  p.total = 10;
  p.updated_ms = 2200;
  REQUIRE_OK(store->UpdateProgress({p}));
  auto stop = store->RequestStop("10000008", 2300, nullptr);
  REQUIRE_OK(stop);
  JobTransition kill = Move("10000008.0", JobState::kRunning, JobState::kKilled);
  kill.reason = ExitReason::kKilledByUser;
  kill.exit_code = 143;
  kill.message = "killed by user";
  REQUIRE_OK(store->TransitionJob(kill, 2400));
  auto view = store->GetInvocation("10000008");
  REQUIRE_OK(view);
  REQUIRE(view->invocation.state == JobState::kKilled);
  REQUIRE(view->invocation.desired == DesiredState::kStop);

  auto events =
      store->TransitionJob(Move("10000008.0", JobState::kKilled, JobState::kPending), 3000);
  REQUIRE_OK(events);
  auto job = store->GetJob("10000008.0");
  REQUIRE_OK(job);
  REQUIRE(job->state == JobState::kPending);
  REQUIRE(job->desired == DesiredState::kRun);
  REQUIRE(job->exit_reason == ExitReason::kNone);
  REQUIRE_FALSE(job->exit_code.has_value());
  REQUIRE(job->message.empty());
  REQUIRE(job->ended_ms == 0);
  REQUIRE(job->started_ms == 0);
  REQUIRE(job->submitted_ms == 0);
  REQUIRE(job->handle.executor.empty());
  REQUIRE(job->progress_done == 0);
  REQUIRE(job->attempt == 1);                    // the next start increments it
  REQUIRE(job->output_dir == "/runs/a/task_0");  // kept for the executor
  view = store->GetInvocation("10000008");
  REQUIRE_OK(view);
  REQUIRE(view->invocation.state == JobState::kPending);
  REQUIRE(view->invocation.desired == DesiredState::kRun);
  REQUIRE(view->invocation.ended_ms == 0);
  REQUIRE(events->back().kind == "invocation.state");
  REQUIRE(events->back().from_state == "killed");
  REQUIRE(events->back().to_state == "pending");
}

TEST_CASE("MarkStarting counts attempts and only for pending jobs") {
  TempDir dir;
  auto store = OpenStore(dir);
  CreateSimple(*store, "10000009", 1000, "local", 1);
  REQUIRE_OK(store->MarkStarting("10000009.0", 1100));
  REQUIRE_OK(store->MarkStarting("10000009.0", 1200));
  auto job = store->GetJob("10000009.0");
  REQUIRE_OK(job);
  REQUIRE(job->attempt == 2);
  // The executor is recorded, the handle state is not known yet.
  REQUIRE(job->handle.executor == "local");
  REQUIRE(job->handle.state.empty());
  auto view = store->GetInvocation("10000009");
  REQUIRE_OK(view);
  REQUIRE(view->invocation.updated_ms == 1200);
  REQUIRE_OK(
      store->TransitionJob(Move("10000009.0", JobState::kPending, JobState::kRunning), 1300));
  REQUIRE_CODE(store->MarkStarting("10000009.0", 1400), absl::StatusCode::kAborted);
  job = store->GetJob("10000009.0");
  REQUIRE_OK(job);
  REQUIRE(job->attempt == 2);
}

TEST_CASE("MarkStarting records a job.starting event and refuses a job that is not pending") {
  TempDir dir;
  auto store = OpenStore(dir);
  CreateSimple(*store, "1000000b", 1000, "local", 1);
  const size_t before = Events(*store, "1000000b").size();
  REQUIRE_OK(store->MarkStarting("1000000b.0", 1100));
  std::vector<EventRecord> events = Events(*store, "1000000b");
  REQUIRE(events.size() == before + 1);
  const EventRecord& e = events.back();
  CHECK(e.kind == "job.starting");
  CHECK(e.job_id == "1000000b.0");
  CHECK(e.invocation_id == "1000000b");
  CHECK(e.from_state == "pending");
  CHECK(e.to_state == "pending");
  CHECK(e.message == "starting attempt 1");
  CHECK(e.time_ms == 1100);
  // The job's state stays pending: starting is not a state of its own.
  auto job = store->GetJob("1000000b.0");
  REQUIRE_OK(job);
  CHECK(job->state == JobState::kPending);

  REQUIRE_OK(
      store->TransitionJob(Move("1000000b.0", JobState::kPending, JobState::kSubmitted), 1200));
  const size_t after_submit = Events(*store, "1000000b").size();
  REQUIRE_CODE(store->MarkStarting("1000000b.0", 1300), absl::StatusCode::kAborted);
  // Refused: no event, no new attempt.
  CHECK(Events(*store, "1000000b").size() == after_submit);
  job = store->GetJob("1000000b.0");
  REQUIRE_OK(job);
  CHECK(job->attempt == 1);
  CHECK(job->state == JobState::kSubmitted);

  // A resumed job starts again as attempt 2.
  REQUIRE_OK(
      store->TransitionJob(Move("1000000b.0", JobState::kSubmitted, JobState::kFailed), 1400));
  REQUIRE_OK(store->TransitionJob(Move("1000000b.0", JobState::kFailed, JobState::kPending), 1500));
  REQUIRE_OK(store->MarkStarting("1000000b.0", 1600));
  CHECK(Events(*store, "1000000b").back().message == "starting attempt 2");
}

TEST_CASE("Deployment transitions write fields timestamps and events") {
  TempDir dir;
  auto store = OpenStore(dir);
  InvocationRecord inv = MakeInvocation("1000000a", 1000, "local", 1);
  REQUIRE_OK(
      store->CreateInvocation(inv, MakeJobs(inv), {MakeDeployment(inv.id, 0)}, {}, 1000, nullptr));
  DeploymentTransition start;
  start.deployment_id = "1000000a.d0";
  start.from = DeploymentState::kPending;
  start.to = DeploymentState::kStarting;
  start.handle = JobHandle{1, "local", "pid=77"};
  start.port = 8123;
  start.url = "http://127.0.0.1:8123";
  start.health_url = "http://127.0.0.1:8123/health";
  start.command = "vllm serve m --port 8123";
  start.message = "launching";
  auto events = store->TransitionDeployment(start, 2000);
  REQUIRE_OK(events);
  REQUIRE(events->size() == 1);
  const EventRecord& ev = (*events)[0];
  REQUIRE(ev.kind == "deployment.state");
  REQUIRE(ev.invocation_id == "1000000a");
  REQUIRE(ev.job_id.empty());
  REQUIRE(ev.from_state == "pending");
  REQUIRE(ev.to_state == "starting");
  REQUIRE(ev.message == "1000000a.d0: launching");

  DeploymentTransition healthy;
  healthy.deployment_id = "1000000a.d0";
  healthy.from = DeploymentState::kStarting;
  healthy.to = DeploymentState::kHealthy;
  REQUIRE_OK(store->TransitionDeployment(healthy, 3000));
  auto view = store->GetInvocation("1000000a");
  REQUIRE_OK(view);
  const DeploymentRecord& d = view->deployments[0];
  REQUIRE(d.state == DeploymentState::kHealthy);
  REQUIRE(d.port == 8123);
  REQUIRE(d.url == "http://127.0.0.1:8123");
  REQUIRE(d.health_url == "http://127.0.0.1:8123/health");
  REQUIRE(d.command == "vllm serve m --port 8123");
  REQUIRE(d.handle.state == "pid=77");
  REQUIRE(d.started_ms == 2000);
  REQUIRE(d.healthy_ms == 3000);
  REQUIRE(d.ended_ms == 0);
  REQUIRE(view->invocation.updated_ms == 3000);
  auto active = store->ListActiveDeployments();
  REQUIRE_OK(active);
  REQUIRE(active->size() == 1);

  // Stale from and illegal edge change nothing.
  REQUIRE_CODE(store->TransitionDeployment(start, 3500), absl::StatusCode::kAborted);
  DeploymentTransition illegal = healthy;
  illegal.from = DeploymentState::kHealthy;
  illegal.to = DeploymentState::kStarting;
  REQUIRE_CODE(store->TransitionDeployment(illegal, 3500), absl::StatusCode::kInternal);
  auto still = store->GetInvocation("1000000a");
  REQUIRE_OK(still);
  REQUIRE(still->deployments[0].state == DeploymentState::kHealthy);

  DeploymentTransition stop;
  stop.deployment_id = "1000000a.d0";
  stop.from = DeploymentState::kHealthy;
  stop.to = DeploymentState::kStopped;
  events = store->TransitionDeployment(stop, 4000);
  REQUIRE_OK(events);
  REQUIRE((*events)[0].message == "1000000a.d0");
  view = store->GetInvocation("1000000a");
  REQUIRE_OK(view);
  REQUIRE(view->deployments[0].ended_ms == 4000);
  active = store->ListActiveDeployments();
  REQUIRE_OK(active);
  REQUIRE(active->empty());
  // Deployment changes do not change the invocation's derived state.
  REQUIRE(view->invocation.state == JobState::kPending);
}

TEST_CASE("RequestStop of an invocation stops every unfinished job and deployment") {
  TempDir dir;
  auto store = OpenStore(dir);
  InvocationRecord inv = MakeInvocation("1000000b", 1000, "local", 3);
  REQUIRE_OK(store->CreateInvocation(
      inv, MakeJobs(inv), {MakeDeployment(inv.id, 0), MakeDeployment(inv.id, 1, "1000000b.2")}, {},
      1000, nullptr));
  REQUIRE_OK(
      store->TransitionJob(Move("1000000b.0", JobState::kPending, JobState::kRunning), 1100));
  REQUIRE_OK(
      store->TransitionJob(Move("1000000b.0", JobState::kRunning, JobState::kSucceeded), 1200));
  DeploymentTransition fail;
  fail.deployment_id = "1000000b.d1";
  fail.from = DeploymentState::kPending;
  fail.to = DeploymentState::kFailed;
  REQUIRE_OK(store->TransitionDeployment(fail, 1250));

  std::vector<EventRecord> events;
  auto ids = store->RequestStop("1000000b", 1300, &events);
  REQUIRE_OK(ids);
  REQUIRE(*ids == std::vector<std::string>{"1000000b.1", "1000000b.2"});
  REQUIRE(events.size() == 1);
  REQUIRE(events[0].kind == "invocation.kill_requested");
  REQUIRE(events[0].invocation_id == "1000000b");
  REQUIRE(events[0].job_id.empty());

  auto view = store->GetInvocation("1000000b");
  REQUIRE_OK(view);
  REQUIRE(view->invocation.desired == DesiredState::kStop);
  REQUIRE(view->jobs[0].desired == DesiredState::kRun);  // already finished
  REQUIRE(view->jobs[1].desired == DesiredState::kStop);
  REQUIRE(view->jobs[2].desired == DesiredState::kStop);
  REQUIRE(view->deployments[0].desired == DesiredState::kStop);
  REQUIRE(view->deployments[1].desired == DesiredState::kRun);  // already failed
  // Observed states are untouched: the supervisor does the stopping.
  REQUIRE(view->jobs[1].state == JobState::kPending);
  REQUIRE(view->last_event_seq == events[0].seq);
}

TEST_CASE("RequestStop of one job changes that job only") {
  TempDir dir;
  auto store = OpenStore(dir);
  CreateSimple(*store, "1000000c", 1000, "local", 2);
  std::vector<EventRecord> events;
  auto ids = store->RequestStop("1000000c.1", 1100, &events);
  REQUIRE_OK(ids);
  REQUIRE(*ids == std::vector<std::string>{"1000000c.1"});
  REQUIRE(events.size() == 1);
  REQUIRE(events[0].kind == "job.kill_requested");
  REQUIRE(events[0].job_id == "1000000c.1");
  auto view = store->GetInvocation("1000000c");
  REQUIRE_OK(view);
  REQUIRE(view->jobs[0].desired == DesiredState::kRun);
  REQUIRE(view->jobs[1].desired == DesiredState::kStop);
  REQUIRE(view->invocation.desired == DesiredState::kRun);
}

TEST_CASE("RequestStop of unknown or finished ids") {
  TempDir dir;
  auto store = OpenStore(dir);
  CreateSimple(*store, "1000000d", 1000, "local", 1);
  REQUIRE_CODE(store->RequestStop("0badf00d", 1, nullptr), absl::StatusCode::kNotFound);
  REQUIRE_CODE(store->RequestStop("1000000d.5", 1, nullptr), absl::StatusCode::kNotFound);
  REQUIRE_CODE(store->RequestStop("", 1, nullptr), absl::StatusCode::kNotFound);

  REQUIRE_OK(
      store->TransitionJob(Move("1000000d.0", JobState::kPending, JobState::kRunning), 1100));
  REQUIRE_OK(
      store->TransitionJob(Move("1000000d.0", JobState::kRunning, JobState::kSucceeded), 1200));
  const int64_t events_before = CountRows(dir / "state/evald.db", "events");
  std::vector<EventRecord> events;
  auto inv = store->RequestStop("1000000d", 1300, &events);
  REQUIRE_CODE(inv, absl::StatusCode::kFailedPrecondition);
  REQUIRE(std::string(inv.status().message()) ==
          "invocation 1000000d already finished (succeeded)");
  auto job = store->RequestStop("1000000d.0", 1300, &events);
  REQUIRE_CODE(job, absl::StatusCode::kFailedPrecondition);
  REQUIRE(events.empty());
  REQUIRE(CountRows(dir / "state/evald.db", "events") == events_before);
  auto view = store->GetInvocation("1000000d");
  REQUIRE_OK(view);
  REQUIRE(view->invocation.desired == DesiredState::kRun);
}

TEST_CASE("ListActiveJobs is the supervisor's work list") {
  TempDir dir;
  auto store = OpenStore(dir);
  CreateSimple(*store, "1000000e", 1000, "local", 4);
  CreateSimple(*store, "1000000f", 2000, "local", 1);
  // .0 running, .1 killed after a stop request, .2 failed without ever starting (terminal: not
  // active), .3 pending.
  REQUIRE_OK(
      store->TransitionJob(Move("1000000e.0", JobState::kPending, JobState::kRunning), 1100));
  REQUIRE_OK(store->RequestStop("1000000e.1", 1150, nullptr));
  REQUIRE_OK(store->TransitionJob(Move("1000000e.1", JobState::kPending, JobState::kKilled), 1200));
  REQUIRE_OK(store->TransitionJob(Move("1000000e.2", JobState::kPending, JobState::kFailed), 1300));
  // 1000000f.0 started and succeeded: not active.
  REQUIRE_OK(store->MarkStarting("1000000f.0", 2050));
  REQUIRE_OK(
      store->TransitionJob(Move("1000000f.0", JobState::kPending, JobState::kRunning), 2100));
  REQUIRE_OK(
      store->TransitionJob(Move("1000000f.0", JobState::kRunning, JobState::kSucceeded), 2200));
  auto active = store->ListActiveJobs();
  REQUIRE_OK(active);
  std::vector<std::string> ids;
  for (const JobRecord& j : *active) ids.push_back(j.id);
  REQUIRE(ids == std::vector<std::string>{"1000000e.0", "1000000e.3"});
}

}  // namespace
}  // namespace evald::storage
