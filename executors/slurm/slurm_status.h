// File: slurm_status.h
//
// What SLURM says about jobs, as text in and Observations out: the commands the SLURM executor
// runs for status (one batched `squeue` for live jobs, one `sacct` for jobs that left the queue),
// the parsing of their output, and the mapping of SLURM job states onto evald's observations.
// Pure: no I/O. Callers: SlurmExecutor::Poll and Recover; tests/executors/slurm.
//
//   std::map<std::string, SlurmJobStatus> q = ParseSqueue(result.out);
//   Observation obs = ObservationFor(q.at("42"));
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "executors/executor.h"

namespace evald::executors {

struct SlurmJobStatus {
  std::string id;
  std::string name;
  std::string state;             // first word: "CANCELLED by 0" -> CANCELLED
  std::string reason;            // squeue's %r ("Resources", "None", ...); empty from sacct
  std::optional<int> exit_code;  // sacct's ExitCode code:signal as one code (128+signal)
};

// `squeue -h -t all -j <ids> -o '%i|%T|%r|%j'` for these ids (shell text, quoted).
std::string SqueueCommand(const std::vector<std::string>& ids);
// sacct for jobs that left the queue: slurmdbd's accounting when the site has it, else the jobcomp
// file (`sacct -c`), one line per job `id|name|state|exitcode`.
std::string SacctCommand(const std::vector<std::string>& ids);
// squeue then sacct for the jobs named `name` (Recover; jobcomp is filtered by name here).
std::string FindByNameCommand(const std::string& name);

// squeue's exit code 1 with "Invalid job id" on stderr means none of the ids is queued any more:
// an answer, not a failure.
bool SqueueKnowsNone(int exit_code, const std::string& err);

// Lines "id|state|reason|name" (other lines, e.g. a login banner, are skipped) by job id.
std::map<std::string, SlurmJobStatus> ParseSqueue(const std::string& text);
// Lines "id|name|state|exitcode"; a later line for the same id wins (the jobcomp file keeps
// every run of an id, e.g. after a cold start of slurmctld reused ids). Step lines ("12.batch")
// are skipped.
std::map<std::string, std::vector<SlurmJobStatus>> ParseSacct(const std::string& text);

// True for states after which the job will not run again (COMPLETED, FAILED, CANCELLED, ...).
bool IsFinalSlurmState(const std::string& state);

// The observation for one status (job_id left empty): PENDING/CONFIGURING -> submitted,
// RUNNING/COMPLETING -> running, COMPLETED -> exited 0, FAILED -> exited with its code (1 when
// unknown), CANCELLED/TIMEOUT/PREEMPTED/NODE_FAIL/OUT_OF_MEMORY/BOOT_FAIL/DEADLINE -> exited
// non-zero. The message carries the raw state and reason ("SLURM job 42 PENDING (Resources)").
Observation ObservationFor(const SlurmJobStatus& status);

// "PENDING (Resources)", "RUNNING", "FAILED (exit code 3)".
std::string DescribeSlurmStatus(const SlurmJobStatus& status);

}  // namespace evald::executors
