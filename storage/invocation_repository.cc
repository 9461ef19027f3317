#include "storage/invocation_repository.h"

#include <algorithm>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/ids.h"
#include "core/status_macros.h"
#include "nlohmann/json.hpp"
#include "storage/row_codec.h"

namespace evald::storage {
namespace {

constexpr char kInvocationColumns[] =
    "id, executor, state, desired, config_yaml, run_dir, mode, tasks, secret_names, client, "
    "created_ms, updated_ms, ended_ms, owner";
constexpr char kTokenPrefix[] = "v1:";

}  // namespace

absl::Status InvocationRepository::Insert(const InvocationRecord& r) {
  EVALD_ASSIGN_OR_RETURN(std::string tasks, EncodeStringList(r.tasks, "tasks"));
  EVALD_ASSIGN_OR_RETURN(std::string names, EncodeStringList(r.secret_names, "secret_names"));
  return db_.Run(absl::StrCat("insert invocation ", r.id), [&]() -> absl::Status {
    StatementRef s = db_.Prepare(absl::StrCat("INSERT INTO invocations (", kInvocationColumns,
                                              ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)"));
    s->bind(1, r.id);
    s->bind(2, r.executor);
    BindText(*s, 3, ToString(r.state));
    BindText(*s, 4, ToString(r.desired));
    s->bind(5, r.config_yaml);
    s->bind(6, r.run_dir);
    s->bind(7, r.mode);
    s->bind(8, tasks);
    s->bind(9, names);
    s->bind(10, r.client);
    s->bind(11, r.created_ms);
    s->bind(12, r.updated_ms);
    s->bind(13, r.ended_ms);
    s->bind(14, r.owner);
    s->exec();
    StatementRef t = db_.Prepare(
        "INSERT OR IGNORE INTO invocation_tasks (task, task_created_ms, invocation_id) "
        "VALUES (?,?,?)");
    for (const std::string& task : r.tasks) {
      t->reset();
      t->bind(1, task);
      t->bind(2, r.created_ms);
      t->bind(3, r.id);
      t->exec();
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<InvocationRecord> InvocationRepository::ReadRow(const SQLite::Statement& s) {
  InvocationRecord r;
  r.id = s.getColumn(0).getString();
  const std::string where = absl::StrCat(db_.path(), ": invocation ", r.id);
  r.executor = s.getColumn(1).getString();
  EVALD_ASSIGN_OR_RETURN(r.state, DecodeJobState(s.getColumn(2).getString(), where));
  EVALD_ASSIGN_OR_RETURN(r.desired, DecodeDesiredState(s.getColumn(3).getString(), where));
  r.config_yaml = s.getColumn(4).getString();
  r.run_dir = s.getColumn(5).getString();
  r.mode = s.getColumn(6).getString();
  EVALD_ASSIGN_OR_RETURN(r.tasks,
                         DecodeStringList(s.getColumn(7).getString(), where + " column tasks"));
  EVALD_ASSIGN_OR_RETURN(
      r.secret_names, DecodeStringList(s.getColumn(8).getString(), where + " column secret_names"));
  r.client = s.getColumn(9).getString();
  r.created_ms = s.getColumn(10).getInt64();
  r.updated_ms = s.getColumn(11).getInt64();
  r.ended_ms = s.getColumn(12).getInt64();
  r.owner = s.getColumn(13).getString();
  return r;
}

absl::StatusOr<InvocationRecord> InvocationRepository::Get(const std::string& id) {
  return db_.Run(absl::StrCat("read invocation ", id), [&]() -> absl::StatusOr<InvocationRecord> {
    StatementRef s =
        db_.Prepare(absl::StrCat("SELECT ", kInvocationColumns, " FROM invocations WHERE id = ?"));
    s->bind(1, id);
    if (!s->executeStep()) return absl::NotFoundError(absl::StrCat("no invocation ", id));
    return ReadRow(*s);
  });
}

absl::StatusOr<bool> InvocationRepository::Exists(const std::string& id) {
  return db_.Run(absl::StrCat("look up invocation ", id), [&]() -> absl::StatusOr<bool> {
    StatementRef s = db_.Prepare("SELECT 1 FROM invocations WHERE id = ?");
    s->bind(1, id);
    return s->executeStep();
  });
}

absl::Status InvocationRepository::UpdateState(const std::string& id, JobState state,
                                               int64_t updated_ms, int64_t ended_ms) {
  return db_.Run(absl::StrCat("update invocation ", id), [&]() -> absl::Status {
    StatementRef s =
        db_.Prepare("UPDATE invocations SET state = ?, updated_ms = ?, ended_ms = ? WHERE id = ?");
    BindText(*s, 1, ToString(state));
    s->bind(2, updated_ms);
    s->bind(3, ended_ms);
    s->bind(4, id);
    if (s->exec() != 1) return absl::NotFoundError(absl::StrCat("no invocation ", id));
    return absl::OkStatus();
  });
}

absl::Status InvocationRepository::SetDesired(const std::string& id, DesiredState desired,
                                              int64_t updated_ms) {
  return db_.Run(absl::StrCat("update invocation ", id), [&]() -> absl::Status {
    StatementRef s = db_.Prepare("UPDATE invocations SET desired = ?, updated_ms = ? WHERE id = ?");
    BindText(*s, 1, ToString(desired));
    s->bind(2, updated_ms);
    s->bind(3, id);
    if (s->exec() != 1) return absl::NotFoundError(absl::StrCat("no invocation ", id));
    return absl::OkStatus();
  });
}

absl::Status InvocationRepository::Touch(const std::string& id, int64_t updated_ms) {
  return db_.Run(absl::StrCat("update invocation ", id), [&]() -> absl::Status {
    StatementRef s = db_.Prepare("UPDATE invocations SET updated_ms = ? WHERE id = ?");
    s->bind(1, updated_ms);
    s->bind(2, id);
    if (s->exec() != 1) return absl::NotFoundError(absl::StrCat("no invocation ", id));
    return absl::OkStatus();
  });
}

std::string InvocationRepository::EncodePageToken(int64_t created_ms, const std::string& id) {
  return absl::WebSafeBase64Escape(absl::StrCat(kTokenPrefix, created_ms, ":", id));
}

absl::Status InvocationRepository::DecodePageToken(const std::string& token, int64_t* created_ms,
                                                   std::string* id) {
  const absl::Status bad = absl::InvalidArgumentError(
      "malformed page token: pass the next_page_token of a previous ListInvocations reply "
      "unchanged");
  std::string raw;
  if (!absl::WebSafeBase64Unescape(token, &raw)) return bad;
  if (!absl::StartsWith(raw, kTokenPrefix)) return bad;
  std::vector<std::string> parts = absl::StrSplit(raw.substr(sizeof(kTokenPrefix) - 1), ':');
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], created_ms) ||
      !IsValidInvocationId(parts[1])) {
    return bad;
  }
  *id = parts[1];
  return absl::OkStatus();
}

std::string InvocationRepository::ListSql(const InvocationFilter& filter) {
  // One SQL text per filter combination, so each can use its own index (see storage.md).
  std::vector<std::string> where;
  if (filter.state.has_value()) where.push_back("state = :state");
  if (!filter.executor.empty()) where.push_back("executor = :executor COLLATE NOCASE");
  if (!filter.owner.empty()) where.push_back("owner = :owner");
  if (filter.since_ms > 0) where.push_back("created_ms >= :since");
  // No index: rows are walked newest first until a page is full (docs/design/storage.md).
  if (!filter.id_contains.empty()) where.push_back("instr(id, :id_contains) > 0");
  const char* order = "created_ms DESC, id DESC";
  std::string from = "invocations";
  if (!filter.task.empty()) {
    // invocation_tasks leads, in its own (task, created, id) order; CROSS JOIN keeps it first.
    from =
        "invocation_tasks CROSS JOIN invocations ON invocations.id = "
        "invocation_tasks.invocation_id";
    where.push_back("task = :task");
    if (!filter.page_token.empty()) {
      where.push_back("(task_created_ms, invocation_id) < (:after_created, :after_id)");
    }
    order = "task_created_ms DESC, invocation_id DESC";
  } else if (!filter.page_token.empty()) {
    where.push_back("(created_ms, id) < (:after_created, :after_id)");
  }
  return absl::StrCat("SELECT ", kInvocationColumns,
                      ", (SELECT count(*) FROM jobs j WHERE j.invocation_id = invocations.id)"
                      " FROM ",
                      from, where.empty() ? "" : " WHERE ", absl::StrJoin(where, " AND "),
                      " ORDER BY ", order, " LIMIT :limit");
}

absl::StatusOr<InvocationPage> InvocationRepository::List(const InvocationFilter& filter) {
  if (filter.limit < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("limit must be >= 0 (0 = default ", kDefaultLimit, "), got ", filter.limit));
  }
  const int limit = filter.limit == 0 ? kDefaultLimit : std::min(filter.limit, kMaxLimit);
  int64_t after_created = 0;
  std::string after_id;
  const bool has_token = !filter.page_token.empty();
  if (has_token)
    EVALD_RETURN_IF_ERROR(DecodePageToken(filter.page_token, &after_created, &after_id));

  const std::string sql = ListSql(filter);

  return db_.Run("list invocations", [&]() -> absl::StatusOr<InvocationPage> {
    StatementRef s = db_.Prepare(sql);
    if (filter.state.has_value()) s->bind(":state", std::string(ToString(*filter.state)));
    if (!filter.executor.empty()) s->bind(":executor", filter.executor);
    if (!filter.owner.empty()) s->bind(":owner", filter.owner);
    if (filter.since_ms > 0) s->bind(":since", filter.since_ms);
    if (!filter.task.empty()) s->bind(":task", filter.task);
    if (!filter.id_contains.empty()) s->bind(":id_contains", filter.id_contains);
    if (has_token) {
      s->bind(":after_created", after_created);
      s->bind(":after_id", after_id);
    }
    // One extra row tells whether another page follows.
    s->bind(":limit", limit + 1);
    InvocationPage page;
    while (s->executeStep()) {
      if (static_cast<int>(page.invocations.size()) == limit) {
        const InvocationRecord& last = page.invocations.back();
        page.next_page_token = EncodePageToken(last.created_ms, last.id);
        break;
      }
      EVALD_ASSIGN_OR_RETURN(InvocationRecord r, ReadRow(*s));
      page.invocations.push_back(std::move(r));
      page.job_counts.push_back(s->getColumn(14).getInt());
    }
    return page;
  });
}

absl::StatusOr<int64_t> InvocationRepository::Count() {
  return db_.Run("count invocations", [&]() -> absl::StatusOr<int64_t> {
    StatementRef s = db_.Prepare("SELECT count(*) FROM invocations");
    s->executeStep();
    return s->getColumn(0).getInt64();
  });
}

}  // namespace evald::storage
