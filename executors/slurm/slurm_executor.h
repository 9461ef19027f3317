// File: slurm_executor.h
//
// The SLURM backend (issue 10), first piece: configs are parsed and every task's run.sub is
// rendered (`evalctl submit --dry-run` shows them), but nothing is submitted yet: Start refuses
// with FailedPrecondition. Validate cannot tell a dry run from a real submit (ServerCore::Submit
// validates both the same way), so refusing there would also refuse dry runs. Poll observes
// nothing, Stop and Recover are no-ops, and there are no deployments yet (Submit refuses SLURM
// configs with a deployment). Registered in builtin_executors.cc.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "executors/executor.h"
#include "executors/registry.h"

namespace evald::executors {

// What a SLURM job handle holds (JobHandle::state as JSON, version 1): the cluster and SLURM job
// id.
struct SlurmHandleState {
  std::string hostname;  // "" = this machine
  std::string slurm_job_id;
  std::string task_dir;
};
JobHandle EncodeSlurmHandle(const SlurmHandleState& state);
std::optional<SlurmHandleState> DecodeSlurmHandle(const JobHandle& handle);

class SlurmExecutor : public Executor {
 public:
  explicit SlurmExecutor(ExecutorContext context);

  std::string name() const override { return "slurm"; }
  absl::Status Validate(const JobSpec& spec) const override;
  absl::StatusOr<RenderedJob> Render(const JobSpec& spec) const override;
  absl::StatusOr<JobHandle> Start(const JobSpec& spec,
                                  const std::map<std::string, std::string>& env) override;
  std::vector<Observation> Poll(const std::vector<JobRef>& jobs) override;
  absl::Status Stop(const JobRef& job, absl::Duration grace) override;
  absl::StatusOr<std::optional<JobHandle>> Recover(const JobRef& job) override;
  HandleInfo Describe(const JobHandle& handle) const override;
  // A cluster is polled every few seconds, not every supervisor tick.
  absl::Duration PollInterval() const override { return absl::Seconds(30); }

 private:
  ExecutorContext context_;
};

}  // namespace evald::executors
