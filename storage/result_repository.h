// File: result_repository.h
//
// The `results` table: one row per metric score of a finished job, as read from its
// artifacts/results.yml. A job's rows are replaced as a whole (a resumed job's new results win).
// NaN values (common for stderr) round-trip: they are stored as NULL.
//
// Callers: Store only, holding its mutex, inside Database::InTransaction.
//
//   ResultRepository results(db);
//   EVALD_RETURN_IF_ERROR(results.ReplaceForJob("3f9a0c1e.0", "3f9a0c1e", rows));
//   EVALD_ASSIGN_OR_RETURN(auto all, results.ListByInvocation("3f9a0c1e"));
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/model.h"
#include "storage/database.h"

namespace evald::storage {

class ResultRepository {
 public:
  explicit ResultRepository(Database& db) : db_(db) {}

  // Deletes the job's rows and inserts `results` in order, with job_id/invocation_id as given.
  absl::Status ReplaceForJob(const std::string& job_id, const std::string& invocation_id,
                             const std::vector<ResultRecord>& results);
  // In the order they were put.
  absl::StatusOr<std::vector<ResultRecord>> ListByJob(const std::string& job_id);
  // By job index, then put order.
  absl::StatusOr<std::vector<ResultRecord>> ListByInvocation(const std::string& invocation_id);

 private:
  Database& db_;
};

}  // namespace evald::storage
