// The SLURM executor through real evald and evalctl (issue 10): a dry run of the reference's slurm
// example prints every task's run.sub without touching a cluster and without secret values; a
// submit to an unreachable login node fails its jobs saying so. On the real one-node cluster of
// `scripts/slurm-local up` (through its ssh login node; EVALD_SLURM_* from `scripts/slurm-local
// env`): native tasks against the reference endpoint succeed with results, a job killed while
// running ends killed with its processes gone, a job that finished and was purged from squeue
// while evald was down still gets its final state, and a job past its walltime is resumed from
// its response cache until max_resumes is reached. Without the cluster these tests are skipped,
// or fail when EVALD_REQUIRE_SLURM=1 (scripts/test sets it).
#include <signal.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "tests/integration/fixture.h"
#include "tests/integration/harness.h"

namespace evald::testing {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

TEST_CASE("evalctl submit --dry-run of a slurm config prints the run.sub of every task") {
  TempDir dir;
  Evald evald(dir);
  const std::string example =
      SourceDir() + "/tests/fixtures/peer-examples/slurm_no_deployment_llama_3_1_8b_instruct.yaml";
  const std::vector<std::string> submit = {"submit", example,
                                           "-o",     "execution.hostname=login.invalid",
                                           "-o",     "execution.account=acct",
                                           "-o",     "execution.output_dir=" + dir.path() + "/out"};
  const std::map<std::string, std::string> env = {{"USER", "alice"},
                                                  {"API_KEY", "dry-api-key-value"},
                                                  {"HF_TOKEN_FOR_GPQA_DIAMOND", "dry-hf-value"}};

  std::vector<std::string> dry_args = submit;
  dry_args.push_back("--dry-run");
  CommandResult text = evald.Ctl(dry_args, env);
  INFO(text.out << text.err);
  REQUIRE(text.exit_code == 0);
  CHECK(absl::StrContains(text.out, "#SBATCH --account acct\n#SBATCH --partition cpu_short\n"));
  CHECK(absl::StrContains(text.out, "srun --mpi pmix --overlap "));
  CHECK_FALSE(absl::StrContains(text.out + text.err, "dry-api-key-value"));
  CHECK_FALSE(absl::StrContains(text.out + text.err, "dry-hf-value"));

  dry_args.push_back("--json");
  CommandResult json = evald.Ctl(dry_args, env);
  REQUIRE(json.exit_code == 0);
  Json j = Json::parse(json.out);
  REQUIRE(j["jobs"].size() == 3);
  for (const Json& job : j["jobs"]) {
    const std::string script = job["script"].get<std::string>();
    INFO(script);
    CHECK(absl::StartsWith(script, "#!/bin/bash\n#SBATCH --time 02:00:00\n"));
    CHECK(absl::StrContains(script, absl::StrCat("#SBATCH --job-name evald-",
                                                 job["job_id"].get<std::string>(), "-a1\n")));
    CHECK(absl::StrContains(script, "set -a; source \"$task_dir/secrets.env\""));
  }
  CHECK_FALSE(fs::exists(dir.path() + "/out"));  // nothing written, no cluster asked
  CHECK(evald.Ctl({"status", "--json"}).out.find(j["invocation_id"].get<std::string>()) ==
        std::string::npos);

  // A real submit is taken; its jobs fail at start: the login node cannot be reached.
  std::vector<std::string> real = submit;
  real.push_back("--json");
  CommandResult r = evald.Ctl(real, env);
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  v1::Invocation done =
      evald.WaitTerminal(Json::parse(r.out)["invocation_id"].get<std::string>(), 30);
  REQUIRE(done.jobs_size() == 3);
  for (const auto& job : done.jobs()) {
    CHECK(job.state() == v1::JOB_STATE_FAILED);
    CHECK(absl::StrContains(job.message(), "login.invalid"));
  }
}

// The test cluster's login node, from `scripts/slurm-local env`.
struct Cluster {
  std::string alias;
  std::string ssh_config;
  std::string partition;
};

std::string EnvOr(const char* name, const std::string& fallback = "") {
  const char* v = std::getenv(name);
  return v == nullptr ? fallback : v;
}

// The cluster, or nullopt after a skip (WARN) or a failure (EVALD_REQUIRE_SLURM=1).
std::optional<Cluster> TestCluster() {
  if (EnvOr("EVALD_SLURM_SSH_HOST").empty() || EnvOr("EVALD_SLURM_SSH_CONFIG").empty()) {
    if (EnvOr("EVALD_REQUIRE_SLURM") == "1") {
      FAIL(
          "EVALD_REQUIRE_SLURM=1 but EVALD_SLURM_SSH_HOST/EVALD_SLURM_SSH_CONFIG are not set: run "
          "`scripts/slurm-local up` and export `scripts/slurm-local env` before ctest");
    }
    WARN(
        "skipped: no SLURM test cluster (run `scripts/slurm-local up` and export "
        "`scripts/slurm-local env`)");
    SUCCEED();
    return std::nullopt;
  }
  Cluster c{EnvOr("EVALD_SLURM_SSH_ALIAS", "evald-slurm-login"), EnvOr("EVALD_SLURM_SSH_CONFIG"),
            EnvOr("EVALD_SLURM_PARTITION", "debug")};
  // The cluster is shared (a CI run may restart it): bring it up again if it is gone.
  CommandResult ping = Run({"ssh", "-F", c.ssh_config, c.alias, "sinfo -h -o %a"}, {}, 30);
  if (ping.exit_code != 0 || ping.out.find("up") == std::string::npos) {
    CommandResult up = Run({SourceDir() + "/scripts/slurm-local", "up"}, {}, 300);
    INFO(up.out << up.err);
    REQUIRE(up.exit_code == 0);
  }
  return c;
}

// A config for `tasks` arith tasks on the test cluster, and evald polling SLURM every second.
std::string SlurmArithConfig(const TempDir& dir, const RefEndpoint& model, const Cluster& c,
                             int tasks, int limit_samples = 10, int parallelism = 4,
                             const std::string& api_key_name = "null",
                             const std::string& sbatch_extra_flags = "null") {
  std::string yaml = absl::StrCat(
      "defaults:\n  - execution: slurm/default\n  - deployment: none\n  - _self_\n",
      "execution:\n  hostname: ", c.alias, "\n  ssh_config_file: ", c.ssh_config,
      "\n  username: root\n  account: evald\n  partition: ", c.partition,
      "\n  gres: null\n  walltime: '00:10:00'\n  sbatch_extra_flags: ", sbatch_extra_flags,
      "\n  output_dir: ", dir.path(), "/out\n",
      "target:\n  api_endpoint:\n    url: ", model.chat_url(),
      "\n    model_id: ref-model\n    api_key_name: ", api_key_name, "\n",
      "evaluation:\n  overrides:\n    config.params.limit_samples: ", limit_samples, "\n",
      "    config.params.parallelism: ", parallelism, "\n  tasks:\n");
  for (int i = 0; i < tasks; ++i) {
    absl::StrAppend(&yaml, "    - name: arith\n      task_file: ", DataDir(), "/arith_task.yaml\n");
  }
  return WriteConfig(dir, "slurm.yaml", yaml);
}

std::vector<std::string> FastSlurmPolls(const TempDir& dir) {
  const std::string path = dir.path() + "/evald.yaml";
  Spit(path, "executor_poll_ms: {slurm: 1000}\n");
  return {"--config", path};
}

// The SLURM job id evalctl shows for a job ("slurm 42" -> "42").
std::string SlurmJobId(const Json& job) {
  std::string id = job.value("backend_id", "");
  return absl::StartsWith(id, "slurm ") ? id.substr(6) : "";
}

TEST_CASE("slurm: native tasks run on the cluster through the ssh login node and succeed") {
  std::optional<Cluster> cluster = TestCluster();
  if (!cluster) return;
  TempDir dir;
  RefEndpoint model(dir, ArithModelFlags());
  Evald evald(dir, FastSlurmPolls(dir));
  const std::string cfg = SlurmArithConfig(dir, model, *cluster, 2, 10, 4, "SLURM_TEST_KEY");
  const std::string secret = "slurm-secret-value-4711";
  CommandResult r = evald.Ctl({"submit", cfg, "--json"}, {{"SLURM_TEST_KEY", secret}});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const std::string inv = InvocationIdFromJson(r.out);
  v1::Invocation done = evald.WaitTerminal(inv, 180);
  INFO("evald stderr:\n" << evald.process().Stderr());
  CommandResult status = evald.Ctl({"status", inv, "--json"});
  INFO(status.out << status.err);
  REQUIRE(status.exit_code == 0);
  Json s = Json::parse(status.out);
  CHECK(s["state"] == "succeeded");
  REQUIRE(s["jobs"].size() == 2);
  for (const Json& job : s["jobs"]) {
    CHECK(job["state"] == "succeeded");
    CHECK(job["progress"]["done"] == 10);
    const std::string out_dir = job["output_dir"];
    CHECK(fs::exists(out_dir + "/run.sub"));
    CHECK(fs::exists(out_dir + "/artifacts/results.yml"));
    CHECK(absl::StrContains(Slurp(out_dir + "/logs/stage.exit"), " 0"));
    // The key reached the job only through the 0600 secrets.env next to run.sub.
    CHECK_FALSE(absl::StrContains(Slurp(out_dir + "/run.sub"), secret));
    CHECK(absl::StrContains(Slurp(out_dir + "/secrets.env"), secret));
    CHECK((fs::status(out_dir + "/secrets.env").permissions() & fs::perms::all) ==
          (fs::perms::owner_read | fs::perms::owner_write));
  }
  CHECK_FALSE(absl::StrContains(evald.process().Stderr(), secret));
  // info shows the SLURM job id and its last raw state.
  CommandResult info = evald.Ctl({"info", inv, "--json"});
  INFO(info.out << info.err);
  REQUIRE(info.exit_code == 0);
  // Named: a range-for over a member of a temporary would read freed memory.
  const Json info_json = Json::parse(info.out);
  for (const Json& job : info_json["jobs"]) {
    CHECK_FALSE(SlurmJobId(job).empty());
    CHECK(job["backend_details"].value("slurm state", "") == "COMPLETED");
    CHECK(job["backend_details"].value("cluster", "") == cluster->alias);
  }
  CommandResult results = evald.Ctl({"results", inv, "--json"});
  INFO(results.out << results.err);
  REQUIRE(results.exit_code == 0);
  Json rows = Json::parse(results.out);
  REQUIRE(rows.size() >= 2);
  bool perfect = false;
  for (const Json& row : rows) perfect |= (row["value"].get<double>() == 1.0);
  CHECK(perfect);  // the model knows every answer
}

// Auto-resume: arith tasks against a slow model with a 1-minute walltime (SLURM kills a job
// 60-95 s in here: OverTimeLimit 0, the controller's ~30 s timeout check, KillWait 5). Both
// invocations run at once (the node has 2 CPUs): 40 samples x 3.5 s with max_resumes 3 needs a
// second job and finishes from the response cache; 40 x 6 s with max_resumes 1 cannot finish in
// two jobs and ends failed saying why.
TEST_CASE("slurm: a job past its walltime is resumed from its cache within max_resumes") {
  std::optional<Cluster> cluster = TestCluster();
  if (!cluster) return;
  TempDir dir;
  RefEndpoint quick(dir, ArithModelFlags({"--latency-ms", "3500"}));
  RefEndpoint slow(dir, ArithModelFlags({"--latency-ms", "6000"}));
  Evald evald(dir, FastSlurmPolls(dir));
  const auto submit = [&](const RefEndpoint& model, const std::string& name, int max_resumes) {
    std::string cfg = Slurp(SlurmArithConfig(dir, model, *cluster, 1, 40, 1));
    const std::string walltime = "walltime: '00:10:00'";
    cfg.replace(cfg.find(walltime), walltime.size(),
                absl::StrCat("walltime: '00:01:00'\n  max_walltime: '00:10:00'\n  max_resumes: ",
                             max_resumes));
    const std::string path = dir.path() + "/" + name;
    Spit(path, cfg);
    CommandResult r = evald.Ctl({"submit", path, "--json"});
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    return InvocationIdFromJson(r.out);
  };
  const std::string resumed = submit(quick, "resumed.yaml", 3);
  const std::string exhausted = submit(slow, "exhausted.yaml", 1);
  const auto info_of = [&](const std::string& inv) {
    CommandResult info = evald.Ctl({"info", inv, "--json"});
    INFO(info.out << info.err);
    REQUIRE(info.exit_code == 0);
    return Json::parse(info.out)["jobs"][0];
  };

  v1::Invocation done = evald.WaitTerminal(resumed, 420);
  INFO("evald stderr:\n" << evald.process().Stderr());
  REQUIRE(done.jobs_size() == 1);
  INFO(done.jobs(0).message());
  CHECK(done.jobs(0).state() == v1::JOB_STATE_SUCCEEDED);
  Json job = info_of(resumed);
  INFO(job.dump(2));
  const std::string chain = job["backend_details"].value("slurm jobs", "");
  CHECK(absl::StrContains(chain, " -> "));        // at least one resume
  CHECK(absl::EndsWith(chain, SlurmJobId(job)));  // info shows the newest job of the chain
  CHECK(job["backend_details"].value("slurm state", "") == "COMPLETED");
  CHECK(absl::StrContains(job["backend_details"].value("resumed", ""),
                          "resumed after TIMEOUT as SLURM job"));
  CHECK(job["progress"]["done"] == 40);
  const std::string out_dir = job["output_dir"];
  CHECK(fs::exists(out_dir + "/artifacts/cache/cache.sqlite3"));
  // Every job of the chain ran the same run.sub in the same task dir (the test cluster shares
  // this machine's file system, so the list run.sub appends to is here).
  const std::string ran = Slurp(out_dir + "/.slurm_job_id.list");
  CHECK(std::count(ran.begin(), ran.end(), '\n') ==
        std::count(chain.begin(), chain.end(), '>') + 1);
  CommandResult results = evald.Ctl({"results", resumed, "--json"});
  INFO(results.out << results.err);
  REQUIRE(results.exit_code == 0);
  bool perfect = false;
  for (const Json& row : Json::parse(results.out)) perfect |= (row["value"].get<double>() == 1.0);
  CHECK(perfect);  // every answer, from the model or the cache, was the right one

  v1::Invocation failed = evald.WaitTerminal(exhausted, 420);
  REQUIRE(failed.jobs_size() == 1);
  INFO(failed.jobs(0).message());
  CHECK(failed.jobs(0).state() == v1::JOB_STATE_FAILED);
  CHECK(absl::StrContains(failed.jobs(0).message(), "TIMEOUT; max_resumes 1 reached"));
  Json failed_job = info_of(exhausted);
  INFO(failed_job.dump(2));
  const std::string failed_chain = failed_job["backend_details"].value("slurm jobs", "");
  CHECK(std::count(failed_chain.begin(), failed_chain.end(), '>') == 1);  // 2 jobs: 1 resume
  CHECK(absl::StartsWith(failed_job["backend_details"].value("slurm state", ""), "TIMEOUT"));
}

// The processes whose command line mentions `needle` (evalrun's --plan <task dir>/plan.yaml).
std::vector<std::string> ProcessesMentioning(const std::string& needle) {
  std::vector<std::string> found;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string pid = entry.path().filename();
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string cmdline = Slurp(entry.path().string() + "/cmdline");
    std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
    std::string stat = Slurp(entry.path().string() + "/stat");
    if (absl::StrContains(stat, ") Z ")) continue;  // a zombie waiting for a lazy reaper
    if (absl::StrContains(cmdline, needle)) found.push_back(pid + ": " + cmdline);
  }
  return found;
}

// Waits until the invocation's first job is running; its status JSON.
Json WaitRunning(Evald& evald, const std::string& inv, double timeout_s) {
  Json job;
  WaitFor(
      [&] {
        CommandResult st = evald.Ctl({"info", inv, "--json"});
        if (st.exit_code != 0) return false;
        job = Json::parse(st.out)["jobs"][0];
        return job["state"] == "running";
      },
      timeout_s);
  return job;
}

TEST_CASE("slurm: a job killed while running ends killed and its processes are gone") {
  std::optional<Cluster> cluster = TestCluster();
  if (!cluster) return;
  TempDir dir;
  RefEndpoint model(dir, ArithModelFlags({"--latency-ms", "1000"}));
  Evald evald(dir, FastSlurmPolls(dir));
  const std::string cfg = SlurmArithConfig(dir, model, *cluster, 1, 30, 1);
  CommandResult r = evald.Ctl({"submit", cfg, "--json"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const std::string inv = InvocationIdFromJson(r.out);
  Json job = WaitRunning(evald, inv, 60);
  INFO(job.dump());
  REQUIRE(job["state"] == "running");
  const std::string plan = job["output_dir"].get<std::string>() + "/plan.yaml";
  // evalrun is up under slurmstepd before the kill (the job may still be starting it).
  WaitFor([&] { return !ProcessesMentioning(plan).empty(); }, 30);
  REQUIRE_FALSE(ProcessesMentioning(plan).empty());

  CommandResult kill = evald.Ctl({"kill", inv});
  INFO(kill.out << kill.err);
  REQUIRE(kill.exit_code == 0);
  v1::Invocation done = evald.WaitTerminal(inv, 60);
  REQUIRE(done.jobs_size() == 1);
  CHECK(done.jobs(0).state() == v1::JOB_STATE_KILLED);
  INFO(done.jobs(0).message());
  CHECK(absl::StrContains(done.jobs(0).message(), "CANCELLED"));
  WaitFor([&] { return ProcessesMentioning(plan).empty(); }, 15);
  CHECK(ProcessesMentioning(plan).empty());
}

TEST_CASE("slurm: a job that finished and left squeue while evald was down gets its final state") {
  std::optional<Cluster> cluster = TestCluster();
  if (!cluster) return;
  TempDir dir;
  RefEndpoint model(dir, ArithModelFlags({"--latency-ms", "300"}));
  Evald evald(dir, FastSlurmPolls(dir));
  const std::string cfg = SlurmArithConfig(dir, model, *cluster, 1, 10, 1);
  CommandResult r = evald.Ctl({"submit", cfg, "--json"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const std::string inv = InvocationIdFromJson(r.out);
  Json job = WaitRunning(evald, inv, 60);
  INFO(job.dump());
  REQUIRE(job["state"] == "running");
  const std::string slurm_id = SlurmJobId(job);
  REQUIRE_FALSE(slurm_id.empty());
  evald.Kill9();

  // The job ends and SLURM forgets it (MinJobAge) while nobody watches.
  const auto squeue_knows = [&] {
    CommandResult q = Run(
        {"ssh", "-F", cluster->ssh_config, cluster->alias, "squeue -h -t all -o %i -j " + slurm_id},
        {}, 30);
    return q.exit_code == 0 && absl::StrContains(q.out, slurm_id);
  };
  REQUIRE(WaitFor([&] { return !squeue_knows(); }, 120));

  evald.Start();
  v1::Invocation done = evald.WaitTerminal(inv, 60);
  REQUIRE(done.jobs_size() == 1);
  INFO(done.jobs(0).message());
  CHECK(done.jobs(0).state() == v1::JOB_STATE_SUCCEEDED);
  CommandResult results = evald.Ctl({"results", inv, "--json"});
  INFO(results.out << results.err);
  REQUIRE(results.exit_code == 0);
  CHECK(Json::parse(results.out).size() >= 1);
}

TEST_CASE("slurm: a pending job shows its SLURM reason and a kill cancels it") {
  std::optional<Cluster> cluster = TestCluster();
  if (!cluster) return;
  TempDir dir;
  RefEndpoint model(dir, ArithModelFlags());
  Evald evald(dir, FastSlurmPolls(dir));
  // Held back by a start time an hour away: PENDING (BeginTime) until cancelled.
  const std::string cfg =
      SlurmArithConfig(dir, model, *cluster, 1, 10, 4, "null", "{begin: now+1hour}");
  CommandResult r = evald.Ctl({"submit", cfg, "--json"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const std::string inv = InvocationIdFromJson(r.out);
  Json job;
  WaitFor(
      [&] {
        CommandResult info = evald.Ctl({"info", inv, "--json"});
        if (info.exit_code != 0) return false;
        job = Json::parse(info.out)["jobs"][0];
        return job["backend_details"].value("slurm state", "") == "PENDING (BeginTime)";
      },
      30);
  INFO(job.dump());
  CHECK(job["state"] == "submitted");
  REQUIRE(job["backend_details"].value("slurm state", "") == "PENDING (BeginTime)");
  CommandResult kill = evald.Ctl({"kill", inv});
  INFO(kill.out << kill.err);
  REQUIRE(kill.exit_code == 0);
  v1::Invocation done = evald.WaitTerminal(inv, 60);
  REQUIRE(done.jobs_size() == 1);
  INFO(done.jobs(0).message());
  CHECK(done.jobs(0).state() == v1::JOB_STATE_KILLED);
  CHECK(absl::StrContains(done.jobs(0).message(), "CANCELLED"));
  const std::string slurm_id = SlurmJobId(job);
  CommandResult q = Run({"ssh", "-F", cluster->ssh_config, cluster->alias,
                         "squeue -h -o %i -t PENDING,RUNNING -j " + slurm_id},
                        {}, 30);
  CHECK_FALSE(absl::StrContains(q.out, slurm_id));
}

}  // namespace
}  // namespace evald::testing
