// File: job_spec_check.h
//
// The checks every job-script renderer runs on a JobSpec before rendering it: each value the
// script shows must be quotable (CheckShellValue) and each env_vars name a portable variable
// name (CheckEnvName), with the same error words across backends. Backend-specific values
// (runner path, container runtime, #SBATCH line rules) stay with their renderer.
//
// Callers: executors/local/run_script.cc (run.sh), executors/slurm/run_sub.cc (run.sub).
//
//   EVALD_RETURN_IF_ERROR(CheckJobSpecForScript(spec));
#pragma once

#include "absl/status/status.h"
#include "executors/executor.h"

namespace evald::executors {

// InvalidArgument naming the field ("task name contains a NUL byte ...", "task 'x': env_vars:
// 'A-B' is not a valid environment variable name ...") for the first value of job id, task
// name, task directory, task image, container command or an env_vars name that a script cannot
// carry; OK otherwise.
absl::Status CheckJobSpecForScript(const JobSpec& spec);

}  // namespace evald::executors
