// File: slurm_executor.h
//
// The SLURM backend (issue 10) for `deployment: none`: Start renders run.sub, writes the job dir,
// copies it to the cluster (same absolute task dir there, under execution.output_dir), writes the
// secrets as a 0600 secrets.env through stdin and runs `sbatch --parsable`, locally or over one
// multiplexed ssh connection per cluster (slurm_cluster.h). Poll asks one batched `squeue` per
// cluster, and `sacct` (slurmdbd, else the jobcomp file) only for jobs that left the queue or
// failed; a final job's artifacts/ and logs/ are fetched back before it is reported exited. Stop
// is scancel; Recover finds an attempt's job by its job name. A job that ends TIMEOUT,
// PREEMPTED or NODE_FAIL is resubmitted within its budget (slurm_resume.h), the chain of ids in
// the task dir. A config's model server runs inside each job (DeploysInJob: an srun step of
// run.sub, from JobSpec::deployment_yaml; its secrets go to secrets.env too). Native tasks find
// evalrun as execution.runner says: a path on the cluster, a container image, or evald's own
// evalrun copied once per cluster (checksummed) to <output_dir>/.evald-runner/. Registered in
// builtin_executors.cc.
#pragma once

#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "executors/common/last_states.h"
#include "executors/executor.h"
#include "executors/registry.h"
#include "executors/slurm/slurm_cluster.h"
#include "executors/slurm/slurm_config.h"
#include "executors/slurm/slurm_resume.h"
#include "executors/slurm/slurm_status.h"

namespace evald::executors {

// What a SLURM job handle holds (JobHandle::state as JSON, version 1): how to reach the cluster,
// the SLURM job id and the job's task dir on the cluster.
struct SlurmHandleState {
  std::string hostname;  // "" = this machine
  std::string username;
  std::string ssh_config_file;
  std::string slurm_job_id;
  std::string task_dir;
  ClusterTarget target() const { return {hostname, username, ssh_config_file}; }
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
  // The model server is an srun step of each job's run.sub (peer-launcher §3.2).
  bool DeploysInJob() const override { return true; }
  // A cluster is polled every few seconds, not every supervisor tick.
  absl::Duration PollInterval() const override { return absl::Seconds(30); }
  // A poll may fetch the results of several finished jobs over ssh.
  absl::Duration CallTimeout() const override { return absl::Minutes(3); }
  // Ended jobs whose results one remote command fetches (the tar stream is held in memory).
  static constexpr size_t kFetchBatch = 20;

 private:
  // evalrun as run.sub runs it (execution.runner resolved).
  struct Runner {
    std::string path = "evalrun";  // on the compute node, or inside `image`
    std::string image;             // runner.image, or ""
    std::string upload_from;       // runner.upload: evald's evalrun, copied to `path`; or ""
    std::string sha256;            // of upload_from
  };
  // `checksum` false (Validate, at Submit): the upload path's shape only, the runner not read.
  absl::StatusOr<Runner> ResolveRunner(const JobSpec& spec, const SlurmConfig& config,
                                       bool checksum) const;
  absl::StatusOr<RenderedJob> RenderWith(const JobSpec& spec, bool checksum) const;
  // sha256 of evald's evalrun (context_.runner_path), computed again only when its size or mtime
  // changed; FailedPrecondition naming execution.runner when it is not a file.
  absl::StatusOr<std::string> RunnerSha256() const;
  // Copies an upload runner to the cluster unless this executor has seen it there already
  // (driver thread).
  absl::Status InstallRunner(SlurmCluster& cluster, const Runner& runner);

  struct Live {
    const JobRef* ref;
    SlurmHandleState handle;  // slurm_job_id: the newest job of the chain
    std::optional<SlurmChain> chain;
  };
  void PollCluster(const ClusterTarget& target, const std::vector<Live>& jobs,
                   std::vector<Observation>& out);
  // Resubmits run.sub for `job`, whose newest SLURM job ended in resumable `state`, and records
  // the new id in the chain file. The observation says "resumed ..."; Unavailable when the
  // cluster did not answer (tried again at the next poll).
  absl::StatusOr<Observation> Resume(SlurmCluster& cluster, const Live& job, SlurmChain chain,
                                     const std::string& state);
  // Reads artifacts/progress.json of running jobs (one remote command for all of them).
  void ReadProgress(SlurmCluster& cluster, const std::vector<std::pair<Live, Observation*>>& jobs);
  // `final`: the job's last state; the newest kKeptFinalStates of those are kept, so memory is
  // bounded by the live jobs plus that many, however many jobs an evald runs over its life.
  void RememberState(const SlurmHandleState& h, const std::string& state, bool final = false);
  static constexpr size_t kKeptFinalStates = 1000;

  ExecutorContext context_;
  ClusterPool pool_;
  // Upload runners known to be on a cluster (checked or copied): cluster key -> remote paths.
  std::map<std::string, std::set<std::string>> installed_;
  struct RunnerDigest {
    std::string path;
    int64_t size = 0;
    int64_t mtime_ns = 0;
    std::string sha256;
  };
  mutable absl::Mutex digest_mu_;  // Validate/Render run on gRPC threads
  mutable std::optional<RunnerDigest> digest_ ABSL_GUARDED_BY(digest_mu_);
  std::map<std::string, int> misses_;  // job id -> polls that found its SLURM job nowhere
  // The last raw SLURM state per cluster and SLURM job id, for Describe (gRPC threads).
  LastStates raw_state_{kKeptFinalStates};
};

}  // namespace evald::executors
