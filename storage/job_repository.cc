#include "storage/job_repository.h"

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "storage/row_codec.h"

namespace evald::storage {
namespace {

constexpr char kJobColumns[] =
    "id, invocation_id, idx, task, harness, endpoint_type, container, state, desired, "
    "exit_reason, exit_code, message, output_dir, spec_yaml, handle_version, handle_executor, "
    "handle_state, attempt, progress_done, progress_total, progress_errors, progress_rate, "
    "progress_updated_ms, created_ms, submitted_ms, started_ms, ended_ms";

// Must match the WHERE of index jobs_active (migrations.cc) so SQLite can use it.
constexpr char kActiveJobWhere[] = "state IN ('pending', 'submitted', 'running')";

}  // namespace

std::string JobRepository::ListActiveSql() {
  return absl::StrCat("SELECT ", kJobColumns, " FROM jobs WHERE ", kActiveJobWhere,
                      " ORDER BY invocation_id, idx");
}

// Walks the active jobs (partial index jobs_active), each checked against its invocation's row:
// bounded by the jobs in flight. CROSS JOIN keeps that order; left to itself SQLite walked all
// the invocations the owner ever submitted (invocations_by_owner) instead.
std::string JobRepository::CountActiveOfOwnerSql() {
  return absl::StrCat(
      "SELECT count(*) FROM jobs j INDEXED BY jobs_active CROSS JOIN invocations i ON i.id = "
      "j.invocation_id WHERE j.",
      kActiveJobWhere, " AND i.owner = ?");
}

std::string JobRepository::ListActiveAfterSql() {
  return absl::StrCat("SELECT ", kJobColumns, " FROM jobs WHERE ", kActiveJobWhere,
                      " AND (invocation_id, idx) > (?, ?) ORDER BY invocation_id, idx LIMIT ?");
}

std::string JobRepository::ListByInvocationSql() {
  return absl::StrCat("SELECT ", kJobColumns, " FROM jobs WHERE invocation_id = ? ORDER BY idx");
}

absl::Status JobRepository::Insert(const JobRecord& r) {
  return db_.Run(absl::StrCat("insert job ", r.id), [&]() -> absl::Status {
    StatementRef s = db_.Prepare(
        absl::StrCat("INSERT INTO jobs (", kJobColumns,
                     ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"));
    s->bind(1, r.id);
    s->bind(2, r.invocation_id);
    s->bind(3, r.index);
    s->bind(4, r.task);
    s->bind(5, r.harness);
    s->bind(6, r.endpoint_type);
    s->bind(7, r.container);
    BindText(*s, 8, ToString(r.state));
    BindText(*s, 9, ToString(r.desired));
    BindText(*s, 10, ToString(r.exit_reason));
    BindOptionalInt(*s, 11, r.exit_code);
    s->bind(12, r.message);
    s->bind(13, r.output_dir);
    s->bind(14, r.spec_yaml);
    s->bind(15, r.handle.version);
    s->bind(16, r.handle.executor);
    s->bind(17, r.handle.state);
    s->bind(18, r.attempt);
    s->bind(19, r.progress_done);
    s->bind(20, r.progress_total);
    s->bind(21, r.progress_errors);
    BindDouble(*s, 22, r.progress_rate);
    s->bind(23, r.progress_updated_ms);
    s->bind(24, r.created_ms);
    s->bind(25, r.submitted_ms);
    s->bind(26, r.started_ms);
    s->bind(27, r.ended_ms);
    s->exec();
    return absl::OkStatus();
  });
}

absl::StatusOr<JobRecord> JobRepository::ReadRow(const SQLite::Statement& s) {
  JobRecord r;
  r.id = s.getColumn(0).getString();
  const std::string where = absl::StrCat(db_.path(), ": job ", r.id);
  r.invocation_id = s.getColumn(1).getString();
  r.index = s.getColumn(2).getInt();
  r.task = s.getColumn(3).getString();
  r.harness = s.getColumn(4).getString();
  r.endpoint_type = s.getColumn(5).getString();
  r.container = s.getColumn(6).getString();
  EVALD_ASSIGN_OR_RETURN(r.state, DecodeJobState(s.getColumn(7).getString(), where));
  EVALD_ASSIGN_OR_RETURN(r.desired, DecodeDesiredState(s.getColumn(8).getString(), where));
  EVALD_ASSIGN_OR_RETURN(r.exit_reason, DecodeExitReason(s.getColumn(9).getString(), where));
  r.exit_code = ColumnOptionalInt(s, 10);
  r.message = s.getColumn(11).getString();
  r.output_dir = s.getColumn(12).getString();
  r.spec_yaml = s.getColumn(13).getString();
  r.handle.version = s.getColumn(14).getInt();
  r.handle.executor = s.getColumn(15).getString();
  r.handle.state = s.getColumn(16).getString();
  r.attempt = s.getColumn(17).getInt();
  r.progress_done = s.getColumn(18).getInt64();
  r.progress_total = s.getColumn(19).getInt64();
  r.progress_errors = s.getColumn(20).getInt64();
  r.progress_rate = ColumnDouble(s, 21);
  r.progress_updated_ms = s.getColumn(22).getInt64();
  r.created_ms = s.getColumn(23).getInt64();
  r.submitted_ms = s.getColumn(24).getInt64();
  r.started_ms = s.getColumn(25).getInt64();
  r.ended_ms = s.getColumn(26).getInt64();
  return r;
}

absl::StatusOr<std::vector<JobRecord>> JobRepository::ReadAll(SQLite::Statement& s) {
  std::vector<JobRecord> out;
  while (s.executeStep()) {
    EVALD_ASSIGN_OR_RETURN(JobRecord r, ReadRow(s));
    out.push_back(std::move(r));
  }
  return out;
}

absl::StatusOr<JobRecord> JobRepository::Get(const std::string& id) {
  return db_.Run(absl::StrCat("read job ", id), [&]() -> absl::StatusOr<JobRecord> {
    StatementRef s = db_.Prepare(absl::StrCat("SELECT ", kJobColumns, " FROM jobs WHERE id = ?"));
    s->bind(1, id);
    if (!s->executeStep()) return absl::NotFoundError(absl::StrCat("no job ", id));
    return ReadRow(*s);
  });
}

absl::StatusOr<std::vector<JobRecord>> JobRepository::ListByInvocation(
    const std::string& invocation_id) {
  return db_.Run(absl::StrCat("read jobs of ", invocation_id),
                 [&]() -> absl::StatusOr<std::vector<JobRecord>> {
                   StatementRef s = db_.Prepare(ListByInvocationSql());
                   s->bind(1, invocation_id);
                   return ReadAll(*s);
                 });
}

absl::StatusOr<std::vector<JobState>> JobRepository::ListStates(const std::string& invocation_id) {
  return db_.Run(
      absl::StrCat("read job states of ", invocation_id),
      [&]() -> absl::StatusOr<std::vector<JobState>> {
        StatementRef s =
            db_.Prepare("SELECT id, state FROM jobs WHERE invocation_id = ? ORDER BY idx");
        s->bind(1, invocation_id);
        std::vector<JobState> out;
        while (s->executeStep()) {
          EVALD_ASSIGN_OR_RETURN(
              JobState st,
              DecodeJobState(s->getColumn(1).getString(),
                             absl::StrCat(db_.path(), ": job ", s->getColumn(0).getString())));
          out.push_back(st);
        }
        return out;
      });
}

absl::StatusOr<std::vector<JobRecord>> JobRepository::ListActive() {
  return db_.Run("list active jobs", [&]() -> absl::StatusOr<std::vector<JobRecord>> {
    StatementRef s = db_.Prepare(ListActiveSql());
    return ReadAll(*s);
  });
}

absl::StatusOr<int64_t> JobRepository::CountActiveOfOwner(const std::string& owner) {
  return db_.Run("count a user's active jobs", [&]() -> absl::StatusOr<int64_t> {
    StatementRef s = db_.Prepare(CountActiveOfOwnerSql());
    s->bind(1, owner);
    s->executeStep();
    return s->getColumn(0).getInt64();
  });
}

absl::StatusOr<std::vector<JobRecord>> JobRepository::ListActiveAfter(
    const std::string& after_invocation_id, int after_index, int limit) {
  return db_.Run("list active jobs", [&]() -> absl::StatusOr<std::vector<JobRecord>> {
    StatementRef s = db_.Prepare(ListActiveAfterSql());
    s->bind(1, after_invocation_id);
    s->bind(2, after_index);
    s->bind(3, limit);
    return ReadAll(*s);
  });
}

absl::Status JobRepository::Update(const JobRecord& r, JobState expected_state) {
  return db_.Run(absl::StrCat("update job ", r.id), [&]() -> absl::Status {
    StatementRef s = db_.Prepare(
        "UPDATE jobs SET state = ?, desired = ?, exit_reason = ?, exit_code = ?, message = ?, "
        "output_dir = ?, handle_version = ?, handle_executor = ?, handle_state = ?, attempt = ?, "
        "progress_done = ?, progress_total = ?, progress_errors = ?, progress_rate = ?, "
        "progress_updated_ms = ?, submitted_ms = ?, started_ms = ?, ended_ms = ? "
        "WHERE id = ? AND state = ?");
    BindText(*s, 1, ToString(r.state));
    BindText(*s, 2, ToString(r.desired));
    BindText(*s, 3, ToString(r.exit_reason));
    BindOptionalInt(*s, 4, r.exit_code);
    s->bind(5, r.message);
    s->bind(6, r.output_dir);
    s->bind(7, r.handle.version);
    s->bind(8, r.handle.executor);
    s->bind(9, r.handle.state);
    s->bind(10, r.attempt);
    s->bind(11, r.progress_done);
    s->bind(12, r.progress_total);
    s->bind(13, r.progress_errors);
    BindDouble(*s, 14, r.progress_rate);
    s->bind(15, r.progress_updated_ms);
    s->bind(16, r.submitted_ms);
    s->bind(17, r.started_ms);
    s->bind(18, r.ended_ms);
    s->bind(19, r.id);
    BindText(*s, 20, ToString(expected_state));
    if (s->exec() != 1) {
      return absl::AbortedError(
          absl::StrCat("job ", r.id, " is no longer ", ToString(expected_state)));
    }
    return absl::OkStatus();
  });
}

absl::Status JobRepository::SetDesired(const std::string& id, DesiredState desired) {
  return db_.Run(absl::StrCat("update job ", id), [&]() -> absl::Status {
    StatementRef s = db_.Prepare("UPDATE jobs SET desired = ? WHERE id = ?");
    BindText(*s, 1, ToString(desired));
    s->bind(2, id);
    if (s->exec() != 1) return absl::NotFoundError(absl::StrCat("no job ", id));
    return absl::OkStatus();
  });
}

absl::StatusOr<bool> JobRepository::UpdateProgress(const ProgressUpdate& p) {
  return db_.Run(absl::StrCat("update progress of ", p.job_id), [&]() -> absl::StatusOr<bool> {
    StatementRef s = db_.Prepare(
        "UPDATE jobs SET progress_done = ?, progress_total = ?, progress_errors = ?, "
        "progress_rate = ?, progress_updated_ms = ? WHERE id = ?");
    s->bind(1, p.done);
    s->bind(2, p.total);
    s->bind(3, p.errors);
    BindDouble(*s, 4, p.rate);
    s->bind(5, p.updated_ms);
    s->bind(6, p.job_id);
    return s->exec() == 1;
  });
}

}  // namespace evald::storage
