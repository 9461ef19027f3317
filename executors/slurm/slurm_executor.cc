#include "executors/slurm/slurm_executor.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/deployment/deployment_spec.h"
#include "core/shell.h"
#include "core/status_macros.h"
#include "executors/slurm/run_sub.h"
#include "executors/slurm/slurm_config.h"
#include "executors/slurm/slurm_resume.h"
#include "executors/stage_files.h"
#include "executors/write_file.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

namespace evald::executors {
namespace {

namespace fs = std::filesystem;

constexpr int kHandleVersion = 1;
// Written next to run.sub before sbatch: which cluster this attempt went to, for Recover (which
// gets no config, only the task dir).
constexpr char kTargetFile[] = ".slurm_target.json";
// Polls in which a job is in neither squeue nor sacct before it counts as vanished.
constexpr int kMaxMisses = 3;

// Where execution.runner's upload puts evald's evalrun: <output_dir>/.evald-runner/.
constexpr char kRunnerDir[] = ".evald-runner";

// evald's own evalrun, which execution.runner's upload copies: a regular file, or an error that
// says what to do.
absl::Status StatUploadRunner(const std::string& path, struct stat& st) {
  if (path.empty() || ::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "execution.runner: upload: evald's evalrun '", path,
        "' is not a file (set runner_path in the evald config), or give execution.runner.path "
        "or execution.runner.image"));
  }
  return absl::OkStatus();
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The model server the job runs inside itself (JobSpec::deployment_yaml), or nullopt.
absl::StatusOr<std::optional<deployment::DeploymentSpec>> InJobServer(const JobSpec& spec) {
  if (spec.deployment_yaml.empty()) return std::optional<deployment::DeploymentSpec>();
  EVALD_ASSIGN_OR_RETURN(
      deployment::DeploymentSpec server,
      deployment::ParseDeploymentSpecYaml(spec.deployment_yaml, spec.execution_yaml));
  if (server.type == deployment::DeploymentType::kNone) {
    return std::optional<deployment::DeploymentSpec>();
  }
  return std::optional<deployment::DeploymentSpec>(std::move(server));
}

// Why the job script failed on its own (its one line in logs/stage.error, fetched back with
// logs/), or "".
std::string ScriptError(const std::string& task_dir) {
  std::string text = ReadFile(task_dir + "/" + kSlurmErrorFile);
  text = text.substr(0, text.find('\n'));
  if (text.size() > 500) text = text.substr(0, 500) + "...";
  return std::string(absl::StripAsciiWhitespace(text));
}


// progress.json's counters as read back from the cluster (the text of several files in one
// answer); a local file is read by stage_files.h's ReadProgress.
void ParseProgress(const std::string& text, Observation& obs) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return;
  obs.has_progress = true;
  obs.progress_done = j.value("done", int64_t{0});
  obs.progress_total = j.value("total", int64_t{0});
  obs.progress_errors = j.value("errors", int64_t{0});
  obs.progress_rate = j.value("rate", 0.0);
}

// `sbatch --parsable` prints "<id>" or "<id>;<cluster>".
std::string ParseSbatchId(const std::string& out) {
  for (absl::string_view line : absl::StrSplit(out, '\n', absl::SkipWhitespace())) {
    std::string id(absl::StripAsciiWhitespace(line.substr(0, line.find(';'))));
    bool digits = !id.empty();
    for (char c : id) digits = digits && absl::ascii_isdigit(static_cast<unsigned char>(c));
    if (digits) return id;
  }
  return "";
}

// The SLURM job id of the job named `name`, from FindByNameCommand's answer: the queue first,
// then accounting (the newest); "" when neither knows it. Unavailable when the answer is
// incomplete.
absl::StatusOr<std::string> FindByName(SlurmCluster& cluster, const std::string& name) {
  ClusterResult r = cluster.Run(FindByNameCommand(name), "", absl::Seconds(60));
  size_t q = r.out.find("@squeue\n");
  size_t a = r.out.find("@sacct\n");
  if (!r.ok() || q == std::string::npos || a == std::string::npos || a < q) {
    return absl::UnavailableError(
        absl::StrCat("cannot look for SLURM job ", name, ": ", r.Describe()));
  }
  // A resumed attempt has several jobs of that name: the newest counts.
  std::string newest;
  int64_t newest_n = -1;
  for (const auto& [id, st] : ParseSqueue(r.out.substr(q, a - q))) {
    int64_t n = 0;
    if (st.name == name && absl::SimpleAtoi(id, &n) && n > newest_n) {
      newest = id;
      newest_n = n;
    }
  }
  if (!newest.empty()) return newest;
  for (const auto& [id, list] : ParseSacct(r.out.substr(a))) {
    int64_t n = 0;
    for (const SlurmJobStatus& st : list) {
      if (st.name == name && absl::SimpleAtoi(id, &n) && n > newest_n) {
        newest = id;
        newest_n = n;
      }
    }
  }
  return newest;
}

std::string StateKey(const SlurmHandleState& h) {
  return absl::StrCat(h.hostname, "/", h.slurm_job_id);
}

// The attempt's chain of SLURM jobs, from the local task dir; nullopt when there is none for this
// attempt (a job started by an evald without auto-resume).
std::optional<SlurmChain> ReadChain(const std::string& task_dir, int attempt) {
  std::optional<SlurmChain> chain = DecodeSlurmChain(ReadFile(task_dir + "/" + kSlurmChainFile));
  if (!chain || chain->attempt != attempt) return std::nullopt;
  return chain;
}

absl::Status WriteChain(const std::string& task_dir, const SlurmChain& chain) {
  // Whole or not at all: a crash leaves the old chain or the new one.
  return WriteFileAtomically(task_dir + "/" + kSlurmChainFile, EncodeSlurmChain(chain), 0644);
}

bool NewerId(const std::string& a, const std::string& b) {
  int64_t x = 0, y = 0;
  return absl::SimpleAtoi(a, &x) && absl::SimpleAtoi(b, &y) && x > y;
}

}  // namespace

JobHandle EncodeSlurmHandle(const SlurmHandleState& s) {
  nlohmann::json j = {{"hostname", s.hostname},
                      {"username", s.username},
                      {"ssh_config_file", s.ssh_config_file},
                      {"slurm_job_id", s.slurm_job_id},
                      {"task_dir", s.task_dir}};
  return {.version = kHandleVersion, .executor = "slurm", .state = j.dump()};
}

std::optional<SlurmHandleState> DecodeSlurmHandle(const JobHandle& h) {
  if (h.executor != "slurm" || h.version != kHandleVersion) return std::nullopt;
  nlohmann::json j = nlohmann::json::parse(h.state, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  SlurmHandleState s;
  for (auto [key, field] :
       {std::pair{"hostname", &s.hostname}, std::pair{"username", &s.username},
        std::pair{"ssh_config_file", &s.ssh_config_file},
        std::pair{"slurm_job_id", &s.slurm_job_id}, std::pair{"task_dir", &s.task_dir}}) {
    auto it = j.find(key);
    if (it != j.end() && it->is_string()) *field = it->get<std::string>();
  }
  return s;
}

SlurmExecutor::SlurmExecutor(ExecutorContext context) : context_(std::move(context)) {}

absl::StatusOr<std::string> SlurmExecutor::RunnerSha256() const {
  const std::string& path = context_.runner_path;
  struct stat st {};
  EVALD_RETURN_IF_ERROR(StatUploadRunner(path, st));
  const int64_t mtime_ns = int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec;
  {
    absl::MutexLock lock(&digest_mu_);
    if (digest_ && digest_->path == path && digest_->size == st.st_size &&
        digest_->mtime_ns == mtime_ns) {
      return digest_->sha256;
    }
  }
  EVALD_ASSIGN_OR_RETURN(std::string sha256, FileSha256(path));
  absl::MutexLock lock(&digest_mu_);
  digest_ = RunnerDigest{.path = path, .size = st.st_size, .mtime_ns = mtime_ns, .sha256 = sha256};
  return sha256;
}

absl::StatusOr<SlurmExecutor::Runner> SlurmExecutor::ResolveRunner(const JobSpec& spec,
                                                                   const SlurmConfig& config,
                                                                   bool checksum) const {
  Runner runner;
  if (!spec.native) return runner;  // the harness container brings its own
  switch (config.runner.kind) {
    case SlurmRunner::Kind::kOwn:
      runner.path = context_.runner_path.empty() ? "evalrun" : context_.runner_path;
      break;
    case SlurmRunner::Kind::kPath:
      runner.path = config.runner.value;
      break;
    case SlurmRunner::Kind::kImage:
      runner.path = "evalrun";  // the image's own, on its PATH
      runner.image = config.runner.value;
      break;
    case SlurmRunner::Kind::kUpload: {
      std::string dir = config.output_dir;
      while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
      if (dir.empty() || dir[0] != '/') {
        return absl::InvalidArgumentError(
            "execution.runner: upload needs execution.output_dir, an absolute path on the "
            "cluster (evalrun goes to <output_dir>/.evald-runner/)");
      }
      std::string sha256(64, '0');  // Validate: the path's shape only, no checksum
      if (checksum) {
        EVALD_ASSIGN_OR_RETURN(sha256, RunnerSha256());
      } else {
        struct stat st {};
        EVALD_RETURN_IF_ERROR(StatUploadRunner(context_.runner_path, st));
      }
      runner.upload_from = context_.runner_path;
      runner.sha256 = sha256;
      runner.path =
          absl::StrCat(dir == "/" ? "" : dir, "/", kRunnerDir, "/evalrun-", sha256.substr(0, 16));
      EVALD_RETURN_IF_ERROR(CheckShellValue(runner.path, "execution.output_dir"));
      break;
    }
  }
  return runner;
}

absl::Status SlurmExecutor::Validate(const JobSpec& spec) const {
  // Also called for dry runs, so it checks what Render needs and nothing about submitting; and at
  // Submit, so no checksum of the runner (Render and Start compute it).
  return RenderWith(spec, /*checksum=*/false).status();
}

absl::StatusOr<RenderedJob> SlurmExecutor::Render(const JobSpec& spec) const {
  return RenderWith(spec, /*checksum=*/true);
}

absl::StatusOr<RenderedJob> SlurmExecutor::RenderWith(const JobSpec& spec, bool checksum) const {
  EVALD_ASSIGN_OR_RETURN(SlurmConfig config, ParseSlurmConfig(spec.execution_yaml));
  EVALD_ASSIGN_OR_RETURN(std::optional<deployment::DeploymentSpec> server, InJobServer(spec));
  EVALD_ASSIGN_OR_RETURN(Runner runner, ResolveRunner(spec, config, checksum));
  RunSubOptions options{.runner_path = runner.path, .runner_image = runner.image};
  if (server) options.deployment = &*server;
  return RenderRunSub(spec, config, options);
}

absl::Status SlurmExecutor::InstallRunner(SlurmCluster& cluster, const Runner& runner) {
  if (runner.upload_from.empty()) return absl::OkStatus();
  std::set<std::string>& known = installed_[cluster.target().Key()];
  if (known.count(runner.path) > 0) return absl::OkStatus();
  EVALD_ASSIGN_OR_RETURN(bool copied,
                         cluster.InstallFile(runner.upload_from, runner.sha256, runner.path));
  if (copied) {
    spdlog::info("slurm: copied {} to {}{}", runner.upload_from,
                 cluster.target().remote() ? cluster.target().hostname + ":" : "", runner.path);
  }
  known.insert(runner.path);
  return absl::OkStatus();
}

absl::StatusOr<JobHandle> SlurmExecutor::Start(const JobSpec& spec,
                                               const std::map<std::string, std::string>& env) {
  EVALD_ASSIGN_OR_RETURN(SlurmConfig config, ParseSlurmConfig(spec.execution_yaml));
  EVALD_ASSIGN_OR_RETURN(std::optional<deployment::DeploymentSpec> server, InJobServer(spec));
  EVALD_ASSIGN_OR_RETURN(Runner runner, ResolveRunner(spec, config, /*checksum=*/true));
  RunSubOptions options{.runner_path = runner.path, .runner_image = runner.image};
  if (server) options.deployment = &*server;
  EVALD_ASSIGN_OR_RETURN(RenderedJob rendered, RenderRunSub(spec, config, options));
  // Sourced by run.sub under `set -a`: NAME=<quoted value> lines, the evaluation's variables and
  // the server's secret ones (a name both use has one source: RenderRunSub checked).
  std::vector<std::string> secret_names;
  for (const auto& [name, host_var] : spec.env_vars) secret_names.push_back(name);
  if (server) {
    for (const auto& [name, host_var] : server->secret_env_vars) {
      if (std::find(secret_names.begin(), secret_names.end(), name) == secret_names.end()) {
        secret_names.push_back(name);
      }
    }
  }
  std::string secrets;
  for (const std::string& name : secret_names) {
    EVALD_RETURN_IF_ERROR(CheckEnvName(name, "env_vars"));
    auto it = env.find(name);
    if (it == env.end()) continue;
    EVALD_RETURN_IF_ERROR(CheckShellValue(it->second, absl::StrCat("the value of ", name)));
    absl::StrAppend(&secrets, name, "=", ShellQuote(it->second), "\n");
  }

  std::error_code ec;
  fs::create_directories(spec.task_dir + "/logs", ec);
  if (!ec) fs::create_directories(spec.task_dir + "/artifacts", ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create job directory ", spec.task_dir, ": ", ec.message()));
  }
  for (const char* stale : {"stage.exit", "stage.running", "stage.error"}) {
    fs::remove(spec.task_dir + "/logs/" + stale, ec);
  }
  const ClusterTarget target{config.hostname, config.username, config.ssh_config_file};
  nlohmann::json marker = {{"hostname", target.hostname},
                           {"username", target.username},
                           {"ssh_config_file", target.ssh_config_file},
                           {"attempt", spec.attempt}};
  EVALD_RETURN_IF_ERROR(WriteFileAtomically(spec.task_dir + "/" + kTargetFile, marker.dump() + "\n", 0644));
  // The resume budget goes with the chain: Poll gets no config.
  SlurmChain chain{.attempt = spec.attempt, .max_resumes = config.max_resumes};
  EVALD_ASSIGN_OR_RETURN(chain.walltime_s, SlurmTimeSeconds(config.walltime));
  if (config.max_walltime) {
    EVALD_ASSIGN_OR_RETURN(chain.max_walltime_s, SlurmTimeSeconds(*config.max_walltime));
  }
  EVALD_RETURN_IF_ERROR(WriteChain(spec.task_dir, chain));
  EVALD_RETURN_IF_ERROR(WriteFileAtomically(spec.task_dir + "/run.sub", rendered.script, 0755));
  std::vector<std::string> files = {"run.sub"};
  if (spec.native) {
    EVALD_RETURN_IF_ERROR(WriteFileAtomically(spec.task_dir + "/plan.yaml", rendered.plan, 0644));
    files.push_back("plan.yaml");
  }

  SlurmCluster& cluster = pool_.Get(target);
  // The task dir on the cluster is the same absolute path (execution.output_dir names it).
  const std::string& remote_dir = spec.task_dir;
  EVALD_RETURN_IF_ERROR(cluster.CopyTo(spec.task_dir, files, remote_dir));
  // execution.runner upload: evald's evalrun, once per cluster (and output_dir).
  EVALD_RETURN_IF_ERROR(InstallRunner(cluster, runner));
  if (!secret_names.empty()) {
    const std::string path = remote_dir + "/" + kSlurmSecretsFile;
    if (target.remote()) {
      EVALD_RETURN_IF_ERROR(cluster.WritePrivateFile(path, secrets));
    } else {
      EVALD_RETURN_IF_ERROR(WriteFileAtomically(path, secrets, 0600));
    }
  }
  const std::string name = SlurmJobName(spec.job_id, spec.attempt);
  const std::string q = ShellQuote(remote_dir);
  ClusterResult r =
      cluster.Run(absl::StrCat("cd ", q, " && mkdir -p logs artifacts && rm -f logs/stage.exit ",
                               "logs/stage.running logs/stage.error && sbatch --parsable run.sub"),
                  "", absl::Seconds(60));
  std::string id = r.ok() ? ParseSbatchId(r.out) : "";
  if (id.empty()) {
    // The answer may have been lost after sbatch took the job: look before anyone resubmits.
    absl::StatusOr<std::string> found = FindByName(cluster, name);
    if (!found.ok() || found->empty()) {
      return absl::UnavailableError(absl::StrCat(
          "sbatch on ", target.remote() ? target.hostname : "this machine", " failed: ",
          r.ok() ? absl::StrCat("no job id in its answer '", r.out.substr(0, 200), "'")
                 : r.Describe()));
    }
    id = *found;
  }
  chain.ids = {id};
  EVALD_RETURN_IF_ERROR(WriteChain(spec.task_dir, chain));
  misses_.erase(spec.job_id);
  SlurmHandleState h{.hostname = target.hostname,
                     .username = target.username,
                     .ssh_config_file = target.ssh_config_file,
                     .slurm_job_id = id,
                     .task_dir = remote_dir};
  RememberState(h, "submitted");
  return EncodeSlurmHandle(h);
}

void SlurmExecutor::RememberState(const SlurmHandleState& h, const std::string& state, bool final) {
  raw_state_.Set(StateKey(h), state, final);
}

std::vector<Observation> SlurmExecutor::Poll(const std::vector<JobRef>& jobs) {
  std::map<std::string, std::pair<ClusterTarget, std::vector<Live>>> by_cluster;
  for (const JobRef& ref : jobs) {
    std::optional<SlurmHandleState> h = DecodeSlurmHandle(ref.handle);
    if (!h || h->slurm_job_id.empty()) continue;
    std::optional<SlurmChain> chain = ReadChain(ref.task_dir, ref.attempt);
    if (chain && !chain->ids.empty()) h->slurm_job_id = chain->ids.back();
    auto& entry = by_cluster[h->target().Key()];
    entry.first = h->target();
    entry.second.push_back({&ref, *h, std::move(chain)});
  }
  std::vector<Observation> out;
  for (const auto& [key, entry] : by_cluster) PollCluster(entry.first, entry.second, out);
  return out;
}

void SlurmExecutor::PollCluster(const ClusterTarget& target, const std::vector<Live>& jobs,
                                std::vector<Observation>& out) {
  SlurmCluster& cluster = pool_.Get(target);
  std::vector<std::string> ids;
  for (const Live& j : jobs) ids.push_back(j.handle.slurm_job_id);
  ClusterResult q = cluster.Run(SqueueCommand(ids));
  if (!q.ok() && !SqueueKnowsNone(q.exit_code, q.err)) return;  // not observed this time
  std::map<std::string, SlurmJobStatus> queued = ParseSqueue(q.out);

  // A job in the queue under another name is another job that reused the id (cold restart).
  std::vector<std::optional<SlurmJobStatus>> status(jobs.size());
  std::vector<std::string> ask;  // ids sacct is asked about: gone from the queue, or FAILED
  for (size_t i = 0; i < jobs.size(); ++i) {
    const std::string name = SlurmJobName(jobs[i].ref->job_id, jobs[i].ref->attempt);
    auto it = queued.find(jobs[i].handle.slurm_job_id);
    if (it != queued.end() && it->second.name == name) status[i] = it->second;
    if (!status[i] || status[i]->state == "FAILED") ask.push_back(jobs[i].handle.slurm_job_id);
  }
  bool accounted = true;
  if (!ask.empty()) {
    ClusterResult a = cluster.Run(SacctCommand(ask));
    accounted = a.ok();
    std::map<std::string, std::vector<SlurmJobStatus>> done = ParseSacct(a.ok() ? a.out : "");
    for (size_t i = 0; i < jobs.size(); ++i) {
      const std::string name = SlurmJobName(jobs[i].ref->job_id, jobs[i].ref->attempt);
      auto it = done.find(jobs[i].handle.slurm_job_id);
      if (it == done.end()) continue;
      for (const SlurmJobStatus& st : it->second) {
        if (st.name != name) continue;
        if (!status[i]) {
          status[i] = st;
        } else if (st.state == status[i]->state) {
          status[i]->exit_code = st.exit_code;
        }
      }
    }
  }

  std::vector<Observation> mine;
  std::vector<size_t> mine_job;  // mine[k] is about jobs[mine_job[k]]
  struct Ended {
    size_t i;
    std::string not_resumed;  // why a resumable state was not resumed
  };
  std::vector<Ended> ended;  // final, or nowhere: reported once their results are home
  for (size_t i = 0; i < jobs.size(); ++i) {
    const Live& j = jobs[i];
    if (status[i] && !IsFinalSlurmState(status[i]->state)) {
      misses_.erase(j.ref->job_id);
      RememberState(j.handle, DescribeSlurmStatus(*status[i]));
      Observation obs = ObservationFor(*status[i]);
      obs.job_id = j.ref->job_id;
      mine.push_back(std::move(obs));
      mine_job.push_back(i);
      continue;
    }
    if (!status[i] && !accounted) continue;  // sacct did not answer: not observed
    std::string not_resumed;
    if (status[i] && IsResumableSlurmState(status[i]->state)) {
      SlurmChain chain =
          j.chain.value_or(SlurmChain{.attempt = j.ref->attempt, .ids = {j.handle.slurm_job_id}});
      ResumeDecision d = DecideResume(chain, status[i]->state);
      if (d.resume) {
        RememberState(j.handle, DescribeSlurmStatus(*status[i]), /*final=*/true);
        absl::StatusOr<Observation> resumed = Resume(cluster, j, chain, status[i]->state);
        if (!resumed.ok()) continue;  // not observed: tried again next poll
        mine.push_back(*std::move(resumed));
        mine_job.push_back(i);
        continue;
      }
      not_resumed = d.message;
    }
    ended.push_back({i, std::move(not_resumed)});
  }

  // Bring the ended jobs' results home first, so the Supervisor reads them: one remote command
  // per kFetchBatch jobs. A job whose fetch failed is not observed (tried again next poll); when
  // the batch failed on a file (not the connection), its jobs are fetched one by one so one bad
  // job does not hold back the others.
  const std::vector<std::string> results = {"artifacts", "logs"};
  std::vector<bool> fetched(jobs.size(), false);
  for (size_t b = 0; b < ended.size(); b += kFetchBatch) {
    const size_t end = std::min(ended.size(), b + kFetchBatch);
    std::vector<SlurmCluster::FetchDir> dirs;
    for (size_t e = b; e < end; ++e) {
      const Live& j = jobs[ended[e].i];
      dirs.push_back({j.handle.task_dir, j.ref->task_dir});
    }
    absl::Status batch = cluster.FetchFrom(dirs, results);
    for (size_t e = b; e < end; ++e) {
      fetched[ended[e].i] = batch.ok() || (absl::IsFailedPrecondition(batch) && dirs.size() > 1 &&
                                           cluster.FetchFrom({dirs[e - b]}, results).ok());
    }
  }
  for (const Ended& e : ended) {
    const size_t i = e.i;
    const Live& j = jobs[i];
    const std::string& local_dir = j.ref->task_dir;
    if (!fetched[i]) continue;
    std::optional<int> stage_exit = ReadStageExit(local_dir);
    Observation obs;
    if (status[i]) {
      obs = ObservationFor(*status[i]);
      if (status[i]->state == "FAILED" && !status[i]->exit_code && stage_exit && *stage_exit != 0) {
        obs.exit_code = *stage_exit;
      }
      RememberState(j.handle, DescribeSlurmStatus(*status[i]), /*final=*/true);
      if (!e.not_resumed.empty()) absl::StrAppend(&obs.message, "; ", e.not_resumed);
    } else if (stage_exit) {
      obs.kind = Observation::Kind::kExited;
      obs.exit_code = *stage_exit;
      obs.message = absl::StrCat("SLURM job ", j.handle.slurm_job_id,
                                 " left the queue and accounting has no record; exit code from "
                                 "logs/stage.exit");
    } else if (++misses_[j.ref->job_id] >= kMaxMisses) {
      obs.kind = Observation::Kind::kVanished;
      obs.message = absl::StrCat("SLURM job ", j.handle.slurm_job_id,
                                 " is in neither squeue nor sacct and left no logs/stage.exit");
    } else {
      continue;
    }
    if (obs.kind == Observation::Kind::kExited && obs.exit_code.value_or(1) != 0) {
      // The script's own reason (e.g. the in-job model server never got healthy).
      if (std::string why = ScriptError(local_dir); !why.empty()) {
        absl::StrAppend(&obs.message, "; ", why);
      }
    }
    misses_.erase(j.ref->job_id);
    obs.job_id = j.ref->job_id;
    executors::ReadProgress(local_dir, obs);
    mine.push_back(std::move(obs));
    mine_job.push_back(i);
  }
  std::vector<std::pair<Live, Observation*>> running;
  for (size_t k = 0; k < mine.size(); ++k) {
    if (mine[k].kind == Observation::Kind::kRunning)
      running.emplace_back(jobs[mine_job[k]], &mine[k]);
  }
  ReadProgress(cluster, running);
  for (Observation& obs : mine) out.push_back(std::move(obs));
}

void SlurmExecutor::ReadProgress(SlurmCluster& cluster,
                                 const std::vector<std::pair<Live, Observation*>>& jobs) {
  if (jobs.empty()) return;
  if (!cluster.target().remote()) {
    for (const auto& [j, obs] : jobs) {
      executors::ReadProgress(j.handle.task_dir, *obs);
    }
    return;
  }
  // One command for all: "@<index>" then the file's text, per job.
  std::string command = "i=0; for d in";
  for (const auto& [j, obs] : jobs) absl::StrAppend(&command, " ", ShellQuote(j.handle.task_dir));
  absl::StrAppend(&command,
                  "; do echo \"@$i\"; cat \"$d/artifacts/progress.json\" 2>/dev/null; echo; "
                  "i=$((i+1)); done");
  ClusterResult r = cluster.Run(command);
  if (!r.ok()) return;
  std::map<size_t, std::string> texts;
  size_t current = jobs.size();
  for (absl::string_view line : absl::StrSplit(r.out, '\n')) {
    size_t index = 0;
    if (absl::StartsWith(line, "@") && absl::SimpleAtoi(line.substr(1), &index)) {
      current = index;
    } else if (current < jobs.size()) {
      absl::StrAppend(&texts[current], line, "\n");
    }
  }
  for (const auto& [index, text] : texts) ParseProgress(text, *jobs[index].second);
}

absl::StatusOr<Observation> SlurmExecutor::Resume(SlurmCluster& cluster, const Live& job,
                                                  SlurmChain chain, const std::string& state) {
  const std::string& local_dir = job.ref->task_dir;
  const std::string name = SlurmJobName(job.ref->job_id, job.ref->attempt);
  std::string id;
  if (chain.resubmitting) {
    // A resubmission whose answer was lost (or evald died): the job may be there already.
    absl::StatusOr<std::string> found = FindByName(cluster, name);
    if (!found.ok()) return found.status();
    if (NewerId(*found, chain.ids.back())) id = *found;
  }
  if (id.empty()) {
    chain.resubmitting = true;
    EVALD_RETURN_IF_ERROR(WriteChain(local_dir, chain));
    // The same run.sub, plan and secrets.env, still in the task dir on the cluster.
    ClusterResult r = cluster.Run(
        absl::StrCat("cd ", ShellQuote(job.handle.task_dir), " && sbatch --parsable run.sub"), "",
        absl::Seconds(60));
    id = r.ok() ? ParseSbatchId(r.out) : "";
    if (id.empty()) {
      absl::StatusOr<std::string> found = FindByName(cluster, name);
      if (!found.ok() || !NewerId(*found, chain.ids.back())) {
        return absl::UnavailableError(
            absl::StrCat("resubmitting SLURM job ", chain.ids.back(), ": ", r.Describe()));
      }
      id = *found;
    }
  }
  chain.ids.push_back(id);
  chain.resubmitting = false;
  chain.last_resume = ResumedMessage(chain, state);
  EVALD_RETURN_IF_ERROR(WriteChain(local_dir, chain));
  spdlog::info("slurm: job {} {}", job.ref->job_id, chain.last_resume);
  misses_.erase(job.ref->job_id);
  SlurmHandleState next = job.handle;
  next.slurm_job_id = id;
  RememberState(next, "submitted");
  Observation obs;
  obs.job_id = job.ref->job_id;
  obs.kind = Observation::Kind::kRunning;
  obs.message = chain.last_resume;
  return obs;
}

absl::Status SlurmExecutor::Stop(const JobRef& job, absl::Duration grace) {
  (void)grace;  // SLURM escalates itself (SIGTERM, then SIGKILL after KillWait)
  std::optional<SlurmHandleState> h = DecodeSlurmHandle(job.handle);
  if (!h || h->slurm_job_id.empty()) return absl::OkStatus();
  // Every job of a resumed chain that may still be queued or running; and no resume after this.
  std::vector<std::string> ids = {h->slurm_job_id};
  if (std::optional<SlurmChain> chain = ReadChain(job.task_dir, job.attempt)) {
    chain->stopped = true;
    (void)WriteChain(job.task_dir, *chain);
    for (const std::string& id : chain->ids) {
      if (id != h->slurm_job_id) ids.push_back(id);
    }
  }
  std::string command = "scancel";
  for (const std::string& id : ids) absl::StrAppend(&command, " ", ShellQuote(id));
  ClusterResult r = pool_.Get(h->target()).Run(command);
  if (r.ok() || absl::StrContains(r.err, "already completing or completed") ||
      absl::StrContains(r.err, "Invalid job id")) {
    return absl::OkStatus();
  }
  return absl::UnavailableError(
      absl::StrCat("scancel ", absl::StrJoin(ids, " "), " failed: ", r.Describe()));
}

absl::StatusOr<std::optional<JobHandle>> SlurmExecutor::Recover(const JobRef& job) {
  nlohmann::json marker =
      nlohmann::json::parse(ReadFile(job.task_dir + "/" + kTargetFile), nullptr, false);
  // No marker for this attempt: Start never got as far as sbatch.
  if (marker.is_discarded() || !marker.is_object() || marker.value("attempt", 0) != job.attempt) {
    return std::optional<JobHandle>();
  }
  SlurmHandleState h{.hostname = marker.value("hostname", ""),
                     .username = marker.value("username", ""),
                     .ssh_config_file = marker.value("ssh_config_file", ""),
                     .task_dir = job.task_dir};
  EVALD_ASSIGN_OR_RETURN(h.slurm_job_id,
                         FindByName(pool_.Get(h.target()), SlurmJobName(job.job_id, job.attempt)));
  if (h.slurm_job_id.empty()) return std::optional<JobHandle>();
  if (std::optional<SlurmChain> chain = ReadChain(job.task_dir, job.attempt);
      chain && (chain->ids.empty() || NewerId(h.slurm_job_id, chain->ids.back()))) {
    chain->ids.push_back(h.slurm_job_id);
    chain->resubmitting = false;
    EVALD_RETURN_IF_ERROR(WriteChain(job.task_dir, *chain));
  }
  return std::optional<JobHandle>(EncodeSlurmHandle(h));
}

HandleInfo SlurmExecutor::Describe(const JobHandle& handle) const {
  HandleInfo info;
  std::optional<SlurmHandleState> h = DecodeSlurmHandle(handle);
  if (!h) return info;
  // The handle keeps the chain's first job; the chain file (local task dir) has the rest.
  std::optional<SlurmChain> chain = DecodeSlurmChain(ReadFile(h->task_dir + "/" + kSlurmChainFile));
  if (chain && !chain->ids.empty() && chain->ids.front() == h->slurm_job_id) {
    h->slurm_job_id = chain->ids.back();
    info.details.emplace_back("slurm jobs", chain->Text());
    if (!chain->last_resume.empty()) info.details.emplace_back("resumed", chain->last_resume);
  }
  if (!h->slurm_job_id.empty()) info.backend_id = absl::StrCat("slurm ", h->slurm_job_id);
  if (!h->hostname.empty()) info.details.emplace_back("cluster", h->hostname);
  if (!h->task_dir.empty()) info.details.emplace_back("task dir", h->task_dir);
  if (std::optional<std::string> state = raw_state_.Get(StateKey(*h))) {
    info.details.emplace_back("slurm state", *state);
  }
  return info;
}

}  // namespace evald::executors
