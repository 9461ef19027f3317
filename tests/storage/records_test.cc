// Round trips of every record type through the Store, with every field set, plus the validation
// of CreateInvocation, results, events and progress.
#include <cmath>
#include <limits>

#include "storage_test_util.h"

namespace evald::storage {
namespace {

using testing::Contains;
using testing::CountRows;
using testing::CreateSimple;
using testing::MakeDeployment;
using testing::MakeInvocation;
using testing::MakeJobs;
using testing::OpenStore;
using testing::TempDir;

void RequireSameInvocation(const InvocationRecord& got, const InvocationRecord& want) {
  REQUIRE(got.id == want.id);
  REQUIRE(got.executor == want.executor);
  REQUIRE(got.state == want.state);
  REQUIRE(got.desired == want.desired);
  REQUIRE(got.config_yaml == want.config_yaml);
  REQUIRE(got.run_dir == want.run_dir);
  REQUIRE(got.mode == want.mode);
  REQUIRE(got.tasks == want.tasks);
  REQUIRE(got.secret_names == want.secret_names);
  REQUIRE(got.client == want.client);
  REQUIRE(got.created_ms == want.created_ms);
  REQUIRE(got.updated_ms == want.updated_ms);
  REQUIRE(got.ended_ms == want.ended_ms);
}

void RequireSameJob(const JobRecord& got, const JobRecord& want) {
  REQUIRE(got.id == want.id);
  REQUIRE(got.invocation_id == want.invocation_id);
  REQUIRE(got.index == want.index);
  REQUIRE(got.task == want.task);
  REQUIRE(got.harness == want.harness);
  REQUIRE(got.endpoint_type == want.endpoint_type);
  REQUIRE(got.container == want.container);
  REQUIRE(got.state == want.state);
  REQUIRE(got.desired == want.desired);
  REQUIRE(got.exit_reason == want.exit_reason);
  REQUIRE(got.exit_code == want.exit_code);
  REQUIRE(got.message == want.message);
  REQUIRE(got.output_dir == want.output_dir);
  REQUIRE(got.spec_yaml == want.spec_yaml);
  REQUIRE(got.handle.version == want.handle.version);
  REQUIRE(got.handle.executor == want.handle.executor);
  REQUIRE(got.handle.state == want.handle.state);
  REQUIRE(got.attempt == want.attempt);
  REQUIRE(got.progress_done == want.progress_done);
  REQUIRE(got.progress_total == want.progress_total);
  REQUIRE(got.progress_errors == want.progress_errors);
  REQUIRE(got.progress_rate == want.progress_rate);
  REQUIRE(got.progress_updated_ms == want.progress_updated_ms);
  REQUIRE(got.created_ms == want.created_ms);
  REQUIRE(got.submitted_ms == want.submitted_ms);
  REQUIRE(got.started_ms == want.started_ms);
  REQUIRE(got.ended_ms == want.ended_ms);
}

void RequireSameDeployment(const DeploymentRecord& got, const DeploymentRecord& want) {
  REQUIRE(got.id == want.id);
  REQUIRE(got.invocation_id == want.invocation_id);
  REQUIRE(got.job_id == want.job_id);
  REQUIRE(got.type == want.type);
  REQUIRE(got.state == want.state);
  REQUIRE(got.desired == want.desired);
  REQUIRE(got.spec_yaml == want.spec_yaml);
  REQUIRE(got.command == want.command);
  REQUIRE(got.url == want.url);
  REQUIRE(got.health_url == want.health_url);
  REQUIRE(got.port == want.port);
  REQUIRE(got.handle.version == want.handle.version);
  REQUIRE(got.handle.executor == want.handle.executor);
  REQUIRE(got.handle.state == want.handle.state);
  REQUIRE(got.log_path == want.log_path);
  REQUIRE(got.message == want.message);
  REQUIRE(got.created_ms == want.created_ms);
  REQUIRE(got.started_ms == want.started_ms);
  REQUIRE(got.healthy_ms == want.healthy_ms);
  REQUIRE(got.ended_ms == want.ended_ms);
}

// Doubles compare equal, or are both NaN.
bool SameDouble(double a, double b) { return (std::isnan(a) && std::isnan(b)) || a == b; }

TEST_CASE("Invocation jobs and deployments round-trip with every field") {
  TempDir dir;
  auto store = OpenStore(dir);

  InvocationRecord inv;
  inv.id = "3f9a0c1e";
  inv.executor = "SLURM";
  inv.state = JobState::kPending;
  inv.desired = DesiredState::kRun;
  inv.config_yaml = std::string("execution:\n  type: slurm\nweird: \"\xc3\xa9\\t\"\n") +
                    std::string("nul\0inside", 10);
  inv.run_dir = "/out/20260101_120000-3f9a0c1e";
  inv.mode = "sequential";
  inv.tasks = {"gsm8k", "lm-evaluation-harness.mmlu", "quote\"and\\slash", ""};
  inv.secret_names = {"API_KEY", "HF_TOKEN"};
  inv.client = "ci-pipeline@host";
  inv.created_ms = 1700000000123;

  std::vector<JobRecord> jobs;
  for (int i = 0; i < 4; ++i) {
    JobRecord j;
    j.id = JobId(inv.id, i);
    j.invocation_id = inv.id;
    j.index = i;
    j.task = inv.tasks[i];
    j.harness = i % 2 ? "lm-evaluation-harness" : "native";
    j.endpoint_type = i % 2 ? "completions" : "chat";
    j.container = i % 2 ? "nvcr.io/nvidia/eval-factory/lm-eval:25.01" : "";
    j.state = JobState::kPending;
    j.desired = i == 3 ? DesiredState::kStop : DesiredState::kRun;
    j.exit_reason = i == 2 ? ExitReason::kPreempted : ExitReason::kNone;
    if (i == 1) j.exit_code = -9;
    j.message = absl::StrCat("message ", i);
    j.output_dir = absl::StrCat(inv.run_dir, "/", j.task);
    j.spec_yaml = absl::StrCat("spec: ", i, "\n");
    j.handle = {3, "slurm", absl::StrCat("{\"job\": ", 1000 + i, "}")};
    j.attempt = i;
    j.progress_done = 10 * i;
    j.progress_total = 100;
    j.progress_errors = i;
    j.progress_rate = i == 3 ? std::numeric_limits<double>::infinity() : 1.25 * i;
    j.progress_updated_ms = 1700000000200 + i;
    j.created_ms = 1700000000100 + i;
    j.submitted_ms = 11 + i;
    j.started_ms = 12 + i;
    j.ended_ms = 13 + i;
    jobs.push_back(j);
  }
  DeploymentRecord shared = MakeDeployment(inv.id, 0);
  shared.url = "http://127.0.0.1:8000";
  shared.health_url = "http://127.0.0.1:8000/health";
  shared.port = 8000;
  shared.handle = {2, "local", "pid=42"};
  shared.message = "queued";
  shared.created_ms = 1700000000300;
  shared.started_ms = 1;
  shared.healthy_ms = 2;
  shared.ended_ms = 3;
  shared.desired = DesiredState::kStop;
  DeploymentRecord per_job = MakeDeployment(inv.id, 1, jobs[2].id);
  per_job.type = "sglang";
  per_job.created_ms = 1700000000301;

  std::vector<EventRecord> events;
  REQUIRE_OK(store->CreateInvocation(inv, jobs, {shared, per_job}, {}, 1700000000999, &events));

  auto view = store->GetInvocation(inv.id);
  REQUIRE_OK(view);
  InvocationRecord want = inv;
  want.updated_ms = 1700000000999;
  RequireSameInvocation(view->invocation, want);
  REQUIRE(view->jobs.size() == jobs.size());
  for (size_t i = 0; i < jobs.size(); ++i) {
    INFO("job " << i);
    RequireSameJob(view->jobs[i], jobs[i]);
    auto one = store->GetJob(jobs[i].id);
    REQUIRE_OK(one);
    RequireSameJob(*one, jobs[i]);
  }
  REQUIRE(view->deployments.size() == 2);
  RequireSameDeployment(view->deployments[0], shared);
  RequireSameDeployment(view->deployments[1], per_job);

  REQUIRE(events.size() == 1);
  REQUIRE(events[0].kind == "invocation.submitted");
  REQUIRE(events[0].invocation_id == inv.id);
  REQUIRE(events[0].to_state == "pending");
  REQUIRE(events[0].time_ms == 1700000000999);
  REQUIRE(events[0].seq > 0);
  REQUIRE(view->last_event_seq == events[0].seq);
}

TEST_CASE("Created timestamps default to now and state is derived from the jobs") {
  TempDir dir;
  auto store = OpenStore(dir);
  InvocationRecord inv = MakeInvocation("00000001", 0);
  inv.state = JobState::kSucceeded;  // ignored: derived from the jobs
  std::vector<JobRecord> jobs = MakeJobs(inv);
  jobs[0].invocation_id.clear();  // filled in
  DeploymentRecord d = MakeDeployment(inv.id, 0);
  d.invocation_id.clear();
  REQUIRE_OK(store->CreateInvocation(inv, jobs, {d}, {}, 5555, nullptr));
  auto view = store->GetInvocation(inv.id);
  REQUIRE_OK(view);
  REQUIRE(view->invocation.created_ms == 5555);
  REQUIRE(view->invocation.state == JobState::kPending);
  REQUIRE(view->jobs[0].created_ms == 5555);
  REQUIRE(view->jobs[0].invocation_id == inv.id);
  REQUIRE(view->deployments[0].invocation_id == inv.id);
  REQUIRE(view->deployments[0].created_ms == 5555);
}

TEST_CASE("CreateInvocation rejects bad records and writes nothing") {
  TempDir dir;
  auto store = OpenStore(dir);
  const std::string db = dir / "state/evald.db";
  InvocationRecord inv = MakeInvocation("0000abcd", 1000);
  std::vector<JobRecord> jobs = MakeJobs(inv);

  SECTION("bad invocation id") {
    InvocationRecord bad = inv;
    bad.id = "XYZ";
    REQUIRE_CODE(store->CreateInvocation(bad, jobs, {}, {}, 1, nullptr),
                 absl::StatusCode::kInvalidArgument);
  }
  SECTION("no jobs") {
    REQUIRE_CODE(store->CreateInvocation(inv, {}, {}, {}, 1, nullptr),
                 absl::StatusCode::kInvalidArgument);
  }
  SECTION("job id does not match its index") {
    jobs[1].id = JobId(inv.id, 7);
    REQUIRE_CODE(store->CreateInvocation(inv, jobs, {}, {}, 1, nullptr),
                 absl::StatusCode::kInvalidArgument);
  }
  SECTION("job not pending") {
    jobs[1].state = JobState::kRunning;
    REQUIRE_CODE(store->CreateInvocation(inv, jobs, {}, {}, 1, nullptr),
                 absl::StatusCode::kInvalidArgument);
  }
  SECTION("deployment of another invocation") {
    DeploymentRecord d = MakeDeployment("0000ffff", 0);
    REQUIRE_CODE(store->CreateInvocation(inv, jobs, {d}, {}, 1, nullptr),
                 absl::StatusCode::kInvalidArgument);
  }
  SECTION("deployment naming an unknown job") {
    DeploymentRecord d = MakeDeployment(inv.id, 0, "0000abcd.9");
    REQUIRE_CODE(store->CreateInvocation(inv, jobs, {d}, {}, 1, nullptr),
                 absl::StatusCode::kInvalidArgument);
  }
  SECTION("two deployments with one id: the whole invocation is rolled back") {
    DeploymentRecord d = MakeDeployment(inv.id, 0);
    REQUIRE_CODE(store->CreateInvocation(inv, jobs, {d, d}, {{"K", "v"}}, 1, nullptr),
                 absl::StatusCode::kAlreadyExists);
  }
  SECTION("a secret with an empty name: rolled back") {
    REQUIRE_CODE(store->CreateInvocation(inv, jobs, {}, {{"", "v"}}, 1, nullptr),
                 absl::StatusCode::kInvalidArgument);
  }
  SECTION("a task name that is not UTF-8") {
    inv.tasks[0] = "bad\xff";
    REQUIRE_CODE(store->CreateInvocation(inv, jobs, {}, {}, 1, nullptr),
                 absl::StatusCode::kInvalidArgument);
  }
  for (const char* table : {"invocations", "jobs", "deployments", "secrets", "events"}) {
    INFO(table);
    REQUIRE(CountRows(db, table) == 0);
  }
}

TEST_CASE("A duplicate invocation id is AlreadyExists and keeps the first") {
  TempDir dir;
  auto store = OpenStore(dir);
  CreateSimple(*store, "00000002", 1000, "local");
  InvocationRecord again = MakeInvocation("00000002", 2000, "slurm", 1);
  absl::Status s = store->CreateInvocation(again, MakeJobs(again), {}, {}, 2000, nullptr);
  REQUIRE_CODE(s, absl::StatusCode::kAlreadyExists);
  REQUIRE(Contains(std::string(s.message()), "00000002"));
  auto view = store->GetInvocation("00000002");
  REQUIRE_OK(view);
  REQUIRE(view->invocation.executor == "local");
  REQUIRE(view->jobs.size() == 2);
  REQUIRE(CountRows(dir / "state/evald.db", "events") == 1);
}

TEST_CASE("Unknown ids are NotFound") {
  TempDir dir;
  auto store = OpenStore(dir);
  REQUIRE_CODE(store->GetInvocation("deadbeef"), absl::StatusCode::kNotFound);
  REQUIRE_CODE(store->GetJob("deadbeef.0"), absl::StatusCode::kNotFound);
  REQUIRE_CODE(store->GetResults("deadbeef"), absl::StatusCode::kNotFound);
  REQUIRE_CODE(store->GetResults("deadbeef.0"), absl::StatusCode::kNotFound);
  REQUIRE_CODE(store->PutResults("deadbeef.0", {}), absl::StatusCode::kNotFound);
  REQUIRE_CODE(store->GetSecrets("deadbeef"), absl::StatusCode::kNotFound);
  REQUIRE_CODE(store->PutSecrets("deadbeef", {{"K", "v"}}), absl::StatusCode::kNotFound);
  REQUIRE_CODE(store->ListEvents("deadbeef", 0, 10), absl::StatusCode::kNotFound);
  REQUIRE_CODE(store->MarkStarting("deadbeef.0", 1), absl::StatusCode::kNotFound);
  REQUIRE_CODE(store->TransitionJob(
                   testing::Move("deadbeef.0", JobState::kPending, JobState::kSubmitted), 1),
               absl::StatusCode::kNotFound);
}

ResultRecord MakeResult(const std::string& task, const std::string& metric, double value) {
  ResultRecord r;
  r.task = task;
  r.metric = metric;
  r.score = "micro";
  r.value = value;
  return r;
}

TEST_CASE("Results round-trip with every field and NaN") {
  TempDir dir;
  auto store = OpenStore(dir);
  CreateSimple(*store, "00000003", 1000, "local", 2);

  ResultRecord full = MakeResult("gsm8k", "exact_match", 0.75);
  full.has_stats = true;
  full.count = 1319;
  full.mean = 0.75;
  full.stderr_ = std::numeric_limits<double>::quiet_NaN();
  full.stddev = 0.43;
  full.min = 0;
  full.max = 1;
  full.sum = 989.25;
  ResultRecord plain = MakeResult("gsm8k", "flexible", 0.5);
  plain.score = "";
  plain.job_id = "00000003.1";  // matching ids are accepted
  plain.invocation_id = "00000003";
  REQUIRE_OK(store->PutResults("00000003.1", {full, plain}));
  REQUIRE_OK(store->PutResults("00000003.0", {MakeResult("mmlu", "acc", 0.5)}));

  auto by_job = store->GetResults("00000003.1");
  REQUIRE_OK(by_job);
  REQUIRE(by_job->size() == 2);
  const ResultRecord& got = (*by_job)[0];
  REQUIRE(got.job_id == "00000003.1");
  REQUIRE(got.invocation_id == "00000003");
  REQUIRE(got.task == "gsm8k");
  REQUIRE(got.metric == "exact_match");
  REQUIRE(got.score == "micro");
  REQUIRE(got.value == 0.75);
  REQUIRE(got.has_stats);
  REQUIRE(got.count == 1319);
  REQUIRE(got.mean == 0.75);
  REQUIRE(std::isnan(got.stderr_));
  REQUIRE(got.stddev == 0.43);
  REQUIRE(got.min == 0);
  REQUIRE(got.max == 1);
  REQUIRE(got.sum == 989.25);
  REQUIRE((*by_job)[1].metric == "flexible");
  REQUIRE((*by_job)[1].score.empty());
  REQUIRE_FALSE((*by_job)[1].has_stats);

  // By invocation: job index order, then put order.
  auto by_inv = store->GetResults("00000003");
  REQUIRE_OK(by_inv);
  REQUIRE(by_inv->size() == 3);
  REQUIRE((*by_inv)[0].job_id == "00000003.0");
  REQUIRE((*by_inv)[1].metric == "exact_match");
  REQUIRE((*by_inv)[2].metric == "flexible");

  // Putting again replaces the job's rows only.
  REQUIRE_OK(store->PutResults("00000003.1", {MakeResult("gsm8k", "exact_match", 0.8)}));
  by_inv = store->GetResults("00000003");
  REQUIRE_OK(by_inv);
  REQUIRE(by_inv->size() == 2);
  REQUIRE(SameDouble((*by_inv)[1].value, 0.8));
}

TEST_CASE("Results naming another job are rejected") {
  TempDir dir;
  auto store = OpenStore(dir);
  CreateSimple(*store, "00000004", 1000, "local", 2);
  ResultRecord r = MakeResult("t", "m", 1);
  r.job_id = "00000004.0";
  REQUIRE_CODE(store->PutResults("00000004.1", {r}), absl::StatusCode::kInvalidArgument);
  auto got = store->GetResults("00000004");
  REQUIRE_OK(got);
  REQUIRE(got->empty());
}

TEST_CASE("Events append with increasing seq and list by invocation") {
  TempDir dir;
  auto store = OpenStore(dir);
  CreateSimple(*store, "00000005", 1000);
  CreateSimple(*store, "00000006", 2000);

  EventRecord e;
  e.seq = 999;  // ignored
  e.time_ms = 3000;
  e.invocation_id = "00000005";
  e.job_id = "00000005.1";
  e.kind = "job.info";
  e.from_state = "a";
  e.to_state = "b";
  e.message = "line one\nline two";
  auto appended = store->AppendEvent(e);
  REQUIRE_OK(appended);
  REQUIRE(appended->seq != 999);

  auto all = store->ListEvents("", 0, 0);
  REQUIRE_OK(all);
  REQUIRE(all->size() == 3);
  for (size_t i = 1; i < all->size(); ++i) REQUIRE((*all)[i].seq > (*all)[i - 1].seq);
  const EventRecord& last = all->back();
  REQUIRE(last.seq == appended->seq);
  REQUIRE(last.time_ms == 3000);
  REQUIRE(last.invocation_id == "00000005");
  REQUIRE(last.job_id == "00000005.1");
  REQUIRE(last.kind == "job.info");
  REQUIRE(last.from_state == "a");
  REQUIRE(last.to_state == "b");
  REQUIRE(last.message == "line one\nline two");

  auto mine = store->ListEvents("00000005", 0, 10);
  REQUIRE_OK(mine);
  REQUIRE(mine->size() == 2);
  auto after = store->ListEvents("00000005", (*mine)[0].seq, 10);
  REQUIRE_OK(after);
  REQUIRE(after->size() == 1);
  REQUIRE((*after)[0].seq == appended->seq);
  auto limited = store->ListEvents("", 0, 1);
  REQUIRE_OK(limited);
  REQUIRE(limited->size() == 1);

  EventRecord no_kind = e;
  no_kind.kind.clear();
  REQUIRE_CODE(store->AppendEvent(no_kind), absl::StatusCode::kInvalidArgument);
  EventRecord unknown = e;
  unknown.invocation_id = "0badf00d";
  REQUIRE_CODE(store->AppendEvent(unknown), absl::StatusCode::kNotFound);
  EventRecord global = e;
  global.invocation_id.clear();
  global.job_id.clear();
  REQUIRE_OK(store->AppendEvent(global));
}

TEST_CASE("The events table refuses UPDATE and DELETE") {
  TempDir dir;
  auto store = OpenStore(dir);
  CreateSimple(*store, "00000007", 1000);
  auto raw = testing::Raw(dir / "state/evald.db");
  REQUIRE_THROWS_AS(raw->exec("UPDATE events SET message = 'rewritten'"), SQLite::Exception);
  REQUIRE_THROWS_AS(raw->exec("DELETE FROM events"), SQLite::Exception);
  REQUIRE(CountRows(dir / "state/evald.db", "events") == 1);
}

TEST_CASE("Progress updates the job row only and names unknown jobs") {
  TempDir dir;
  auto store = OpenStore(dir);
  CreateSimple(*store, "00000008", 1000);
  const int64_t events_before = CountRows(dir / "state/evald.db", "events");
  ProgressUpdate p;
  p.job_id = "00000008.1";
  p.done = 40;
  p.total = 200;
  p.errors = 2;
  p.rate = 3.5;
  p.updated_ms = 4242;
  ProgressUpdate unknown = p;
  unknown.job_id = "00000008.9";
  absl::Status s = store->UpdateProgress({p, unknown});
  REQUIRE_CODE(s, absl::StatusCode::kNotFound);
  REQUIRE(Contains(std::string(s.message()), "00000008.9"));
  auto job = store->GetJob("00000008.1");
  REQUIRE_OK(job);
  REQUIRE(job->progress_done == 40);
  REQUIRE(job->progress_total == 200);
  REQUIRE(job->progress_errors == 2);
  REQUIRE(job->progress_rate == 3.5);
  REQUIRE(job->progress_updated_ms == 4242);
  REQUIRE(CountRows(dir / "state/evald.db", "events") == events_before);
  REQUIRE_OK(store->UpdateProgress({}));
}

TEST_CASE("A row with an unknown state is DataLoss, not a guess") {
  TempDir dir;
  auto store = OpenStore(dir);
  CreateSimple(*store, "00000009", 1000);
  testing::Raw(dir / "state/evald.db")
      ->exec("UPDATE jobs SET state = 'levitating' WHERE id = '00000009.1'");
  auto job = store->GetJob("00000009.1");
  REQUIRE_CODE(job, absl::StatusCode::kDataLoss);
  REQUIRE(Contains(std::string(job.status().message()), "levitating"));
  REQUIRE(Contains(std::string(job.status().message()), "00000009.1"));
  REQUIRE_OK(store->GetJob("00000009.0"));
}

TEST_CASE("Export rows: one invocation's by job and destination, and only the due pending ones") {
  TempDir dir;
  auto store = OpenStore(dir);
  CreateSimple(*store, "0000000a", 1000);
  CreateSimple(*store, "0000000b", 1000);
  auto row = [](const std::string& job, const std::string& dest, const std::string& state,
                int64_t next) {
    return JobExportRecord{.job_id = job,
                           .dest = dest,
                           .invocation_id = job.substr(0, 8),
                           .state = state,
                           .created_ms = 1000,
                           .updated_ms = 1000,
                           .next_attempt_ms = next};
  };
  REQUIRE_OK(store->PutExport(row("0000000a.1", "mlflow", "pending", 3000)));
  REQUIRE_OK(store->PutExport(row("0000000a.0", "mlflow", "pending", 2000)));
  REQUIRE_OK(store->PutExport(row("0000000a.0", "local", "succeeded", 0)));
  REQUIRE_OK(store->PutExport(row("0000000b.0", "mlflow", "pending", 5000)));
  REQUIRE_OK(store->PutExport(row("0000000b.1", "local", "failed", 0)));

  absl::StatusOr<std::vector<JobExportRecord>> a = store->ListExports("0000000a");
  REQUIRE_OK(a);
  std::vector<std::string> keys;
  for (const JobExportRecord& r : *a) keys.push_back(r.job_id + " " + r.dest);
  CHECK(keys ==
        std::vector<std::string>{"0000000a.0 local", "0000000a.0 mlflow", "0000000a.1 mlflow"});

  // Due at 3000: the two pending rows of a, oldest attempt first; not b's (due at 5000), not the
  // ended ones.
  absl::StatusOr<std::vector<JobExportRecord>> due = store->ListDueExports(3000);
  REQUIRE_OK(due);
  keys.clear();
  for (const JobExportRecord& r : *due) keys.push_back(r.job_id + " " + r.dest);
  CHECK(keys == std::vector<std::string>{"0000000a.0 mlflow", "0000000a.1 mlflow"});
  due = store->ListDueExports(10000);
  REQUIRE_OK(due);
  CHECK(due->size() == 3);
}

}  // namespace
}  // namespace evald::storage
