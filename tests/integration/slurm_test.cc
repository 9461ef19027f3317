// The SLURM executor through real evald and evalctl (issue 10): a dry run of the reference's slurm
// example prints every task's run.sub without touching a cluster and without secret values; a
// submit to an unreachable login node fails its jobs saying so. On the real one-node cluster of
// `scripts/slurm-local up` (through its ssh login node; EVALD_SLURM_* from `scripts/slurm-local
// env`): native tasks against the reference endpoint succeed with results, a job killed while
// running ends killed with its processes gone, a job that finished and was purged from squeue
// while evald was down still gets its final state, and a job past its walltime is resumed from
// its response cache until max_resumes is reached. A `command` deployment runs inside each job
// (an srun step of run.sub): the reference endpoint deployed there gives the scores it gives as
// an external endpoint, and a server that never gets healthy (or dies) fails its job saying why,
// with no process left. A killed ssh master (a dropped connection), a restarted slurmctld and a
// login node unreachable for a minute mid-run leave the job tracked to its success (local jobs
// run meanwhile). Without the cluster these tests are skipped, or fail when
// EVALD_REQUIRE_SLURM=1 (scripts/test sets it).
#include <signal.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "executors/common/net.h"
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

// A slurm config whose model server is `command` (one line, no single quote) on `port`, run inside
// each job, for `tasks` arith tasks; `execution_extra` and `deployment_extra` are YAML lines
// under those sections (indented by 2).
std::string SlurmDeployYaml(const TempDir& dir, const std::string& hostname,
                            const std::string& execution_extra, const std::string& command,
                            int port, const std::string& deployment_extra, int tasks) {
  std::string yaml =
      absl::StrCat("defaults:\n  - execution: slurm/default\n  - deployment: command\n  - _self_\n",
                   "execution:\n  hostname: ", hostname, "\n  account: evald\n  gres: null\n",
                   "  walltime: '00:10:00'\n  output_dir: ", dir.path(), "/out\n", execution_extra,
                   "deployment:\n  command: '", command, "'\n  port: ", port,
                   "\n  served_model_name: ref-model\n  endpoint_readiness_interval: 0.2\n",
                   deployment_extra, "target:\n  api_endpoint:\n    api_key_name: null\n",
                   "evaluation:\n  overrides:\n    config.params.limit_samples: 10\n",
                   "    config.params.parallelism: 4\n  tasks:\n");
  for (int i = 0; i < tasks; ++i) {
    absl::StrAppend(&yaml, "    - name: arith\n      task_file: ", DataDir(), "/arith_task.yaml\n");
  }
  return yaml;
}

// The reference endpoint as a deployment command on `port`; `marker` (a path of the test's own)
// in its command line finds its process.
std::string RefEndpointCommand(int port, const std::string& marker, const std::string& flags = "") {
  return absl::StrCat(BinDir(), "/ref_endpoint --host 127.0.0.1 --port ", port, " --port-file ",
                      marker, " --keys ", DataDir(), "/arith_keys.jsonl --model-id ref-model",
                      flags);
}

int FreePort() {
  absl::StatusOr<int> port = executors::PickFreePort();
  REQUIRE(port.ok());
  return *port;
}

TEST_CASE("slurm --dry-run: a command deployment shows as the server step of run.sub") {
  TempDir dir;
  Evald evald(dir);
  const std::string secret = "dry-server-secret-value";
  const std::string cfg =
      WriteConfig(dir, "deploy.yaml",
                  SlurmDeployYaml(dir, "login.invalid", "", "my-server --port 8123", 8123,
                                  "  env_vars:\n    SERVER_TOKEN: $host:DRY_SERVER_SECRET\n", 2));
  CommandResult dry = evald.Ctl({"submit", cfg, "--dry-run", "--json"},
                                {{"DRY_SERVER_SECRET", secret}, {"USER", "alice"}});
  INFO(dry.out << dry.err);
  REQUIRE(dry.exit_code == 0);
  CHECK_FALSE(absl::StrContains(dry.out + dry.err, secret));
  Json j = Json::parse(dry.out);
  REQUIRE(j["jobs"].size() == 2);
  for (const Json& job : j["jobs"]) {
    const std::string script = job["script"].get<std::string>();
    INFO(script);
    CHECK(
        absl::StrContains(script,
                          "srun --overlap --nodes 1 --ntasks 1 --output "
                          "\"$task_dir/logs/server-%A.out\" bash -c 'my-server --port 8123' &\n"));
    CHECK(absl::StrContains(script, "http://127.0.0.1:8123/health"));
    CHECK(absl::StrContains(script, "set -a; source \"$task_dir/secrets.env\""));
    CHECK(absl::StrContains(script, "code=$?\nstop_server\nfinish \"$code\"\n"));
    // A remote cluster's default runner: evald's evalrun, copied at submission (not in a dry run).
    CHECK(absl::StrContains(script, " " + dir.path() + "/out/.evald-runner/evalrun-"));
  }
  CHECK_FALSE(fs::exists(dir.path() + "/out"));

  // `port: auto` cannot be: the plan must know the port at submission.
  const std::string auto_cfg = WriteConfig(
      dir, "auto.yaml",
      SlurmDeployYaml(dir, "login.invalid", "", "my-server --port ${EVALD_PORT}", 1, "", 1));
  std::string text = Slurp(auto_cfg);
  text.replace(text.find("port: 1\n"), 8, "port: auto\n");
  Spit(auto_cfg, text);
  CommandResult refused = evald.Ctl({"submit", auto_cfg, "--dry-run"}, {{"USER", "alice"}});
  INFO(refused.out << refused.err);
  CHECK(refused.exit_code != 0);
  CHECK(absl::StrContains(refused.err,
                          "deployment.port: `auto` is not supported by the slurm executor"));
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

// The sha256 of a file, from coreutils (64 hex digits), or "".
std::string Sha256Of(const std::string& path) {
  CommandResult r = Run({"sha256sum", "--", path}, {}, 30);
  return r.exit_code == 0 ? r.out.substr(0, 64) : "";
}

// The uploaded runner's path in a run.sub: "<dir>/.evald-runner/evalrun-<16 hex>", or "".
std::string UploadedRunner(const std::string& run_sub, const std::string& out_dir) {
  const std::string prefix = out_dir + "/.evald-runner/evalrun-";
  const size_t at = run_sub.find(" " + prefix);
  if (at == std::string::npos) return "";
  return run_sub.substr(at + 1, prefix.size() + 16);
}

TEST_CASE("slurm: runner upload: evald copies its evalrun once (checksummed) and jobs run it") {
  std::optional<Cluster> cluster = TestCluster();
  if (!cluster) return;
  TempDir dir;
  RefEndpoint model(dir, ArithModelFlags());
  Evald evald(dir, FastSlurmPolls(dir));
  std::string cfg = Slurp(SlurmArithConfig(dir, model, *cluster, 1, 3, 2));
  const std::string walltime = "walltime: '00:10:00'";
  cfg.replace(cfg.find(walltime), walltime.size(), walltime + "\n  runner: {upload: true}");
  Spit(dir.path() + "/slurm.yaml", cfg);
  const std::string out_dir = dir.path() + "/out";
  const std::string sha = Sha256Of(BinDir() + "/evalrun");
  REQUIRE(sha.size() == 64);
  const std::string copy = out_dir + "/.evald-runner/evalrun-" + sha.substr(0, 16);
  // One invocation; the runner its run.sub ran.
  const auto run_one = [&]() {
    CommandResult r = evald.Ctl({"submit", dir.path() + "/slurm.yaml", "--json"});
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    v1::Invocation done = evald.WaitTerminal(InvocationIdFromJson(r.out), 120);
    INFO("evald stderr:\n" << evald.process().Stderr());
    REQUIRE(done.jobs_size() == 1);
    INFO(done.jobs(0).message());
    CHECK(done.jobs(0).state() == v1::JOB_STATE_SUCCEEDED);
    return UploadedRunner(Slurp(done.jobs(0).output_dir() + "/run.sub"), out_dir);
  };

  CHECK(run_one() == copy);
  // The file on the cluster (this machine's file system) is evald's evalrun, executable.
  REQUIRE(fs::exists(copy));
  CHECK(Sha256Of(copy) == sha);
  CHECK((fs::status(copy).permissions() & fs::perms::owner_exec) == fs::perms::owner_exec);
  const auto copied_at = fs::last_write_time(copy);
  const auto count_copies = [&] {
    const std::string log = evald.process().Stderr();
    size_t n = 0;
    for (size_t at = log.find("slurm: copied"); at != std::string::npos;
         at = log.find("slurm: copied", at + 1)) {
      ++n;
    }
    return n;
  };
  CHECK(count_copies() == 1);

  // The same evald: reused without another look. A restarted one: one checksum, no copy.
  CHECK(run_one() == copy);
  CHECK(count_copies() == 1);
  evald.Restart();
  CHECK(run_one() == copy);
  CHECK(count_copies() == 0);
  CHECK(fs::last_write_time(copy) == copied_at);
  size_t entries = 0;
  for (const auto& entry : fs::directory_iterator(out_dir + "/.evald-runner")) {
    (void)entry;
    ++entries;
  }
  CHECK(entries == 1);  // no temporary file left beside it
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
// Submits `cfg` with evalctl and returns the invocation id; the test stops when evalctl fails.
std::string SubmitOk(Evald& evald, const std::string& cfg) {
  CommandResult r = evald.Ctl({"submit", cfg, "--json"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  return InvocationIdFromJson(r.out);
}

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
  const std::string inv = SubmitOk(evald, cfg);
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
  const std::string inv = SubmitOk(evald, cfg);
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
  const std::string inv = SubmitOk(evald, cfg);
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

// Every result row of an invocation as (task, metric, value, count), sorted: what two runs of
// the same tasks should agree on whatever their job ids.
std::vector<std::string> Scores(const Evald& evald, const std::string& inv) {
  CommandResult results = evald.Ctl({"results", inv, "--json"});
  INFO(results.out << results.err);
  REQUIRE(results.exit_code == 0);
  std::vector<std::string> rows;
  for (const Json& row : Json::parse(results.out)) {
    rows.push_back(absl::StrCat(row["task"].get<std::string>(), " ",
                                row["metric"].get<std::string>(), " ", row["value"].dump(), " ",
                                row["count"].dump()));
  }
  std::sort(rows.begin(), rows.end());
  return rows;
}

bool ProcessGone(const std::string& marker) {
  return Run({"pgrep", "-f", "port-file " + marker}).exit_code == 1;
}

TEST_CASE("slurm: a command deployment runs inside each job and scores as the external endpoint") {
  std::optional<Cluster> cluster = TestCluster();
  if (!cluster) return;
  TempDir dir;
  RefEndpoint model(dir, ArithModelFlags());
  Evald evald(dir, FastSlurmPolls(dir));
  // The same two tasks against the endpoint outside the cluster (deployment: none) ...
  CommandResult plain = evald.Ctl({"submit", SlurmArithConfig(dir, model, *cluster, 2), "--json"});
  INFO(plain.out << plain.err);
  REQUIRE(plain.exit_code == 0);
  const std::string plain_inv = InvocationIdFromJson(plain.out);

  // ... and against the reference endpoint deployed inside each job, on a fixed port: the jobs
  // are exclusive on the one node so two servers never share it. The server checks that its
  // secret reached it.
  const int port = FreePort();
  const std::string marker = dir.path() + "/server-port";
  const std::string secret = "slurm-server-secret-0815";
  const std::string execution =
      absl::StrCat("  ssh_config_file: ", cluster->ssh_config,
                   "\n  username: root\n  partition: ", cluster->partition,
                   "\n  sbatch_extra_flags: {exclusive: true}\n");
  const std::string cfg = WriteConfig(
      dir, "deploy.yaml",
      SlurmDeployYaml(dir, cluster->alias, execution,
                      "test -n \"$SERVER_TOKEN\" && exec " + RefEndpointCommand(port, marker), port,
                      "  endpoint_readiness_timeout: 30\n"
                      "  env_vars:\n    SERVER_TOKEN: $host:SLURM_SERVER_SECRET\n",
                      2));
  CommandResult r = evald.Ctl({"submit", cfg, "--json"}, {{"SLURM_SERVER_SECRET", secret}});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const std::string inv = InvocationIdFromJson(r.out);

  v1::Invocation done = evald.WaitTerminal(inv, 180);
  INFO("evald stderr:\n" << evald.process().Stderr());
  REQUIRE(done.jobs_size() == 2);
  for (const auto& job : done.jobs()) {
    INFO(job.message());
    CHECK(job.state() == v1::JOB_STATE_SUCCEEDED);
  }
  CHECK(done.deployments_size() == 0);  // the server is part of each job, not a deployment
  CommandResult status = evald.Ctl({"status", inv, "--json"});
  REQUIRE(status.exit_code == 0);
  const Json s = Json::parse(status.out);
  for (const Json& job : s["jobs"]) {
    CHECK(job["progress"]["done"] == 10);
    const std::string out_dir = job["output_dir"];
    const std::string run_sub = Slurp(out_dir + "/run.sub");
    CHECK(absl::StrContains(run_sub, "srun --overlap --nodes 1 --ntasks 1 --output"));
    // The evaluation talked to the server in its own job.
    CHECK(absl::StrContains(Slurp(out_dir + "/plan.yaml"),
                            absl::StrCat("http://127.0.0.1:", port, "/v1/chat/completions")));
    CHECK_FALSE(absl::StrContains(run_sub, secret));
    CHECK(absl::StrContains(Slurp(out_dir + "/secrets.env"), "SERVER_TOKEN=" + secret));
    CHECK((fs::status(out_dir + "/secrets.env").permissions() & fs::perms::all) ==
          (fs::perms::owner_read | fs::perms::owner_write));
    // The server's own log came home with the job's logs.
    bool server_log = false;
    for (const auto& entry : fs::directory_iterator(out_dir + "/logs")) {
      const std::string name = entry.path().filename();
      if (absl::StartsWith(name, "server-") &&
          absl::StrContains(Slurp(entry.path()), "listening on http://127.0.0.1:")) {
        server_log = true;
      }
    }
    CHECK(server_log);
  }
  CHECK_FALSE(absl::StrContains(evald.process().Stderr(), secret));
  CHECK(WaitFor([&] { return ProcessGone(marker); }, 15));

  v1::Invocation plain_done = evald.WaitTerminal(plain_inv, 180);
  REQUIRE(plain_done.state() == v1::JOB_STATE_SUCCEEDED);
  const std::vector<std::string> scores = Scores(evald, inv);
  INFO(absl::StrJoin(scores, "\n"));
  CHECK(scores.size() >= 2);
  CHECK(scores == Scores(evald, plain_inv));
}

TEST_CASE("slurm: an in-job server that never gets healthy or dies fails its job saying why") {
  std::optional<Cluster> cluster = TestCluster();
  if (!cluster) return;
  TempDir dir;
  Evald evald(dir, FastSlurmPolls(dir));
  const std::string execution =
      absl::StrCat("  ssh_config_file: ", cluster->ssh_config,
                   "\n  username: root\n  partition: ", cluster->partition, "\n");
  const auto submit = [&](const std::string& name, const std::string& command, int port,
                          int readiness_timeout_s) {
    const std::string cfg = WriteConfig(
        dir, name,
        SlurmDeployYaml(dir, cluster->alias, execution, command, port,
                        absl::StrCat("  endpoint_readiness_timeout: ", readiness_timeout_s, "\n"),
                        1));
    CommandResult r = evald.Ctl({"submit", cfg, "--json"});
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    return InvocationIdFromJson(r.out);
  };
  // Up and answering, but /health is 503 for ever.
  const int port = FreePort();
  const std::string marker = dir.path() + "/never-port";
  const std::string never =
      submit("never.yaml", "exec " + RefEndpointCommand(port, marker, " --never-healthy"), port, 8);
  // Gone after a second, long before its readiness timeout (srun itself may take seconds here).
  const std::string dies = submit("dies.yaml", "sleep 1; exit 4", FreePort(), 120);

  v1::Invocation done = evald.WaitTerminal(never, 120);
  INFO("evald stderr:\n" << evald.process().Stderr());
  REQUIRE(done.jobs_size() == 1);
  INFO(done.jobs(0).message());
  CHECK(done.jobs(0).state() == v1::JOB_STATE_FAILED);
  CHECK(absl::StrContains(done.jobs(0).message(),
                          absl::StrCat("model server not healthy at http://127.0.0.1:", port,
                                       "/health after 8 s (endpoint_readiness_timeout)")));
  CHECK(absl::StrContains(done.jobs(0).message(), "FAILED"));
  // It did run (its log says so), and nothing of it is left.
  const std::string out_dir = done.jobs(0).output_dir();
  std::string server_out;
  for (const auto& entry : fs::directory_iterator(out_dir + "/logs")) {
    if (absl::StartsWith(entry.path().filename().string(), "server-")) {
      server_out += Slurp(entry.path());
    }
  }
  CHECK(absl::StrContains(server_out, "listening on"));
  CHECK(WaitFor([&] { return ProcessGone(marker); }, 15));
  CHECK(ProcessesMentioning(out_dir + "/").empty());
  // evalctl info shows the same reason.
  CommandResult info = evald.Ctl({"info", never});
  INFO(info.out << info.err);
  CHECK(absl::StrContains(info.out, "model server not healthy at"));

  v1::Invocation died = evald.WaitTerminal(dies, 120);
  REQUIRE(died.jobs_size() == 1);
  INFO(died.jobs(0).message());
  CHECK(died.jobs(0).state() == v1::JOB_STATE_FAILED);
  CHECK(absl::StrContains(died.jobs(0).message(),
                          "model server exited before it became healthy; see logs/server-"));
}

// The pids of ssh masters started with `ssh_config` (evald's: `ssh -F <config> ...
// ControlMaster=yes ...`).
std::vector<int> SshMasters(const std::string& ssh_config) {
  CommandResult r = Run({"pgrep", "-f", "ssh -F " + ssh_config + " .*ControlMaster=yes"});
  std::vector<int> pids;
  for (absl::string_view line : absl::StrSplit(r.out, '\n', absl::SkipWhitespace())) {
    int pid = 0;
    if (absl::SimpleAtoi(line, &pid)) pids.push_back(pid);
  }
  return pids;
}

TEST_CASE("slurm: the ssh master killed mid-run: the job stays tracked and succeeds") {
  std::optional<Cluster> cluster = TestCluster();
  if (!cluster) return;
  TempDir dir;
  // An ssh config of this test's own, so its evald's master is told apart from any other's.
  Cluster own = *cluster;
  own.ssh_config = dir.path() + "/ssh_config";
  Spit(own.ssh_config, Slurp(cluster->ssh_config));
  RefEndpoint model(dir, ArithModelFlags({"--latency-ms", "400"}));
  Evald evald(dir, FastSlurmPolls(dir));
  const std::string cfg = SlurmArithConfig(dir, model, own, 1, 20, 1);
  const std::string inv = SubmitOk(evald, cfg);
  Json job = WaitRunning(evald, inv, 60);
  INFO(job.dump());
  REQUIRE(job["state"] == "running");
  const std::vector<int> masters = SshMasters(own.ssh_config);
  REQUIRE(masters.size() == 1);
  // The connection drops: its master is gone at once, mid-run.
  REQUIRE(kill(masters[0], SIGKILL) == 0);

  v1::Invocation done = evald.WaitTerminal(inv, 120);
  INFO("evald stderr:\n" << evald.process().Stderr());
  REQUIRE(done.jobs_size() == 1);
  INFO(done.jobs(0).message());
  CHECK(done.jobs(0).state() == v1::JOB_STATE_SUCCEEDED);
  CommandResult status = evald.Ctl({"status", inv, "--json"});
  REQUIRE(status.exit_code == 0);
  CHECK(Json::parse(status.out)["jobs"][0]["progress"]["done"] == 20);
  // Polls went on through a new master.
  const std::vector<int> now = SshMasters(own.ssh_config);
  CHECK(now.size() == 1);
  CHECK(std::find(now.begin(), now.end(), masters[0]) == now.end());
  CommandResult results = evald.Ctl({"results", inv, "--json"});
  REQUIRE(results.exit_code == 0);
  CHECK(Json::parse(results.out).size() >= 1);
}

TEST_CASE("slurm: slurmctld restarted while a job runs: the job stays tracked and succeeds") {
  std::optional<Cluster> cluster = TestCluster();
  if (!cluster) return;
  TempDir dir;
  RefEndpoint model(dir, ArithModelFlags({"--latency-ms", "500"}));
  Evald evald(dir, FastSlurmPolls(dir));
  const std::string cfg = SlurmArithConfig(dir, model, *cluster, 1, 30, 1);
  const std::string inv = SubmitOk(evald, cfg);
  Json job = WaitRunning(evald, inv, 60);
  INFO(job.dump());
  REQUIRE(job["state"] == "running");

  // docs/slurm-local.md's recipe: SIGTERM to slurmctld (it saves its state), then `up`.
  const std::string pid_file =
      EnvOr("EVALD_SLURM_STATE_DIR", "/var/lib/evald-slurm-local") + "/run/slurmctld.pid";
  int pid = 0;
  REQUIRE(absl::SimpleAtoi(absl::StripAsciiWhitespace(Slurp(pid_file)), &pid));
  REQUIRE(kill(pid, SIGTERM) == 0);
  REQUIRE(WaitFor([&] { return !PidAlive(pid); }, 30));
  // No controller for a few polls: nothing observed, nothing concluded.
  absl::SleepFor(absl::Seconds(3));
  CommandResult during = evald.Ctl({"status", inv, "--json"});
  REQUIRE(during.exit_code == 0);
  CHECK(Json::parse(during.out)["jobs"][0]["state"] == "running");
  CommandResult up = Run({SourceDir() + "/scripts/slurm-local", "up"}, {}, 300);
  INFO(up.out << up.err);
  REQUIRE(up.exit_code == 0);

  v1::Invocation done = evald.WaitTerminal(inv, 120);
  INFO("evald stderr:\n" << evald.process().Stderr());
  REQUIRE(done.jobs_size() == 1);
  INFO(done.jobs(0).message());
  CHECK(done.jobs(0).state() == v1::JOB_STATE_SUCCEEDED);
  CommandResult status = evald.Ctl({"status", inv, "--json"});
  REQUIRE(status.exit_code == 0);
  CHECK(Json::parse(status.out)["jobs"][0]["progress"]["done"] == 30);
  CHECK(SlurmJobId(Json::parse(evald.Ctl({"info", inv, "--json"}).out)["jobs"][0]) ==
        SlurmJobId(job));  // the same SLURM job throughout, never resubmitted
}

// The login node's sshd (the listener of `scripts/slurm-local up` and its session processes,
// which serve open connections such as evald's master) stopped with SIGSTOP: new connections and
// open ones hang as for a host that went away. SIGCONT when it goes out of scope, whatever
// happened.
class FrozenLoginNode {
 public:
  FrozenLoginNode() {
    const std::string pid_file =
        EnvOr("EVALD_SLURM_STATE_DIR", "/var/lib/evald-slurm-local") + "/run/sshd.pid";
    int listener = 0;
    REQUIRE(absl::SimpleAtoi(absl::StripAsciiWhitespace(Slurp(pid_file)), &listener));
    Freeze(listener);
    CommandResult children = Run({"ps", "-o", "pid=", "--ppid", absl::StrCat(listener)});
    for (absl::string_view line : absl::StrSplit(children.out, '\n', absl::SkipWhitespace())) {
      int pid = 0;
      if (absl::SimpleAtoi(absl::StripAsciiWhitespace(line), &pid)) Freeze(pid);
    }
  }
  ~FrozenLoginNode() { Thaw(); }
  void Thaw() {
    for (auto it = stopped_.rbegin(); it != stopped_.rend(); ++it) kill(*it, SIGCONT);
    stopped_.clear();
  }

 private:
  void Freeze(int pid) {
    if (kill(pid, SIGSTOP) == 0) stopped_.push_back(pid);
  }
  std::vector<int> stopped_;
};

TEST_CASE("slurm: the login node unreachable for a minute: jobs stay tracked and local jobs run") {
  std::optional<Cluster> cluster = TestCluster();
  if (!cluster) return;
  TempDir dir;
  RefEndpoint model(dir, ArithModelFlags({"--latency-ms", "300"}));
  Evald evald(dir, FastSlurmPolls(dir));
  CommandResult r =
      evald.Ctl({"submit", SlurmArithConfig(dir, model, *cluster, 1, 30, 1), "--json"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const std::string inv = InvocationIdFromJson(r.out);
  Json job = WaitRunning(evald, inv, 60);
  INFO(job.dump());
  REQUIRE(job["state"] == "running");

  {
    FrozenLoginNode frozen;
    const absl::Time thaw_at = absl::Now() + absl::Seconds(60);
    // Meanwhile the SLURM job ends unseen, and a local invocation runs as usual.
    CommandResult local =
        evald.Ctl({"submit", WriteConfig(dir, "local.yaml", ArithConfig(dir, model)), "--json"});
    INFO(local.out << local.err);
    REQUIRE(local.exit_code == 0);
    v1::Invocation local_done = evald.WaitTerminal(InvocationIdFromJson(local.out), 50);
    CHECK(local_done.state() == v1::JOB_STATE_SUCCEEDED);
    // Not observed is not failed: the SLURM job stays as it was last seen.
    CommandResult during = evald.Ctl({"status", inv, "--json"});
    REQUIRE(during.exit_code == 0);
    CHECK(Json::parse(during.out)["jobs"][0]["state"] == "running");
    absl::SleepFor(thaw_at - absl::Now());
    during = evald.Ctl({"status", inv, "--json"});
    REQUIRE(during.exit_code == 0);
    CHECK(Json::parse(during.out)["jobs"][0]["state"] == "running");
  }

  // Reachable again: the final state, the results, and the same SLURM job.
  v1::Invocation done = evald.WaitTerminal(inv, 180);
  INFO("evald stderr:\n" << evald.process().Stderr());
  REQUIRE(done.jobs_size() == 1);
  INFO(done.jobs(0).message());
  CHECK(done.jobs(0).state() == v1::JOB_STATE_SUCCEEDED);
  CommandResult status = evald.Ctl({"status", inv, "--json"});
  REQUIRE(status.exit_code == 0);
  CHECK(Json::parse(status.out)["jobs"][0]["progress"]["done"] == 30);
  CHECK(SlurmJobId(Json::parse(evald.Ctl({"info", inv, "--json"}).out)["jobs"][0]) ==
        SlurmJobId(job));
}

}  // namespace
}  // namespace evald::testing
