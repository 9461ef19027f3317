// File: job_planner.h
//
// Turns an invocation's composed config into what executors run: the run dir and task dir names,
// and one executors::JobSpec per job (the runner plan for native tasks, the eval-factory command
// for container tasks, the env-var mapping). The stored config of an invocation is parsed once and
// cached, so the Supervisor can re-derive a job's spec at start time (after a restart too) exactly
// as Submit derived it.
//
// Callers: ServerCore::Submit (validation, dry runs) and the Supervisor (starts). Thread-safe.
//
//   EVALD_ASSIGN_OR_RETURN(auto rc, planner.RunConfigFor(invocation));
//   EVALD_ASSIGN_OR_RETURN(JobSpec spec, planner.BuildSpec(*rc, rc->tasks[0], job, endpoint));
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/config/job_plan.h"
#include "core/config/run_config.h"
#include "core/config/task_catalog.h"
#include "core/model.h"
#include "executors/executor.h"

namespace evald::daemon {

class JobPlanner {
 public:
  JobPlanner(const config::TaskCatalog* catalog, std::string eval_binary,
             config::ExecutorJobEnv executor_env = nullptr);

  // "<YYYYmmdd_HHMMSS>-<invocation>" in local time, as the reference names run dirs.
  static std::string RunDirName(absl::Time created, const std::string& invocation_id);
  // One task dir name per selected task: the task name ('/' replaced), `<name>-<index>` for a
  // repeated name.
  static std::vector<std::string> TaskDirNames(const config::RunConfig& rc);

  // Where RunConfigFor gets an invocation's secret values: the stored config has them masked
  // (`<secret:NAME>`, core/redact.h). Set once, before any RunConfigFor.
  using SecretSource = std::function<absl::StatusOr<std::map<std::string, std::string>>(
      const std::string& invocation_id)>;
  void SetSecretSource(SecretSource source) { secrets_ = std::move(source); }

  // The parsed config of a stored invocation, masked secret values put back (cached by id; not
  // cached while a masked value cannot be put back, e.g. after the invocation's secrets were
  // deleted).
  absl::StatusOr<std::shared_ptr<const config::RunConfig>> RunConfigFor(
      const InvocationRecord& invocation);
  void Forget(const std::string& invocation_id);

  // The task of a job (by the job's index in evaluation.tasks).
  static absl::StatusOr<const config::TaskSpec*> TaskForJob(const config::RunConfig& rc,
                                                            int index);

  // A job's spec against a known endpoint.
  absl::StatusOr<executors::JobSpec> BuildSpec(const config::RunConfig& rc,
                                               const config::TaskSpec& task,
                                               const JobRecord& job,
                                               const config::EndpointSpec& endpoint) const;

  // The job's environment: each env_vars destination gets the value of its source secret.
  // FailedPrecondition naming the variable when a value is missing.
  static absl::StatusOr<std::map<std::string, std::string>> JobEnvironment(
      const config::TaskSpec& task, const std::map<std::string, std::string>& secrets);

 private:
  const config::TaskCatalog* catalog_;
  std::string eval_binary_;
  config::ExecutorJobEnv executor_env_;
  SecretSource secrets_;
  absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<const config::RunConfig>> cache_ ABSL_GUARDED_BY(mu_);
};

}  // namespace evald::daemon
