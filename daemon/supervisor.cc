#include "daemon/supervisor.h"

#include <algorithm>
#include <atomic>
#include <deque>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "core/deployment/deployment_spec.h"
#include "core/status_macros.h"
#include "daemon/fmt_absl.h"
#include "daemon/results_reader.h"
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
    case 0:
      return "exit code 0";
    case 2:
      return "exit code 2 (bad input: plan, task file, dataset or template)";
    case 3:
      return "exit code 3 (endpoint unreachable or requests kept failing)";
    case 4:
      return "exit code 4 (scoring or result writing failed)";
    case 5:
      return "exit code 5 (the endpoint refused the credentials)";
    case 127:
      return "exit code 127 (command not found)";
    case 130:
      return "exit code 130 (interrupted)";
    case 137:
      return "exit code 137 (killed by SIGKILL)";
    case 143:
      return "exit code 143 (terminated by SIGTERM)";
    default:
      return absl::StrCat("exit code ", code);
  }
}

Supervisor::Supervisor(storage::Store* store, executors::ExecutorRegistry* registry,
                       JobPlanner* planner, WatchHub* hub, Options options)
    : store_(store),
      registry_(registry),
      planner_(planner),
      hub_(hub),
      options_(options),
      exporter_(store, hub, options.auto_export) {
  for (const std::string& name : registry_->Names()) {
    absl::StatusOr<executors::Executor*> ex = registry_->Get(name);
    if (!ex.ok()) continue;
    Backend& b = backends_[name];
    auto configured = options_.poll_intervals.find(name);
    b.poll_interval =
        configured != options_.poll_intervals.end() ? configured->second : (*ex)->PollInterval();
    if (b.poll_interval <= absl::ZeroDuration()) b.poll_interval = options_.tick;
    // A finished call wakes the loop so its result is applied at once.
    ExecutorDriver::Observe observe;
    if (options_.metrics != nullptr) {
      observe = [metrics = options_.metrics, name](const std::string& call, absl::Duration took) {
        metrics->ObserveExecutorCall(name, call, took);
      };
    }
    b.adopts_secrets = (*ex)->AdoptsSecrets();
    b.driver = std::make_unique<ExecutorDriver>(
        *ex, [this] { Wake(); }, std::move(observe));
  }
}

Supervisor::~Supervisor() { Stop(); }

void Supervisor::Start() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = false;
  }
  thread_ = std::thread([this] { Loop(); });
  SetWakeCallbacks(true);
  exporter_.Start();
}

void Supervisor::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  // Not under mu_: an executor's callback in progress holds its own lock and waits for mu_.
  SetWakeCallbacks(false);
  if (thread_.joinable()) {
    thread_.join();
    StopDeploymentsForShutdown();
  }
  exporter_.Stop();
  for (auto& [name, b] : backends_) b.driver->Shutdown(absl::Seconds(5));
}

void Supervisor::Wake() {
  absl::MutexLock lock(&mu_);
  wake_ = true;
}

void Supervisor::PollSoon(const std::string& executor) {
  absl::MutexLock lock(&mu_);
  poll_now_.insert(executor);
  wake_ = true;
}

void Supervisor::Loop() {
  while (true) {
    absl::Time pass_start = absl::Now();
    ReconcileOnce();
    if (options_.metrics != nullptr) options_.metrics->ObservePass(absl::Now() - pass_start);
    if (options_.on_pass_done) options_.on_pass_done();
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
  pass_jobs_ = &*jobs;
  pass_index_.clear();
  for (JobRecord& job : *jobs) pass_index_[job.id] = &job;
  // Only ids of active jobs can be in it once ended ones are dropped: prune only when it holds
  // more.
  if (adopted_.size() > pass_index_.size()) {
    for (auto it = adopted_.begin(); it != adopted_.end();) {
      it = pass_index_.count(*it) > 0 ? std::next(it) : adopted_.erase(it);
    }
  }
  ApplyResults();
  ReportStalls();
  PollStarted(*jobs);
  StopRequested(*jobs);
  std::map<std::string, DeploymentRecord> deployments = ReconcileDeployments(*jobs);
  SweepEndedDeployments();
  StartPending(*jobs, deployments);
  pass_index_.clear();
  pass_jobs_ = nullptr;
}

bool Supervisor::Settle(absl::Duration max) {
  absl::Time give_up = absl::Now() + max;
  while (true) {
    ReconcileOnce();
    // One more pass applies what the last calls returned and may queue new ones.
    if (Idle()) {
      ReconcileOnce();
      if (Idle()) return true;
    }
    if (absl::Now() >= give_up) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
}

bool Supervisor::Idle() const {
  for (const auto& [name, b] : backends_) {
    if (b.driver->Pending() > 0) return false;
  }
  return true;
}

Supervisor::Backend* Supervisor::BackendFor(const std::string& executor) {
  auto it = backends_.find(executor);
  return it == backends_.end() ? nullptr : &it->second;
}

JobRecord* Supervisor::PassJob(const std::string& job_id) {
  auto it = pass_index_.find(job_id);
  return it == pass_index_.end() ? nullptr : it->second;
}

void Supervisor::ApplyResults() {
  for (auto& [name, b] : backends_) {
    for (ExecutorDriver::Apply& apply : b.driver->TakeResults()) apply();
  }
}

void Supervisor::ReportStalls() {
  absl::Time now = absl::Now();
  for (auto& [name, b] : backends_) {
    std::optional<std::pair<std::string, absl::Time>> running = b.driver->Running();
    if (!running) {
      b.stall_reported.clear();
      continue;
    }
    absl::Duration took = now - running->second;
    std::string key = absl::StrCat(running->first, "@", absl::ToUnixNanos(running->second));
    if (took > b.driver->executor().CallTimeout() && b.stall_reported != key) {
      b.stall_reported = key;
      spdlog::error(
          "executor {}: {} has been running for {} (timeout {}); this executor's jobs are not "
          "observed, started or stopped until it returns; other executors are not affected",
          name, running->first, absl::FormatDuration(absl::Trunc(took, absl::Seconds(1))),
          absl::FormatDuration(b.driver->executor().CallTimeout()));
    }
  }
}

namespace {

// What an executor gets to see of a job or a model server.
executors::JobRef RefOf(const JobRecord& job) {
  return {job.id, job.invocation_id, job.attempt, job.output_dir, job.handle};
}

executors::DeploymentRef RefOf(const DeploymentRecord& d) {
  return {.id = d.id,
          .invocation_id = d.invocation_id,
          .state = d.state,
          .handle = d.handle,
          .log_path = d.log_path,
          .health_url = d.health_url,
          .started_ms = d.started_ms};
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
  if (deployment_busy_.count(d.id) > 0) return;  // a backend call for it is still out
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
  Backend* backend = BackendFor(view.invocation.executor);
  executors::DeploymentBackend* servers =
      backend != nullptr ? backend->driver->executor().deployments() : nullptr;
  absl::StatusOr<deployment::DeploymentSpec> spec = planner_->DeploymentSpecFor(view.invocation, d);
  if (servers == nullptr || !spec.ok()) {
    std::string why = servers == nullptr ? absl::StrCat("executor '", view.invocation.executor,
                                                        "' cannot run model servers in this evald")
                                         : std::string(spec.status().message());
    if (TransitionDeployment(d, {.to = DeploymentState::kFailed, .message = why})) {
      d.message = why;
      FailServedJobs(d, jobs);
    }
    return;
  }
  executors::DeploymentRef ref = RefOf(d);
  auto queue = [&](std::string what, ExecutorDriver::Call call) {
    deployment_busy_.insert(d.id);
    backend->driver->Queue(absl::StrCat(what, " ", d.id), std::move(call));
  };
  if (d.state != DeploymentState::kPending && deployment_adopted_.insert(d.id).second) {
    // Started by an earlier evald: the backend gets the secrets it needs before any other call
    // (queued first on the same driver).
    if (std::vector<std::string> names = servers->SecretNames(*spec); !names.empty()) {
      absl::StatusOr<std::map<std::string, std::string>> secrets =
          store_->GetSecrets(d.invocation_id);
      std::map<std::string, std::string> values;
      for (const std::string& name : names) {
        if (!secrets.ok()) break;
        if (auto it = secrets->find(name); it != secrets->end()) values[name] = it->second;
      }
      backend->driver->Queue(absl::StrCat("adopt deployment ", d.id),
                             [ref, spec = *spec, values](executors::Executor& ex) {
                               ex.deployments()->Adopt(ref, spec, values);
                               return ExecutorDriver::Apply([] {});
                             });
    }
  }
  switch (d.state) {
    case DeploymentState::kPending: {
      if (want_stop) {
        TransitionDeployment(
            d, {.to = DeploymentState::kStopped,
                .message = all_done ? "no task needs it any more" : "stopped before it started"});
        return;
      }
      if (!MayStart(absl::StrCat("deployment ", d.id))) return;
      std::map<std::string, std::string> secret_env;
      const std::vector<std::string> backend_secrets = servers->SecretNames(*spec);
      if (!spec->secret_env_vars.empty() || !backend_secrets.empty()) {
        absl::StatusOr<std::map<std::string, std::string>> secrets =
            store_->GetSecrets(d.invocation_id);
        if (secrets.ok()) {
          for (const auto& [server_var, host_var] : spec->secret_env_vars) {
            auto it = secrets->find(host_var);
            if (it != secrets->end()) secret_env[server_var] = it->second;
          }
          for (const std::string& name : backend_secrets) {
            auto it = secrets->find(name);
            if (it != secrets->end()) secret_env[name] = it->second;
          }
        }
      }
      deployment_adopted_.insert(d.id);
      // A server an earlier evald started but did not record is adopted, not started twice.
      queue("start deployment",
            [this, d, ref, spec = *spec,
             secret_env](executors::Executor& ex) -> ExecutorDriver::Apply {
              executors::DeploymentBackend* backend_servers = ex.deployments();
              backend_servers->Adopt(ref, spec, secret_env);  // Recover may need them too
              absl::StatusOr<std::optional<executors::DeploymentStarted>> found =
                  backend_servers->Recover(ref, spec);
              if (found.ok() && found->has_value()) {
                return [this, d, found] { OnDeploymentStarted(d, found, /*recovered=*/true); };
              }
              absl::StatusOr<executors::DeploymentStarted> started =
                  backend_servers->Start(ref, spec, secret_env);
              absl::StatusOr<std::optional<executors::DeploymentStarted>> result =
                  started.ok()
                      ? absl::StatusOr<std::optional<executors::DeploymentStarted>>(*started)
                      : started.status();
              return [this, d, result] { OnDeploymentStarted(d, result, /*recovered=*/false); };
            });
      return;
    }
    case DeploymentState::kStarting:
    case DeploymentState::kHealthy: {
      if (want_stop) {
        std::string why =
            d.desired == DesiredState::kStop ? "stop requested" : "every task it served has ended";
        queue("stop deployment",
              [this, d, ref, spec = *spec, why](executors::Executor& ex) -> ExecutorDriver::Apply {
                absl::Status s = ex.deployments()->Stop(ref, spec);
                return [this, d, s, why]() mutable {
                  deployment_busy_.erase(d.id);
                  if (!s.ok()) spdlog::warn("deployment {}: stop failed: {}", d.id, s.message());
                  TransitionDeployment(d, {.to = DeploymentState::kStopping, .message = why});
                };
              });
        return;
      }
      [[fallthrough]];
    }
    case DeploymentState::kStopping:
      queue("poll deployment",
            [this, d, ref, spec = *spec](executors::Executor& ex) -> ExecutorDriver::Apply {
              executors::DeploymentObservation obs = ex.deployments()->Poll(ref, spec);
              return [this, d, obs] { OnDeploymentPolled(d, obs); };
            });
      return;
    case DeploymentState::kFailed:
    case DeploymentState::kStopped:
      return;
  }
}

void Supervisor::OnDeploymentStarted(
    DeploymentRecord d, absl::StatusOr<std::optional<executors::DeploymentStarted>> started,
    bool recovered) {
  deployment_busy_.erase(d.id);
  if (!started.ok() || !started->has_value()) {
    std::string why =
        started.ok() ? "the server did not start" : std::string(started.status().message());
    if (TransitionDeployment(d, {.to = DeploymentState::kFailed, .message = why})) {
      d.message = why;
      if (pass_jobs_ != nullptr) FailServedJobs(d, *pass_jobs_);
    }
    return;
  }
  const executors::DeploymentStarted& s = **started;
  TransitionDeployment(d, {.to = DeploymentState::kStarting,
                           .message = recovered ? "re-attached after an evald restart"
                                                : absl::StrCat("started on port ", s.port),
                           .handle = s.handle,
                           .port = s.port,
                           .url = s.url,
                           .health_url = s.health_url,
                           .command = s.command});
}

void Supervisor::OnDeploymentPolled(DeploymentRecord d, executors::DeploymentObservation obs) {
  using Kind = executors::DeploymentObservation::Kind;
  deployment_busy_.erase(d.id);
  if (d.state == DeploymentState::kStopping) {
    if (obs.kind == Kind::kStopped || obs.kind == Kind::kFailed) {
      TransitionDeployment(d, {.to = DeploymentState::kStopped, .message = obs.message});
    }
    return;
  }
  if (obs.kind == Kind::kHealthy && d.state == DeploymentState::kStarting) {
    DeploymentTransition t{.to = DeploymentState::kHealthy, .message = obs.message};
    if (!obs.url.empty()) t.url = obs.url;
    TransitionDeployment(d, std::move(t));
  } else if (obs.kind == Kind::kFailed) {
    if (TransitionDeployment(d, {.to = DeploymentState::kFailed, .message = obs.message})) {
      d.message = obs.message;
      if (pass_jobs_ != nullptr) FailServedJobs(d, *pass_jobs_);
    }
  }
}

absl::StatusOr<executors::LogPage> Supervisor::ReadJobLogs(const std::string& executor,
                                                           const JobRecord& job,
                                                           const std::string& cursor) {
  Backend* backend = BackendFor(executor);
  if (backend == nullptr) {
    return absl::UnimplementedError(absl::StrCat("no executor '", executor, "' in this evald"));
  }
  return backend->driver->executor().ReadLogs(RefOf(job), cursor);
}

void Supervisor::SweepEndedDeployments() {
  const absl::Time now = absl::Now();
  if (now < next_sweep_ || sweeps_in_flight_ > 0) return;
  next_sweep_ = now + options_.sweep_interval;
  absl::StatusOr<std::vector<DeploymentRecord>> ended =
      store_->ListEndedDeployments(NowMs() - absl::ToInt64Milliseconds(options_.sweep_window));
  if (!ended.ok()) {
    spdlog::warn("supervisor: cannot list ended deployments: {}", ended.status().message());
    return;
  }
  if (ended->empty()) return;
  std::vector<executors::DeploymentRef> refs;
  std::map<std::string, std::string> invocation_of;
  for (const DeploymentRecord& d : *ended) {
    refs.push_back(RefOf(d));
    invocation_of[d.id] = d.invocation_id;
  }
  for (auto& [name, b] : backends_) {
    if (b.driver->executor().deployments() == nullptr) continue;
    ++sweeps_in_flight_;
    b.driver->Queue("sweep deployments",
                    [this, refs, invocation_of](executors::Executor& ex) -> ExecutorDriver::Apply {
                      std::vector<std::pair<std::string, std::string>> swept =
                          ex.deployments()->Sweep(refs);
                      return [this, swept, invocation_of] {
                        --sweeps_in_flight_;
                        for (const auto& [id, message] : swept) {
                          EventRecord e;
                          e.time_ms = NowMs();
                          auto it = invocation_of.find(id);
                          if (it == invocation_of.end()) continue;
                          e.invocation_id = it->second;
                          e.kind = "deployment.swept";
                          e.message = absl::StrCat("deployment ", id, ": ", message);
                          if (absl::StatusOr<EventRecord> r = store_->AppendEvent(e); !r.ok()) {
                            spdlog::warn("deployment {}: cannot record '{}': {}", id, message,
                                         r.status().message());
                          }
                        }
                        if (!swept.empty()) hub_->NotifyChanged();
                      };
                    });
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
    absl::StatusOr<deployment::DeploymentSpec> spec =
        planner_->DeploymentSpecFor(view->invocation, d);
    Backend* backend = BackendFor(view->invocation.executor);
    if (!spec.ok() || backend == nullptr || backend->driver->executor().deployments() == nullptr ||
        !spec->stop_on_evald_shutdown) {
      continue;
    }
    // Shutdown must stay quick: a few seconds of grace at most, then SIGKILL.
    deployment::DeploymentSpec quick = *spec;
    quick.stop_grace_s = std::min(quick.stop_grace_s, 3.0);
    absl::Duration call_wait = absl::Seconds(5);
    if (d.state != DeploymentState::kStopping) {
      executors::DeploymentRef ref = RefOf(d);
      backend->driver->RunAndWait(
          "stop deployment",
          [ref, quick](executors::Executor& ex) {
            ex.deployments()->Stop(ref, quick).IgnoreError();
          },
          call_wait);
      TransitionDeployment(d,
                           {.to = DeploymentState::kStopping, .message = "evald is shutting down"});
    }
    executors::DeploymentRef ref = RefOf(d);
    absl::Time give_up = absl::Now() + absl::Seconds(quick.stop_grace_s + 2);
    while (absl::Now() < give_up) {
      auto stopped = std::make_shared<std::atomic<bool>>(false);
      bool answered = backend->driver->RunAndWait(
          "poll deployment",
          [ref, quick, stopped](executors::Executor& ex) {
            *stopped = ex.deployments()->Poll(ref, quick).kind ==
                       executors::DeploymentObservation::Kind::kStopped;
          },
          call_wait);
      if (!answered) break;
      if (*stopped) {
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
      spdlog::error("job {}: cannot record {} -> {}: {}", job.id, ToString(t.from), ToString(t.to),
                    events.status().message());
    }
    return false;
  }
  spdlog::info("job {} ({}): {} -> {}{}{}", job.id, job.task, ToString(t.from), ToString(t.to),
               t.message.empty() ? "" : ": ", t.message);
  if (options_.metrics != nullptr && IsTerminal(t.to) && job.submitted_ms > 0) {
    options_.metrics->ObserveJobEnded(job.handle.executor, t.to,
                                      absl::Milliseconds(NowMs() - job.submitted_ms));
  }
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

void Supervisor::PollStarted(std::vector<JobRecord>& jobs) {
  std::map<std::string, std::vector<JobRecord*>> by_executor;
  for (JobRecord& job : jobs) {
    if ((job.state == JobState::kSubmitted || job.state == JobState::kRunning) &&
        !job.handle.state.empty()) {
      by_executor[job.handle.executor].push_back(&job);
    }
  }
  std::set<std::string> now_asked;
  {
    absl::MutexLock lock(&mu_);
    now_asked = poll_now_;
  }
  absl::Time now = absl::Now();
  for (auto& [name, list] : by_executor) {
    Backend* b = BackendFor(name);
    if (b == nullptr) {
      for (JobRecord* job : list) {
        Transition(*job, {.to = JobState::kLost,
                          .reason = ExitReason::kLost,
                          .message = absl::StrCat("executor '", name, "' is not available")});
      }
      continue;
    }
    if (b->poll_in_flight || (now < b->next_poll && now_asked.count(name) == 0)) continue;
    {
      absl::MutexLock lock(&mu_);
      poll_now_.erase(name);
    }
    std::vector<executors::JobRef> refs;
    std::map<std::string, std::string> handles;  // what was polled, to drop stale answers
    for (JobRecord* job : list) {
      EnsureAdopted(*job, *b);
      refs.push_back(RefOf(*job));
      handles[job->id] = job->handle.state;
    }
    b->poll_in_flight = true;
    b->next_poll = now + b->poll_interval;
    b->driver->Queue("Poll",
                     [this, name = name, refs = std::move(refs), handles = std::move(handles)](
                         executors::Executor& ex) -> ExecutorDriver::Apply {
                       std::vector<executors::Observation> observed = ex.Poll(refs);
                       return [this, name, observed = std::move(observed), handles]() mutable {
                         OnPolled(name, std::move(observed), handles);
                       };
                     });
  }
}

void Supervisor::OnPolled(const std::string& executor,
                          std::vector<executors::Observation> observations,
                          const std::map<std::string, std::string>& polled_handles) {
  if (Backend* b = BackendFor(executor)) b->poll_in_flight = false;
  std::vector<storage::ProgressUpdate> progress;
  std::vector<std::pair<JobRecord*, executors::Observation>> observed;
  for (executors::Observation& obs : observations) {
    JobRecord* job = PassJob(obs.job_id);
    auto polled = polled_handles.find(obs.job_id);
    // Skip answers about a job that moved on meanwhile (ended, or resumed with a new handle).
    if (job == nullptr || polled == polled_handles.end() || job->handle.state != polled->second ||
        (job->state != JobState::kSubmitted && job->state != JobState::kRunning)) {
      continue;
    }
    RecordProgress(*job, obs, progress);
    observed.emplace_back(job, std::move(obs));
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
    storage::ProgressUpdate u{
        job.id, obs.progress_done, obs.progress_total, obs.progress_errors, obs.progress_rate,
        NowMs()};
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
        if (Transition(job, {.to = JobState::kSucceeded,
                             .reason = ExitReason::kExitCode,
                             .exit_code = code,
                             .message = message})) {
          exporter_.JobSucceeded(job);
        }
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
        Transition(job,
                   {.to = JobState::kLost, .reason = ExitReason::kLost, .message = obs.message});
      }
      stop_sent_.erase(job.id);
      return;
  }
}

void Supervisor::SetWakeCallbacks(bool set) {
  for (auto& [name, b] : backends_) {
    if (set) {
      b.driver->executor().SetWakeCallback([this, name = name] { PollSoon(name); });
    } else {
      b.driver->executor().SetWakeCallback(nullptr);
    }
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

bool Supervisor::NeedsRecover(const JobRecord& job) const {
  if (job.handle.executor.empty() || !job.handle.state.empty()) return false;
  auto done = recover_done_.find(job.id);
  return done == recover_done_.end() || done->second != job.attempt;
}

void Supervisor::EnsureAdopted(const JobRecord& job, Backend& backend) {
  if (!backend.adopts_secrets || !adopted_.insert(job.id).second) return;
  // The environment its Start got: the stored plan with the invocation's secrets put back.
  absl::StatusOr<std::map<std::string, std::string>> secrets =
      store_->GetSecrets(job.invocation_id);
  if (!secrets.ok() || secrets->empty()) return;
  absl::StatusOr<InvocationRecord> inv = store_->GetInvocationRecord(job.invocation_id);
  if (!inv.ok()) return;
  absl::StatusOr<executors::JobSpec> spec = planner_->SpecForStart(*inv, job, nullptr, *secrets);
  absl::StatusOr<std::map<std::string, std::string>> env =
      spec.ok() ? JobPlanner::JobEnvironment(*spec, *secrets)
                : absl::StatusOr<std::map<std::string, std::string>>(spec.status());
  if (!env.ok()) {
    spdlog::warn("job {}: cannot hand its secrets to the {} executor again: {}", job.id,
                 job.handle.executor, env.status().message());
    return;
  }
  backend.driver->Queue(
      absl::StrCat("Adopt ", job.id),
      [ref = RefOf(job), env = *std::move(env)](executors::Executor& ex) -> ExecutorDriver::Apply {
        ex.Adopt(ref, env);
        return nullptr;
      });
}

void Supervisor::QueueRecover(const JobRecord& job) {
  Backend* b = BackendFor(job.handle.executor);
  if (b == nullptr || starting_.count(job.id) > 0) return;
  starting_.insert(job.id);
  EnsureAdopted(job, *b);
  executors::JobRef ref = RefOf(job);
  b->driver->Queue(absl::StrCat("Recover ", job.id),
                   [this, ref](executors::Executor& ex) -> ExecutorDriver::Apply {
                     absl::StatusOr<std::optional<JobHandle>> found = ex.Recover(ref);
                     return [this, ref, found] { OnRecovered(ref.job_id, ref.attempt, found); };
                   });
}

void Supervisor::OnRecovered(const std::string& job_id, int attempt,
                             absl::StatusOr<std::optional<JobHandle>> found) {
  starting_.erase(job_id);
  JobRecord* job = PassJob(job_id);
  if (job == nullptr || job->state != JobState::kPending || job->attempt != attempt) return;
  if (found.ok() && found->has_value()) {
    Transition(*job, {.to = JobState::kSubmitted,
                      .message = "re-attached after an evald restart",
                      .handle = **found});
    return;
  }
  if (!found.ok()) {
    if (options_.metrics != nullptr) {
      options_.metrics->CountExecutorError(job->handle.executor, "Recover");
    }
    spdlog::warn("job {}: cannot tell whether attempt {} started: {}", job_id, attempt,
                 found.status().message());
    return;  // asked again at the next pass
  }
  recover_done_[job_id] = attempt;  // this attempt never started: start (or kill) it afresh
  Wake();
}

void Supervisor::StopRequested(std::vector<JobRecord>& jobs) {
  for (JobRecord& job : jobs) {
    if (job.desired != DesiredState::kStop || IsTerminal(job.state)) continue;
    if (starting_.count(job.id) > 0) continue;  // stopped once its start call returns
    if (job.state == JobState::kPending) {
      // A job caught between "starting" and "submitted" by a crash may be running: find it first.
      if (NeedsRecover(job)) {
        QueueRecover(job);
        continue;
      }
      Transition(job, {.to = JobState::kKilled,
                       .reason = ExitReason::kKilledByUser,
                       .message = "killed before it started"});
      continue;
    }
    if (stop_sent_.count(job.id) > 0) continue;
    Backend* b = BackendFor(job.handle.executor);
    if (b == nullptr) continue;
    stop_sent_.insert(job.id);
    EnsureAdopted(job, *b);
    executors::JobRef ref = RefOf(job);
    absl::Duration grace = options_.stop_grace;
    b->driver->Queue(absl::StrCat("Stop ", job.id),
                     [this, ref, grace](executors::Executor& ex) -> ExecutorDriver::Apply {
                       absl::Status s = ex.Stop(ref, grace);
                       if (s.ok()) return nullptr;
                       return [this, ref, s] {
                         spdlog::warn("job {}: stop failed: {}", ref.job_id, s.message());
                         if (options_.metrics != nullptr) {
                           options_.metrics->CountExecutorError(ref.handle.executor, "Stop");
                         }
                         stop_sent_.erase(ref.job_id);  // tried again at the next pass
                       };
                     });
    // Poll soon: a stopped local job ends within moments.
    PollSoon(job.handle.executor);
  }
}

void Supervisor::StartPending(std::vector<JobRecord>& jobs,
                              const std::map<std::string, DeploymentRecord>& deployments) {
  auto started_now = [this](const JobRecord& job) {
    return job.state == JobState::kSubmitted || job.state == JobState::kRunning ||
           starting_.count(job.id) > 0;
  };
  if (options_.max_running_jobs > 0) {
    int running = 0;
    for (const JobRecord& job : jobs) running += started_now(job);
    // Full: nothing to order (the common case under a burst of submits, every pass).
    if (running >= options_.max_running_jobs) return;
  }
  // Jobs come grouped by invocation in index order.
  std::map<std::string, std::vector<JobRecord*>> by_invocation;
  for (JobRecord& job : jobs) by_invocation[job.invocation_id].push_back(&job);
  for (auto it = start_facts_.begin(); it != start_facts_.end();) {
    it = by_invocation.count(it->first) > 0 ? std::next(it) : start_facts_.erase(it);
  }

  struct Candidate {
    JobRecord* job;
    const DeploymentRecord* serving;
  };
  std::map<std::string, std::deque<Candidate>> queues;  // by owner
  std::map<std::string, int> started_by_owner;
  int started = 0;
  for (auto& [invocation_id, list] : by_invocation) {
    auto facts = start_facts_.find(invocation_id);
    if (facts == start_facts_.end()) {
      absl::StatusOr<InvocationRecord> inv = store_->GetInvocationRecord(invocation_id);
      if (!inv.ok()) {
        spdlog::warn("invocation {}: {}", invocation_id, inv.status().message());
        continue;
      }
      facts = start_facts_.emplace(invocation_id, StartFacts{inv->owner, inv->mode == "sequential"})
                  .first;
    }
    const StartFacts& f = facts->second;
    bool busy = false;
    for (JobRecord* job : list) {
      const bool now = started_now(*job);
      busy |= now;
      started += now;
      started_by_owner[f.owner] += now;
    }
    for (JobRecord* job : list) {
      if (job->state != JobState::kPending || job->desired != DesiredState::kRun ||
          starting_.count(job->id) > 0) {
        continue;
      }
      if (f.sequential && busy) break;
      const DeploymentRecord* serving = nullptr;
      for (const auto& [id, d] : deployments) {
        if (Serves(d, *job)) serving = &d;
      }
      // A job with a model server waits until the server is healthy.
      if (serving != nullptr && serving->state != DeploymentState::kHealthy) {
        if (f.sequential) break;
        continue;
      }
      queues[f.owner].push_back({job, serving});
      if (f.sequential) break;  // its next job waits for this one to end
    }
  }
  for (auto& [owner, queue] : queues) {
    std::stable_sort(queue.begin(), queue.end(), [](const Candidate& a, const Candidate& b) {
      return a.job->created_ms < b.job->created_ms;
    });
  }

  while (options_.max_running_jobs <= 0 || started < options_.max_running_jobs) {
    std::deque<Candidate>* next = nullptr;
    std::string next_owner;
    for (auto& [owner, queue] : queues) {
      if (queue.empty()) continue;
      if (next == nullptr || started_by_owner[owner] < started_by_owner[next_owner] ||
          (started_by_owner[owner] == started_by_owner[next_owner] &&
           queue.front().job->created_ms < next->front().job->created_ms)) {
        next = &queue;
        next_owner = owner;
      }
    }
    if (next == nullptr) return;
    Candidate c = next->front();
    next->pop_front();
    StartJob(*c.job, c.serving);
    if (started_now(*c.job)) {
      ++started;
      ++started_by_owner[next_owner];
    }
  }
}

void Supervisor::StartJob(JobRecord& job, const DeploymentRecord* deployment) {
  // Marked starting by an earlier evald that died before recording the handle: adopt, not rerun.
  if (NeedsRecover(job)) {
    QueueRecover(job);
    return;
  }
  absl::StatusOr<storage::InvocationView> view = store_->GetInvocation(job.invocation_id);
  if (!view.ok()) return;
  const InvocationRecord& inv = view->invocation;
  Backend* backend = BackendFor(inv.executor);
  auto fail = [&](const absl::Status& s) {
    Transition(job, {.to = JobState::kFailed,
                     .reason = ExitReason::kStartFailed,
                     .message = std::string(s.message())});
  };
  if (backend == nullptr) {
    return fail(registry_->Get(inv.executor).status());
  }
  absl::StatusOr<std::map<std::string, std::string>> secrets = store_->GetSecrets(inv.id);
  if (!secrets.ok()) return fail(secrets.status());
  // The job's plan as Submit stored it; nothing of the config is read again.
  JobRecord next = job;
  next.attempt = job.attempt + 1;
  absl::StatusOr<executors::JobSpec> spec = planner_->SpecForStart(inv, next, deployment, *secrets);
  if (!spec.ok()) return fail(spec.status());
  absl::StatusOr<std::map<std::string, std::string>> env =
      JobPlanner::JobEnvironment(*spec, *secrets);
  if (!env.ok()) return fail(env.status());
  if (!MayStart(absl::StrCat("job ", job.id))) return;
  absl::Status marked = store_->MarkStarting(job.id, NowMs());
  if (!marked.ok()) {
    spdlog::warn("job {}: cannot mark starting: {}", job.id, marked.message());
    return;  // nothing started; the next pass retries
  }
  job.attempt += 1;
  job.handle = JobHandle{};
  job.handle.executor = inv.executor;
  recover_done_.erase(job.id);
  starting_.insert(job.id);
  adopted_.insert(job.id);  // Start gets the secrets itself
  int attempt = job.attempt;
  backend->driver->Queue(absl::StrCat("Start ", job.id),
                         [this, spec = *std::move(spec), env = *std::move(env),
                          attempt](executors::Executor& ex) -> ExecutorDriver::Apply {
                           absl::StatusOr<JobHandle> handle = ex.Start(spec, env);
                           return [this, job_id = spec.job_id, attempt, handle] {
                             OnStarted(job_id, attempt, handle);
                           };
                         });
}

void Supervisor::OnStarted(const std::string& job_id, int attempt,
                           absl::StatusOr<JobHandle> handle) {
  starting_.erase(job_id);
  JobRecord* job = PassJob(job_id);
  if (job == nullptr || job->state != JobState::kPending || job->attempt != attempt) {
    // Only this thread moves a pending job on, and not while its start is out.
    spdlog::error("job {}: start of attempt {} returned, but the job is no longer pending at it",
                  job_id, attempt);
    return;
  }
  if (!handle.ok()) {
    if (options_.metrics != nullptr)
      options_.metrics->CountExecutorError(job->handle.executor, "Start");
    Transition(*job, {.to = JobState::kFailed,
                      .reason = ExitReason::kStartFailed,
                      .message = std::string(handle.status().message())});
    return;
  }
  Transition(*job, {.to = JobState::kSubmitted,
                    .message = absl::StrCat("started, attempt ", attempt),
                    .handle = *handle});
  PollSoon(handle->executor);
}

}  // namespace evald::daemon
