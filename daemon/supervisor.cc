#include "daemon/supervisor.h"

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "core/deployment/deployment_spec.h"
#include "core/status_macros.h"
#include "daemon/results_reader.h"
#include "daemon/fmt_absl.h"
#include "spdlog/spdlog.h"

namespace evald::daemon {
namespace {

int64_t NowMs() { return absl::ToUnixMillis(absl::Now()); }

ExitReason ReasonForExit(int code) {
  return code == 3 ? ExitReason::kEndpointUnhealthy : ExitReason::kExitCode;
}

}  // namespace

std::string DescribeExitCode(int code) {
  switch (code) {
    case 0: return "exit code 0";
    case 2: return "exit code 2 (bad input: plan, task file, dataset or template)";
    case 3: return "exit code 3 (endpoint unreachable or requests kept failing)";
    case 4: return "exit code 4 (scoring or result writing failed)";
    case 5: return "exit code 5 (the endpoint refused the credentials)";
    case 127: return "exit code 127 (command not found)";
    case 130: return "exit code 130 (interrupted)";
    case 137: return "exit code 137 (killed by SIGKILL)";
    case 143: return "exit code 143 (terminated by SIGTERM)";
    default: return absl::StrCat("exit code ", code);
  }
}

Supervisor::Supervisor(storage::Store* store, executors::ExecutorRegistry* registry,
                       JobPlanner* planner, WatchHub* hub, Options options)
    : store_(store), registry_(registry), planner_(planner), hub_(hub), options_(options) {}

Supervisor::~Supervisor() { Stop(); }

void Supervisor::Start() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = false;
  }
  thread_ = std::thread([this] { Loop(); });
  // A job's exit wakes the loop at once instead of at the next tick.
  SetWakeCallbacks([this] { Wake(); });
}

void Supervisor::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  // Not under mu_: an executor's callback in progress holds its own lock and waits for mu_.
  SetWakeCallbacks(nullptr);
  if (thread_.joinable()) {
    thread_.join();
    StopDeploymentsForShutdown();
  }
}

void Supervisor::Wake() {
  absl::MutexLock lock(&mu_);
  wake_ = true;
}

void Supervisor::Loop() {
  while (true) {
    absl::Time pass_start = absl::Now();
    ReconcileOnce();
    absl::MutexLock lock(&mu_);
    auto stopping = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_; };
    mu_.AwaitWithDeadline(absl::Condition(&stopping),
                          pass_start + std::min(options_.min_pass_interval, options_.tick));
    auto woken = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return wake_ || stop_; };
    mu_.AwaitWithDeadline(absl::Condition(&woken), pass_start + options_.tick);
    if (stop_) return;
    wake_ = false;
  }
}

void Supervisor::ReconcileOnce() {
  absl::StatusOr<std::vector<JobRecord>> jobs = store_->ListActiveJobs();
  if (!jobs.ok()) {
    spdlog::warn("supervisor: cannot list active jobs: {}", jobs.status().message());
    return;
  }
  ObserveStarted(*jobs);
  StopRequested(*jobs);
  std::map<std::string, DeploymentRecord> deployments = ReconcileDeployments(*jobs);
  StartPending(*jobs, deployments);
}

namespace {

absl::StatusOr<deployment::DeploymentSpec> SpecOf(const config::RunConfig& rc) {
  return deployment::ParseDeploymentSpec(rc.deployment, rc.execution);
}

bool Serves(const DeploymentRecord& d, const JobRecord& job) {
  return d.invocation_id == job.invocation_id && (d.job_id.empty() || d.job_id == job.id);
}

}  // namespace

bool Supervisor::TransitionDeployment(DeploymentRecord& d, DeploymentTransition t) {
  t.deployment_id = d.id;
  t.from = d.state;
  absl::StatusOr<std::vector<EventRecord>> events = store_->TransitionDeployment(t, NowMs());
  if (!events.ok()) {
    if (events.status().code() != absl::StatusCode::kAborted) {
      spdlog::error("deployment {}: cannot record {} -> {}: {}", d.id, ToString(t.from),
                    ToString(t.to), events.status().message());
    }
    return false;
  }
  spdlog::info("deployment {}: {} -> {}{}{}", d.id, ToString(t.from), ToString(t.to),
               t.message.empty() ? "" : ": ", t.message);
  d.state = t.to;
  if (t.handle) d.handle = *t.handle;
  if (t.port) d.port = *t.port;
  if (t.url) d.url = *t.url;
  if (t.health_url) d.health_url = *t.health_url;
  hub_->NotifyChanged();
  return true;
}

void Supervisor::FailServedJobs(const DeploymentRecord& d, std::vector<JobRecord>& jobs) {
  for (JobRecord& job : jobs) {
    if (!Serves(d, job) || job.state != JobState::kPending) continue;
    Transition(job, {.to = JobState::kFailed,
                     .reason = ExitReason::kEndpointUnhealthy,
                     .message = absl::StrCat("deployment ", d.id, " failed: ", d.message)});
  }
}

std::map<std::string, DeploymentRecord> Supervisor::ReconcileDeployments(
    std::vector<JobRecord>& jobs) {
  std::map<std::string, DeploymentRecord> active;
  absl::StatusOr<std::vector<DeploymentRecord>> deployments = store_->ListActiveDeployments();
  if (!deployments.ok()) {
    spdlog::warn("supervisor: cannot list deployments: {}", deployments.status().message());
    return active;
  }
  for (DeploymentRecord& d : *deployments) {
    absl::StatusOr<storage::InvocationView> view = store_->GetInvocation(d.invocation_id);
    if (!view.ok()) continue;
    ReconcileDeployment(d, *view, jobs);
    active.emplace(d.id, d);
  }
  return active;
}

void Supervisor::ReconcileDeployment(DeploymentRecord& d, const storage::InvocationView& view,
                                     std::vector<JobRecord>& jobs) {
  // Jobs served: the invocation's (terminal ones too), with this pass's states where known.
  bool all_done = true;
  for (const JobRecord& stored : view.jobs) {
    if (!Serves(d, stored)) continue;
    JobState state = stored.state;
    for (const JobRecord& live : jobs) {
      if (live.id == stored.id) state = live.state;
    }
    all_done &= IsTerminal(state);
  }
  bool want_stop = d.desired == DesiredState::kStop || all_done;
  absl::StatusOr<executors::Executor*> ex = registry_->Get(view.invocation.executor);
  absl::StatusOr<std::shared_ptr<const config::RunConfig>> rc =
      planner_->RunConfigFor(view.invocation);
  absl::StatusOr<deployment::DeploymentSpec> spec =
      rc.ok() ? SpecOf(**rc) : absl::StatusOr<deployment::DeploymentSpec>(rc.status());
  if (!ex.ok() || !spec.ok()) {
    const absl::Status& s = !ex.ok() ? ex.status() : spec.status();
    if (TransitionDeployment(d, {.to = DeploymentState::kFailed,
                                 .message = std::string(s.message())})) {
      d.message = std::string(s.message());
      FailServedJobs(d, jobs);
    }
    return;
  }
  using Kind = executors::DeploymentObservation::Kind;
  switch (d.state) {
    case DeploymentState::kPending: {
      if (want_stop) {
        TransitionDeployment(d, {.to = DeploymentState::kStopped,
                                 .message = all_done ? "no task needs it any more"
                                                     : "stopped before it started"});
        return;
      }
      absl::StatusOr<std::optional<executors::DeploymentStarted>> found =
          (*ex)->RecoverDeployment(d, *spec);
      if (found.ok() && found->has_value()) {
        const executors::DeploymentStarted& s = **found;
        TransitionDeployment(d, {.to = DeploymentState::kStarting,
                                 .message = "re-attached after an evald restart",
                                 .handle = s.handle, .port = s.port, .url = s.url,
                                 .health_url = s.health_url, .command = s.command});
        return;
      }
      if (!MayStart(absl::StrCat("deployment ", d.id))) return;
      std::map<std::string, std::string> secret_env;
      if (!spec->secret_env_vars.empty()) {
        absl::StatusOr<std::map<std::string, std::string>> secrets =
            store_->GetSecrets(d.invocation_id);
        if (secrets.ok()) {
          for (const auto& [server_var, host_var] : spec->secret_env_vars) {
            auto it = secrets->find(host_var);
            if (it != secrets->end()) secret_env[server_var] = it->second;
          }
        }
      }
      absl::StatusOr<executors::DeploymentStarted> started =
          (*ex)->StartDeployment(d, *spec, secret_env);
      if (!started.ok()) {
        std::string why(started.status().message());
        if (TransitionDeployment(d, {.to = DeploymentState::kFailed, .message = why})) {
          d.message = why;
          FailServedJobs(d, jobs);
        }
        return;
      }
      TransitionDeployment(d, {.to = DeploymentState::kStarting,
                               .message = absl::StrCat("started on port ", started->port),
                               .handle = started->handle, .port = started->port,
                               .url = started->url, .health_url = started->health_url,
                               .command = started->command});
      return;
    }
    case DeploymentState::kStarting:
    case DeploymentState::kHealthy: {
      if (want_stop) {
        absl::Status s = (*ex)->StopDeployment(d, *spec);
        if (!s.ok()) spdlog::warn("deployment {}: stop failed: {}", d.id, s.message());
        TransitionDeployment(d, {.to = DeploymentState::kStopping,
                                 .message = d.desired == DesiredState::kStop
                                                ? "stop requested"
                                                : "every task it served has ended"});
        return;
      }
      executors::DeploymentObservation obs = (*ex)->PollDeployment(d, *spec);
      if (obs.kind == Kind::kHealthy && d.state == DeploymentState::kStarting) {
        TransitionDeployment(d, {.to = DeploymentState::kHealthy, .message = obs.message});
      } else if (obs.kind == Kind::kFailed) {
        if (TransitionDeployment(d, {.to = DeploymentState::kFailed, .message = obs.message})) {
          d.message = obs.message;
          FailServedJobs(d, jobs);
        }
      }
      return;
    }
    case DeploymentState::kStopping: {
      executors::DeploymentObservation obs = (*ex)->PollDeployment(d, *spec);
      if (obs.kind == Kind::kStopped || obs.kind == Kind::kFailed) {
        TransitionDeployment(d, {.to = DeploymentState::kStopped, .message = obs.message});
      }
      return;
    }
    case DeploymentState::kFailed:
    case DeploymentState::kStopped:
      return;
  }
}

void Supervisor::StopDeploymentsForShutdown() {
  absl::StatusOr<std::vector<DeploymentRecord>> deployments = store_->ListActiveDeployments();
  if (!deployments.ok()) return;
  for (DeploymentRecord& d : *deployments) {
    if (d.state != DeploymentState::kStarting && d.state != DeploymentState::kHealthy &&
        d.state != DeploymentState::kStopping) {
      continue;
    }
    absl::StatusOr<storage::InvocationView> view = store_->GetInvocation(d.invocation_id);
    if (!view.ok()) continue;
    absl::StatusOr<std::shared_ptr<const config::RunConfig>> rc =
        planner_->RunConfigFor(view->invocation);
    if (!rc.ok()) continue;
    absl::StatusOr<deployment::DeploymentSpec> spec = SpecOf(**rc);
    absl::StatusOr<executors::Executor*> ex = registry_->Get(view->invocation.executor);
    if (!spec.ok() || !ex.ok() || !spec->stop_on_evald_shutdown) continue;
    // Shutdown must stay quick: a few seconds of grace at most, then SIGKILL.
    deployment::DeploymentSpec quick = *spec;
    quick.stop_grace_s = std::min(quick.stop_grace_s, 3.0);
    if (d.state != DeploymentState::kStopping) {
      (*ex)->StopDeployment(d, quick).IgnoreError();
      TransitionDeployment(d, {.to = DeploymentState::kStopping, .message = "evald is shutting down"});
    }
    absl::Time give_up = absl::Now() + absl::Seconds(quick.stop_grace_s + 2);
    while (absl::Now() < give_up) {
      executors::DeploymentObservation obs = (*ex)->PollDeployment(d, quick);
      if (obs.kind == executors::DeploymentObservation::Kind::kStopped) {
        TransitionDeployment(d, {.to = DeploymentState::kStopped, .message = "evald shut down"});
        break;
      }
      absl::SleepFor(absl::Milliseconds(100));
    }
  }
}

bool Supervisor::Transition(JobRecord& job, JobTransition t) {
  t.job_id = job.id;
  t.from = job.state;
  absl::StatusOr<std::vector<EventRecord>> events = store_->TransitionJob(t, NowMs());
  if (!events.ok()) {
    if (events.status().code() != absl::StatusCode::kAborted) {
      spdlog::error("job {}: cannot record {} -> {}: {}", job.id, ToString(t.from),
                    ToString(t.to), events.status().message());
    }
    return false;
  }
  spdlog::info("job {} ({}): {} -> {}{}{}", job.id, job.task, ToString(t.from), ToString(t.to),
               t.message.empty() ? "" : ": ", t.message);
  job.state = t.to;
  if (t.handle) job.handle = *t.handle;
  for (const EventRecord& e : *events) {
    if (e.kind == "invocation.state" && IsTerminal(*ParseJobState(e.to_state))) {
      planner_->Forget(e.invocation_id);
      hub_->Forget(e.invocation_id);
    }
  }
  hub_->NotifyChanged();
  return true;
}

void Supervisor::ObserveStarted(std::vector<JobRecord>& jobs) {
  std::map<std::string, std::vector<JobRecord*>> by_executor;
  for (JobRecord& job : jobs) {
    if ((job.state == JobState::kSubmitted || job.state == JobState::kRunning) &&
        !job.handle.state.empty()) {
      by_executor[job.handle.executor].push_back(&job);
    }
  }
  std::vector<storage::ProgressUpdate> progress;
  std::vector<std::pair<JobRecord*, executors::Observation>> observed;
  for (auto& [name, list] : by_executor) {
    absl::StatusOr<executors::Executor*> executor = registry_->Get(name);
    if (!executor.ok()) {
      for (JobRecord* job : list) {
        Transition(*job, {.to = JobState::kLost,
                          .reason = ExitReason::kLost,
                          .message = absl::StrCat("executor '", name, "' is not available")});
      }
      continue;
    }
    std::vector<const JobRecord*> view(list.begin(), list.end());
    std::map<std::string, JobRecord*> by_id;
    for (JobRecord* job : list) by_id[job->id] = job;
    for (executors::Observation& obs : (*executor)->Poll(view)) {
      auto it = by_id.find(obs.job_id);
      if (it == by_id.end()) continue;
      RecordProgress(*it->second, obs, progress);
      observed.emplace_back(it->second, std::move(obs));
    }
  }
  // Progress is stored before any transition, so a job seen terminal has its final count.
  if (!progress.empty()) {
    absl::Status s = store_->UpdateProgress(progress);
    if (!s.ok()) spdlog::warn("supervisor: cannot store progress: {}", s.message());
  }
  for (const auto& [job, obs] : observed) ApplyObservation(*job, obs);
}

void Supervisor::RecordProgress(const JobRecord& job, const executors::Observation& obs,
                                std::vector<storage::ProgressUpdate>& progress) {
  if (obs.has_progress &&
      (obs.progress_done != job.progress_done || obs.progress_total != job.progress_total ||
       obs.progress_errors != job.progress_errors)) {
    storage::ProgressUpdate u{job.id,           obs.progress_done, obs.progress_total,
                              obs.progress_errors, obs.progress_rate, NowMs()};
    progress.push_back(u);
    hub_->PublishProgress(job.invocation_id, job.id,
                          {u.done, u.total, u.errors, u.rate, u.updated_ms, 0});
  }
}

void Supervisor::ApplyObservation(JobRecord& job, const executors::Observation& obs) {
  using Kind = executors::Observation::Kind;
  switch (obs.kind) {
    case Kind::kSubmitted:
      return;
    case Kind::kRunning:
      if (job.state == JobState::kSubmitted) Transition(job, {.to = JobState::kRunning});
      return;
    case Kind::kExited: {
      int code = obs.exit_code.value_or(1);
      std::string message = DescribeExitCode(code);
      if (!obs.message.empty()) absl::StrAppend(&message, "; ", obs.message);
      // A run that failed or was stopped may have scored part of its samples: keep those too
      // (GetResults marks them partial).
      ImportResults(job, /*expected=*/code == 0);
      if (code == 0) {
        Transition(job, {.to = JobState::kSucceeded,
                         .reason = ExitReason::kExitCode,
                         .exit_code = code,
                         .message = message});
      } else if (job.desired == DesiredState::kStop) {
        Transition(job, {.to = JobState::kKilled,
                         .reason = ExitReason::kKilledByUser,
                         .exit_code = code,
                         .message = absl::StrCat("stopped on request; ", message)});
      } else {
        Transition(job, {.to = JobState::kFailed,
                         .reason = ReasonForExit(code),
                         .exit_code = code,
                         .message = message});
      }
      stop_sent_.erase(job.id);
      return;
    }
    case Kind::kVanished:
      if (job.desired == DesiredState::kStop) {
        Transition(job, {.to = JobState::kKilled,
                         .reason = ExitReason::kKilledByUser,
                         .message = absl::StrCat("stopped on request; ", obs.message)});
      } else {
        Transition(job, {.to = JobState::kLost, .reason = ExitReason::kLost, .message = obs.message});
      }
      stop_sent_.erase(job.id);
      return;
  }
}

void Supervisor::SetWakeCallbacks(const std::function<void()>& wake) {
  for (const std::string& name : registry_->Names()) {
    absl::StatusOr<executors::Executor*> ex = registry_->Get(name);
    if (ex.ok()) (*ex)->SetWakeCallback(wake);
  }
}

bool Supervisor::MayStart(const std::string& what) {
  if (!options_.may_start) return true;
  absl::Status s = options_.may_start();
  if (s.ok()) {
    refused_why_.clear();
    return true;
  }
  if (refused_why_ != s.message()) {
    refused_why_ = std::string(s.message());
    spdlog::error(
        "supervisor: not starting {} nor any other job or model server: {}. Stop this evald "
        "(its running jobs keep running) and start one on the right state dir",
        what, s.message());
  }
  spdlog::debug("supervisor: not starting {}: {}", what, s.message());
  return false;
}

void Supervisor::ImportResults(const JobRecord& job, bool expected) {
  std::string path = job.output_dir + "/artifacts/results.yml";
  absl::StatusOr<std::vector<ResultRecord>> rows = ReadResultsFile(path, job);
  if (!rows.ok()) {
    if (expected) spdlog::warn("job {}: no results imported: {}", job.id, rows.status().message());
    return;
  }
  absl::Status s = store_->PutResults(job.id, *rows);
  if (!s.ok()) spdlog::warn("job {}: cannot store results: {}", job.id, s.message());
}

void Supervisor::StopRequested(std::vector<JobRecord>& jobs) {
  for (JobRecord& job : jobs) {
    if (job.desired != DesiredState::kStop || IsTerminal(job.state)) continue;
    if (job.state == JobState::kPending) {
      // A job caught between "starting" and "submitted" by a crash may be running: find it first.
      if (!job.handle.executor.empty() && job.handle.state.empty()) {
        absl::StatusOr<executors::Executor*> ex = registry_->Get(job.handle.executor);
        if (ex.ok()) {
          absl::StatusOr<std::optional<JobHandle>> found = (*ex)->Recover(job);
          if (found.ok() && found->has_value()) {
            Transition(job, {.to = JobState::kSubmitted,
                             .message = "re-attached after an evald restart",
                             .handle = **found});
          }
        }
      }
      if (job.state == JobState::kPending) {
        Transition(job, {.to = JobState::kKilled,
                         .reason = ExitReason::kKilledByUser,
                         .message = "killed before it started"});
        continue;
      }
    }
    if (stop_sent_.count(job.id) > 0) continue;
    absl::StatusOr<executors::Executor*> ex = registry_->Get(job.handle.executor);
    if (!ex.ok()) continue;
    absl::Status s = (*ex)->Stop(job, options_.stop_grace);
    if (s.ok()) {
      stop_sent_.insert(job.id);
    } else {
      spdlog::warn("job {}: stop failed: {}", job.id, s.message());
    }
  }
}

void Supervisor::StartPending(std::vector<JobRecord>& jobs,
                              const std::map<std::string, DeploymentRecord>& deployments) {
  int started = 0;
  for (const JobRecord& job : jobs) {
    started += job.state == JobState::kSubmitted || job.state == JobState::kRunning;
  }
  auto at_capacity = [&] {
    return options_.max_running_jobs > 0 && started >= options_.max_running_jobs;
  };
  // Jobs come grouped by invocation in index order; sequential invocations start one at a time.
  std::map<std::string, std::vector<JobRecord*>> by_invocation;
  for (JobRecord& job : jobs) by_invocation[job.invocation_id].push_back(&job);
  for (auto& [invocation_id, list] : by_invocation) {
    bool busy = false;
    for (JobRecord* job : list) {
      busy |= job->state == JobState::kSubmitted || job->state == JobState::kRunning;
    }
    std::optional<bool> sequential;
    for (JobRecord* job : list) {
      if (job->state != JobState::kPending || job->desired != DesiredState::kRun) continue;
      if (at_capacity()) return;
      if (!sequential) {
        absl::StatusOr<storage::InvocationView> view = store_->GetInvocation(invocation_id);
        if (!view.ok()) {
          spdlog::warn("invocation {}: {}", invocation_id, view.status().message());
          break;
        }
        sequential = view->invocation.mode == "sequential";
      }
      if (*sequential && busy) break;
      const DeploymentRecord* serving = nullptr;
      for (const auto& [id, d] : deployments) {
        if (Serves(d, *job)) serving = &d;
      }
      // A job with a model server waits until the server is healthy.
      if (serving != nullptr && serving->state != DeploymentState::kHealthy) {
        if (*sequential) break;
        continue;
      }
      StartJob(*job, serving);
      bool now_started = job->state == JobState::kSubmitted || job->state == JobState::kRunning;
      started += now_started;
      busy |= now_started;
      if (*sequential && busy) break;
    }
  }
}

void Supervisor::StartJob(JobRecord& job, const DeploymentRecord* deployment) {
  absl::StatusOr<storage::InvocationView> view = store_->GetInvocation(job.invocation_id);
  if (!view.ok()) return;
  const InvocationRecord& inv = view->invocation;
  absl::StatusOr<executors::Executor*> ex = registry_->Get(inv.executor);
  if (!ex.ok()) {
    Transition(job, {.to = JobState::kFailed,
                     .reason = ExitReason::kStartFailed,
                     .message = std::string(ex.status().message())});
    return;
  }
  // Marked starting by an earlier evald that died before recording the handle: adopt, not rerun.
  if (!job.handle.executor.empty() && job.handle.state.empty()) {
    absl::StatusOr<std::optional<JobHandle>> found = (*ex)->Recover(job);
    if (found.ok() && found->has_value()) {
      Transition(job, {.to = JobState::kSubmitted,
                       .message = "re-attached after an evald restart",
                       .handle = **found});
      return;
    }
  }
  auto fail = [&](const absl::Status& s) {
    Transition(job, {.to = JobState::kFailed,
                     .reason = ExitReason::kStartFailed,
                     .message = std::string(s.message())});
  };
  absl::StatusOr<std::shared_ptr<const config::RunConfig>> rc = planner_->RunConfigFor(inv);
  if (!rc.ok()) return fail(rc.status());
  absl::StatusOr<const config::TaskSpec*> task = JobPlanner::TaskForJob(**rc, job.index);
  if (!task.ok()) return fail(task.status());
  absl::StatusOr<config::EndpointSpec> endpoint = config::EndpointForTask(**rc, **task);
  if (!endpoint.ok()) return fail(endpoint.status());
  if (deployment != nullptr) {
    // `port: auto` is only known now that the server runs.
    endpoint->url = absl::StrReplaceAll(endpoint->url,
                                        {{"${EVALD_PORT}", absl::StrCat(deployment->port)}});
  }
  absl::StatusOr<std::map<std::string, std::string>> secrets = store_->GetSecrets(inv.id);
  if (!secrets.ok()) return fail(secrets.status());
  absl::StatusOr<std::map<std::string, std::string>> env =
      JobPlanner::JobEnvironment(**task, *secrets);
  if (!env.ok()) return fail(env.status());
  if (!MayStart(absl::StrCat("job ", job.id))) return;
  absl::Status marked = store_->MarkStarting(job.id, NowMs());
  if (!marked.ok()) {
    spdlog::warn("job {}: cannot mark starting: {}", job.id, marked.message());
    return;  // nothing started; the next pass retries
  }
  job.attempt += 1;
  absl::StatusOr<executors::JobSpec> spec = planner_->BuildSpec(**rc, **task, job, *endpoint);
  if (!spec.ok()) return fail(spec.status());
  absl::StatusOr<JobHandle> handle = (*ex)->Start(*spec, *env);
  if (!handle.ok()) return fail(handle.status());
  Transition(job, {.to = JobState::kSubmitted,
                   .message = absl::StrCat("started, attempt ", job.attempt),
                   .handle = *handle});
}

}  // namespace evald::daemon
