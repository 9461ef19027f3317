// File: executor.h
//
// The interface every backend implements (local processes today; SLURM and Lepton later), in the
// spirit of Nomad's driver plugins: a small verb set, and an opaque, versioned handle that is
// persisted so a restarted evald finds its jobs again.
//
// Who calls what: only the daemon's Supervisor calls Start, Poll, Stop and Recover, from its one
// reconcile thread, so implementations need no locking for those. Render and Validate are also
// called by Submit on gRPC threads and must not touch shared mutable state.
//
// Order for one job: [Validate at submit] -> Start -> Poll ... Poll -> (Stop -> Poll ...) until Poll
// reports a terminal observation. After an evald restart, Poll continues with the stored handle;
// a job marked starting but with no stored handle goes through Recover first.
//
//   EVALD_ASSIGN_OR_RETURN(JobHandle h, executor.Start(spec, env));
//   store.TransitionJob({.job_id = spec.job_id, .from = kPending, .to = kSubmitted, .handle = h}, now);
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/deployment/deployment_spec.h"
#include "core/model.h"

namespace evald::executors {

// Everything an executor needs to run one job, fully rendered by the daemon.
struct JobSpec {
  std::string job_id;
  std::string invocation_id;
  std::string task;      // as written in the config
  std::string task_dir;  // absolute: run.sh, plan.yaml, logs/, artifacts/
  int attempt = 1;       // 1 for the first run, +1 per resume; Recover matches on it
  bool native = true;
  std::string plan_yaml;  // native tasks: the evalrun plan (docs/design/job-contract.md)
  std::string image;      // container tasks
  std::string container_command;
  // CONTAINER_VAR -> host var. Values arrive in Start's env under the CONTAINER_VAR name and are
  // passed through by name, never written into a script.
  std::vector<std::pair<std::string, std::string>> env_vars;
  // Executor settings from the config's `execution` section, as YAML text.
  std::string execution_yaml;
};

// What Start/Render produce for the user to read (dry runs) and for the job dir.
struct RenderedJob {
  std::string script;  // run.sh (or run.sub, ...)
  std::string plan;    // plan.yaml for native tasks
};

// One look at one job.
struct Observation {
  std::string job_id;
  enum class Kind { kSubmitted, kRunning, kExited, kVanished } kind = Kind::kSubmitted;
  std::optional<int> exit_code;  // kExited
  std::string message;           // detail for events (e.g. "process 123 gone without exit file")
  bool has_progress = false;
  int64_t progress_done = 0;
  int64_t progress_total = 0;
  int64_t progress_errors = 0;
  double progress_rate = 0;
};

// A model server the executor started (for the deployment's record).
struct DeploymentStarted {
  JobHandle handle;
  int port = 0;
  std::string url;         // base URL, http://127.0.0.1:<port>
  std::string health_url;  // "" when health checks are off
  std::string command;     // what runs (never with secret values)
};

// One look at one deployment.
struct DeploymentObservation {
  enum class Kind { kStarting, kHealthy, kFailed, kStopping, kStopped } kind = Kind::kStarting;
  std::string message;  // why it failed or stopped, or the last health answer while starting
};

class Executor {
 public:
  virtual ~Executor() = default;

  virtual std::string name() const = 0;

  // Checks, without side effects, that Start could run this job here (e.g. a container runtime
  // exists for container tasks, the runner binary exists for native ones). Called at Submit so a
  // doomed job is refused up front with FailedPrecondition.
  virtual absl::Status Validate(const JobSpec& spec) const = 0;

  // The job script and plan Start would write, without side effects (dry runs).
  virtual absl::StatusOr<RenderedJob> Render(const JobSpec& spec) const = 0;

  // Writes the job directory and starts the job. `env` holds the secret values by their
  // destination names (API_KEY, HF_TOKEN, ...); they reach the job only through its environment.
  virtual absl::StatusOr<JobHandle> Start(const JobSpec& spec,
                                          const std::map<std::string, std::string>& env) = 0;

  // Observes many jobs in one round trip to the backend. Never fails as a whole: a job that cannot
  // be observed this time is left out (and retried next tick).
  virtual std::vector<Observation> Poll(const std::vector<const JobRecord*>& jobs) = 0;

  // Asks a job to stop: SIGTERM/scancel now, escalation after `grace` on later Polls. Idempotent.
  virtual absl::Status Stop(const JobRecord& job, absl::Duration grace) = 0;

  // For a job that was being started when an earlier evald died (marked starting, no handle
  // stored): the handle of this attempt's job if it got going (running or finished), or nullopt
  // when this attempt never started. A previous attempt's leftovers never count.
  virtual absl::StatusOr<std::optional<JobHandle>> Recover(const JobRecord& job) = 0;

  // Optional: `wake` is to be called (from any thread) when a started job may have ended, so
  // the Supervisor polls now rather than at its next tick. The Supervisor sets it when it starts
  // and clears it (empty function) when it stops; once this returns with an empty function, the
  // old one must not be called again. Executors that cannot tell keep this no-op.
  virtual void SetWakeCallback(std::function<void()> wake) { (void)wake; }

  // Model servers (deployments). Executors that cannot deploy keep these defaults, and Submit
  // refuses a config with a deployment for them.
  //
  // Checks without side effects that the server could be started here (binary or container
  // runtime present). Called at Submit.
  virtual absl::Status ValidateDeployment(const deployment::DeploymentSpec& spec) const;
  // Picks the port (`auto`) or checks the fixed one is free, starts the server as its own process
  // group, and returns its handle. `log_path` receives its stdout and stderr; `secret_env` holds
  // the values of the spec's secret_env_vars by server variable name.
  virtual absl::StatusOr<DeploymentStarted> StartDeployment(
      const DeploymentRecord& record, const deployment::DeploymentSpec& spec,
      const std::map<std::string, std::string>& secret_env);
  // Observes a started deployment: while starting, probes its health URL (readiness timeout and
  // interval from the spec); once healthy, checks it stays alive; while stopping, escalates to
  // SIGKILL after the grace period and reports kStopped once the server is gone.
  virtual DeploymentObservation PollDeployment(const DeploymentRecord& record,
                                               const deployment::DeploymentSpec& spec);
  // Asks the server to stop (graceful, then forced after spec.stop_grace_s on later polls).
  virtual absl::Status StopDeployment(const DeploymentRecord& record,
                                      const deployment::DeploymentSpec& spec);
  // A deployment left pending by an evald that died between starting the server and recording
  // it: the handle of the server it finds alive, or nullopt.
  virtual absl::StatusOr<std::optional<DeploymentStarted>> RecoverDeployment(
      const DeploymentRecord& record, const deployment::DeploymentSpec& spec);
};

}  // namespace evald::executors
