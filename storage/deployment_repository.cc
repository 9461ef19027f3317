#include "storage/deployment_repository.h"

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "storage/row_codec.h"

namespace evald::storage {
namespace {

constexpr char kDeploymentColumns[] =
    "id, invocation_id, job_id, type, state, desired, spec_yaml, command, url, health_url, port, "
    "handle_version, handle_executor, handle_state, log_path, message, created_ms, started_ms, "
    "healthy_ms, ended_ms";

// Must match the WHERE of index deployments_active (migrations.cc) so SQLite can use it.
constexpr char kActiveDeploymentWhere[] = "state IN ('pending', 'starting', 'healthy', 'stopping')";

}  // namespace

std::string DeploymentRepository::ListActiveSql() {
  return absl::StrCat("SELECT ", kDeploymentColumns, " FROM deployments WHERE ",
                      kActiveDeploymentWhere, " ORDER BY invocation_id, rowid");
}

absl::Status DeploymentRepository::Insert(const DeploymentRecord& r) {
  return db_.Run(absl::StrCat("insert deployment ", r.id), [&]() -> absl::Status {
    StatementRef s =
        db_.Prepare(absl::StrCat("INSERT INTO deployments (", kDeploymentColumns,
                                 ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"));
    s->bind(1, r.id);
    s->bind(2, r.invocation_id);
    s->bind(3, r.job_id);
    s->bind(4, r.type);
    BindText(*s, 5, ToString(r.state));
    BindText(*s, 6, ToString(r.desired));
    s->bind(7, r.spec_yaml);
    s->bind(8, r.command);
    s->bind(9, r.url);
    s->bind(10, r.health_url);
    s->bind(11, r.port);
    s->bind(12, r.handle.version);
    s->bind(13, r.handle.executor);
    s->bind(14, r.handle.state);
    s->bind(15, r.log_path);
    s->bind(16, r.message);
    s->bind(17, r.created_ms);
    s->bind(18, r.started_ms);
    s->bind(19, r.healthy_ms);
    s->bind(20, r.ended_ms);
    s->exec();
    return absl::OkStatus();
  });
}

absl::StatusOr<DeploymentRecord> DeploymentRepository::ReadRow(const SQLite::Statement& s) {
  DeploymentRecord r;
  r.id = s.getColumn(0).getString();
  const std::string where = absl::StrCat(db_.path(), ": deployment ", r.id);
  r.invocation_id = s.getColumn(1).getString();
  r.job_id = s.getColumn(2).getString();
  r.type = s.getColumn(3).getString();
  EVALD_ASSIGN_OR_RETURN(r.state, DecodeDeploymentState(s.getColumn(4).getString(), where));
  EVALD_ASSIGN_OR_RETURN(r.desired, DecodeDesiredState(s.getColumn(5).getString(), where));
  r.spec_yaml = s.getColumn(6).getString();
  r.command = s.getColumn(7).getString();
  r.url = s.getColumn(8).getString();
  r.health_url = s.getColumn(9).getString();
  r.port = s.getColumn(10).getInt();
  r.handle.version = s.getColumn(11).getInt();
  r.handle.executor = s.getColumn(12).getString();
  r.handle.state = s.getColumn(13).getString();
  r.log_path = s.getColumn(14).getString();
  r.message = s.getColumn(15).getString();
  r.created_ms = s.getColumn(16).getInt64();
  r.started_ms = s.getColumn(17).getInt64();
  r.healthy_ms = s.getColumn(18).getInt64();
  r.ended_ms = s.getColumn(19).getInt64();
  return r;
}

absl::StatusOr<std::vector<DeploymentRecord>> DeploymentRepository::ReadAll(SQLite::Statement& s) {
  std::vector<DeploymentRecord> out;
  while (s.executeStep()) {
    EVALD_ASSIGN_OR_RETURN(DeploymentRecord r, ReadRow(s));
    out.push_back(std::move(r));
  }
  return out;
}

absl::StatusOr<DeploymentRecord> DeploymentRepository::Get(const std::string& id) {
  return db_.Run(absl::StrCat("read deployment ", id), [&]() -> absl::StatusOr<DeploymentRecord> {
    StatementRef s =
        db_.Prepare(absl::StrCat("SELECT ", kDeploymentColumns, " FROM deployments WHERE id = ?"));
    s->bind(1, id);
    if (!s->executeStep()) return absl::NotFoundError(absl::StrCat("no deployment ", id));
    return ReadRow(*s);
  });
}

absl::StatusOr<std::vector<DeploymentRecord>> DeploymentRepository::ListByInvocation(
    const std::string& invocation_id) {
  return db_.Run(absl::StrCat("read deployments of ", invocation_id),
                 [&]() -> absl::StatusOr<std::vector<DeploymentRecord>> {
                   StatementRef s = db_.Prepare(
                       absl::StrCat("SELECT ", kDeploymentColumns,
                                    " FROM deployments WHERE invocation_id = ? ORDER BY rowid"));
                   s->bind(1, invocation_id);
                   return ReadAll(*s);
                 });
}

absl::StatusOr<std::vector<DeploymentRecord>> DeploymentRepository::ListActive() {
  return db_.Run("list active deployments", [&]() -> absl::StatusOr<std::vector<DeploymentRecord>> {
    StatementRef s = db_.Prepare(ListActiveSql());
    return ReadAll(*s);
  });
}

absl::StatusOr<std::vector<DeploymentRecord>> DeploymentRepository::ListEnded(
    int64_t ended_since_ms) {
  return db_.Run("list ended deployments", [&]() -> absl::StatusOr<std::vector<DeploymentRecord>> {
    StatementRef s = db_.Prepare(absl::StrCat("SELECT ", kDeploymentColumns,
                                              " FROM deployments WHERE state IN ('stopped', "
                                              "'failed') AND ended_ms >= ? ORDER BY ended_ms"));
    s->bind(1, static_cast<int64_t>(ended_since_ms));
    return ReadAll(*s);
  });
}

absl::Status DeploymentRepository::Update(const DeploymentRecord& r,
                                          DeploymentState expected_state) {
  return db_.Run(absl::StrCat("update deployment ", r.id), [&]() -> absl::Status {
    StatementRef s = db_.Prepare(
        "UPDATE deployments SET state = ?, desired = ?, command = ?, url = ?, health_url = ?, "
        "port = ?, handle_version = ?, handle_executor = ?, handle_state = ?, log_path = ?, "
        "message = ?, started_ms = ?, healthy_ms = ?, ended_ms = ? WHERE id = ? AND state = ?");
    BindText(*s, 1, ToString(r.state));
    BindText(*s, 2, ToString(r.desired));
    s->bind(3, r.command);
    s->bind(4, r.url);
    s->bind(5, r.health_url);
    s->bind(6, r.port);
    s->bind(7, r.handle.version);
    s->bind(8, r.handle.executor);
    s->bind(9, r.handle.state);
    s->bind(10, r.log_path);
    s->bind(11, r.message);
    s->bind(12, r.started_ms);
    s->bind(13, r.healthy_ms);
    s->bind(14, r.ended_ms);
    s->bind(15, r.id);
    BindText(*s, 16, ToString(expected_state));
    if (s->exec() != 1) {
      return absl::AbortedError(
          absl::StrCat("deployment ", r.id, " is no longer ", ToString(expected_state)));
    }
    return absl::OkStatus();
  });
}

absl::Status DeploymentRepository::SetDesired(const std::string& id, DesiredState desired) {
  return db_.Run(absl::StrCat("update deployment ", id), [&]() -> absl::Status {
    StatementRef s = db_.Prepare("UPDATE deployments SET desired = ? WHERE id = ?");
    BindText(*s, 1, ToString(desired));
    s->bind(2, id);
    if (s->exec() != 1) return absl::NotFoundError(absl::StrCat("no deployment ", id));
    return absl::OkStatus();
  });
}

}  // namespace evald::storage
