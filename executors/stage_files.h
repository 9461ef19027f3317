// File: stage_files.h
//
// Reading what a job script leaves in its task dir (docs/design/job-contract.md): the exit code
// in logs/stage.exit ("<ISO time> <code>"; an unparsable file means failed, as the reference) and
// the counters in artifacts/progress.json. One reading of the contract for every backend whose
// task dir evald can read (local disk, storage shared with the job).
//
// Callers: the local and Lepton executors' Poll.
//
//   Observation obs{.job_id = ref.job_id};
//   ReadProgress(ref.task_dir, obs);
//   std::optional<int> code = ReadStageExit(ref.task_dir);  // nullopt: not ended yet
#pragma once

#include <optional>
#include <string>

#include "executors/executor.h"

namespace evald::executors {

// The code in <task_dir>/logs/stage.exit; nullopt when the file is absent or empty, 1 when it
// cannot be parsed.
std::optional<int> ReadStageExit(const std::string& task_dir);

// Sets obs.has_progress and the counters from <task_dir>/artifacts/progress.json; leaves `obs`
// as it is when the file is absent or not a JSON object.
void ReadProgress(const std::string& task_dir, Observation& obs);

}  // namespace evald::executors
