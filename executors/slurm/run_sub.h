// File: run_sub.h
//
// The SLURM executor's job script, run.sub, as text: the reference's layout (peer-launcher §3.2:
// #SBATCH headers, one srun step for the evaluation, pyxis --container-image/--container-mounts
// for harness containers) with evald's job contract (docs/design/job-contract.md: stage files,
// stdout.log/stderr.log, the job's exit code is the evaluation's). Secret values never appear: the
// script sources a 0600 secrets.env next to it, written at submission. Pure: no I/O.
//
// Quoting: every value is a ShellQuote'd word (core/shell.h). #SBATCH lines are read by sbatch,
// not bash; sbatch accepts the same '...' and \' forms, and the values that could mean something
// else to it (control characters, backslashes) are refused by ParseSlurmConfig / here.
//
// Callers: SlurmExecutor::Render (dry runs), later Start; tests/executors/slurm.
//
//   EVALD_ASSIGN_OR_RETURN(SlurmConfig config, ParseSlurmConfig(spec.execution_yaml));
//   EVALD_ASSIGN_OR_RETURN(RenderedJob job, RenderRunSub(spec, config, {.runner_path =
//   "evalrun"}));
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "core/deployment/deployment_spec.h"
#include "executors/executor.h"
#include "executors/slurm/slurm_config.h"

namespace evald::executors {

struct RunSubOptions {
  // Native tasks: the evalrun binary as the compute node sees it (inside `runner_image` when
  // that is set).
  std::string runner_path = "evalrun";
  // Native tasks: run evalrun in this container image (a pyxis step with the task dir mounted at
  // its own path, so the plan and the outputs resolve), or "" to run it on the node.
  std::string runner_image;
  // A model server to run inside the job (an `srun --overlap` step started before the
  // evaluation, a health-wait loop with the spec's readiness timeout, stopped at the end), or
  // nullptr. SlurmExecutor passes the server of JobSpec::deployment_yaml.
  const deployment::DeploymentSpec* deployment = nullptr;
};

// The secrets file the script sources, relative to the task dir: the evaluation's env_vars and
// the server's secret_env_vars, NAME=<quoted value> lines.
inline constexpr char kSlurmSecretsFile[] = "secrets.env";
// Where the script writes why it failed on its own (the model server never got healthy, ...),
// relative to the task dir; one line, shown in the job's message.
inline constexpr char kSlurmErrorFile[] = "logs/stage.error";

// The job name evald gives attempt `attempt` of job `job_id`: "evald-<job id>-a<attempt>" with
// every byte outside [A-Za-z0-9_.-] replaced by '-' (found again by Recover, never a secret).
std::string SlurmJobName(const std::string& job_id, int attempt);

// run.sub for `spec`; InvalidArgument naming the value when it cannot be rendered safely.
absl::StatusOr<RenderedJob> RenderRunSub(const JobSpec& spec, const SlurmConfig& config,
                                         const RunSubOptions& options);

}  // namespace evald::executors
