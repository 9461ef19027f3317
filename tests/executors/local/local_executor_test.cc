#include "executors/local/local_executor.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <filesystem>
#include <optional>
#include <string>

#include "tests/executors/local/test_util.h"

namespace evald::executors {
namespace {

using testing::Slurp;
using testing::Spit;
using testing::TempDir;
using testing::WaitFor;

// A stand-in job body for process-handling tests: a shell script given as the runner. It receives
// `--plan <task_dir>/plan.yaml` like evalrun does.
std::string MakeRunner(const TempDir& dir, const std::string& body) {
  std::string path = dir.path() + "/runner.sh";
  Spit(path, "#!/bin/sh\nplan=\"$2\"\nart=\"$(dirname \"$plan\")/artifacts\"\n" + body, true);
  return path;
}

JobSpec NativeSpec(const TempDir& dir, const std::string& job = "0badf00d.0") {
  JobSpec spec;
  spec.job_id = job;
  spec.invocation_id = "0badf00d";
  spec.task = "native_gsm8k";
  spec.task_dir = dir.path() + "/run/native_gsm8k";
  spec.plan_yaml = "config:\n  type: native_gsm8k\n";
  spec.env_vars = {{"API_KEY", "MY_KEY"}};
  return spec;
}

JobRef RecordFor(const JobSpec& spec, const JobHandle& handle) {
  return JobRef{.job_id = spec.job_id,
                .invocation_id = spec.invocation_id,
                .attempt = spec.attempt,
                .task_dir = spec.task_dir,
                .handle = handle};
}

Observation PollUntilDone(LocalExecutor& ex, const JobRef& rec, double seconds = 10) {
  Observation last;
  WaitFor(
      [&] {
        std::vector<Observation> obs = ex.Poll({rec});
        if (obs.empty()) return false;
        last = obs[0];
        return last.kind == Observation::Kind::kExited || last.kind == Observation::Kind::kVanished;
      },
      seconds);
  return last;
}

TEST_CASE("the native job script follows the job contract and holds no secret") {
  TempDir dir;
  LocalExecutor ex({.runner_path = "/opt/evald/bin/evalrun"});
  absl::StatusOr<RenderedJob> r = ex.Render(NativeSpec(dir));
  REQUIRE(r.ok());
  CHECK(r->plan == "config:\n  type: native_gsm8k\n");
  const std::string& s = r->script;
  CHECK(s.rfind("#!/usr/bin/env bash\n", 0) == 0);
  CHECK(s.find("/opt/evald/bin/evalrun --plan \"$task_dir/plan.yaml\"") != std::string::npos);
  for (const char* stage : {"stage.pre-start", "stage.running", "stage.exit.tmp"}) {
    CHECK(s.find(stage) != std::string::npos);
  }
  CHECK(s.find("export API_KEY first") != std::string::npos);
  CHECK(s.find("trap 'kill -TERM \"$child\" 2>/dev/null' TERM INT") != std::string::npos);
}

TEST_CASE("the container job script passes secrets by name and quotes the command") {
  TempDir dir;
  JobSpec spec = NativeSpec(dir);
  spec.native = false;
  spec.image = "nvcr.io/nvidia/eval-factory/simple-evals:25.08.1";
  spec.container_command = "nv_eval run_eval --overrides 'a=b'";
  spec.execution_yaml = "type: local\nextra_docker_args: --network host\n";
  LocalExecutor ex({.runner_path = "/x/evalrun", .container_runtime = "sh"});
  absl::StatusOr<RenderedJob> r = ex.Render(spec);
  REQUIRE(r.ok());
  const std::string& s = r->script;
  CHECK(s.find("sh run --rm --shm-size=100g --name evald-0badf00d.0-native_gsm8k --network host"
               " --volume \"$task_dir/artifacts\":/results -e API_KEY "
               "nvcr.io/nvidia/eval-factory/simple-evals:25.08.1 bash -c "
               "'nv_eval run_eval --overrides '\\''a=b'\\'' ; exit_code=$?;") != std::string::npos);
  CHECK(s.find("trap 'setsid sh stop evald-0badf00d.0-native_gsm8k >/dev/null 2>&1' TERM INT") !=
        std::string::npos);
  CHECK(r->plan.empty());
}

TEST_CASE("Validate refuses unusable executor settings at submit, with the key") {
  TempDir dir;
  JobSpec spec = NativeSpec(dir);
  spec.native = false;
  spec.image = "img:1";
  LocalExecutor ex({.runner_path = "/x/evalrun"});
  spec.execution_yaml = "type: local\nextra_docker_args: --label `id`\n";
  absl::Status s = ex.Validate(spec);
  CHECK(s.code() == absl::StatusCode::kInvalidArgument);
  CHECK(s.message().find("execution.extra_docker_args: an expansion") != std::string::npos);
  spec.execution_yaml = "type: local\nextra_docker_args: [--network, host]\n";
  CHECK(ex.Validate(spec).message() ==
        "execution.extra_docker_args: expected a string of docker arguments");
  spec.execution_yaml = "type: local\nextra_docker_args: --network host\n";
  CHECK(ex.Validate(spec).ok());
}

TEST_CASE("a container task without a runtime renders, and fails to start naming the runtime") {
  TempDir dir;
  JobSpec spec = NativeSpec(dir);
  spec.native = false;
  spec.image = "nvcr.io/nvidia/eval-factory/simple-evals:25.08.1";
  LocalExecutor ex({.runner_path = "/x/evalrun", .container_runtime = "evald-no-runtime-xyz"});
  // A dry run needs no runtime on this host.
  CHECK(ex.Validate(spec).ok());
  absl::StatusOr<RenderedJob> r = ex.Render(spec);
  REQUIRE(r.ok());
  CHECK(r->script.find("evald-no-runtime-xyz run --rm") != std::string::npos);
  absl::Status s = ex.Start(spec, {}).status();
  CHECK(s.code() == absl::StatusCode::kFailedPrecondition);
  CHECK(s.message().find("simple-evals:25.08.1") != std::string::npos);
  CHECK(s.message().find("evald-no-runtime-xyz (container_runtime) is not on PATH") !=
        std::string::npos);
  CHECK_FALSE(std::filesystem::exists(spec.task_dir + "/run.sh"));

  LocalExecutor no_runner({.runner_path = dir.path() + "/missing-evalrun"});
  CHECK(no_runner.Validate(NativeSpec(dir)).code() == absl::StatusCode::kFailedPrecondition);
}

TEST_CASE("a job runs to its exit code, with secrets only in its environment") {
  TempDir dir;
  std::string runner = MakeRunner(dir,
                                  "printf '%s' \"$API_KEY\" > \"$art/seen_key\"\n"
                                  "echo '{\"done\": 3, \"total\": 5, \"rate\": 1.5}' > "
                                  "\"$art/progress.json\"\n"
                                  "echo to-stdout; echo to-stderr >&2\n"
                                  "exit 7\n");
  LocalExecutor ex({.runner_path = runner});
  JobSpec spec = NativeSpec(dir);
  absl::StatusOr<JobHandle> h = ex.Start(spec, {{"API_KEY", "sk-canary-123"}});
  REQUIRE(h.ok());
  CHECK(h->executor == "local");
  Observation obs = PollUntilDone(ex, RecordFor(spec, *h));
  REQUIRE(obs.kind == Observation::Kind::kExited);
  CHECK(obs.exit_code == 7);
  CHECK(obs.has_progress);
  CHECK(obs.progress_done == 3);
  CHECK(obs.progress_total == 5);
  CHECK(Slurp(spec.task_dir + "/artifacts/seen_key") == "sk-canary-123");
  CHECK(Slurp(spec.task_dir + "/run.sh").find("sk-canary-123") == std::string::npos);
  CHECK(Slurp(spec.task_dir + "/plan.yaml").find("sk-canary-123") == std::string::npos);
  CHECK(Slurp(spec.task_dir + "/logs/stdout.log") == "to-stdout\n");
  CHECK(Slurp(spec.task_dir + "/logs/stderr.log") == "to-stderr\n");
  CHECK(Slurp(spec.task_dir + "/logs/stage.exit").find(" 7\n") != std::string::npos);
  CHECK(Slurp(spec.task_dir + "/logs/attempt") == "1\n");
}

TEST_CASE("a job runs at evald's nice value plus job_nice, 5 unless set") {
  TempDir dir;
  std::string runner = MakeRunner(dir, "nice > \"$art/nice\"\n");
  const int own = getpriority(PRIO_PROCESS, 0);
  for (std::optional<int> job_nice : {std::optional<int>(), std::optional<int>(0)}) {
    ExecutorContext context{.runner_path = runner};
    if (job_nice) context.job_nice = *job_nice;
    LocalExecutor ex(context);
    JobSpec spec = NativeSpec(dir);
    absl::StatusOr<JobHandle> h = ex.Start(spec, {});
    REQUIRE(h.ok());
    REQUIRE(PollUntilDone(ex, RecordFor(spec, *h)).exit_code == 0);
    CHECK(Slurp(spec.task_dir + "/artifacts/nice") ==
          std::to_string(std::min(own + job_nice.value_or(5), 19)) + "\n");
  }
}

TEST_CASE("a job's exit calls the wake callback without any Poll") {
  TempDir dir;
  std::string runner = MakeRunner(dir, "while [ ! -e \"$art/go\" ]; do sleep 0.01; done\nexit 3\n");
  LocalExecutor ex({.runner_path = runner});
  std::atomic<int> wakes{0};
  ex.SetWakeCallback([&] { ++wakes; });
  JobSpec spec = NativeSpec(dir);
  absl::StatusOr<JobHandle> h = ex.Start(spec, {});
  REQUIRE(h.ok());
  CHECK(wakes == 0);
  Spit(spec.task_dir + "/artifacts/go", "");
  REQUIRE(WaitFor([&] { return wakes.load() == 1; }));
  // By then the exit file is there: one Poll sees the end.
  JobRef rec = RecordFor(spec, *h);
  std::vector<Observation> obs = ex.Poll({rec});
  REQUIRE(obs.size() == 1);
  CHECK(obs[0].kind == Observation::Kind::kExited);
  CHECK(obs[0].exit_code == 3);
  ex.SetWakeCallback(nullptr);
}

TEST_CASE("stop sends SIGTERM and escalates to SIGKILL after the grace period") {
  TempDir dir;
  std::string runner = MakeRunner(dir, "trap '' TERM\necho started > \"$art/started\"\nsleep 60\n");
  LocalExecutor ex({.runner_path = runner});
  JobSpec spec = NativeSpec(dir);
  absl::StatusOr<JobHandle> h = ex.Start(spec, {});
  REQUIRE(h.ok());
  JobRef rec = RecordFor(spec, *h);
  REQUIRE(WaitFor([&] { return std::filesystem::exists(spec.task_dir + "/artifacts/started"); }));
  REQUIRE(ex.Stop(rec, absl::Milliseconds(300)).ok());
  Observation obs = PollUntilDone(ex, rec);
  REQUIRE(obs.kind == Observation::Kind::kExited);
  CHECK(obs.exit_code == 128 + SIGKILL);
  CHECK(obs.message.find("without writing logs/stage.exit") != std::string::npos);
}

TEST_CASE("stop lets a cooperative job write its exit code") {
  TempDir dir;
  std::string runner = MakeRunner(dir, "trap 'exit 143' TERM\nwhile true; do sleep 0.05; done\n");
  LocalExecutor ex({.runner_path = runner});
  JobSpec spec = NativeSpec(dir);
  absl::StatusOr<JobHandle> h = ex.Start(spec, {});
  REQUIRE(h.ok());
  JobRef rec = RecordFor(spec, *h);
  REQUIRE(WaitFor([&] { return std::filesystem::exists(spec.task_dir + "/logs/stage.running"); }));
  REQUIRE(ex.Stop(rec, absl::Seconds(30)).ok());
  Observation obs = PollUntilDone(ex, rec);
  REQUIRE(obs.kind == Observation::Kind::kExited);
  CHECK(obs.exit_code == 143);
}

// The systemd unit's UMask=0027 must hold for the files evald writes into a job's folder.
TEST_CASE("the job's files get no mode bits that evald's umask clears") {
  TempDir dir;
  LocalExecutor ex({.runner_path = MakeRunner(dir, "exit 0\n")});
  JobSpec spec = NativeSpec(dir);
  mode_t old_umask = umask(0027);
  absl::StatusOr<JobHandle> h = ex.Start(spec, {});
  umask(old_umask);
  REQUIRE(h.ok());
  PollUntilDone(ex, RecordFor(spec, *h));
  namespace fs = std::filesystem;
  for (const char* file : {"run.sh", "plan.yaml", "logs/attempt"}) {
    INFO(file);
    fs::perms p = fs::status(spec.task_dir + "/" + file).permissions();
    CHECK((p & (fs::perms::group_write | fs::perms::others_all)) == fs::perms::none);
  }
  CHECK((fs::status(spec.task_dir + "/run.sh").permissions() & fs::perms::owner_exec) !=
        fs::perms::none);
}

TEST_CASE("a new executor instance recovers a running job of the same attempt only") {
  TempDir dir;
  std::string runner = MakeRunner(dir, "sleep 0.5\nexit 0\n");
  LocalExecutor first({.runner_path = runner});
  JobSpec spec = NativeSpec(dir);
  spec.attempt = 2;
  REQUIRE(first.Start(spec, {}).ok());
  // As after an evald restart: the wrapper is running (a child not yet exec'd shows the parent's
  // command line, and a loaded machine can take that long).
  REQUIRE(
      WaitFor([&] { return std::filesystem::exists(spec.task_dir + "/logs/stage.pre-start"); }));

  LocalExecutor second({.runner_path = runner});
  JobRef rec = RecordFor(spec, {});
  rec.attempt = 3;  // a later attempt that never got going
  absl::StatusOr<std::optional<JobHandle>> none = second.Recover(rec);
  REQUIRE(none.ok());
  CHECK_FALSE(none->has_value());

  rec.attempt = 2;
  absl::StatusOr<std::optional<JobHandle>> found = second.Recover(rec);
  REQUIRE(found.ok());
  REQUIRE(found->has_value());
  rec.handle = **found;
  Observation obs = PollUntilDone(second, rec);
  REQUIRE(obs.kind == Observation::Kind::kExited);
  CHECK(obs.exit_code == 0);
}

TEST_CASE("a job whose process vanished without an exit file is reported vanished") {
  TempDir dir;
  JobSpec spec = NativeSpec(dir);
  std::filesystem::create_directories(spec.task_dir + "/logs");
  LocalExecutor ex({.runner_path = "/x"});
  JobRef rec = RecordFor(
      spec, {1, "local",
             "{\"pid\": 4194000, \"start_ticks\": 1, \"task_dir\": \"" + spec.task_dir + "\"}"});
  std::vector<Observation> obs = ex.Poll({rec});
  REQUIRE(obs.size() == 1);
  CHECK(obs[0].kind == Observation::Kind::kVanished);

  Spit(spec.task_dir + "/logs/stage.exit", "2026-11-23T10:00:00Z 0\n");
  obs = ex.Poll({rec});
  REQUIRE(obs.size() == 1);
  CHECK(obs[0].kind == Observation::Kind::kExited);
  CHECK(obs[0].exit_code == 0);
}

}  // namespace
}  // namespace evald::executors
