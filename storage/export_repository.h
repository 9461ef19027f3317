// File: export_repository.h
//
// The `job_exports` table: the auto-export state of one job to one destination (pending, then
// succeeded or failed), its attempts, the last message and the MLflow run URL. Rows are written
// by the AutoExporter (daemon/auto_exporter.h) through the Store and shown by GetInvocation.
//
// Callers: Store only, holding its mutex.
#pragma once

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
  // By job id then destination; `invocation_id` empty: every invocation's; `pending_only`: the
  // rows still to attempt.
  absl::StatusOr<std::vector<JobExportRecord>> List(const std::string& invocation_id,
                                                    bool pending_only);

 private:
  Database& db_;
};

}  // namespace evald::storage
