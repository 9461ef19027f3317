// File: slurm_resume.h
//
// Auto-resume of SLURM jobs (issue 10): when an attempt's SLURM job ends TIMEOUT, PREEMPTED or
// NODE_FAIL, the SLURM executor resubmits the same run.sub (same job name) and the evaluation goes
// on from evalrun's response cache in the task dir. This file holds the pure part: the chain of
// SLURM job ids of one attempt with its budget (`execution.max_resumes`, `execution.max_walltime`),
// its JSON form (`<task dir>/.slurm_chain.json`, written by Start, so Poll, Stop and Describe
// follow the newest id across evald restarts: the stored JobHandle cannot change after Start),
// and the decision whether a job that ended may be resumed. Callers: SlurmExecutor;
// tests/executors/slurm/slurm_resume_test.cc.
//
//   ResumeDecision d = DecideResume(chain, "TIMEOUT");
//   if (d.resume) { ...sbatch run.sub, chain.ids.push_back(id)... } else { obs.message +=
//   d.message; }
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace evald::executors {

// The chain file next to run.sub.
inline constexpr char kSlurmChainFile[] = ".slurm_chain.json";

struct SlurmChain {
  int attempt = 0;
  std::vector<std::string> ids;  // oldest first; the last one is the job to poll
  int max_resumes = 0;
  int64_t walltime_s = 0;                 // each job's --time
  std::optional<int64_t> max_walltime_s;  // total across the chain; unset = unbounded
  // Set while a resubmission is in flight: if its answer was lost (or evald died), the next try
  // first looks for the new job by name instead of submitting again.
  bool resubmitting = false;
  // Set by Stop: a cancelled chain is never resumed, whatever state its last job ends in.
  bool stopped = false;
  // The last resume's message ("resumed after TIMEOUT as SLURM job 57 (resume 1 of 3)"), for
  // `evalctl info`: the Supervisor keeps no message of a running job.
  std::string last_resume;

  int resumes() const { return ids.empty() ? 0 : static_cast<int>(ids.size()) - 1; }
  // "55 -> 57"
  std::string Text() const;
};

std::string EncodeSlurmChain(const SlurmChain& chain);
// nullopt when `text` is not a chain file (missing, damaged).
std::optional<SlurmChain> DecodeSlurmChain(absl::string_view text);

// Seconds of a SLURM time: "minutes", "minutes:seconds", "hours:minutes:seconds", "days-hours",
// "days-hours:minutes", "days-hours:minutes:seconds". InvalidArgument otherwise.
absl::StatusOr<int64_t> SlurmTimeSeconds(absl::string_view text);
// 3725 -> "01:02:05", 90061 -> "1-01:01:01".
std::string FormatSlurmTime(int64_t seconds);

// TIMEOUT, PREEMPTED and NODE_FAIL: the job did not fail on its own, running it again may finish.
bool IsResumableSlurmState(const std::string& state);

struct ResumeDecision {
  bool resume = false;
  // Why not, for the job's message ("TIMEOUT; max_resumes 2 reached"); empty when resuming or
  // when `state` is not resumable at all.
  std::string message;
};
// Whether the chain's newest job, ended in `state`, gets a successor. The walltime budget counts
// every job of the chain at its full --time (a preempted job may have used less; SLURM's own
// accounting is not always there): a resume is allowed while (jobs + 1) * walltime fits in
// max_walltime, so the chain never runs past it.
ResumeDecision DecideResume(const SlurmChain& chain, const std::string& state);

// "resumed after TIMEOUT as SLURM job 57 (resume 1 of 3)"; `chain` already holds the new id.
std::string ResumedMessage(const SlurmChain& chain, const std::string& state);

}  // namespace evald::executors
