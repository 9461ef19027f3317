// File: results_reader.h
//
// Reads a finished job's artifacts/results.yml (the reference's layout) into result rows:
// every results.{tasks,groups}.<t>.metrics.<m> given as `scores.<s>.{value, stats}`, as a plain
// `value`, or as a bare number; and the marker of partial results. Called by the Supervisor when a
// job exits, and by GetResults (the marker).
//
//   EVALD_ASSIGN_OR_RETURN(std::vector<ResultRecord> rows, ReadResultsFile(path, job));
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/model.h"

namespace evald::daemon {

// NotFound when the file is missing, InvalidArgument (file:line) when it is not the expected YAML.
absl::StatusOr<std::vector<ResultRecord>> ReadResultsFile(const std::string& path,
                                                          const JobRecord& job);
absl::StatusOr<std::vector<ResultRecord>> ParseResults(const std::string& yaml_text,
                                                       const std::string& source,
                                                       const JobRecord& job);

// The top-level marker evalrun adds to the results.yml of a run that stopped before scoring
// every sample: `partial: true`, `samples_scored: N`, `samples_total: M`.
struct PartialMarker {
  bool partial = false;
  int64_t samples_scored = 0;
  int64_t samples_total = 0;  // 0 when not given
};
// No marker (or no readable file): partial false.
PartialMarker ReadPartialMarker(const std::string& path);
PartialMarker ParsePartialMarker(const std::string& yaml_text);

}  // namespace evald::daemon
