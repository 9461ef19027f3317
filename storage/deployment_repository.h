// File: deployment_repository.h
//
// The `deployments` table: model servers evald starts for an invocation (shared) or for one job.
// Pure data access; Store::TransitionDeployment decides what a transition writes and adds its
// event in the same transaction.
//
// Callers: Store only, holding its mutex, usually inside Database::InTransaction.
//
//   DeploymentRepository deployments(db);
//   EVALD_ASSIGN_OR_RETURN(DeploymentRecord d, deployments.Get("3f9a0c1e.d0"));
//   d.state = DeploymentState::kHealthy;
//   EVALD_RETURN_IF_ERROR(deployments.Update(d, DeploymentState::kStarting));
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/model.h"
#include "storage/database.h"

namespace evald::storage {

class DeploymentRepository {
 public:
  explicit DeploymentRepository(Database& db) : db_(db) {}

  absl::Status Insert(const DeploymentRecord& r);
  // NotFound when there is no such deployment.
  absl::StatusOr<DeploymentRecord> Get(const std::string& id);
  // In insertion order (the order CreateInvocation received them).
  absl::StatusOr<std::vector<DeploymentRecord>> ListByInvocation(const std::string& invocation_id);
  // Not terminal; by invocation, then insertion order.
  absl::StatusOr<std::vector<DeploymentRecord>> ListActive();
  // Stopped or failed at `ended_since_ms` or later, oldest first.
  absl::StatusOr<std::vector<DeploymentRecord>> ListEnded(int64_t ended_since_ms);
  // Writes every mutable field of r if the row is still in `expected_state`; Aborted otherwise.
  absl::Status Update(const DeploymentRecord& r, DeploymentState expected_state);
  absl::Status SetDesired(const std::string& id, DesiredState desired);

  // The SELECT behind ListActive (tests check its query plan).
  static std::string ListActiveSql();

 private:
  absl::StatusOr<DeploymentRecord> ReadRow(const SQLite::Statement& stmt);
  absl::StatusOr<std::vector<DeploymentRecord>> ReadAll(SQLite::Statement& stmt);

  Database& db_;
};

}  // namespace evald::storage
