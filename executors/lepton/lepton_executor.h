// File: lepton_executor.h
//
// Runs each task as a DGX Cloud Lepton batch job over the REST API (LeptonClient), for
// `execution.type: lepton`; the model is target.api_endpoint.url (`deployment: none`) or a Lepton
// endpoint evald creates (LeptonDeployments, below).
//
// - Start: POSTs a job named `evald-<invocation>-<index>-a<attempt>` (unique per attempt, within
//   Lepton's 36 characters; also its metadata.id), running `evalrun` from a runner image (native
//   tasks) or the harness image with its command (container tasks). Before the POST it writes
//   <task dir>/lepton-job.json (name, workspace, attempt; no secrets), which Recover reads.
// - Poll: one GET /jobs per workspace per poll for all its jobs; a job missing from that list
//   (archived or deleted meanwhile) is read once by id, archive included.
// - Results: the task dir is on storage shared with the job (a mount's `local_path`), so the job
//   writes logs/stage.exit and artifacts/results.yml where evald reads them (docs/lepton.md).
// - Stop: PATCH stopped, then DELETE (idempotent). Recover: finds this attempt's job by name.
//
// The workspace token comes from the env var named by lepton_platform.api_token_env: Start's env
// (evalctl sends it when evaluation.env_vars maps it) or evald's own environment. It is only ever
// the Authorization header, never a job's env, the handle, a file or a log line.
//
// Called on its driver thread (Start/Poll/Stop/Recover) and by Submit and the read RPCs
// (Validate/Render/Describe).
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "executors/common/last_states.h"
#include "executors/executor.h"
#include "executors/lepton/lepton_client.h"
#include "executors/lepton/lepton_config.h"
#include "executors/registry.h"
#include "nlohmann/json.hpp"

namespace evald::executors {

// `evald-<invocation>-<index>-a<attempt>`; "" for a job id that is not `<inv>.<index>`.
std::string LeptonJobName(const std::string& job_id, int attempt);

// How a Lepton job state string reads to evald: the observation kind, and for finished jobs
// whether it succeeded. Unknown strings ("", "UNK", "Migrating", ...) keep the job as it was.
enum class LeptonStateClass {
  kQueued,
  kRunning,
  kCompleted,
  kFailed,
  kStopped,
  kGone,
  kArchived,
  kUnknown
};
LeptonStateClass ClassifyLeptonJobState(const std::string& state);

class LeptonExecutor;

// Model servers (`deployment.type` vllm, sglang or nim) as Lepton endpoints
// (lepton_deployments.cc): created from deployment.lepton_config with the reference's spec fields,
// named `<endpoint_name or type>-<invocation>-<index>[-<generation>]` (<= 36 characters), waited
// for until Ready and answering, deleted on stop and on failure. Start writes
// <deployment dir>/lepton-endpoint.json (name, workspace; no secrets) before its POST, which
// Recover reads. Driver thread only, except Validate and Render.
class LeptonDeployments : public DeploymentBackend {
 public:
  explicit LeptonDeployments(LeptonExecutor& executor) : executor_(executor) {}
  absl::Status Validate(const deployment::DeploymentSpec& spec) const override;
  absl::StatusOr<DeploymentStarted> Start(
      const DeploymentRef& ref, const deployment::DeploymentSpec& spec,
      const std::map<std::string, std::string>& secret_env) override;
  DeploymentObservation Poll(const DeploymentRef& ref,
                             const deployment::DeploymentSpec& spec) override;
  absl::Status Stop(const DeploymentRef& ref, const deployment::DeploymentSpec& spec) override;
  absl::StatusOr<std::optional<DeploymentStarted>> Recover(
      const DeploymentRef& ref, const deployment::DeploymentSpec& spec) override;
  absl::StatusOr<std::string> Render(const DeploymentRef& ref,
                                     const deployment::DeploymentSpec& spec) const override;
  std::vector<std::string> SecretNames(const deployment::DeploymentSpec& spec) const override;
  void Adopt(const DeploymentRef& ref, const deployment::DeploymentSpec& spec,
             const std::map<std::string, std::string>& secrets) override;
  // Endpoints named by ended deployments' handles and lepton-endpoint.json records (evald's own,
  // never others) still listed by their workspace are deleted: one GET /deployments per
  // workspace, then one DELETE per endpoint found alive.
  std::vector<std::pair<std::string, std::string>> Sweep(
      const std::vector<DeploymentRef>& ended) override;

 private:
  absl::StatusOr<DeploymentStarted> StartEndpoint(
      const DeploymentRef& ref, const deployment::DeploymentSpec& spec,
      const std::map<std::string, std::string>& secret_env);
  // Deletes the endpoint of a deployment found failed; kFailed once the delete went through,
  // else kStarting (the delete is retried at the next poll).
  DeploymentObservation Fail(const DeploymentRef& ref, const std::string& message);

  LeptonExecutor& executor_;
  // Per deployment id: a failure whose endpoint still has to be deleted; when the next look is
  // due; the last message while waiting.
  std::map<std::string, std::string> failing_;
  std::map<std::string, absl::Time> next_look_;
  std::map<std::string, std::string> last_message_;
  // Endpoints the sweep could not delete, already reported by an event.
  std::set<std::string> sweep_failed_;
};

class LeptonExecutor : public Executor {
 public:
  explicit LeptonExecutor(ExecutorContext context);

  std::string name() const override { return "lepton"; }
  absl::Status Validate(const JobSpec& spec) const override;
  absl::StatusOr<RenderedJob> Render(const JobSpec& spec) const override;
  absl::StatusOr<JobHandle> Start(const JobSpec& spec,
                                  const std::map<std::string, std::string>& env) override;
  std::vector<Observation> Poll(const std::vector<JobRef>& jobs) override;
  absl::Status Stop(const JobRef& job, absl::Duration grace) override;
  absl::StatusOr<std::optional<JobHandle>> Recover(const JobRef& job) override;
  HandleInfo Describe(const JobHandle& handle) const override;
  // After an evald restart the token evalctl sent with the submit is known again only from the
  // job's stored secrets: Adopt keeps it for the job's workspace, as Start does.
  bool AdoptsSecrets() const override { return true; }
  void Adopt(const JobRef& job, const std::map<std::string, std::string>& env) override;
  // The job's lines from Lepton's GET /logs?job=<id>, paged backward with start/end; the cursor
  // is the newest line's timestamp (ns). Any thread (the tokens are behind tokens_mu_).
  absl::StatusOr<LogPage> ReadLogs(const JobRef& job, const std::string& cursor) override;

  // The reference polls every 10 s; the API has no SLA for frequent calls (lepton-api.md).
  absl::Duration PollInterval() const override { return absl::Seconds(10); }
  absl::Duration CallTimeout() const override { return absl::Seconds(120); }

  DeploymentBackend* deployments() override { return &deployments_; }

  // Where a job's API calls go (kept in the handle and in lepton-job.json).
  struct Target {
    std::string api_url;
    std::string workspace_id;
    std::string token_env;
  };

 private:
  // The job spec Start posts; `node_group_id` "" renders the name as a placeholder (dry runs).
  absl::StatusOr<nlohmann::json> BuildJob(const JobSpec& spec, const LeptonConfig& config,
                                          const std::string& node_group_id,
                                          bool resolve_node_group) const;
  // Validate's checks on a parsed config: the job name, the script's values, images, secrets
  // and the task dir's place on the shared storage. Validate and Start (before any API call).
  absl::Status CheckJob(const JobSpec& spec, const LeptonConfig& config) const;
  // A client for `target`, or FailedPrecondition when no token is known for it.
  absl::StatusOr<lepton::LeptonClient> ClientFor(const Target& target) const;

  friend class LeptonDeployments;

  ExecutorContext context_;
  LeptonDeployments deployments_{*this};
  // Remembers the token Start, Adopt or a deployment received for `target`'s workspace.
  void RememberToken(const Target& target, const std::string& token);

  // Tokens received by workspace ("<api url> <workspace>"). Set on the driver thread, read also
  // by ReadLogs on a log reader's thread.
  mutable absl::Mutex tokens_mu_;
  std::map<std::string, std::string> tokens_ ABSL_GUARDED_BY(tokens_mu_);
  // The last raw Lepton state seen per job name, for Describe (any thread); bounded like
  // SLURM's: live jobs plus the newest kKeptFinalStates that ended.
  static constexpr size_t kKeptFinalStates = 1000;
  LastStates raw_states_{kKeptFinalStates};
  // Workspaces already warned about having no token (driver thread only).
  std::map<std::string, bool> warned_no_token_;
};

}  // namespace evald::executors
