// File: export_repository.h
//
// The `job_exports` table: the auto-export state of one job to one destination (pending, then
// succeeded or failed), its attempts, the last message and the MLflow run URL. Rows are written
// by the AutoExporter (daemon/auto_exporter.h) through the Store and shown by GetInvocation.
//
// Callers: Store only, holding its mutex.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "storage/database.h"
#include "storage/store.h"

namespace evald::storage {

class ExportRepository {
 public:
  explicit ExportRepository(Database& db) : db_(db) {}

  // Inserts the row, or replaces the one of the same (job_id, dest).
  absl::Status Put(const JobExportRecord& r);
  // One invocation's rows, by job id then destination (index job_exports_by_invocation).
  absl::StatusOr<std::vector<JobExportRecord>> ListByInvocation(const std::string& invocation_id);
  // The pending rows whose next attempt is due at `now_ms`, oldest first (the partial index
  // job_exports_pending: neither query scans the table, which keeps every export ever made).
  absl::StatusOr<std::vector<JobExportRecord>> ListDue(int64_t now_ms);

 private:
  Database& db_;
};

}  // namespace evald::storage
