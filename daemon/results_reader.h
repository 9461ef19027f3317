// File: results_reader.h
//
// Reads a finished job's artifacts/results.yml (the reference's layout) into result rows:
// every results.{tasks,groups}.<t>.metrics.<m> given as `scores.<s>.{value, stats}`, as a plain
// `value`, or as a bare number. Called by the Supervisor when a job succeeds.
//
//   EVALD_ASSIGN_OR_RETURN(std::vector<ResultRecord> rows, ReadResultsFile(path, job));
#pragma once

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

}  // namespace evald::daemon
