// File: database.h
//
// One SQLite connection to evald's database file, opened the way evald needs it: folder created,
// journal_mode=WAL (verified), synchronous=NORMAL, foreign_keys=ON, secure_delete=ON, a busy
// timeout, the schema migrated to the latest version (migrations.h), and WAL checkpoints moved to
// a background thread (checkpointer.h). Also the helpers every
// repository uses: cached prepared statements and Run/InTransaction, which turn exceptions into
// absl::Status (sqlite_status.h).
//
// Callers: Store (which serializes all use with its mutex) and the repositories it creates. A
// Database is NOT thread-safe.
//
//   EVALD_ASSIGN_OR_RETURN(std::unique_ptr<Database> db, Database::Open(path, 5000));
//   absl::Status s = db->InTransaction("create invocation x", [&]() -> absl::Status {
//     db->Prepare("INSERT INTO ...")->exec();
//     return absl::OkStatus();
//   });
#pragma once

#include <SQLiteCpp/Column.h>
#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <SQLiteCpp/Transaction.h>
#include <sqlite3.h>

#include <memory>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "storage/checkpointer.h"
#include "storage/sqlite_status.h"

namespace evald::storage {

// A prepared statement borrowed from Database's cache. Reset when the borrow ends, so a finished
// SELECT never keeps a read transaction (and thus the WAL) pinned.
class StatementRef {
 public:
  StatementRef(SQLite::Statement* stmt, bool* in_use) : stmt_(stmt), in_use_(in_use) {}
  explicit StatementRef(std::unique_ptr<SQLite::Statement> owned)
      : stmt_(owned.get()), owned_(std::move(owned)) {}
  StatementRef(StatementRef&& other) noexcept;
  StatementRef(const StatementRef&) = delete;
  StatementRef& operator=(const StatementRef&) = delete;
  StatementRef& operator=(StatementRef&&) = delete;
  ~StatementRef();

  SQLite::Statement* operator->() const { return stmt_; }
  SQLite::Statement& operator*() const { return *stmt_; }

 private:
  SQLite::Statement* stmt_ = nullptr;
  bool* in_use_ = nullptr;
  std::unique_ptr<SQLite::Statement> owned_;
};

class Database {
 public:
  // Opens (creating if needed) the database at `path` and migrates it. Errors:
  // FailedPrecondition (folder not creatable, file read-only, schema newer than this build, not an
  // evald database), DataLoss (corrupt or not SQLite), Unavailable (busy). A failed open never
  // modifies an existing file.
  static absl::StatusOr<std::unique_ptr<Database>> Open(const std::string& path,
                                                        int busy_timeout_ms);

  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;
  ~Database();

  const std::string& path() const { return path_; }
  int schema_version() const { return schema_version_; }
  SQLite::Database& sqlite() { return *db_; }
  const Checkpointer& checkpointer() const { return *checkpointer_; }

  // WAL size (pages) at which a commit checkpoints inline, in case the background checkpointer
  // cannot keep up or keeps failing: the WAL stays bounded.
  static constexpr int kInlineCheckpointPages = 16000;

  // A cached prepared statement for `sql` (prepared on first use). May throw SQLite::Exception,
  // so call it inside Run/InTransaction. Bind every parameter on each use.
  StatementRef Prepare(const std::string& sql);

  // Runs fn() with exceptions mapped to Status; `what` names the operation in error messages.
  template <typename Fn>
  auto Run(absl::string_view what, Fn&& fn) -> decltype(fn()) {
    return GuardSqlite(path_, what, std::forward<Fn>(fn));
  }

  // Runs fn() inside BEGIN IMMEDIATE ... COMMIT. Commits only when fn() returns OK; any error
  // (returned or thrown) rolls everything back.
  template <typename Fn>
  auto InTransaction(absl::string_view what, Fn&& fn) -> decltype(fn()) {
    return Transact(SQLite::TransactionBehavior::IMMEDIATE, what, std::forward<Fn>(fn));
  }

  // Runs fn() inside a read transaction (BEGIN DEFERRED), so several SELECTs see one snapshot.
  template <typename Fn>
  auto InReadTransaction(absl::string_view what, Fn&& fn) -> decltype(fn()) {
    return Transact(SQLite::TransactionBehavior::DEFERRED, what, std::forward<Fn>(fn));
  }

  // Runs fn() inside SAVEPOINT ... RELEASE, within the transaction of an InTransaction call: an
  // error (returned or thrown) undoes fn()'s changes only. After an error, check
  // InOpenTransaction(): some errors (I/O, disk full, busy) make SQLite roll back the whole
  // transaction, and then nothing before fn() is kept either.
  template <typename Fn>
  auto InSavepoint(absl::string_view what, Fn&& fn) -> decltype(fn()) {
    auto result = GuardSqlite(path_, what, [&]() -> decltype(fn()) {
      db_->exec("SAVEPOINT evald_item");
      auto r = fn();
      if (r.ok()) db_->exec("RELEASE evald_item");
      return r;
    });
    if (!result.ok()) RollbackSavepoint();
    return result;
  }

  // True while a transaction is open on the connection.
  bool InOpenTransaction() noexcept;

 private:
  Database(std::string path, std::unique_ptr<SQLite::Database> db);

  absl::Status Configure(int busy_timeout_ms);
  absl::Status CheckIsEvaldDatabase();
  absl::Status Migrate();
  static int WalHook(void* self, sqlite3* db, const char* name, int wal_pages);

  // After a failed COMMIT or ROLLBACK the connection can stay inside a transaction; end it so the
  // next operation can begin a new one.
  void EnsureNoOpenTransaction() noexcept;
  // Undoes a failed InSavepoint; if that fails, rolls back the whole transaction so the caller
  // sees it gone (InOpenTransaction() false) rather than a half-undone item.
  void RollbackSavepoint() noexcept;

  template <typename Fn>
  auto Transact(SQLite::TransactionBehavior behavior, absl::string_view what, Fn&& fn)
      -> decltype(fn()) {
    auto result = GuardSqlite(path_, what, [&]() -> decltype(fn()) {
      SQLite::Transaction txn(*db_, behavior);
      auto r = fn();
      if (r.ok()) txn.commit();
      return r;
    });
    if (!result.ok()) EnsureNoOpenTransaction();
    return result;
  }

  struct CachedStatement {
    std::unique_ptr<SQLite::Statement> stmt;
    bool in_use = false;
  };

  const std::string path_;
  int schema_version_ = 0;
  // Declared before the cache: statements must be finalized before the connection closes.
  std::unique_ptr<SQLite::Database> db_;
  absl::flat_hash_map<std::string, std::unique_ptr<CachedStatement>> statements_;
  // Declared last: stopped first, before the statements and the connection go.
  std::unique_ptr<Checkpointer> checkpointer_;
};

}  // namespace evald::storage
