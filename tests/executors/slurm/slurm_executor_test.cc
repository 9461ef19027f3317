// SlurmExecutor against the real test cluster, without evald (EVALD_SLURM_SSH_CONFIG and
// EVALD_SLURM_SSH_ALIAS from `scripts/slurm-local env`; skipped without them, failed when
// EVALD_REQUIRE_SLURM=1): a submitted attempt is found again by Recover (and another attempt is
// not), a FAILED job reports the job's own exit code, and Stop cancels a running job (idempotent).
// The "runner" is a small script, so no model is needed; the executor copies it to the cluster
// (execution.runner's default for a remote cluster) once.
#include "executors/slurm/slurm_executor.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace evald::executors {
namespace {

namespace fs = std::filesystem;

struct TempDir {
  TempDir() {
    std::string tmpl = "/tmp/evald-slurm-executor-test-XXXXXX";
    path = mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string path;
};

std::string Slurp(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::optional<std::string> ClusterYaml() {
  const char* config = std::getenv("EVALD_SLURM_SSH_CONFIG");
  const char* alias = std::getenv("EVALD_SLURM_SSH_ALIAS");
  if (config == nullptr || alias == nullptr) {
    const char* require = std::getenv("EVALD_REQUIRE_SLURM");
    if (require != nullptr && std::string(require) == "1") {
      FAIL("EVALD_REQUIRE_SLURM=1 but EVALD_SLURM_SSH_CONFIG/ALIAS are not set");
    }
    WARN(
        "skipped: no SLURM test cluster (scripts/slurm-local up; eval \"$(scripts/slurm-local "
        "env)\")");
    SUCCEED();
    return std::nullopt;
  }
  const char* partition = std::getenv("EVALD_SLURM_PARTITION");
  return absl::StrCat(
      "hostname: ", alias, "\nssh_config_file: ", config,
      "\nusername: root\naccount: evald\npartition: ", partition == nullptr ? "debug" : partition,
      "\nwalltime: '00:05:00'\nsbatch_extra_flags: null\n");
}

JobSpec Spec(const std::string& dir, const std::string& yaml, const std::string& name) {
  JobSpec spec;
  spec.invocation_id = absl::StrCat("t", getpid());
  spec.job_id = absl::StrCat(spec.invocation_id, ".", name);
  spec.task = "fake";
  spec.task_dir = dir + "/" + name;
  spec.native = true;
  spec.plan_yaml = "task: fake\n";
  spec.execution_yaml = yaml;
  return spec;
}

JobRef RefOf(const JobSpec& spec, const JobHandle& handle) {
  return {.job_id = spec.job_id,
          .invocation_id = spec.invocation_id,
          .attempt = spec.attempt,
          .task_dir = spec.task_dir,
          .handle = handle};
}

// Polls until `done` holds for the job's observation (or `seconds` pass); the last one.
Observation PollUntil(SlurmExecutor& ex, const JobRef& ref,
                      const std::function<bool(const Observation&)>& done, double seconds) {
  Observation last;
  const absl::Time deadline = absl::Now() + absl::Seconds(seconds);
  while (absl::Now() < deadline) {
    for (const Observation& obs : ex.Poll({ref})) {
      if (obs.job_id == ref.job_id) last = obs;
    }
    if (done(last)) break;
    absl::SleepFor(absl::Milliseconds(500));
  }
  return last;
}

TEST_CASE("slurm executor on the test cluster: Recover, a FAILED exit code, Stop") {
  std::optional<std::string> yaml = ClusterYaml();
  if (!yaml) return;
  TempDir dir;
  const std::string runner = dir.path + "/fake-runner";
  // Exits 3, or sleeps when the plan says so.
  std::ofstream(runner) << "#!/bin/bash\nif grep -q sleep \"$2\"; then sleep 120; fi\nexit 3\n";
  fs::permissions(runner, fs::perms::owner_all);
  SlurmExecutor ex(ExecutorContext{.runner_path = runner});
  // A remote cluster: the runner is copied to <output_dir>/.evald-runner/ (execution.runner's
  // default), once.
  *yaml += absl::StrCat("output_dir: ", dir.path, "\n");

  JobSpec failing = Spec(dir.path, *yaml, "0");
  absl::StatusOr<JobHandle> started = ex.Start(failing, {});
  INFO(started.status().ToString());
  REQUIRE(started.ok());
  std::optional<SlurmHandleState> h = DecodeSlurmHandle(*started);
  REQUIRE(h.has_value());
  CHECK_FALSE(h->slurm_job_id.empty());

  // Found again by its job name; another attempt of the same job is not this one.
  absl::StatusOr<std::optional<JobHandle>> found = ex.Recover(RefOf(failing, {}));
  INFO(found.status().ToString());
  REQUIRE(found.ok());
  REQUIRE(found->has_value());
  CHECK(DecodeSlurmHandle(**found)->slurm_job_id == h->slurm_job_id);
  JobSpec second = failing;
  second.attempt = 2;
  absl::StatusOr<std::optional<JobHandle>> none = ex.Recover(RefOf(second, {}));
  REQUIRE(none.ok());
  CHECK_FALSE(none->has_value());

  Observation end = PollUntil(
      ex, RefOf(failing, *started),
      [](const Observation& o) { return o.kind == Observation::Kind::kExited; }, 90);
  INFO(end.message);
  CHECK(end.kind == Observation::Kind::kExited);
  CHECK(end.exit_code == 3);
  CHECK(absl::StrContains(end.message, "FAILED"));
  CHECK(absl::StrContains(ex.Describe(*started).details.back().second, "FAILED"));
  // The job ran evald's runner from its copy on the cluster (this machine's file system).
  std::vector<fs::path> copies;
  for (const auto& entry : fs::directory_iterator(dir.path + "/.evald-runner")) {
    copies.push_back(entry.path());
  }
  REQUIRE(copies.size() == 1);
  CHECK(absl::StartsWith(copies[0].filename().string(), "evalrun-"));
  CHECK(absl::StrContains(Slurp(failing.task_dir + "/run.sub"), copies[0].string() + " --plan "));
  const auto copied_at = fs::last_write_time(copies[0]);

  JobSpec sleeper = Spec(dir.path, *yaml, "1");
  sleeper.plan_yaml = "task: sleep\n";
  absl::StatusOr<JobHandle> s = ex.Start(sleeper, {});
  REQUIRE(s.ok());
  CHECK(fs::last_write_time(copies[0]) == copied_at);  // not copied again
  Observation running = PollUntil(
      ex, RefOf(sleeper, *s),
      [](const Observation& o) { return o.kind == Observation::Kind::kRunning; }, 60);
  REQUIRE(running.kind == Observation::Kind::kRunning);
  CHECK(ex.Stop(RefOf(sleeper, *s), absl::Seconds(5)).ok());
  Observation cancelled = PollUntil(
      ex, RefOf(sleeper, *s),
      [](const Observation& o) { return o.kind == Observation::Kind::kExited; }, 60);
  INFO(cancelled.message);
  CHECK(cancelled.kind == Observation::Kind::kExited);
  CHECK(cancelled.exit_code == 143);
  CHECK(absl::StrContains(cancelled.message, "CANCELLED"));
  CHECK(ex.Stop(RefOf(sleeper, *s), absl::Seconds(5)).ok());  // again: already ended is fine
}

}  // namespace
}  // namespace evald::executors
