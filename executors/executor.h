// File: executor.h
//
// The interface every backend implements (local processes today; SLURM and Lepton next), in the
// spirit of Nomad's driver plugins: a small verb set for jobs, and an opaque, versioned handle that
// is persisted so a restarted evald finds its jobs again. Model servers are a separate, optional
// interface (DeploymentBackend) that an executor offers or not; an executor may instead run the
// server inside each job (DeploysInJob).
//
// Who calls what: the daemon's Supervisor drives each executor through an ExecutorDriver, which
// runs every Start, Poll, Stop and Recover of one executor on that executor's own thread, one call
// at a time, so implementations need no locking for those, and a slow or hung backend delays only
// its own jobs. Validate, Render and Describe are also called by Submit and the read RPCs on gRPC
// threads and must not touch mutable state. Executors see the job's id, attempt, task dir, handle
// and planned spec, never database rows.
//
// Order for one job: [Validate at submit] -> Start -> Poll ... Poll -> (Stop -> Poll ...) until
// Poll reports a terminal observation. After an evald restart, Poll continues with the stored
// handle; a job marked starting but with no stored handle goes through Recover first.
//
//   EVALD_ASSIGN_OR_RETURN(JobHandle h, executor.Start(spec, env));
//   store.TransitionJob({.job_id = spec.job_id, .from = kPending, .to = kSubmitted, .handle = h},
//   now);
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
  // The model server this job runs inside itself, for an executor whose DeploysInJob() is true:
  // the config's `deployment` section as YAML text (read with
  // deployment::ParseDeploymentSpecYaml(deployment_yaml, execution_yaml)); "" when the job has
  // none. Its secret_env_vars' values arrive in Start's env under the server variable names.
  std::string deployment_yaml;
};

// A started (or starting) job as the executor sees it on Poll, Stop and Recover.
struct JobRef {
  std::string job_id;
  std::string invocation_id;
  int attempt = 0;       // the attempt this handle belongs to
  std::string task_dir;  // as in its JobSpec
  JobHandle handle;      // empty state while starting (Recover)
};

// How `evalctl status`/`info` show a handle: the backend's id for the job ("pid 4711", a SLURM
// job id, a Lepton job name) and backend-specific details (raw backend state, node, ...).
struct HandleInfo {
  std::string backend_id;
  std::vector<std::pair<std::string, std::string>> details;
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
  // kHealthy: the server's base URL when only now known (a Lepton endpoint's external URL);
  // "" keeps the one Start returned.
  std::string url;
};

// A model server as its backend sees it (no database row).
struct DeploymentRef {
  std::string id;
  std::string invocation_id;
  DeploymentState state = DeploymentState::kPending;
  JobHandle handle;
  std::string log_path;    // the server's stdout and stderr
  std::string health_url;  // as returned by Start
  int64_t started_ms = 0;
};

// Model servers. An executor that can deploy returns one from Executor::deployments(); Submit
// refuses a config with a deployment for an executor that returns nullptr (unless it runs the
// server inside each job: Executor::DeploysInJob). Called on the
// executor's driver thread (Start, Poll, Stop, Recover) and at Submit (Validate).
class DeploymentBackend {
 public:
  virtual ~DeploymentBackend() = default;
  // Checks without side effects that the server could be started here (binary or container
  // runtime present). Called at Submit.
  virtual absl::Status Validate(const deployment::DeploymentSpec& spec) const = 0;
  // Starts the server and returns its handle. `secret_env` holds the values of the spec's
  // secret_env_vars by server variable name.
  virtual absl::StatusOr<DeploymentStarted> Start(
      const DeploymentRef& ref, const deployment::DeploymentSpec& spec,
      const std::map<std::string, std::string>& secret_env) = 0;
  // Observes a started deployment: while starting, probes its health (readiness timeout and
  // interval from the spec); once healthy, checks it stays alive; while stopping, escalates after
  // the grace period and reports kStopped once the server is gone.
  virtual DeploymentObservation Poll(const DeploymentRef& ref,
                                     const deployment::DeploymentSpec& spec) = 0;
  // Asks the server to stop (graceful, then forced after spec.stop_grace_s on later polls).
  virtual absl::Status Stop(const DeploymentRef& ref, const deployment::DeploymentSpec& spec) = 0;
  // A deployment left pending by an evald that died between starting the server and recording
  // it: the server it finds alive, or nullopt.
  virtual absl::StatusOr<std::optional<DeploymentStarted>> Recover(
      const DeploymentRef& ref, const deployment::DeploymentSpec& spec) = 0;

  // Optional: what a dry run shows for this server ("" shows the reference's command). No side
  // effects, no backend call.
  virtual absl::StatusOr<std::string> Render(const DeploymentRef& ref,
                                             const deployment::DeploymentSpec& spec) const {
    (void)ref;
    (void)spec;
    return std::string();
  }
  // Optional: the invocation secrets (by host variable name) this backend needs for every call
  // on the deployment, not only Start (Lepton's workspace token, which evalctl may have sent only
  // with the submit). The Supervisor adds them to Start's `secret_env`, and after an evald
  // restart hands them to Adopt before the deployment's first other call.
  virtual std::vector<std::string> SecretNames(const deployment::DeploymentSpec& spec) const {
    (void)spec;
    return {};
  }
  virtual void Adopt(const DeploymentRef& ref, const deployment::DeploymentSpec& spec,
                     const std::map<std::string, std::string>& secrets) {
    (void)ref;
    (void)spec;
    (void)secrets;
  }
  // Optional: deployments evald recorded as ended (stopped or failed), whose servers may have
  // outlived them (a delete that never went through, a create that landed after the deployment
  // failed, an evald killed in between). Removes each of those servers still alive, never one
  // this backend did not create, and returns what it did as {deployment id, message} for an
  // event on the deployment's invocation. Refs of other backends are ignored. Called by the
  // Supervisor after an evald restart and every few minutes.
  virtual std::vector<std::pair<std::string, std::string>> Sweep(
      const std::vector<DeploymentRef>& ended) {
    (void)ended;
    return {};
  }
};

// A job's log lines as its backend keeps them (Executor::ReadLogs).
struct LogPage {
  std::vector<std::string> lines;  // oldest first
  std::string cursor;              // pass back to get the lines after these
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
  // be observed this time is left out (and retried at the next poll).
  virtual std::vector<Observation> Poll(const std::vector<JobRef>& jobs) = 0;

  // Asks a job to stop: SIGTERM/scancel now, escalation after `grace` on later Polls. Idempotent.
  virtual absl::Status Stop(const JobRef& job, absl::Duration grace) = 0;

  // For a job that was being started when an earlier evald died (marked starting, no handle
  // stored): the handle of this attempt's job if it got going (running or finished), or nullopt
  // when this attempt never started. A previous attempt's leftovers never count.
  virtual absl::StatusOr<std::optional<JobHandle>> Recover(const JobRef& job) = 0;

  // What to show for a handle this executor wrote. Called on any thread.
  virtual HandleInfo Describe(const JobHandle& handle) const = 0;

  // How often the Supervisor polls this executor's live jobs (it polls sooner when woken);
  // zero = every supervisor tick. The server config may override it per executor. And how long
  // one backend call may take before the Supervisor reports the backend as stalled.
  virtual absl::Duration PollInterval() const { return absl::ZeroDuration(); }
  virtual absl::Duration CallTimeout() const { return absl::Seconds(30); }

  // Optional: `wake` is to be called (from any thread) when a started job may have ended, so
  // the Supervisor polls now rather than at the next interval. The Supervisor sets it when it
  // starts and clears it (empty function) when it stops; once this returns with an empty
  // function, the old one must not be called again. Executors that cannot tell keep this no-op.
  virtual void SetWakeCallback(std::function<void()> wake) { (void)wake; }

  // Model servers, or nullptr when this executor cannot deploy them.
  virtual DeploymentBackend* deployments() { return nullptr; }

  // Optional, for an executor that runs the model server inside each job rather than as a
  // separate deployment (SLURM: an srun step in the job's own allocation, health-checked and
  // stopped by the job script). Submit then records no deployment and ignores deployments():
  // every job's spec carries the server (JobSpec::deployment_yaml), the evaluation's endpoint is
  // the in-job server's http://127.0.0.1:<port><path>, and Validate refuses what the in-job
  // server cannot do (e.g. `port: auto`).
  virtual bool DeploysInJob() const { return false; }

  // Optional: the job's log lines as the backend keeps them, for a job whose log files evald
  // cannot read (a Lepton job without shared storage: Lepton's /logs). `cursor` "" reads from the
  // start; each call returns the lines after `cursor`, oldest first, and the cursor for the next
  // call. Unimplemented when the backend has no logs of its own. Called on the log reader's
  // thread, not the executor's driver: paging a remote log (many HTTP calls) must not hold up the
  // executor's polls and starts, so it may touch only state safe to read from any thread.
  virtual absl::StatusOr<LogPage> ReadLogs(const JobRef& job, const std::string& cursor) {
    (void)job;
    (void)cursor;
    return absl::UnimplementedError("this executor keeps no job logs of its own");
  }

  // Optional, for an executor whose calls on a started job need that job's secrets (Lepton's
  // workspace token, which evalctl may have sent only with the submit): true makes the
  // Supervisor call Adopt once for each job this evald did not start itself (it was restarted),
  // before that job's first Poll, Stop or Recover. `env` is what Start would have received.
  virtual bool AdoptsSecrets() const { return false; }
  virtual void Adopt(const JobRef& job, const std::map<std::string, std::string>& env) {
    (void)job;
    (void)env;
  }
};

}  // namespace evald::executors
