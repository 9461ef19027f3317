// File: job_repository.h
//
// The `jobs` table: one row per task of an invocation, holding observed state, desired state,
// exit reason, the executor's opaque handle, attempt counter and live progress. Pure data access:
// Store decides what a transition writes and adds the events in the same transaction.
//
// Callers: Store only, holding its mutex, usually inside Database::InTransaction.
//
//   JobRepository jobs(db);
//   EVALD_ASSIGN_OR_RETURN(JobRecord job, jobs.Get("3f9a0c1e.0"));
//   job.state = JobState::kRunning;
//   EVALD_RETURN_IF_ERROR(jobs.Update(job, /*expected_state=*/JobState::kSubmitted));
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/model.h"
#include "storage/database.h"
#include "storage/store.h"

namespace evald::storage {

class JobRepository {
 public:
  explicit JobRepository(Database& db) : db_(db) {}

  // AlreadyExists for a taken id or (invocation, index); InvalidArgument for an unknown
  // invocation (foreign key).
  absl::Status Insert(const JobRecord& r);
  // NotFound when there is no such job.
  absl::StatusOr<JobRecord> Get(const std::string& id);
  // Ordered by index.
  absl::StatusOr<std::vector<JobRecord>> ListByInvocation(const std::string& invocation_id);
  absl::StatusOr<std::vector<JobState>> ListStates(const std::string& invocation_id);
  // Not terminal; by invocation, then index.
  absl::StatusOr<std::vector<JobRecord>> ListActive();
  // The same list in pages: at most `limit` jobs after (after_invocation_id, after_index).
  absl::StatusOr<std::vector<JobRecord>> ListActiveAfter(const std::string& after_invocation_id,
                                                         int after_index, int limit);

  // Jobs not terminal (pending, submitted, running) in invocations owned by `owner`: the per-user
  // limit of the team server (daemon/submit_policy.h).
  absl::StatusOr<int64_t> CountActiveOfOwner(const std::string& owner);

  // Writes every mutable field of r (state, desired, exit, message, output dir, handle, attempt,
  // progress, timestamps) if the row is still in `expected_state`; Aborted otherwise.
  absl::Status Update(const JobRecord& r, JobState expected_state);
  absl::Status SetDesired(const std::string& id, DesiredState desired);
  // False when the job does not exist.
  absl::StatusOr<bool> UpdateProgress(const ProgressUpdate& p);

  // The SELECTs behind ListActive(After) and ListByInvocation (tests check their query plans).
  static std::string ListActiveSql();
  static std::string ListActiveAfterSql();
  static std::string ListByInvocationSql();
  static std::string CountActiveOfOwnerSql();

 private:
  absl::StatusOr<JobRecord> ReadRow(const SQLite::Statement& stmt);
  absl::StatusOr<std::vector<JobRecord>> ReadAll(SQLite::Statement& stmt);

  Database& db_;
};

}  // namespace evald::storage
