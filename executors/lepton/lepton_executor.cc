// File: lepton_executor.cc
#include "executors/lepton/lepton_executor.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "core/ids.h"
#include "core/shell.h"
#include "core/status_macros.h"
#include "executors/job_spec_check.h"
#include "executors/stage_files.h"
#include "executors/write_file.h"
#include "spdlog/spdlog.h"

namespace evald::executors {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

constexpr int kHandleVersion = 1;
constexpr char kJobFile[] = "lepton-job.json";
// Every job evald creates starts with this; the poll's list call asks only for these.
constexpr char kNamePrefix[] = "evald-";
constexpr size_t kMaxNameLength = 36;  // lepton-api.md b.8
constexpr char kNow[] = "$(date -u +%Y-%m-%dT%H:%M:%SZ)";

// Lepton's /logs: lines per call, and calls per ReadLogs.
constexpr int kLogPageLines = 1000;
constexpr int kLogPages = 100;

struct HandleState {
  std::string name;
  std::string id;
  LeptonExecutor::Target target;
};

json TargetJson(const LeptonExecutor::Target& t) {
  return {{"api_url", t.api_url}, {"workspace_id", t.workspace_id}, {"token_env", t.token_env}};
}

LeptonExecutor::Target TargetOf(const json& j) {
  return {j.value("api_url", std::string()), j.value("workspace_id", std::string()),
          j.value("token_env", std::string())};
}

JobHandle EncodeHandle(const HandleState& s) {
  JobHandle h;
  h.version = kHandleVersion;
  h.executor = "lepton";
  json j = {{"name", s.name}, {"id", s.id}, {"target", TargetJson(s.target)}};
  h.state = j.dump();
  return h;
}

std::optional<HandleState> DecodeHandle(const JobHandle& h) {
  if (h.executor != "lepton" || h.version != kHandleVersion) return std::nullopt;
  json j = json::parse(h.state, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object() || !j.contains("target")) return std::nullopt;
  HandleState s{j.value("name", std::string()), j.value("id", std::string()),
                TargetOf(j["target"])};
  if (s.name.empty() || s.id.empty()) return std::nullopt;
  return s;
}

std::string TargetKey(const LeptonExecutor::Target& t) {
  return absl::StrCat(t.api_url, " ", t.workspace_id);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return "";
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string StringAt(const json& j, const char* a, const char* b) {
  if (!j.is_object() || !j.contains(a) || !j[a].is_object()) return "";
  const json& inner = j[a];
  if (!inner.contains(b) || !inner[b].is_string()) return "";
  return inner[b].get<std::string>();
}

int IntAt(const json& j, const char* a, const char* b) {
  if (!j.is_object() || !j.contains(a) || !j[a].is_object()) return 0;
  const json& inner = j[a];
  if (!inner.contains(b) || !inner[b].is_number_integer()) return 0;
  return inner[b].get<int>();
}

bool HasLocalPath(const LeptonConfig& config) {
  for (const LeptonMount& m : config.mounts) {
    if (!m.local_path.empty()) return true;
  }
  return false;
}

// The task dir as the job sees it: under a mount whose `local_path` holds it, the mount_path plus
// the rest. Without such a mapping, as the reference: <first mount_path>/<task> (that mount's
// storage path gets /<invocation id>), which evald cannot read back (Poll says so).
bool UnderLocalPath(const LeptonConfig& config, const std::string& task_dir) {
  for (const LeptonMount& m : config.mounts) {
    std::string local(absl::StripSuffix(m.local_path, "/"));
    if (!local.empty() && (task_dir == local || absl::StartsWith(task_dir, local + "/"))) {
      return true;
    }
  }
  return false;
}

std::string InJobTaskDir(const LeptonConfig& config, const std::string& task_dir) {
  for (const LeptonMount& m : config.mounts) {
    if (m.local_path.empty()) continue;
    std::string local(absl::StripSuffix(m.local_path, "/"));
    if (task_dir == local) return m.mount_path;
    if (absl::StartsWith(task_dir, local + "/")) {
      return absl::StrCat(absl::StripSuffix(m.mount_path, "/"), task_dir.substr(local.size()));
    }
  }
  if (!config.mounts.empty() && !HasLocalPath(config) && config.use_shared_storage) {
    return absl::StrCat(absl::StripSuffix(config.mounts[0].mount_path, "/"), "/",
                        fs::path(task_dir).filename().string());
  }
  return task_dir;
}

// The bash program the job's container runs: the stage files of job-contract.md in the task dir
// on the shared storage, the evaluation with its output copied to the job log, and the exit code.
// Every value in it is a ShellQuote'd word, after the checks every script renderer runs
// (job_spec_check.h) plus this script's own values; InvalidArgument naming the first bad one.
absl::StatusOr<std::string> JobScript(const JobSpec& spec, const LeptonConfig& config,
                                      const std::string& dir) {
  EVALD_RETURN_IF_ERROR(CheckJobSpecForScript(spec));
  EVALD_RETURN_IF_ERROR(
      CheckShellValue(config.runner_command, "execution.evaluation_tasks.runner_command"));
  EVALD_RETURN_IF_ERROR(CheckShellValue(dir, "task directory in the Lepton job"));
  std::string s =
      absl::StrCat("# evald job ", ShellQuote(spec.job_id), " task ", ShellQuote(spec.task),
                   "\nset -u\ntask_dir=", ShellQuote(dir),
                   "\nmkdir -p \"$task_dir/logs\" \"$task_dir/artifacts\"\n",
                   "rm -f \"$task_dir/logs/stage.exit\" \"$task_dir/logs/stage.running\"\n",
                   "echo \"", kNow, "\" > \"$task_dir/logs/stage.pre-start\"\n", "echo \"", kNow,
                   "\" > \"$task_dir/logs/stage.running\"\n");
  std::string command;
  if (spec.native) {
    command = absl::StrCat(ShellQuote(config.runner_command), " --plan \"$task_dir/plan.yaml\"",
                           " -o \"config.output_dir=$task_dir/artifacts\"");
  } else {
    // As the reference: the harness writes into the task's artifacts instead of /results.
    command = absl::StrCat(
        "bash -c ", ShellQuote(absl::StrReplaceAll(
                        spec.container_command,
                        {{"--output_dir /results", "--output_dir \"$task_dir/artifacts\""}})));
    command = absl::StrCat("task_dir=\"$task_dir\" ", command);
  }
  if (config.task_timeout_s > 0) {
    // The reference passes evaluation_tasks.timeout along and never applies it; evald stops the
    // evaluation inside the job, so the limit holds whatever evald is doing (or not running).
    // An image without timeout(1) runs without the limit and says so in stderr.log.
    absl::StrAppend(&s,
                    "limit=()\nif command -v timeout >/dev/null 2>&1; then "
                    "limit=(timeout --kill-after=30 ",
                    config.task_timeout_s,
                    ")\nelse echo \"evald: this image has no timeout command; "
                    "execution.evaluation_tasks.timeout is not applied\" >> "
                    "\"$task_dir/logs/stderr.log\"\nfi\n");
    command = absl::StrCat("\"${limit[@]}\" ", spec.native ? "" : "env ", command);
  }
  // The script is the container's main process: the tees must be done before it exits, or the
  // log tails are lost. The stdout tee is a pipeline stage (waited for); the stderr one is a
  // process substitution, waited for by its pid ($! is it in bash >= 4.4).
  absl::StrAppend(&s, "(", command,
                  " 2> >(tee -a \"$task_dir/logs/stderr.log\" >&2); code=$?; wait ${!:+\"$!\"}; "
                  "exit \"$code\") | tee -a \"$task_dir/logs/stdout.log\"\n"
                  "code=${PIPESTATUS[0]}\n",
                  "echo \"", kNow, " $code\" > \"$task_dir/logs/stage.exit.tmp\"\n",
                  "mv -f \"$task_dir/logs/stage.exit.tmp\" \"$task_dir/logs/stage.exit\"\n",
                  "exit \"$code\"\n");
  return s;
}

// Start's env entries the config does not give the job itself: each must be a workspace secret.
absl::Status CheckEnvCovered(const JobSpec& spec, const LeptonConfig& config) {
  std::set<std::string> covered;
  for (const LeptonEnvVar& e : config.env_vars) covered.insert(e.name);
  for (const auto& [dst, src] : spec.env_vars) {
    if (dst == config.token_env || covered.count(dst) > 0) continue;
    return absl::FailedPreconditionError(absl::StrCat(
        "task '", spec.task, "' needs ", dst, " (from ", src,
        "), but a Lepton job gets secrets only as workspace secrets: add `", dst,
        ": {value_from: {secret_name_ref: <secret name>}}` under "
        "execution.lepton_platform.tasks.env_vars (evald never puts a secret value into a job "
        "spec)"));
  }
  return absl::OkStatus();
}

absl::Status CheckImages(const JobSpec& spec, const LeptonConfig& config) {
  if (spec.native && config.runner_image.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("task '", spec.task,
                     "' is a native task: on Lepton it runs evalrun from an image; set "
                     "execution.evaluation_tasks.runner_image"));
  }
  if (!spec.native && spec.image.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("task '", spec.task, "' runs in a container but names no image"));
  }
  return absl::OkStatus();
}

LeptonExecutor::Target TargetFor(const LeptonConfig& config) {
  return {config.api_url, config.workspace_id, config.token_env};
}

std::string StateOf(const json& job) { return StringAt(job, "status", "state"); }

std::string NameOf(const json& job) { return StringAt(job, "metadata", "name"); }

std::string IdOf(const json& job) { return StringAt(job, "metadata", "id"); }

}  // namespace

std::string LeptonJobName(const std::string& job_id, int attempt) {
  std::optional<std::pair<std::string, int>> parsed = ParseJobId(job_id);
  if (!parsed) return "";
  std::string name = absl::StrCat(kNamePrefix, absl::AsciiStrToLower(parsed->first), "-",
                                  parsed->second, "-a", attempt);
  return name.size() <= kMaxNameLength ? name : "";
}

LeptonStateClass ClassifyLeptonJobState(const std::string& state) {
  static const auto* kClasses = new std::map<std::string, LeptonStateClass>{
      {"Queueing", LeptonStateClass::kQueued},  {"Awaiting", LeptonStateClass::kQueued},
      {"Starting", LeptonStateClass::kQueued},  {"PendingRetry", LeptonStateClass::kQueued},
      {"Running", LeptonStateClass::kRunning},  {"Restarting", LeptonStateClass::kRunning},
      {"Stopping", LeptonStateClass::kRunning}, {"Completed", LeptonStateClass::kCompleted},
      {"Failed", LeptonStateClass::kFailed},    {"Stopped", LeptonStateClass::kStopped},
      {"Deleting", LeptonStateClass::kGone},    {"Deleted", LeptonStateClass::kGone},
      {"Terminating", LeptonStateClass::kGone}, {"Archived", LeptonStateClass::kArchived},
  };
  auto it = kClasses->find(state);
  return it == kClasses->end() ? LeptonStateClass::kUnknown : it->second;
}

LeptonExecutor::LeptonExecutor(ExecutorContext context) : context_(std::move(context)) {}

absl::Status LeptonExecutor::Validate(const JobSpec& spec) const {
  absl::StatusOr<LeptonConfig> config = ParseLeptonConfig(spec.execution_yaml);
  if (!config.ok()) return absl::FailedPreconditionError(config.status().message());
  // No workspace check here: dry runs of the reference's examples (which rely on `lep login`)
  // render without one; Start refuses clearly.
  return CheckJob(spec, *config);
}

absl::Status LeptonExecutor::CheckJob(const JobSpec& spec, const LeptonConfig& config) const {
  // The job name and the script, as Render and Start build them (no API call).
  EVALD_RETURN_IF_ERROR(BuildJob(spec, config, "", /*resolve_node_group=*/false).status());
  EVALD_RETURN_IF_ERROR(CheckImages(spec, config));
  EVALD_RETURN_IF_ERROR(CheckEnvCovered(spec, config));
  // The token is not checked here: a dry run needs none, and Start says clearly when it lacks one.
  if (config.use_shared_storage && HasLocalPath(config) && !spec.task_dir.empty() &&
      !UnderLocalPath(config, spec.task_dir)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "task dir ", spec.task_dir,
        " is not under the local_path of any execution.lepton_platform.tasks.mounts entry, so "
        "the Lepton job could not write its results where evald reads them; put "
        "execution.output_dir under that path"));
  }
  return absl::OkStatus();
}

absl::StatusOr<json> LeptonExecutor::BuildJob(const JobSpec& spec, const LeptonConfig& config,
                                              const std::string& node_group_id,
                                              bool resolve_node_group) const {
  const std::string name = LeptonJobName(spec.job_id, std::max(spec.attempt, 1));
  if (name.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("job id ", spec.job_id, " gives no valid Lepton job name"));
  }
  const std::string dir = InJobTaskDir(config, spec.task_dir);
  json envs = json::array();
  for (const LeptonEnvVar& e : config.env_vars) {
    if (e.secret_ref.empty()) {
      envs.push_back({{"name", e.name}, {"value", e.value}});
    } else {
      envs.push_back({{"name", e.name}, {"value_from", {{"secret_name_ref", e.secret_ref}}}});
    }
  }
  json mounts = json::array();
  for (const LeptonMount& m : config.mounts) {
    // A mount mapped to a local path carries task dirs that already hold the invocation id;
    // the others get the reference's per-invocation sub path.
    std::string path = m.local_path.empty()
                           ? absl::StrCat(absl::StripSuffix(m.path, "/"), "/", spec.invocation_id)
                           : m.path;
    json mount = {{"path", path}, {"from", m.from}, {"mount_path", m.mount_path}};
    if (!m.mount_options_json.empty()) mount["mount_options"] = json::parse(m.mount_options_json);
    mounts.push_back(std::move(mount));
  }
  EVALD_ASSIGN_OR_RETURN(std::string script, JobScript(spec, config, dir));
  json job_spec = {
      {"resource_shape", config.resource_shape},
      {"container",
       {{"image", spec.native ? config.runner_image : spec.image},
        {"command", {"/bin/bash", "-c", std::move(script)}}}},
      {"shared_memory_size", 1024},
      {"completions", 1},
      {"parallelism", 1},
      {"envs", envs},
      {"mounts", mounts},
      {"image_pull_secrets", config.image_pull_secrets},
      {"ttl_seconds_after_finished", config.ttl_seconds_after_finished},
      {"intra_job_communication", false},
  };
  if (!config.node_group.empty()) {
    job_spec["affinity"] = {
        {"allowed_dedicated_node_groups",
         {resolve_node_group ? node_group_id
                             : absl::StrCat("<id of node group ", config.node_group, ">")}}};
  }
  return json{{"metadata", {{"id", name}, {"name", name}, {"visibility", "private"}}},
              {"spec", job_spec}};
}

absl::StatusOr<RenderedJob> LeptonExecutor::Render(const JobSpec& spec) const {
  absl::StatusOr<LeptonConfig> config = ParseLeptonConfig(spec.execution_yaml);
  if (!config.ok()) return config.status();
  absl::StatusOr<json> job = BuildJob(spec, *config, "", /*resolve_node_group=*/false);
  if (!job.ok()) return job.status();
  RenderedJob out;
  const std::string workspace =
      config->workspace_id.empty() ? "<workspace id>" : config->workspace_id;
  out.script = absl::StrCat("# POST ", config->api_url, "/api/v2/workspaces/", workspace, "/jobs\n",
                            job->dump(2), "\n");
  out.plan = spec.native ? spec.plan_yaml : "";
  return out;
}

void LeptonExecutor::RememberToken(const Target& target, const std::string& token) {
  absl::MutexLock lock(&tokens_mu_);
  tokens_[TargetKey(target)] = token;
}

absl::StatusOr<lepton::LeptonClient> LeptonExecutor::ClientFor(const Target& target) const {
  std::string token;
  {
    absl::MutexLock lock(&tokens_mu_);
    if (auto it = tokens_.find(TargetKey(target)); it != tokens_.end()) token = it->second;
  }
  if (token.empty()) {
    if (const char* env = std::getenv(target.token_env.c_str()); env != nullptr) token = env;
  }
  if (token.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "no Lepton API token for workspace ", target.workspace_id, ": set ", target.token_env,
        " in evald's environment (or resubmit with it mapped in evaluation.env_vars)"));
  }
  lepton::LeptonClient::Options options;
  options.api_url = target.api_url;
  options.workspace_id = target.workspace_id;
  options.token = std::move(token);
  options.request_timeout = absl::Seconds(30);
  options.max_attempts = 4;
  options.max_total = absl::Seconds(90);  // below CallTimeout
  return lepton::LeptonClient(std::move(options));
}

absl::StatusOr<JobHandle> LeptonExecutor::Start(const JobSpec& spec,
                                                const std::map<std::string, std::string>& env) {
  absl::StatusOr<LeptonConfig> config = ParseLeptonConfig(spec.execution_yaml);
  if (!config.ok()) return config.status();
  EVALD_RETURN_IF_ERROR(LeptonWorkspaceError(*config));
  // Everything Validate refuses, before any API call.
  EVALD_RETURN_IF_ERROR(CheckJob(spec, *config));
  const Target target = TargetFor(*config);
  if (auto it = env.find(config->token_env); it != env.end() && !it->second.empty()) {
    RememberToken(target, it->second);
  }
  absl::StatusOr<lepton::LeptonClient> client = ClientFor(target);
  if (!client.ok()) return client.status();

  std::string group_id;
  if (!config->node_group.empty()) {
    absl::StatusOr<std::map<std::string, std::string>> groups = client->ListNodeGroups();
    if (!groups.ok()) return groups.status();
    auto it = groups->find(config->node_group);
    if (it == groups->end()) {
      // The reference submits without affinity then; a job on the wrong nodes is worse.
      std::string known;
      for (const auto& [n, id] : *groups) absl::StrAppend(&known, known.empty() ? "" : ", ", n);
      return absl::FailedPreconditionError(absl::StrCat(
          "execution.lepton_platform.tasks.node_group: no dedicated node group named '",
          config->node_group, "' in workspace ", config->workspace_id,
          " (it has: ", known.empty() ? "none" : known, ")"));
    }
    group_id = it->second;
  }
  absl::StatusOr<json> job = BuildJob(spec, *config, group_id, /*resolve_node_group=*/true);
  if (!job.ok()) return job.status();
  const std::string name = (*job)["metadata"]["name"];

  // The job dir first (on the shared storage): the plan the job reads, and the record Recover
  // reads if evald dies before the handle is stored.
  std::error_code ec;
  fs::create_directories(fs::path(spec.task_dir) / "logs", ec);
  fs::create_directories(fs::path(spec.task_dir) / "artifacts", ec);
  if (ec)
    return absl::InternalError(absl::StrCat("cannot create ", spec.task_dir, ": ", ec.message()));
  if (spec.native) {
    EVALD_RETURN_IF_ERROR(WriteFileAtomically(spec.task_dir + "/plan.yaml", spec.plan_yaml, 0644));
  }
  json record = {{"name", name},
                 {"attempt", spec.attempt},
                 {"job_id", spec.job_id},
                 {"target", TargetJson(target)},
                 {"job", *job}};
  EVALD_RETURN_IF_ERROR(WriteFileAtomically(spec.task_dir + "/" + kJobFile, record.dump(2), 0644));

  absl::StatusOr<json> created = client->CreateJob(*job);
  if (absl::IsAlreadyExists(created.status())) {
    // Our name is unique per attempt: a job holding it is this attempt's (an earlier Start whose
    // answer was lost). Adopt it rather than fail or post again.
    absl::StatusOr<json> found = client->GetJob(name, /*include_archived=*/true);
    if (found.ok()) created = found;
  }
  if (!created.ok()) return created.status();
  std::string id = IdOf(*created);
  if (id.empty()) id = name;  // we asked for metadata.id = name
  raw_states_.Set(name, StateOf(*created));
  spdlog::info("lepton: job {} started as Lepton job {} (id {}) in workspace {}", spec.job_id, name,
               id, target.workspace_id);
  return EncodeHandle({name, id, target});
}

std::vector<Observation> LeptonExecutor::Poll(const std::vector<JobRef>& jobs) {
  std::vector<Observation> out;
  // Jobs by workspace: one list call each.
  std::map<std::string, std::vector<std::pair<const JobRef*, HandleState>>> groups;
  for (const JobRef& ref : jobs) {
    std::optional<HandleState> h = DecodeHandle(ref.handle);
    if (!h) {
      out.push_back({.job_id = ref.job_id,
                     .kind = Observation::Kind::kVanished,
                     .message = "the job's Lepton handle is unreadable (written by another "
                                "evald version?)"});
      continue;
    }
    std::string key = TargetKey(h->target);
    groups[key].emplace_back(&ref, *h);
  }
  for (auto& [key, members] : groups) {
    const Target& target = members.front().second.target;  // the same for the whole group
    absl::StatusOr<lepton::LeptonClient> client = ClientFor(target);
    if (!client.ok()) {
      if (!warned_no_token_[key])
        spdlog::warn("lepton: {}", std::string(client.status().message()));
      warned_no_token_[key] = true;
      continue;  // not observed, not failed
    }
    warned_no_token_[key] = false;
    lepton::LeptonClient::JobQuery query;
    query.name_contains = kNamePrefix;
    absl::StatusOr<std::vector<json>> listed = client->ListJobs(query);
    if (!listed.ok()) {
      spdlog::warn("lepton: cannot list the jobs of workspace {}: {}", target.workspace_id,
                   std::string(listed.status().message()));
      continue;
    }
    std::map<std::string, const json*> by_id;
    std::map<std::string, const json*> by_name;
    for (const json& j : *listed) {
      by_id[IdOf(j)] = &j;
      by_name[NameOf(j)] = &j;
    }
    for (const auto& [ref, h] : members) {
      const json* found = nullptr;
      if (auto it = by_id.find(h.id); it != by_id.end()) found = it->second;
      if (found == nullptr) {
        if (auto it = by_name.find(h.name); it != by_name.end()) found = it->second;
      }
      json single;
      if (found == nullptr) {
        // Gone from the live list: archived (finished a while ago) or deleted. One look by id,
        // archive included, tells which; never "still running" by default (the reference's bug).
        absl::StatusOr<json> got = client->GetJob(h.id, /*include_archived=*/true);
        if (absl::IsNotFound(got.status())) {
          raw_states_.Set(h.name, "(gone)", /*final=*/true);
          out.push_back(
              {.job_id = ref->job_id,
               .kind = Observation::Kind::kVanished,
               .message = absl::StrCat("Lepton job ", h.name, " (id ", h.id,
                                       ") no longer exists in workspace ", h.target.workspace_id,
                                       " (deleted, or archived and purged)")});
          continue;
        }
        if (!got.ok()) {
          spdlog::warn("lepton: cannot read job {}: {}", h.name,
                       std::string(got.status().message()));
          continue;
        }
        single = *std::move(got);
        found = &single;
      }
      const std::string state = StateOf(*found);
      const LeptonStateClass state_class = ClassifyLeptonJobState(state);
      const bool final = state_class != LeptonStateClass::kQueued &&
                         state_class != LeptonStateClass::kRunning &&
                         state_class != LeptonStateClass::kUnknown;
      const std::string previous = raw_states_.Set(h.name, state, final);
      Observation obs{.job_id = ref->job_id};
      ReadProgress(ref->task_dir, obs);
      const std::optional<int> stage_exit = ReadStageExit(ref->task_dir);
      const std::string where = absl::StrCat("Lepton job ", h.name);
      switch (state_class) {
        case LeptonStateClass::kQueued:
          obs.kind = Observation::Kind::kSubmitted;
          break;
        case LeptonStateClass::kRunning:
          obs.kind = Observation::Kind::kRunning;
          break;
        case LeptonStateClass::kUnknown:
          // Transient or new upstream states: keep polling, and say so once per change.
          if (state != previous) {
            spdlog::info("lepton: {} is in state '{}', which evald does not know; still polling",
                         where, state);
          }
          obs.kind = Observation::Kind::kSubmitted;
          break;
        case LeptonStateClass::kCompleted:
          obs.kind = Observation::Kind::kExited;
          obs.exit_code = stage_exit.value_or(0);
          obs.message = absl::StrCat(where, " Completed");
          break;
        case LeptonStateClass::kFailed:
          obs.kind = Observation::Kind::kExited;
          obs.exit_code = stage_exit.has_value() && *stage_exit != 0 ? *stage_exit : 1;
          obs.message = absl::StrCat(where, " Failed");
          if (obs.exit_code == 124) {
            absl::StrAppend(&obs.message, " (exit ", *obs.exit_code,
                            ": if the evaluation ran past execution.evaluation_tasks.timeout, "
                            "it was stopped there)");
          }
          break;
        case LeptonStateClass::kStopped:
          obs.kind = Observation::Kind::kExited;
          obs.exit_code = 143;
          obs.message = absl::StrCat(where, " Stopped");
          break;
        case LeptonStateClass::kGone:
          obs.kind = Observation::Kind::kVanished;
          obs.message = absl::StrCat(where, " is being deleted (state ", state, ")");
          break;
        case LeptonStateClass::kArchived: {
          obs.kind = Observation::Kind::kExited;
          int succeeded = IntAt(*found, "status", "succeeded");
          int failed = IntAt(*found, "status", "failed");
          if (stage_exit) {
            obs.exit_code = *stage_exit;
          } else if (succeeded > 0 && failed == 0) {
            obs.exit_code = 0;
          } else {
            obs.exit_code = 1;
          }
          obs.message = absl::StrCat(where, " finished and was archived before evald saw it end");
          break;
        }
      }
      if (obs.kind == Observation::Kind::kExited && obs.exit_code == 0 &&
          !fs::exists(ref->task_dir + "/artifacts/results.yml")) {
        absl::StrAppend(&obs.message, "; no results: ", ref->task_dir,
                        "/artifacts/results.yml does not exist (is the task dir on storage "
                        "mounted into the job? see execution.lepton_platform.tasks.mounts[]."
                        "local_path)");
      }
      out.push_back(std::move(obs));
    }
  }
  return out;
}

absl::Status LeptonExecutor::Stop(const JobRef& job, absl::Duration grace) {
  (void)grace;  // Lepton stops the job itself; the delete follows at once
  std::optional<HandleState> h = DecodeHandle(job.handle);
  if (!h) return absl::InvalidArgumentError("not a Lepton job handle");
  absl::StatusOr<lepton::LeptonClient> client = ClientFor(h->target);
  if (!client.ok()) return client.status();
  absl::Status stopped = client->StopJob(h->id);
  if (!stopped.ok() && !absl::IsNotFound(stopped)) return stopped;
  absl::Status deleted = client->DeleteJob(h->id);  // 404 counts as deleted
  if (!deleted.ok()) return deleted;
  spdlog::info("lepton: job {}: Lepton job {} stopped and deleted", job.job_id, h->name);
  return absl::OkStatus();
}

void LeptonExecutor::Adopt(const JobRef& job, const std::map<std::string, std::string>& env) {
  std::optional<Target> target;
  if (std::optional<HandleState> h = DecodeHandle(job.handle)) {
    target = h->target;
  } else {
    // Not started as far as evald knows: Start's record names the workspace (Recover reads it).
    json record = json::parse(ReadFile(job.task_dir + "/" + kJobFile), nullptr, false);
    if (record.is_object() && record.contains("target")) target = TargetOf(record["target"]);
  }
  if (!target || target->token_env.empty()) return;
  if (auto it = env.find(target->token_env); it != env.end() && !it->second.empty()) {
    RememberToken(*target, it->second);
  }
}

absl::StatusOr<LogPage> LeptonExecutor::ReadLogs(const JobRef& job, const std::string& cursor) {
  LogPage page;
  page.cursor = cursor;
  std::optional<HandleState> h = DecodeHandle(job.handle);
  if (!h) return page;  // not started on Lepton (yet): no lines
  int64_t after = 0;
  if (!cursor.empty() && !absl::SimpleAtoi(cursor, &after)) {
    return absl::InvalidArgumentError(absl::StrCat("bad Lepton log cursor '", cursor, "'"));
  }
  EVALD_ASSIGN_OR_RETURN(lepton::LeptonClient client, ClientFor(h->target));
  // /logs answers newest first, at most `limit` lines of (start, end]: page backward from the
  // newest line, moving `end` to the oldest stamp received. Lines sharing that stamp may be cut
  // off by the limit, so they are dropped from the page and read again with the next one.
  std::vector<lepton::LeptonClient::LogLine> newest_first;
  int64_t end = 0;
  for (int n = 0; n < kLogPages; ++n) {
    EVALD_ASSIGN_OR_RETURN(std::vector<lepton::LeptonClient::LogLine> lines,
                           client.ListJobLogs(h->id, after, end, kLogPageLines));
    if (static_cast<int>(lines.size()) < kLogPageLines) {
      for (auto& l : lines) newest_first.push_back(std::move(l));
      break;
    }
    const int64_t oldest = lines.back().ns;
    size_t keep = lines.size();
    while (keep > 0 && lines[keep - 1].ns == oldest) --keep;
    if (keep == 0) {
      // A whole page stamped alike cannot be split: take it and go on below that stamp.
      keep = lines.size();
      end = oldest - 1;
    } else {
      end = oldest;
    }
    for (size_t i = 0; i < keep; ++i) newest_first.push_back(std::move(lines[i]));
    if (n + 1 == kLogPages) {
      spdlog::warn("lepton: job {}: more than {} log lines at once; the oldest are not shown",
                   job.job_id, kLogPages * kLogPageLines);
    }
  }
  if (newest_first.empty()) return page;
  page.cursor = std::to_string(newest_first.front().ns);
  for (auto it = newest_first.rbegin(); it != newest_first.rend(); ++it) {
    page.lines.push_back(std::move(it->line));
  }
  return page;
}

absl::StatusOr<std::optional<JobHandle>> LeptonExecutor::Recover(const JobRef& job) {
  // Start writes this before its POST: without it, this attempt never reached Lepton.
  json record = json::parse(ReadFile(job.task_dir + "/" + kJobFile), nullptr, false);
  if (record.is_discarded() || !record.is_object()) return std::nullopt;
  const std::string name = LeptonJobName(job.job_id, job.attempt);
  if (record.value("attempt", 0) != job.attempt || record.value("name", std::string()) != name ||
      !record.contains("target")) {
    return std::nullopt;  // a previous attempt's record
  }
  const Target target = TargetOf(record["target"]);
  absl::StatusOr<lepton::LeptonClient> client = ClientFor(target);
  if (!client.ok()) return client.status();
  lepton::LeptonClient::JobQuery query;
  query.name_contains = name;
  absl::StatusOr<std::vector<json>> listed = client->ListJobs(query);
  if (!listed.ok()) return listed.status();
  for (const json& j : *listed) {
    if (NameOf(j) == name) {
      raw_states_.Set(name, StateOf(j));
      return EncodeHandle({name, IdOf(j).empty() ? name : IdOf(j), target});
    }
  }
  // Finished and archived already? Our id is the name.
  absl::StatusOr<json> got = client->GetJob(name, /*include_archived=*/true);
  if (got.ok() && NameOf(*got) == name) {
    return EncodeHandle({name, IdOf(*got).empty() ? name : IdOf(*got), target});
  }
  if (!got.ok() && !absl::IsNotFound(got.status())) return got.status();
  return std::nullopt;
}

HandleInfo LeptonExecutor::Describe(const JobHandle& handle) const {
  HandleInfo info;
  std::optional<HandleState> h = DecodeHandle(handle);
  if (!h) {
    info.backend_id = "lepton (unreadable handle)";
    return info;
  }
  const bool endpoint =
      json::parse(handle.state, nullptr, false).value("kind", std::string()) == "endpoint";
  info.backend_id = absl::StrCat(endpoint ? "lepton endpoint " : "lepton job ", h->name);
  if (endpoint) {
    info.details.emplace_back("lepton_workspace", h->target.workspace_id);
    return info;
  }
  info.details.emplace_back("lepton_job_id", h->id);
  info.details.emplace_back("lepton_workspace", h->target.workspace_id);
  if (std::optional<std::string> state = raw_states_.Get(h->name)) {
    info.details.emplace_back("lepton_state", *state);
  }
  return info;
}

}  // namespace evald::executors
