#include "storage/export_repository.h"

#include "absl/strings/str_cat.h"

namespace evald::storage {

absl::Status ExportRepository::Put(const JobExportRecord& r) {
  return db_.Run(absl::StrCat("put export of ", r.job_id, " to ", r.dest), [&]() -> absl::Status {
    StatementRef s = db_.Prepare(
        "INSERT OR REPLACE INTO job_exports (job_id, dest, invocation_id, state, attempts, "
        "message, run_url, created_ms, updated_ms, next_attempt_ms) "
        "VALUES (?,?,?,?,?,?,?,?,?,?)");
    s->bind(1, r.job_id);
    s->bind(2, r.dest);
    s->bind(3, r.invocation_id);
    s->bind(4, r.state);
    s->bind(5, r.attempts);
    s->bind(6, r.message);
    s->bind(7, r.run_url);
    s->bind(8, r.created_ms);
    s->bind(9, r.updated_ms);
    s->bind(10, r.next_attempt_ms);
    s->exec();
    return absl::OkStatus();
  });
}

namespace {

constexpr char kExportColumns[] =
    "SELECT job_id, dest, invocation_id, state, attempts, message, run_url, created_ms, "
    "updated_ms, next_attempt_ms FROM job_exports ";

std::vector<JobExportRecord> ReadRows(SQLite::Statement& s) {
  std::vector<JobExportRecord> out;
  while (s.executeStep()) {
    JobExportRecord r;
    r.job_id = s.getColumn(0).getString();
    r.dest = s.getColumn(1).getString();
    r.invocation_id = s.getColumn(2).getString();
    r.state = s.getColumn(3).getString();
    r.attempts = s.getColumn(4).getInt();
    r.message = s.getColumn(5).getString();
    r.run_url = s.getColumn(6).getString();
    r.created_ms = s.getColumn(7).getInt64();
    r.updated_ms = s.getColumn(8).getInt64();
    r.next_attempt_ms = s.getColumn(9).getInt64();
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace

absl::StatusOr<std::vector<JobExportRecord>> ExportRepository::ListByInvocation(
    const std::string& invocation_id) {
  return db_.Run(absl::StrCat("list exports of ", invocation_id),
                 [&]() -> absl::StatusOr<std::vector<JobExportRecord>> {
                   StatementRef s = db_.Prepare(absl::StrCat(
                       kExportColumns, "WHERE invocation_id = ? ORDER BY job_id, dest"));
                   s->bind(1, invocation_id);
                   return ReadRows(*s);
                 });
}

absl::StatusOr<std::vector<JobExportRecord>> ExportRepository::ListDue(int64_t now_ms) {
  return db_.Run("list due exports", [&]() -> absl::StatusOr<std::vector<JobExportRecord>> {
    StatementRef s = db_.Prepare(
        absl::StrCat(kExportColumns,
                     "WHERE state = 'pending' AND next_attempt_ms <= ? ORDER BY next_attempt_ms"));
    s->bind(1, now_ms);
    return ReadRows(*s);
  });
}

}  // namespace evald::storage
