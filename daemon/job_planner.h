// File: job_planner.h
//
// Turns an invocation's composed config into what executors run: the run dir and task dir names,
// and one executors::JobSpec per job (the runner plan for native tasks, the eval-factory command
// for container tasks, the env-var mapping, the executor's section). Jobs are planned once, at
// Submit: the spec is stored with the job (JobRecord::spec_yaml, secret values masked) and the
// Supervisor starts every attempt from it (SpecForStart), without reading the config again. Jobs
// stored by an evald that did not store specs are planned from their invocation's config (parsed
// once and cached).
//
// Callers: ServerCore::Submit (planning, validation, dry runs) and the Supervisor (starts).
// Thread-safe.
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
#include "core/deployment/deployment_spec.h"
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

  // The job's environment: each env_vars destination gets the value of its source secret, and so
  // does each secret variable of a server that runs inside the job (JobSpec::deployment_yaml).
  // FailedPrecondition naming the variable when a value is missing.
  static absl::StatusOr<std::map<std::string, std::string>> JobEnvironment(
      const executors::JobSpec& spec, const std::map<std::string, std::string>& secrets);

  // The stored form of a planned job: JSON, with the secret values in `secrets` masked
  // (`<secret:NAME>`, core/redact.h) field by field.
  static std::string EncodeSpec(const executors::JobSpec& spec,
                                const std::map<std::string, std::string>& secrets);
  static absl::StatusOr<executors::JobSpec> DecodeSpec(const std::string& text);

  // The spec to start `job`'s next attempt with: its stored plan with the masked secret values
  // put back and, with a model server, the server's port filled in (`${EVALD_PORT}`, known only
  // once the server runs). A job stored without a plan is planned from its invocation's config.
  // A model server's stored plan (DeploymentRecord::spec_yaml): the config's deployment and
  // execution sections, secret values masked.
  static std::string EncodeDeploymentSpec(const config::RunConfig& rc,
                                          const std::map<std::string, std::string>& secrets);
  // The spec of a stored model server, from its stored plan (parsed once and cached by deployment
  // id; masked values put back from the invocation's secrets); a deployment stored without one
  // is planned from its invocation's config.
  absl::StatusOr<deployment::DeploymentSpec> DeploymentSpecFor(const InvocationRecord& invocation,
                                                               const DeploymentRecord& record);

  absl::StatusOr<executors::JobSpec> SpecForStart(const InvocationRecord& invocation,
                                                  const JobRecord& job,
                                                  const DeploymentRecord* deployment,
                                                  const std::map<std::string, std::string>& secrets);

 private:
  const config::TaskCatalog* catalog_;
  std::string eval_binary_;
  config::ExecutorJobEnv executor_env_;
  SecretSource secrets_;
  absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<const config::RunConfig>> cache_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, deployment::DeploymentSpec> deployments_ ABSL_GUARDED_BY(mu_);
};

}  // namespace evald::daemon
