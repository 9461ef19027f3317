#include "executors/local/local_executor.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/status_macros.h"
#include "executors/local/container_runtime.h"
#include "executors/local/local_config.h"
#include "executors/local/local_launch.h"
#include "executors/local/process.h"
#include "executors/local/run_script.h"
#include "executors/stage_files.h"
#include "executors/write_file.h"
#include "nlohmann/json.hpp"

namespace evald::executors {
namespace {

namespace fs = std::filesystem;

constexpr int kHandleVersion = 1;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return "";
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}


struct LocalHandleState {
  pid_t pid = 0;
  uint64_t start_ticks = 0;
  std::string task_dir;
};

std::string EncodeHandle(const LocalHandleState& s) {
  nlohmann::json j = {{"pid", s.pid}, {"start_ticks", s.start_ticks}, {"task_dir", s.task_dir}};
  return j.dump();
}

std::optional<LocalHandleState> DecodeHandle(const JobHandle& h) {
  if (h.executor != "local" || h.version != kHandleVersion) return std::nullopt;
  nlohmann::json j = nlohmann::json::parse(h.state, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  LocalHandleState s;
  s.pid = j.value("pid", 0);
  s.start_ticks = j.value("start_ticks", uint64_t{0});
  s.task_dir = j.value("task_dir", std::string());
  return s;
}

}  // namespace

std::string FindOnPath(const std::string& name) {
  if (name.empty()) return "";
  if (name.find('/') != std::string::npos) return access(name.c_str(), X_OK) == 0 ? name : "";
  const char* path = std::getenv("PATH");
  if (path == nullptr) return "";
  for (absl::string_view dir : absl::StrSplit(path, ':', absl::SkipEmpty())) {
    std::string candidate = absl::StrCat(dir, "/", name);
    struct stat st;
    if (stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
  }
  return "";
}

LocalExecutor::LocalExecutor(ExecutorContext context)
    : context_(std::move(context)), exits_(std::make_unique<ExitWatcher>()) {}

void LocalExecutor::SetWakeCallback(std::function<void()> wake) {
  exits_->SetCallback(std::move(wake));
}

std::string LocalExecutor::ContainerRuntime(bool probe) const {
  return PickContainerRuntime(context_.container_runtime, probe);
}

absl::Status LocalExecutor::CheckContainerRuntime(const JobSpec& spec) const {
  if (spec.native || !ContainerRuntime().empty()) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "task '", spec.task, "' runs in the container ", spec.image, ", but ",
      context_.container_runtime.empty()
          ? "neither docker nor podman on PATH can run containers here (each must answer `info`)"
          : absl::StrCat(context_.container_runtime, " (container_runtime) is not on PATH"),
      "; install one, or pick a native task (evalctl ls tasks)"));
}

absl::Status LocalExecutor::Validate(const JobSpec& spec) const {
  if (spec.native) {
    if (access(context_.runner_path.c_str(), X_OK) != 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("task '", spec.task, "' is native but the runner '", context_.runner_path,
                       "' is not an executable file; set runner_path in the evald config"));
    }
    return absl::OkStatus();
  }
  // The container runtime is checked at Start, not here: a dry run renders container jobs on a
  // host without one (the job may be meant for another machine), and shows `docker` then.
  // The executor's own settings are: a bad extra_docker_args is refused at Submit.
  return ParseLocalConfig(spec.execution_yaml).status();
}

absl::StatusOr<RenderedJob> LocalExecutor::Render(const JobSpec& spec) const {
  RunScriptOptions options{.runner_path = context_.runner_path};
  if (!spec.native) {
    // Render runs on Submit's threads too (dry runs): no probe of the engines there.
    std::string runtime = ContainerRuntime(/*probe=*/false);
    options.runtime_name =
        runtime.empty()
            ? (context_.container_runtime.empty() ? "docker" : context_.container_runtime)
            : fs::path(runtime).filename().string();
  }
  return RenderRunScript(spec, options);
}

absl::StatusOr<JobHandle> LocalExecutor::Start(const JobSpec& spec,
                                               const std::map<std::string, std::string>& env) {
  EVALD_RETURN_IF_ERROR(Validate(spec));
  EVALD_RETURN_IF_ERROR(CheckContainerRuntime(spec));
  EVALD_ASSIGN_OR_RETURN(RenderedJob rendered, Render(spec));
  std::error_code ec;
  fs::create_directories(spec.task_dir + "/logs", ec);
  if (!ec) fs::create_directories(spec.task_dir + "/artifacts", ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create job directory ", spec.task_dir, ": ", ec.message()));
  }
  EVALD_RETURN_IF_ERROR(WriteFileAtomically(spec.task_dir + "/run.sh", rendered.script, 0755));
  if (spec.native) {
    EVALD_RETURN_IF_ERROR(WriteFileAtomically(spec.task_dir + "/plan.yaml", rendered.plan, 0644));
  }
  // A resumed job must not be taken for the previous attempt: clear its traces, then record which
  // attempt this is before anything runs, so Recover can tell the two apart.
  for (const char* stale : {"stage.exit", "stage.running", "stage.pre-start", "pid"}) {
    fs::remove(spec.task_dir + "/logs/" + stale, ec);
  }
  EVALD_RETURN_IF_ERROR(
      WriteFileAtomically(spec.task_dir + "/logs/attempt", absl::StrCat(spec.attempt, "\n"), 0644));
  SpawnOptions options;
  options.argv = {"bash", spec.task_dir + "/run.sh"};
  options.env = env;
  options.cwd = spec.task_dir;
  options.stdout_path = spec.task_dir + "/logs/stdout.log";
  options.stderr_path = spec.task_dir + "/logs/stderr.log";
  options.pid_file = spec.task_dir + "/logs/pid";
  options.nice = context_.job_nice;
  EVALD_ASSIGN_OR_RETURN(ProcessId pid, SpawnDetached(options));
  kill_deadlines_.erase(spec.job_id);
  exits_->Watch(pid).IgnoreError();  // best effort: Poll sees the exit anyway
  return JobHandle{kHandleVersion, "local",
                   EncodeHandle({pid.pid, pid.start_ticks, spec.task_dir})};
}

std::vector<Observation> LocalExecutor::Poll(const std::vector<JobRef>& jobs) {
  std::vector<Observation> out;
  absl::Time now = absl::Now();
  for (const JobRef& ref : jobs) {
    const JobRef* job = &ref;
    std::optional<LocalHandleState> h = DecodeHandle(job->handle);
    if (!h) continue;
    Observation obs;
    obs.job_id = job->job_id;
    ProcessState ps = Inspect({h->pid, h->start_ticks});
    if (ps.status == ProcessStatus::kAlive) {
      // Jobs found again after an evald restart get watched too (a no-op for watched ones).
      exits_->Watch({h->pid, h->start_ticks}).IgnoreError();
      auto deadline = kill_deadlines_.find(job->job_id);
      if (deadline != kill_deadlines_.end() && now >= deadline->second) {
        SignalGroup(h->pid, SIGKILL).IgnoreError();
      }
      bool running = fs::exists(h->task_dir + "/logs/stage.running");
      obs.kind = running ? Observation::Kind::kRunning : Observation::Kind::kSubmitted;
      ReadProgress(h->task_dir, obs);
      out.push_back(std::move(obs));
      continue;
    }
    // The wrapper is gone: whatever it left in its group must go too.
    if (h->pid > 1) SignalGroup(h->pid, SIGKILL).IgnoreError();
    kill_deadlines_.erase(job->job_id);
    std::optional<int> code = ReadStageExit(h->task_dir);
    if (code) {
      obs.kind = Observation::Kind::kExited;
      obs.exit_code = code;
    } else if (ps.status == ProcessStatus::kExited) {
      obs.kind = Observation::Kind::kExited;
      obs.exit_code = ps.exit_code;
      obs.message = absl::StrCat("job process ", h->pid, " ended with status ", *ps.exit_code,
                                 " without writing logs/stage.exit");
    } else {
      obs.kind = Observation::Kind::kVanished;
      obs.message = absl::StrCat("job process ", h->pid,
                                 " is gone and left no logs/stage.exit (killed outside evald?)");
    }
    // Read after the exit was seen: the runner's last progress write precedes its exit.
    ReadProgress(h->task_dir, obs);
    out.push_back(std::move(obs));
  }
  return out;
}

absl::Status LocalExecutor::Stop(const JobRef& job, absl::Duration grace) {
  std::optional<LocalHandleState> h = DecodeHandle(job.handle);
  if (!h || h->pid <= 1) return absl::OkStatus();
  if (Inspect({h->pid, h->start_ticks}).status != ProcessStatus::kAlive) return absl::OkStatus();
  if (kill_deadlines_.count(job.job_id) == 0) kill_deadlines_[job.job_id] = absl::Now() + grace;
  return SignalGroup(h->pid, SIGTERM);
}

absl::StatusOr<std::optional<JobHandle>> LocalExecutor::Recover(const JobRef& job) {
  if (job.task_dir.empty()) return std::optional<JobHandle>();
  int attempt = 0;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(ReadFile(job.task_dir + "/logs/attempt")),
                        &attempt) ||
      attempt != job.attempt) {
    return std::optional<JobHandle>();  // this attempt never reached the spawn
  }
  std::string text(absl::StripAsciiWhitespace(ReadFile(job.task_dir + "/logs/pid")));
  pid_t pid = 0;
  if (text.empty() || !absl::SimpleAtoi(text, &pid) || pid <= 1) {
    return std::optional<JobHandle>();
  }
  LocalHandleState state{0, 0, job.task_dir};
  absl::StatusOr<uint64_t> ticks = StartTicks(pid);
  if (ticks.ok() && absl::StrContains(CommandLine(pid), job.task_dir + "/run.sh")) {
    state.pid = pid;
    state.start_ticks = *ticks;
  } else if (!fs::exists(job.task_dir + "/logs/stage.pre-start")) {
    return std::optional<JobHandle>();  // the wrapper never got going
  }
  // pid 0: the process is gone; Poll then reads logs/stage.exit or reports the job vanished.
  return std::optional<JobHandle>(JobHandle{kHandleVersion, "local", EncodeHandle(state)});
}

HandleInfo LocalExecutor::Describe(const JobHandle& handle) const {
  HandleInfo info;
  std::optional<LocalHandleState> h = DecodeHandle(handle);
  if (!h) return info;
  if (h->pid > 0) info.backend_id = absl::StrCat("pid ", h->pid);
  if (!h->task_dir.empty()) info.details.emplace_back("task dir", h->task_dir);
  return info;
}

}  // namespace evald::executors
