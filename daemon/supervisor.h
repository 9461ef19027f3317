// File: supervisor.h
//
// The one reconcile loop of evald. Users (through RPCs) only change *desired* state in the
// database; the Supervisor compares it with what the executors observe and acts:
//   - observes started jobs through their executor (one batched Poll per executor) and records
//     transitions (submitted -> running -> succeeded | failed | killed | lost), progress and, for
//     succeeded jobs, the metrics of results.yml;
//   - stops jobs whose desired state is stop (SIGTERM, then SIGKILL after the grace period);
//   - starts pending jobs (all at once, or one at a time in sequential mode), re-attaching to a job
//     an earlier evald started but did not get to record.
// It runs on its own thread, every `tick` and whenever Wake() is called (submit, kill, resume, a
// backend call finishing, and an executor seeing a job end). It decides on its thread and records
// every transition there, but never waits for a backend: each executor's calls run on that
// executor's ExecutorDriver thread and their results are applied at a later pass, so a slow or hung
// backend delays only its own jobs. Each executor is polled at its own interval (a wake from the
// executor polls it at once). Everything it knows is in the database, so a restarted evald
// continues exactly where the previous one stopped.
//
//   Supervisor sup(store, registry, planner, hub, {.tick = absl::Seconds(1)});
//   sup.Start();  ...  sup.Wake();  ...  sup.Stop();
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/model.h"
#include "daemon/auto_exporter.h"
#include "daemon/executor_driver.h"
#include "daemon/job_planner.h"
#include "daemon/metrics.h"
#include "daemon/watch_hub.h"
#include "executors/registry.h"
#include "storage/store.h"

namespace evald::daemon {

class Supervisor {
 public:
  struct Options {
    absl::Duration tick = absl::Seconds(1);
    absl::Duration stop_grace = absl::Seconds(30);
    int max_running_jobs = 0;  // 0 = no limit
    // Shortest time between the starts of two passes: wakes that arrive sooner are served by one
    // pass, so a burst of submits costs a few scans of the active jobs, not one scan each.
    absl::Duration min_pass_interval = absl::Milliseconds(50);
    // Asked right before each job or model server start; an error refuses the start (logged, the
    // job stays pending). main() checks that this evald still holds its state dir lock.
    std::function<absl::Status()> may_start;
    // Poll interval per executor name, overriding Executor::PollInterval().
    std::map<std::string, absl::Duration> poll_intervals;
    // Pass times, backend call times and errors, job durations (optional).
    Metrics* metrics = nullptr;
    // Called on the loop thread at the end of each pass of the loop (not of ReconcileOnce calls
    // from tests): the systemd watchdog is fed from here (systemd_notify.h).
    std::function<void()> on_pass_done;
    // Retries and backoff of auto-export (auto_exporter.h).
    AutoExporter::Options auto_export;
    // How often the model servers of deployments that ended (within `sweep_window`) are looked
    // for and removed when still alive (DeploymentBackend::Sweep); the first pass always sweeps.
    absl::Duration sweep_interval = absl::Minutes(5);
    absl::Duration sweep_window = absl::Hours(24 * 7);
  };

  Supervisor(storage::Store* store, executors::ExecutorRegistry* registry, JobPlanner* planner,
             WatchHub* hub, Options options);
  ~Supervisor();

  void Start();
  // Finishes the pass in progress and joins the thread. Running jobs are not touched, nor are
  // deployments, except those configured with `stop_on_evald_shutdown`, which are stopped here
  // (SIGTERM, SIGKILL after at most a few seconds).
  void Stop();
  void Wake();

  // One reconcile pass on the caller's thread (tests; the loop calls it too). It applies the
  // results of backend calls that finished since the last pass and queues new calls.
  void ReconcileOnce();
  // Tests without the loop thread: passes until no backend call is queued or running, or `max`.
  // True when everything settled.
  bool Settle(absl::Duration max);
  // No backend call queued or running (tests, benchmarks).
  bool Idle() const;

  // A job's log lines as its executor keeps them (Executor::ReadLogs), read on the calling
  // thread so a long read never holds up the executor's driver; Unimplemented when the executor
  // keeps none. Any thread.
  absl::StatusOr<executors::LogPage> ReadJobLogs(const std::string& executor, const JobRecord& job,
                                                 const std::string& cursor);

 private:
  // One executor as the Supervisor drives it.
  struct Backend {
    std::unique_ptr<ExecutorDriver> driver;
    bool adopts_secrets = false;  // Executor::AdoptsSecrets
    absl::Duration poll_interval;
    absl::Time next_poll = absl::InfinitePast();
    bool poll_in_flight = false;
    std::string stall_reported;  // the call last reported as over its timeout
  };

  void Loop();
  Backend* BackendFor(const std::string& executor);
  // Runs the results of finished backend calls (on this thread).
  void ApplyResults();
  void ReportStalls();
  void PollStarted(std::vector<JobRecord>& jobs);
  void OnPolled(const std::string& executor, std::vector<executors::Observation> observations,
                const std::map<std::string, std::string>& polled_handles);
  void OnStarted(const std::string& job_id, int attempt, absl::StatusOr<JobHandle> handle);
  void OnRecovered(const std::string& job_id, int attempt,
                   absl::StatusOr<std::optional<JobHandle>> found);
  // Before the first backend call on a job this evald did not start: hands the executor the
  // job's secrets when it asks for them (Executor::AdoptsSecrets). Once per job.
  void EnsureAdopted(const JobRecord& job, Backend& backend);
  // Queues Recover for a job marked starting by an earlier evald (no handle stored).
  void QueueRecover(const JobRecord& job);
  bool NeedsRecover(const JobRecord& job) const;
  JobRecord* PassJob(const std::string& job_id);
  void RecordProgress(const JobRecord& job, const executors::Observation& obs,
                      std::vector<storage::ProgressUpdate>& progress);
  void ApplyObservation(JobRecord& job, const executors::Observation& obs);
  void StopRequested(std::vector<JobRecord>& jobs);
  // Starts pending jobs up to max_running_jobs, taking turns between owners (the one with the
  // fewest jobs started goes next, oldest job first) so one user's burst cannot hold the queue.
  void StartPending(std::vector<JobRecord>& jobs,
                    const std::map<std::string, DeploymentRecord>& deployments);
  void StartJob(JobRecord& job, const DeploymentRecord* deployment);
  // Starts, observes and stops model servers; returns the active deployments by id.
  std::map<std::string, DeploymentRecord> ReconcileDeployments(std::vector<JobRecord>& jobs);
  void ReconcileDeployment(DeploymentRecord& d, const storage::InvocationView& view,
                           std::vector<JobRecord>& jobs);
  void OnDeploymentStarted(DeploymentRecord d,
                           absl::StatusOr<std::optional<executors::DeploymentStarted>> started,
                           bool recovered);
  void OnDeploymentPolled(DeploymentRecord d, executors::DeploymentObservation obs);
  bool TransitionDeployment(DeploymentRecord& d, DeploymentTransition t);
  // Fails the pending jobs a failed deployment was to serve.
  void FailServedJobs(const DeploymentRecord& d, std::vector<JobRecord>& jobs);
  void StopDeploymentsForShutdown();
  // Hands the deployments that ended to each backend's Sweep, once per sweep_interval; records
  // an event for each server it found alive.
  void SweepEndedDeployments();
  // Applies a transition, publishes its events, updates `job` on success. False if refused.
  bool Transition(JobRecord& job, JobTransition t);
  // Stores the job's results.yml; `expected` (a job that succeeded) logs a missing or bad file.
  // A failed or stopped job may have scored part of its samples: those are kept too, silently
  // absent otherwise (GetResults marks them partial).
  void ImportResults(const JobRecord& job, bool expected);
  // Sets (or clears) every registered executor's wake hook: a wake polls that executor now.
  void SetWakeCallbacks(bool set);
  void PollSoon(const std::string& executor);
  // options_.may_start, logging a refusal at error level once per distinct reason.
  bool MayStart(const std::string& what);

  storage::Store* store_;
  executors::ExecutorRegistry* registry_;
  JobPlanner* planner_;
  WatchHub* hub_;
  Options options_;

  absl::Mutex mu_;
  bool wake_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::set<std::string> poll_now_ ABSL_GUARDED_BY(mu_);  // executors that asked to be polled
  std::thread thread_;
  std::map<std::string, Backend> backends_;  // by executor name; built once
  // Only the pass in progress (on the loop thread, or a test's) touches these.
  std::vector<JobRecord>* pass_jobs_ = nullptr;
  std::map<std::string, JobRecord*> pass_index_;
  std::set<std::string> starting_;           // job ids with Start or Recover queued
  std::map<std::string, int> recover_done_;  // job id -> attempt Recover found never started
  std::set<std::string> stop_sent_;
  std::set<std::string> adopted_;  // job ids whose executor has their secrets (or needs none)
  // What StartPending needs of an invocation, read once per invocation while it has active jobs.
  struct StartFacts {
    std::string owner;
    bool sequential = false;
  };
  std::map<std::string, StartFacts> start_facts_;
  std::set<std::string> deployment_busy_;  // deployment ids with a backend call queued
  // Deployment ids whose backend has the secrets it asked for (DeploymentBackend::SecretNames).
  std::set<std::string> deployment_adopted_;
  std::string refused_why_;
  absl::Time next_sweep_ = absl::InfinitePast();
  int sweeps_in_flight_ = 0;
  // Exports succeeded jobs on its own thread (execution.auto_export).
  AutoExporter exporter_;
};

// What an evalrun exit code means, for event messages (docs/design/job-contract.md).
std::string DescribeExitCode(int code);

}  // namespace evald::daemon
