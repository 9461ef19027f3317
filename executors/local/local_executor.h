// File: local_executor.h
//
// Runs jobs as processes on this machine. Each job is `bash <task_dir>/run.sh` in its own session;
// run.sh runs evalrun (native tasks) or the harness container with docker/podman, and writes the
// reference launcher's stage files, the authoritative exit code included (see
// docs/design/job-contract.md). The handle is {pid, kernel start time}, so after an evald restart
// the job is found again and a recycled pid is never mistaken for it.
//
// Called on its driver thread (Start/Poll/Stop/Recover, deployments) and by Submit and the read
// RPCs (Validate/Render/Describe).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/time/time.h"
#include "executors/local/local_launch.h"
#include "core/deployment/readiness.h"
#include "executors/executor.h"
#include "executors/local/exit_watcher.h"
#include "executors/registry.h"

namespace evald::executors {

class LocalExecutor;

// The local executor's model servers (local_deployments.cc): each one `bash -c <launch command>`
// in its own session, probed on its health URL, stopped as a process group.
class LocalDeployments : public DeploymentBackend {
 public:
  explicit LocalDeployments(const LocalExecutor& executor) : executor_(executor) {}
  absl::Status Validate(const deployment::DeploymentSpec& spec) const override;
  absl::StatusOr<DeploymentStarted> Start(
      const DeploymentRef& ref, const deployment::DeploymentSpec& spec,
      const std::map<std::string, std::string>& secret_env) override;
  DeploymentObservation Poll(const DeploymentRef& ref,
                             const deployment::DeploymentSpec& spec) override;
  absl::Status Stop(const DeploymentRef& ref, const deployment::DeploymentSpec& spec) override;
  absl::StatusOr<std::optional<DeploymentStarted>> Recover(
      const DeploymentRef& ref, const deployment::DeploymentSpec& spec) override;

 private:
  // `probe`: ask the container engines (Start, on the executor's thread) or only read what is
  // known (Validate, on Submit's threads).
  deployment::LaunchEnvironment LaunchEnvironment(bool probe) const;

  const LocalExecutor& executor_;
  // Servers asked to stop, with the time after which the whole process group gets SIGKILL (and a
  // container is removed).
  std::map<std::string, absl::Time> kill_deadlines_;
  // Readiness of deployments being started, by deployment id.
  std::map<std::string, deployment::HealthWaiter> waiters_;
};

class LocalExecutor : public Executor {
 public:
  explicit LocalExecutor(ExecutorContext context);

  std::string name() const override { return "local"; }
  absl::Status Validate(const JobSpec& spec) const override;
  absl::StatusOr<RenderedJob> Render(const JobSpec& spec) const override;
  absl::StatusOr<JobHandle> Start(const JobSpec& spec,
                                  const std::map<std::string, std::string>& env) override;
  std::vector<Observation> Poll(const std::vector<JobRef>& jobs) override;
  absl::Status Stop(const JobRef& job, absl::Duration grace) override;
  absl::StatusOr<std::optional<JobHandle>> Recover(const JobRef& job) override;
  // Called when a job's process exits (a pidfd per started or observed live job).
  void SetWakeCallback(std::function<void()> wake) override;

  HandleInfo Describe(const JobHandle& handle) const override;
  DeploymentBackend* deployments() override { return &deployments_; }

  // The configured runtime, else docker or podman, the first on PATH that answers `info`
  // (container_runtime.h); "" when none. Without `probe`, only what is already known: the last
  // probe's answer, else the first on PATH (Submit's threads never wait on an engine).
  std::string ContainerRuntime(bool probe = true) const;
  // FailedPrecondition naming the task when it runs in a container and ContainerRuntime() is "".
  absl::Status CheckContainerRuntime(const JobSpec& spec) const;

 private:
  ExecutorContext context_;
  LocalDeployments deployments_{*this};
  // Jobs asked to stop, with the time after which the whole process group gets SIGKILL.
  std::map<std::string, absl::Time> kill_deadlines_;
  // Watches the job processes, so an exit wakes the Supervisor at once.
  std::unique_ptr<ExitWatcher> exits_;
};

// First executable named `name` on PATH (or `name` itself when it contains a '/'); "" if none.
std::string FindOnPath(const std::string& name);

}  // namespace evald::executors
