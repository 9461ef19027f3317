// Every output format of evalctl, without a server.
#include "cli/format.h"

#include <catch2/catch.hpp>
#include <cstdlib>
#include <ctime>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "fake_api.h"

namespace evald::cli {
namespace {

using testing::MakeInvocation;
using testing::MakeJob;

constexpr int64_t kNow = 1767225600000;  // 2026-01-01T00:00:00Z

// Local-time formatting and --since parsing are checked in UTC.
struct UtcZone {
  UtcZone() {
    setenv("TZ", "UTC", 1);
    tzset();
  }
};

std::vector<std::string> Lines(const std::string& text) { return absl::StrSplit(text, '\n'); }

TEST_CASE("state names are lower-case and parse back") {
  for (const char* name :
       {"pending", "submitted", "running", "succeeded", "failed", "killed", "lost"}) {
    auto s = ParseStateName(name);
    REQUIRE(s.has_value());
    CHECK(StateName(*s) == name);
  }
  CHECK(StateName(v1::JOB_STATE_UNSPECIFIED) == "unknown");
  CHECK_FALSE(ParseStateName("RUNNING").has_value());
  CHECK_FALSE(ParseStateName("success").has_value());
  CHECK(IsTerminal(v1::JOB_STATE_LOST));
  CHECK_FALSE(IsTerminal(v1::JOB_STATE_SUBMITTED));
  CHECK(IsJobId("1a2b3c4d.0"));
  CHECK_FALSE(IsJobId("1a2b3c4d"));
}

TEST_CASE("evalctl's names and terminality are core's for every API enum value") {
  for (int i = v1::JobState_MIN; i <= v1::JobState_MAX; ++i) {
    auto wire = static_cast<v1::JobState>(i);
    std::optional<JobState> core = FromProto(wire);
    INFO(i);
    if (!core) {
      CHECK(wire == v1::JOB_STATE_UNSPECIFIED);
      CHECK(StateName(wire) == "unknown");
      CHECK_FALSE(IsTerminal(wire));
      continue;
    }
    CHECK(ToProto(*core) == wire);
    CHECK(StateName(wire) == ToString(*core));
    CHECK(IsTerminal(wire) == evald::IsTerminal(*core));
  }
  for (int i = v1::DeploymentState_MIN; i <= v1::DeploymentState_MAX; ++i) {
    auto wire = static_cast<v1::DeploymentState>(i);
    std::optional<DeploymentState> core = FromProto(wire);
    CHECK(DeploymentStateName(wire) == (core ? std::string(ToString(*core)) : "unknown"));
  }
  for (int i = v1::ExitReason_MIN; i <= v1::ExitReason_MAX; ++i) {
    auto wire = static_cast<v1::ExitReason>(i);
    std::optional<ExitReason> core = FromProto(wire);
    REQUIRE(core.has_value());
    CHECK(ToProto(*core) == wire);
    CHECK(ExitReasonName(wire) == (*core == ExitReason::kNone ? "" : ToString(*core)));
  }
  CHECK(ExitReasonName(v1::EXIT_REASON_KILLED_BY_USER) == "killed_by_user");
  CHECK(DeploymentStateName(v1::DEPLOYMENT_STATE_STARTING) == "starting");
}

TEST_CASE("durations and ages are compact") {
  CHECK(FormatDuration(850) == "850ms");
  CHECK(FormatDuration(42000) == "42s");
  CHECK(FormatDuration(3 * 60000 + 12000) == "3m12s");
  CHECK(FormatDuration(2 * 3600000 + 5 * 60000) == "2h05m");
  CHECK(FormatDuration(3 * 86400000LL + 4 * 3600000) == "3d4h");
  CHECK(FormatDuration(-5) == "0ms");
  CHECK(FormatAge(0, kNow) == "-");
  CHECK(FormatAge(kNow - 500, kNow) == "just now");
  CHECK(FormatAge(kNow - 5 * 60000, kNow) == "5m ago");
  CHECK(FormatAge(kNow - 3 * 3600000, kNow) == "3h ago");
  CHECK(FormatAge(kNow - 2 * 86400000LL, kNow) == "2d ago");
}

TEST_CASE("local times are ISO without fractions") {
  UtcZone utc;
  CHECK(FormatLocalTime(kNow + 1234) == "2026-01-01T00:00:01");
  CHECK(FormatLocalTime(0) == "-");
}

TEST_CASE("since: accepts dates, date-times and relative days or hours") {
  UtcZone utc;
  CHECK(ParseSince("2026-01-01", kNow).value() == kNow);
  CHECK(ParseSince("2025-12-31T23:00:00", kNow).value() == kNow - 3600000);
  CHECK(ParseSince("2024-02-29", kNow).ok());  // leap day
  CHECK(ParseSince("7d", kNow).value() == kNow - 7 * 86400000LL);
  CHECK(ParseSince("12h", kNow).value() == kNow - 12 * 3600000LL);
  CHECK(ParseSince("0h", kNow).value() == kNow);
}

TEST_CASE("since: rejects anything else with the reference's message") {
  for (const char* bad :
       {"", "yesterday", "5x", "d", "-1d", "1.5d", "2025-13-01", "2025-02-29", "2025-04-31",
        "2025-1-01", "2025-01-01 10:00:00", "2025-01-01T24:00:00", "2025-01-01T10:60:00",
        "2025-01-01T10:00", "20250101", "99999999d", "1969-12-31"}) {
    absl::StatusOr<int64_t> r = ParseSince(bad, kNow);
    INFO(bad);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(std::string(r.status().message()) ==
          std::string("Invalid --since value: ") + bad +
              ". Use YYYY-MM-DD, YYYY-MM-DDTHH:MM:SS, Nd or Nh");
  }
}

TEST_CASE("progress text and bars") {
  v1::Progress p;
  CHECK(FormatProgress(p) == "-");
  p.set_done(120);
  CHECK(FormatProgress(p) == "120");
  p.set_total(500);
  CHECK(FormatProgress(p) == "120/500 (24%)");
  p.set_done(600);  // more than announced: capped at 100%
  CHECK(FormatProgress(p) == "600/500 (100%)");

  CHECK(RenderProgressBar(0, 0, 12) == "[----------]");
  CHECK(RenderProgressBar(5, 10, 12) == "[#####-----]");
  CHECK(RenderProgressBar(10, 10, 12) == "[##########]");
  CHECK(RenderProgressBar(99, 10, 12) == "[##########]");
  CHECK(RenderProgressBar(1, 3, 5) == "[#--]");
  CHECK(RenderProgressBar(5, 0, 7) == "[-----]");  // unknown total
  CHECK(RenderProgressBar(1, 2, 0).size() == 3);   // never narrower than one cell
}

TEST_CASE("the exit column") {
  v1::Job j = MakeJob("a.0", "t", v1::JOB_STATE_RUNNING);
  CHECK(FormatExit(j) == "-");
  j.set_state(v1::JOB_STATE_SUCCEEDED);
  j.set_exit_reason(v1::EXIT_REASON_EXIT_CODE);
  j.set_exit_code(0);
  CHECK(FormatExit(j) == "0");
  j.set_state(v1::JOB_STATE_FAILED);
  j.set_exit_code(3);
  CHECK(FormatExit(j) == "3");
  j.set_exit_reason(v1::EXIT_REASON_TIMEOUT);
  j.set_exit_code(137);
  CHECK(FormatExit(j) == "timeout (137)");
  j.clear_exit_code();
  j.set_exit_reason(v1::EXIT_REASON_KILLED_BY_USER);
  CHECK(FormatExit(j) == "killed_by_user");
}

TEST_CASE("tables align columns and underline the header") {
  Table t({"a", "long_header", "c"});
  t.AddRow({"xxxx", "y", "last column is not padded"});
  CHECK(t.Render() ==
        "a     long_header  c\n"
        "----  -----------  -------------------------\n"
        "xxxx  y            last column is not padded\n");
}

TEST_CASE("status table: invocation header then one row per job") {
  v1::Job j0 = MakeJob("1a2b3c4d.0", "gsm8k", v1::JOB_STATE_RUNNING);
  j0.mutable_progress()->set_done(120);
  j0.mutable_progress()->set_total(500);
  v1::Job j1 = MakeJob("1a2b3c4d.1", "mmlu", v1::JOB_STATE_FAILED);
  j1.set_exit_reason(v1::EXIT_REASON_EXIT_CODE);
  j1.set_exit_code(2);
  std::string out =
      RenderStatusTable({MakeInvocation("1a2b3c4d", v1::JOB_STATE_RUNNING, {j0, j1})}, kNow);
  std::vector<std::string> lines = Lines(out);
  REQUIRE(lines.size() >= 5);
  CHECK(lines[0] == "invocation 1a2b3c4d: running, created 5m ago, executor local");
  CHECK(absl::StartsWith(lines[1], "job_id      task   state    progress       exit  output_dir"));
  CHECK(lines[3] ==
        "1a2b3c4d.0  gsm8k  running  120/500 (24%)  -     /out/20260101_000000-1a2b3c4d/gsm8k");
  CHECK(lines[4] ==
        "1a2b3c4d.1  mmlu   failed   -              2     "
        "/out/20260101_000000-1a2b3c4d/mmlu");
}

TEST_CASE("status JSON has exactly the documented shape") {
  v1::Job j0 = MakeJob("1a2b3c4d.0", "gsm8k", v1::JOB_STATE_SUCCEEDED);
  j0.mutable_progress()->set_done(10);
  j0.mutable_progress()->set_total(10);
  j0.mutable_progress()->set_rate(2.5);
  j0.set_exit_reason(v1::EXIT_REASON_EXIT_CODE);
  j0.set_exit_code(0);
  v1::Job j1 = MakeJob("1a2b3c4d.1", "mmlu", v1::JOB_STATE_PENDING);
  Json j = InvocationStatusJson(MakeInvocation("1a2b3c4d", v1::JOB_STATE_RUNNING, {j0, j1}));
  CHECK(j["invocation_id"] == "1a2b3c4d");
  CHECK(j["state"] == "running");
  REQUIRE(j["jobs"].is_array());
  REQUIRE(j["jobs"].size() == 2);
  const Json& job = j["jobs"][0];
  CHECK(job["job_id"] == "1a2b3c4d.0");
  CHECK(job["task"] == "gsm8k");
  CHECK(job["state"] == "succeeded");
  CHECK(job["output_dir"] == "/out/20260101_000000-1a2b3c4d/gsm8k");
  CHECK(job["progress"] == Json::parse(R"({"done": 10, "total": 10, "rate": 2.5})"));
  CHECK(job["progress"].size() == 3);
  CHECK(job["exit_code"] == 0);
  CHECK(job["exit_reason"] == "exit_code");
  CHECK(j["jobs"][1]["state"] == "pending");
  CHECK(j["jobs"][1]["exit_code"].is_null());
  CHECK(j["jobs"][1]["progress"]["done"] == 0);
  // Keys print in the documented order.
  std::string dumped = j.dump();
  CHECK(dumped.find("\"invocation_id\"") < dumped.find("\"state\""));
  CHECK(dumped.find("\"state\"") < dumped.find("\"jobs\""));
}

TEST_CASE("submit JSON: jobs, and for a dry run the config and every script") {
  v1::SubmitResponse r;
  r.set_invocation_id("1a2b3c4d");
  r.set_run_dir("/out/run");
  v1::JobRef* j = r.add_jobs();
  j->set_job_id("1a2b3c4d.0");
  j->set_task("gsm8k");
  j->set_output_dir("/out/run/gsm8k");
  j->set_script("#!/bin/bash\necho hi\n");
  Json plain = SubmitJson(r);
  CHECK(plain["invocation_id"] == "1a2b3c4d");
  CHECK(plain["jobs"][0]["job_id"] == "1a2b3c4d.0");
  CHECK(plain["jobs"][0]["task"] == "gsm8k");
  CHECK_FALSE(plain.contains("config"));
  CHECK_FALSE(plain["jobs"][0].contains("script"));

  r.set_dry_run(true);
  r.set_config_yaml("execution:\n  type: local\n");
  Json dry = SubmitJson(r);
  CHECK(dry["dry_run"] == true);
  CHECK(dry["config"] == "execution:\n  type: local\n");
  CHECK(dry["jobs"][0]["script"] == "#!/bin/bash\necho hi\n");
}

TEST_CASE("human submit output: id, one line per job, follow-up commands") {
  v1::SubmitResponse r;
  r.set_invocation_id("1a2b3c4d");
  v1::JobRef* j = r.add_jobs();
  j->set_job_id("1a2b3c4d.0");
  j->set_task("gsm8k");
  j->set_output_dir("/out/gsm8k");
  std::string out = RenderSubmitted(r);
  CHECK(absl::StrContains(out, "Submitted invocation 1a2b3c4d (1 job)"));
  CHECK(absl::StrContains(out, "1a2b3c4d.0  gsm8k  /out/gsm8k"));
  CHECK(absl::StrContains(out, "evalctl watch 1a2b3c4d"));
  CHECK(absl::StrContains(out, "evalctl status 1a2b3c4d"));
  CHECK(absl::StrContains(out, "evalctl kill 1a2b3c4d"));

  r.set_dry_run(true);
  r.set_config_yaml("a: 1\n");
  r.mutable_jobs(0)->set_script("echo run\n");
  r.set_deployment_command("vllm serve m");
  std::string dry = RenderDryRun(r);
  size_t config_at = dry.find("a: 1");
  size_t banner_at = dry.find("job 1a2b3c4d.0: gsm8k");
  size_t script_at = dry.find("echo run");
  size_t deploy_at = dry.find("vllm serve m");
  CHECK(config_at < banner_at);
  CHECK(banner_at < script_at);
  CHECK(script_at < deploy_at);
  CHECK(deploy_at != std::string::npos);
  CHECK(absl::StrContains(dry, "nothing was stored or started"));
}

v1::GetResultsResponse SampleResults() {
  v1::GetResultsResponse r;
  r.set_invocation_id("1a2b3c4d");
  v1::JobResult* jr = r.add_jobs();
  jr->set_job_id("1a2b3c4d.0");
  jr->set_task("gsm8k");
  jr->set_state(v1::JOB_STATE_SUCCEEDED);
  v1::Metric* m = jr->add_metrics();
  m->set_task("gsm8k");
  m->set_metric("exact_match");
  m->set_score("strict, match");
  m->set_value(0.85);
  m->mutable_stats()->set_stderr(0.0123);
  m->mutable_stats()->set_count(1319);
  v1::Metric* m2 = jr->add_metrics();
  m2->set_metric("say \"hi\"");
  m2->set_value(12.5);
  v1::JobResult* pending = r.add_jobs();
  pending->set_job_id("1a2b3c4d.1");
  pending->set_task("mmlu");
  pending->set_state(v1::JOB_STATE_RUNNING);
  return r;
}

TEST_CASE("results JSON: one object per metric, null stats when absent") {
  Json j = ResultsJson(SampleResults());
  REQUIRE(j.is_array());
  REQUIRE(j.size() == 2);
  CHECK(j[0] == Json::parse(R"({"job_id": "1a2b3c4d.0", "task": "gsm8k", "metric": "exact_match",
                                "score": "strict, match", "value": 0.85, "stderr": 0.0123,
                                "count": 1319})"));
  CHECK(j[1]["task"] == "gsm8k");  // the job's task when results.yml did not name one
  CHECK(j[1]["stderr"].is_null());
  CHECK(j[1]["count"].is_null());
}

TEST_CASE("CSV fields follow RFC 4180 quoting") {
  CHECK(CsvField("plain") == "plain");
  CHECK(CsvField("") == "");
  CHECK(CsvField("a,b") == "\"a,b\"");
  CHECK(CsvField("say \"hi\"") == "\"say \"\"hi\"\"\"");
  CHECK(CsvField("two\nlines") == "\"two\nlines\"");
  CHECK(CsvField("cr\r") == "\"cr\r\"");
  CHECK(ResultsCsv(SampleResults()) ==
        "job_id,task,metric,score,value,stderr,count,partial\n"
        "1a2b3c4d.0,gsm8k,exact_match,\"strict, match\",0.85,0.0123,1319,\n"
        "1a2b3c4d.0,gsm8k,\"say \"\"hi\"\"\",,12.5,,,\n");
}

TEST_CASE("results of a job that stopped early are marked partial in every format") {
  v1::GetResultsResponse r = SampleResults();
  v1::JobResult* jr = r.mutable_jobs(0);
  jr->set_state(v1::JOB_STATE_FAILED);
  jr->set_partial(true);
  jr->set_samples_scored(3);
  jr->set_samples_total(10);
  std::string table = RenderResultsTable(r);
  CHECK(absl::StrContains(table, "1a2b3c4d.0: partial (3 of 10 samples), job failed\n"));
  Json j = ResultsJson(r);
  CHECK(j[0]["partial"] == true);
  CHECK(j[0]["samples_scored"] == 3);
  CHECK(j[0]["samples_total"] == 10);
  CHECK(absl::StrContains(ResultsCsv(r), ",1319,true\n"));
  // Complete results carry no note.
  CHECK_FALSE(absl::StrContains(RenderResultsTable(SampleResults()), "partial"));
  CHECK_FALSE(ResultsJson(SampleResults())[0].contains("partial"));
}

TEST_CASE("results table lists metrics, then jobs without results") {
  std::string out = RenderResultsTable(SampleResults());
  std::vector<std::string> lines = Lines(out);
  CHECK(absl::StartsWith(lines[0], "job_id"));
  CHECK(absl::StrContains(lines[0], "± stderr"));
  // "±" is two bytes but one column: the dashes match the header's display width.
  CHECK(absl::StrContains(lines[1], "  --------  "));
  CHECK_FALSE(absl::StrContains(lines[1], "  ---------  "));
  CHECK(absl::StrContains(out, "0.8500"));
  CHECK(absl::StrContains(out, "± 0.0123"));
  CHECK(absl::StrContains(out, "1319"));
  CHECK(absl::StrContains(out, "no results yet: 1a2b3c4d.1 (running)"));
  CHECK(RenderResultsTable(v1::GetResultsResponse()) == "No results.\n");
}

v1::ListTasksResponse SampleTasks() {
  v1::ListTasksResponse r;
  auto add = [&r](const char* name, const char* ep, const char* harness, const char* container) {
    v1::TaskInfo* t = r.add_tasks();
    t->set_name(name);
    t->set_endpoint_type(ep);
    t->set_harness(harness);
    t->set_container(container);
  };
  add("truthfulqa", "chat", "lm-eval", "nvcr.io/lm-eval:25.08.1");
  add("garak", "chat", "garak", "nvcr.io/garak:25.08.1");
  add("arc", "completions", "lm-eval", "nvcr.io/lm-eval:25.08.1");
  add("task3", "chat", "lm-eval", "other-container");
  return r;
}

TEST_CASE("ls tasks JSON is exactly the reference's shape") {
  Json j = TasksJson(SampleTasks());
  REQUIRE(j.size() == 1);
  REQUIRE(j["tasks"].size() == 4);
  CHECK(j["tasks"][0] == Json::parse(R"({"task": "truthfulqa", "endpoint_type": "chat",
                                         "harness": "lm-eval",
                                         "container": "nvcr.io/lm-eval:25.08.1"})"));
  CHECK(j["tasks"][0].size() == 4);
  CHECK(TasksJson(v1::ListTasksResponse()).dump() == R"({"tasks":[]})");
}

TEST_CASE("ls tasks table groups by harness, then container, rows sorted") {
  std::string out = RenderTasksTable(SampleTasks());
  // Harnesses in order of first appearance; within lm-eval two containers.
  size_t lm = out.find("harness: lm-eval");
  size_t garak = out.find("harness: garak");
  size_t other = out.find("container: other-container");
  REQUIRE(lm != std::string::npos);
  REQUIRE(garak != std::string::npos);
  CHECK(lm < other);
  CHECK(other < garak);
  CHECK(out.find("harness: lm-eval", lm + 1) < garak);  // a second block for the 2nd container
  // Rows sorted by task name inside a block.
  CHECK(out.find("arc") < out.find("truthfulqa"));
  CHECK(absl::StrContains(out, "  2 tasks available\n"));
  CHECK(absl::StrContains(out, "  1 task available\n"));
  // Every '=' border has one width per block, at least as wide as its container line.
  std::vector<std::string> lines = Lines(out);
  int borders = 0;
  for (const std::string& l : lines) {
    if (!l.empty() && l.find_first_not_of('=') == std::string::npos) ++borders;
  }
  CHECK(borders == 6);  // top and bottom of 3 blocks
  CHECK(lines[0].size() >= std::string("container: nvcr.io/lm-eval:25.08.1").size());
  CHECK(lines[0] == lines[10]);
  CHECK(lines[1] == "harness: lm-eval");
  CHECK(lines[2] == "container: nvcr.io/lm-eval:25.08.1");
  CHECK(absl::StartsWith(lines[4], "task"));
  CHECK(absl::StrContains(lines[4], "endpoint_type"));
  CHECK(RenderTasksTable(v1::ListTasksResponse()) == "No tasks found.\n");
}

TEST_CASE("ls runs table has the documented columns") {
  UtcZone utc;
  v1::Invocation inv = MakeInvocation("1a2b3c4d", v1::JOB_STATE_SUCCEEDED,
                                      {MakeJob("1a2b3c4d.0", "mmlu", v1::JOB_STATE_SUCCEEDED),
                                       MakeJob("1a2b3c4d.1", "gsm8k", v1::JOB_STATE_SUCCEEDED),
                                       MakeJob("1a2b3c4d.2", "gsm8k", v1::JOB_STATE_SUCCEEDED)});
  inv.set_created_ms(kNow + 123);
  inv.set_owner("alice");
  std::vector<std::string> lines = Lines(RenderRunsTable({inv}));
  CHECK(lines[0] == "invocation_id  created              state      jobs  executor  owner  tasks");
  CHECK(lines[2] ==
        "1a2b3c4d       2026-01-01T00:00:00  succeeded  3     local     alice  gsm8k,mmlu");
  CHECK(Lines(RenderRunsTable({})).size() == 3);  // header, dashes, final newline
}

TEST_CASE("info shows paths, backend ids, deployments and the config") {
  v1::Job j = MakeJob("1a2b3c4d.0", "gsm8k", v1::JOB_STATE_RUNNING);
  j.set_backend_id("pid 4242");  // labelled by the executor (Describe), shown as is
  (*j.mutable_backend_details())["task dir"] = "/out/x/gsm8k";
  v1::Invocation inv = MakeInvocation("1a2b3c4d", v1::JOB_STATE_RUNNING, {j});
  v1::Deployment* d = inv.add_deployments();
  d->set_deployment_id("1a2b3c4d.d0");
  d->set_type("vllm");
  d->set_state(v1::DEPLOYMENT_STATE_HEALTHY);
  d->set_url("http://127.0.0.1:8000");
  d->set_backend_id("777");
  d->set_time_to_healthy_ms(80000);
  inv.set_config_yaml("execution:\n  type: local\n");
  std::string out = RenderInfo(inv, kNow);
  CHECK(absl::StrContains(out, "run dir         /out/20260101_000000-1a2b3c4d"));
  CHECK(absl::StrContains(out, "backend id      pid 4242\n"));
  CHECK(absl::StrContains(out, "backend id      pid 4242\n  task dir        /out/x/gsm8k\n"));
  CHECK(absl::StrContains(out,
                          "stdout log      /out/20260101_000000-1a2b3c4d/gsm8k/logs/stdout.log"));
  CHECK(absl::StrContains(out, "deployment 1a2b3c4d.d0  vllm"));
  CHECK(absl::StrContains(out, "url             http://127.0.0.1:8000"));
  CHECK(absl::StrContains(out, "time to healthy 1m20s"));
  CHECK(absl::StrContains(out, "resolved config:\n  execution:\n    type: local\n"));

  Json js = InfoJson(inv);
  CHECK(js["jobs"][0]["backend_id"] == "pid 4242");
  CHECK(js["jobs"][0]["logs"]["stderr"] == "/out/20260101_000000-1a2b3c4d/gsm8k/logs/stderr.log");
  CHECK(js["deployments"][0]["state"] == "healthy");
  CHECK(js["config"] == "execution:\n  type: local\n");
}

}  // namespace
}  // namespace evald::cli
