// evald_slurm_bench: what polling N live SLURM jobs costs the SLURM executor (remote commands per
// poll, by kind, and the poll's wall time) and how fast `evalctl submit` of a SLURM config returns,
// against the real cluster of scripts/slurm-local through its ssh login node, as evald talks to
// it. See bench/slurm/README.md; bench/slurm/run brings the cluster up and calls this. Prints one
// table; exits 1 when a target is missed.
//
//   evald_slurm_bench --bin-dir build/bin --source-dir . --tag bslurm123 --work-dir /tmp/x
//                     [--sizes 1,10,100,500] [--polls 5] [--submits 20]
// Needs the variables of `scripts/slurm-local env` in its environment. Every SLURM job it makes
// is named evald-<tag>-... or runs in --work-dir; all of them are cancelled at the end.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/shell.h"
#include "executors/local/process.h"
#include "executors/slurm/slurm_cluster.h"
#include "executors/slurm/slurm_executor.h"
#include "nlohmann/json.hpp"

namespace {

namespace fs = std::filesystem;
namespace ex = evald::executors;
using Clock = std::chrono::steady_clock;

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

struct Row {
  std::string n, gone, squeue, sacct, fetch, other, observed, wall, target;
  bool ok;
};

// The bench's own SLURM jobs: its held jobs by id, and anything named evald-<tag>- or running in
// the work dir (the jobs evald submitted for the evalctl rows).
class Jobs {
 public:
  Jobs(ex::SlurmCluster& cluster, std::string tag, std::string work_dir)
      : cluster_(cluster), tag_(std::move(tag)), work_dir_(std::move(work_dir)) {}
  ~Jobs() { CancelAll(); }

  std::string NamePrefix() const { return absl::StrCat("evald-", tag_, "-"); }

  // Submits `names` as held jobs (PENDING forever, nothing runs) in one remote command.
  std::vector<std::string> SubmitHeld(const std::vector<std::string>& names,
                                      const std::string& partition) {
    ex::ClusterResult r =
        cluster_.Run(absl::StrCat("cd ", evald::ShellQuote(work_dir_),
                                  " && while read -r n; do sbatch --parsable --hold -p ",
                                  evald::ShellQuote(partition),
                                  " -J \"$n\" -t 5 -o /dev/null --wrap true || exit 1; done"),
                     absl::StrJoin(names, "\n") + "\n", absl::Minutes(10));
    std::vector<std::string> ids;
    for (absl::string_view line : absl::StrSplit(r.out, '\n', absl::SkipWhitespace())) {
      std::string id(absl::StripAsciiWhitespace(line.substr(0, line.find(';'))));
      if (!id.empty() &&
          std::all_of(id.begin(), id.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        ids.push_back(id);
      }
    }
    held_.insert(held_.end(), ids.begin(), ids.end());
    if (!r.ok() || ids.size() != names.size()) {
      std::fprintf(stderr, "sbatch --hold failed after %zu of %zu jobs: %s\n", ids.size(),
                   names.size(), r.Describe().c_str());
      return {};
    }
    return ids;
  }

  bool Cancel(const std::vector<std::string>& ids) {
    return cluster_.Run(absl::StrCat("scancel ", absl::StrJoin(ids, " ")), "", absl::Minutes(2))
        .ok();
  }

  // Our jobs squeue still lists, as id -> work dir.
  std::map<std::string, std::string> Listed() {
    ex::ClusterResult r = cluster_.Run("squeue -h -t all -o '%i|%j|%Z'");
    std::map<std::string, std::string> out;
    for (absl::string_view line : absl::StrSplit(r.out, '\n', absl::SkipWhitespace())) {
      std::vector<std::string> f = absl::StrSplit(line, absl::MaxSplits('|', 2));
      if (f.size() < 3) continue;
      if (absl::StartsWith(f[1], NamePrefix()) || absl::StartsWith(f[2], work_dir_ + "/")) {
        out[f[0]] = f[2];
      }
    }
    return out;
  }

  void CancelAll() {
    std::set<std::string> ids(held_.begin(), held_.end());
    for (const auto& [id, dir] : Listed()) ids.insert(id);
    if (!ids.empty()) Cancel({ids.begin(), ids.end()});
    held_.clear();
  }

 private:
  ex::SlurmCluster& cluster_;
  std::string tag_;
  std::string work_dir_;
  std::vector<std::string> held_;
};

// Polls `refs` `polls` times after one warm-up poll; every poll must cost the same commands.
Row PollRow(ex::SlurmExecutor& executor, const std::vector<ex::JobRef>& refs, size_t gone,
            int polls) {
  executor.Poll(refs);  // warm-up: the first poll also starts the ssh master
  std::vector<double> wall;
  std::map<std::string, int64_t> per_poll;
  bool same = true;
  size_t pending = 0, ended = 0, other = 0;
  for (int p = 0; p < polls; ++p) {
    std::map<std::string, int64_t> before = ex::SlurmCluster::CommandCounts();
    auto t = Clock::now();
    std::vector<ex::Observation> obs = executor.Poll(refs);
    wall.push_back(Ms(Clock::now() - t));
    std::map<std::string, int64_t> delta;
    for (const auto& [word, count] : ex::SlurmCluster::CommandCounts()) {
      if (count != before[word]) delta[word] = count - before[word];
    }
    if (p > 0 && delta != per_poll) same = false;
    per_poll = delta;
    pending = ended = other = 0;
    for (const ex::Observation& o : obs) {
      if (o.kind == ex::Observation::Kind::kSubmitted) {
        ++pending;
      } else if (o.kind == ex::Observation::Kind::kExited) {
        ++ended;
      } else {
        ++other;
      }
    }
  }
  int64_t squeue = per_poll["squeue"], sacct = per_poll["sacct"], fetch = per_poll["cd"];
  int64_t rest = 0;
  for (const auto& [word, count] : per_poll) {
    if (word != "squeue" && word != "sacct" && word != "cd") rest += count;
  }
  Row row{.n = absl::StrCat(refs.size()),
          .gone = absl::StrCat(gone),
          .squeue = absl::StrCat(squeue),
          .sacct = absl::StrCat(sacct),
          .fetch = absl::StrCat(fetch),
          .other = absl::StrCat(rest),
          .observed = absl::StrCat(pending, " pend, ", ended, " ended",
                                   other ? absl::StrCat(", ", other, " other") : ""),
          .wall = absl::StrFormat("%.0f ms", Percentile(wall, .5)),
          .target = gone ? "squeue 1, sacct 1" : "squeue 1, sacct 0",
          .ok = false};
  // The status commands must not grow with N, and the fetches only with the ended jobs' batches
  // (evald stops polling a job after the poll that reports it ended).
  const size_t batch = ex::SlurmExecutor::kFetchBatch;
  row.ok = same && squeue == 1 && sacct == (gone ? 1 : 0) &&
           fetch == static_cast<int64_t>((gone + batch - 1) / batch) && rest == 0 &&
           pending == refs.size() - gone && ended == gone;
  return row;
}

void PrintRows(const std::vector<Row>& rows) {
  std::printf("%-5s %-5s %-7s %-6s %-6s %-6s %-26s %-10s %-18s %s\n", "N", "gone", "squeue",
              "sacct", "fetch", "other", "observed", "poll p50", "target", "ok");
  for (const Row& r : rows) {
    std::printf("%-5s %-5s %-7s %-6s %-6s %-6s %-26s %-10s %-18s %s\n", r.n.c_str(), r.gone.c_str(),
                r.squeue.c_str(), r.sacct.c_str(), r.fetch.c_str(), r.other.c_str(),
                r.observed.c_str(), r.wall.c_str(), r.target.c_str(), r.ok ? "yes" : "NO");
  }
}

std::string SubmitConfig(const std::string& work, const std::string& source) {
  return absl::StrCat(
      "defaults:\n  - execution: slurm/default\n  - deployment: none\n  - _self_\n",
      "execution:\n  hostname: ", Env("EVALD_SLURM_SSH_ALIAS"),
      "\n  username: ", Env("EVALD_SLURM_SSH_USER"),
      "\n  ssh_config_file: ", Env("EVALD_SLURM_SSH_CONFIG"),
      "\n  account: bench\n  partition: ", Env("EVALD_SLURM_PARTITION"),
      "\n  gres: null\n  gpus_per_node: null\n  walltime: '00:05:00'\n",
      // Held: the jobs stay PENDING and cost the node nothing; the bench cancels them.
      "  sbatch_extra_flags:\n    hold: true\n", "  output_dir: ", work, "/out\n",
      "target:\n  api_endpoint:\n    url: http://127.0.0.1:9/v1/chat/completions\n"
      "    model_id: ref\n    api_key_name: null\n",
      "evaluation:\n  overrides:\n    config.params.limit_samples: 1\n  tasks:\n"
      "    - name: arith\n      task_file: ",
      source, "/tests/integration/data/arith_task.yaml\n");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"evald SLURM executor benchmark"};
  std::string bin, source, tag, work;
  std::vector<int> sizes = {1, 10, 100, 500};
  int polls = 5, submits = 20;
  app.add_option("--bin-dir", bin, "evald, evalctl")->required();
  app.add_option("--source-dir", source, "the repository")->required();
  app.add_option("--tag", tag, "job-name tag of this run (evald-<tag>-...)")->required();
  app.add_option("--work-dir", work, "an empty directory of this run")->required();
  app.add_option("--sizes", sizes, "numbers of live jobs polled")->delimiter(',');
  app.add_option("--polls", polls, "timed polls per row (after one warm-up)");
  app.add_option("--submits", submits, "timed evalctl submits");
  CLI11_PARSE(app, argc, argv);
  for (const char* v :
       {"EVALD_SLURM_SSH_ALIAS", "EVALD_SLURM_SSH_CONFIG", "EVALD_SLURM_PARTITION"}) {
    if (Env(v).empty()) {
      std::fprintf(stderr, "%s is not set: eval \"$(scripts/slurm-local env)\" first\n", v);
      return 2;
    }
  }
  work = fs::absolute(work).string();
  bool all_ok = true;
  const ex::ClusterTarget target{.hostname = Env("EVALD_SLURM_SSH_ALIAS"),
                                 .username = "",
                                 .ssh_config_file = Env("EVALD_SLURM_SSH_CONFIG")};
  ex::ClusterPool pool;  // the bench's own connection, for sbatch/scancel/squeue
  Jobs jobs(pool.Get(target), tag, work);

  // 1. Poll cost: the first N of max(sizes) held jobs, all pending; then with every tenth gone.
  const int most = *std::max_element(sizes.begin(), sizes.end());
  std::vector<std::string> names;
  std::vector<ex::JobRef> refs;
  for (int i = 0; i < most; ++i) {
    ex::JobRef ref{.job_id = absl::StrCat(tag, "-", i), .attempt = 1};
    ref.task_dir = absl::StrCat(work, "/jobs/", ref.job_id);     // never created: nothing to fetch
    names.push_back(absl::StrCat("evald-", ref.job_id, "-a1"));  // SlurmJobName's form
    refs.push_back(ref);
  }
  auto t0 = Clock::now();
  std::vector<std::string> ids = jobs.SubmitHeld(names, Env("EVALD_SLURM_PARTITION"));
  if (ids.empty()) return 2;
  std::printf("submitted %d held jobs in %.1f s (one remote loop of sbatch --hold)\n\n", most,
              Ms(Clock::now() - t0) / 1000);
  for (int i = 0; i < most; ++i) {
    refs[i].handle = ex::EncodeSlurmHandle({.hostname = target.hostname,
                                            .username = target.username,
                                            .ssh_config_file = target.ssh_config_file,
                                            .slurm_job_id = ids[i],
                                            .task_dir = refs[i].task_dir});
  }
  std::vector<Row> rows;
  {
    ex::SlurmExecutor executor(ex::ExecutorContext{});
    for (int n : sizes) {
      rows.push_back(PollRow(executor, {refs.begin(), refs.begin() + n}, 0, polls));
    }
  }
  std::vector<std::string> gone;
  for (int i = 9; i < most; i += 10) gone.push_back(ids[i]);
  if (!gone.empty()) {
    jobs.Cancel(gone);
    t0 = Clock::now();
    bool left = false;
    while (Ms(Clock::now() - t0) < 90000 && !left) {
      std::map<std::string, std::string> listed = jobs.Listed();
      left = std::none_of(gone.begin(), gone.end(),
                          [&](const std::string& id) { return listed.count(id) > 0; });
      if (!left) std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    std::printf("cancelled %zu jobs (every tenth); squeue stopped listing them after %.1f s\n\n",
                gone.size(), Ms(Clock::now() - t0) / 1000);
    ex::SlurmExecutor executor(ex::ExecutorContext{});
    for (int n : sizes) {
      if (n < 10) continue;
      rows.push_back(
          PollRow(executor, {refs.begin(), refs.begin() + n}, static_cast<size_t>(n / 10), polls));
    }
  }
  jobs.CancelAll();
  PrintRows(rows);
  for (const Row& r : rows) all_ok = all_ok && r.ok;
  std::printf(
      "(commands per poll by kind: squeue and sacct are the status commands; fetch is one "
      "remote `tar c` per %zu jobs that ended, paid once in their life)\n\n",
      ex::SlurmExecutor::kFetchBatch);

  // 2. evalctl submit of a SLURM config against a real evald.
  const std::string state = work + "/evald";
  fs::create_directories(state);
  auto daemon =
      ex::SpawnDetached({.argv = {bin + "/evald", "--state-dir", state, "--log-level", "warn"},
                         .stderr_path = work + "/evald.log"});
  if (!daemon.ok()) {
    std::fprintf(stderr, "cannot start evald: %s\n",
                 std::string(daemon.status().message()).c_str());
    return 2;
  }
  setenv("EVALD_ADDR", absl::StrCat("unix://", state, "/evald.sock").c_str(), 1);
  const std::string cfg = work + "/slurm.yaml";
  std::ofstream(cfg) << SubmitConfig(work, source);
  const std::string evalctl = bin + "/evalctl";
  // Warm-up and check: a dry run renders run.sub without touching the cluster.
  ex::ClusterResult dry;
  for (int i = 0; i < 100; ++i) {
    dry = ex::RunCommand({evalctl, "submit", cfg, "--dry-run"}, "", absl::Seconds(30));
    if (dry.ok() && absl::StrContains(dry.out, "#SBATCH --hold")) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::vector<double> lat;
  std::vector<std::string> invocations;
  if (!dry.ok()) {
    std::fprintf(stderr, "evalctl submit --dry-run failed: %s\n%s", dry.Describe().c_str(),
                 dry.out.c_str());
    all_ok = false;
  } else {
    for (int i = 0; i < submits; ++i) {
      auto t = Clock::now();
      ex::ClusterResult r =
          ex::RunCommand({evalctl, "submit", cfg, "--json"}, "", absl::Seconds(30));
      lat.push_back(Ms(Clock::now() - t));
      nlohmann::json j = nlohmann::json::parse(r.out, nullptr, false);
      if (!r.ok() || j.is_discarded() || !j.contains("invocation_id")) {
        std::fprintf(stderr, "evalctl submit failed: %s\n", r.Describe().c_str());
        all_ok = false;
        break;
      }
      invocations.push_back(j["invocation_id"].get<std::string>());
    }
  }
  // Evidence the submits did reach the cluster, afterwards, on the executor's thread.
  t0 = Clock::now();
  size_t on_cluster = 0;
  while (Ms(Clock::now() - t0) < 120000) {
    on_cluster = 0;
    for (const auto& [id, dir] : jobs.Listed()) on_cluster += absl::StartsWith(dir, work + "/out/");
    if (on_cluster >= invocations.size()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  const double reached_s = Ms(Clock::now() - t0) / 1000;
  for (const std::string& inv : invocations) {
    ex::RunCommand({evalctl, "kill", inv}, "", absl::Seconds(60));
  }
  (void)ex::SignalGroup(daemon->pid, SIGTERM);  // gone already: nothing to stop
  waitpid(daemon->pid, nullptr, 0);
  jobs.CancelAll();

  const double p50 = Percentile(lat, .5), p90 = Percentile(lat, .9);
  const bool submit_ok = lat.size() == static_cast<size_t>(submits) && p90 < 100;
  const bool reached_ok = on_cluster >= invocations.size() && !invocations.empty();
  std::printf("%-58s %-20s %-12s %s\n", "measure", "value", "target", "ok");
  std::printf("%-58s %-20s %-12s %s\n",
              absl::StrCat("evalctl submit (SLURM config), median / p90 of ", lat.size()).c_str(),
              absl::StrFormat("%.1f / %.1f ms", p50, p90).c_str(), "< 100 ms",
              submit_ok ? "yes" : "NO");
  std::printf(
      "%-58s %-20s %-12s %s\n", "  their jobs in squeue (sbatch'ed by evald) after the last",
      absl::StrFormat("%zu of %zu, %.1f s", on_cluster, invocations.size(), reached_s).c_str(),
      "(a check)", reached_ok ? "yes" : "NO");
  all_ok = all_ok && submit_ok && reached_ok;
  std::printf("exit %d\n", all_ok ? 0 : 1);
  return all_ok ? 0 : 1;
}
