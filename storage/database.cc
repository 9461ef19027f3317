#include "storage/database.h"

#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "storage/migrations.h"

namespace evald::storage {

StatementRef::StatementRef(StatementRef&& other) noexcept
    : stmt_(other.stmt_), in_use_(other.in_use_), owned_(std::move(other.owned_)) {
  other.stmt_ = nullptr;
  other.in_use_ = nullptr;
}

StatementRef::~StatementRef() {
  if (stmt_ != nullptr) stmt_->tryReset();
  if (in_use_ != nullptr) *in_use_ = false;
}

Database::Database(std::string path, std::unique_ptr<SQLite::Database> db)
    : path_(std::move(path)), db_(std::move(db)) {}

Database::~Database() {
  sqlite3_wal_hook(db_->getHandle(), nullptr, nullptr);
  checkpointer_.reset();
  // Finalize every statement before the connection closes (sqlite3_close refuses otherwise).
  statements_.clear();
}

int Database::WalHook(void* self, sqlite3* db, const char* name, int wal_pages) {
  auto* database = static_cast<Database*>(self);
  if (database->checkpointer_ != nullptr) database->checkpointer_->Notify(wal_pages);
  if (wal_pages >= kInlineCheckpointPages) {
    sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
  }
  return SQLITE_OK;
}

absl::StatusOr<std::unique_ptr<Database>> Database::Open(const std::string& path,
                                                         int busy_timeout_ms) {
  namespace fs = std::filesystem;
  if (path.empty()) return absl::InvalidArgumentError("database path is empty");
  if (busy_timeout_ms < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("busy timeout must be >= 0 ms, got ", busy_timeout_ms));
  }
  const fs::path file(path);
  std::error_code ec;
  if (file.has_parent_path()) {
    fs::create_directories(file.parent_path(), ec);
    if (ec) {
      return absl::FailedPreconditionError(absl::StrCat(
          "cannot create folder ", file.parent_path().string(), " for ", path, ": ", ec.message()));
    }
  }
  const fs::file_status st = fs::status(file, ec);
  if (!ec && fs::exists(st) && !fs::is_regular_file(st)) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, " exists but is not a regular file; evald needs a database file there"));
  }

  EVALD_ASSIGN_OR_RETURN(
      std::unique_ptr<SQLite::Database> sqlite,
      GuardSqlite(path, "open", [&]() -> absl::StatusOr<std::unique_ptr<SQLite::Database>> {
        return std::make_unique<SQLite::Database>(
            path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE, busy_timeout_ms);
      }));
  // SQLite silently falls back to read-only when the file (or its file system) is not writable.
  if (sqlite3_db_readonly(sqlite->getHandle(), "main") == 1) {
    return absl::FailedPreconditionError(absl::StrCat(
        path,
        " is read-only (file permissions or a read-only file system); evald needs write "
        "access to the file and its folder. Nothing was changed."));
  }
  std::unique_ptr<Database> db(new Database(path, std::move(sqlite)));
  EVALD_RETURN_IF_ERROR(db->CheckIsEvaldDatabase());
  EVALD_RETURN_IF_ERROR(db->Configure(busy_timeout_ms));
  EVALD_RETURN_IF_ERROR(db->Migrate());
  EVALD_ASSIGN_OR_RETURN(db->checkpointer_, Checkpointer::Start(path));
  // Replaces SQLite's automatic checkpoint (which would run inside a commit).
  sqlite3_wal_hook(db->db_->getHandle(), &Database::WalHook, db.get());
  return db;
}

absl::Status Database::CheckIsEvaldDatabase() {
  // Only reads: a file we refuse is never modified.
  return Run("check database header", [&]() -> absl::Status {
    const int app_id = db_->execAndGet("PRAGMA application_id").getInt();
    const int version = db_->execAndGet("PRAGMA user_version").getInt();
    const int objects = db_->execAndGet("SELECT count(*) FROM sqlite_master").getInt();
    if (app_id != 0 && app_id != kEvaldApplicationId) {
      return absl::FailedPreconditionError(
          absl::StrCat(path_, " is an SQLite database of another program (application_id ", app_id,
                       "), not an evald database; point evald at another file"));
    }
    if (app_id == 0 && version == 0 && objects > 0) {
      return absl::FailedPreconditionError(
          absl::StrCat(path_, " is an SQLite database of another program (", objects,
                       " schema objects, no evald schema version); point evald at another file"));
    }
    if (version > LatestSchemaVersion()) {
      return absl::FailedPreconditionError(
          absl::StrCat(path_, " has schema version ", version, ", newer than this evald supports (",
                       LatestSchemaVersion(),
                       "); it was written by a newer evald: run that version or a newer "
                       "one. The file was not changed."));
    }
    schema_version_ = version;
    return absl::OkStatus();
  });
}

absl::Status Database::Configure(int busy_timeout_ms) {
  return Run("configure connection", [&]() -> absl::Status {
    db_->setBusyTimeout(busy_timeout_ms);
    const std::string mode = db_->execAndGet("PRAGMA journal_mode=WAL").getString();
    if (mode != "wal") {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot switch ", path_, " to WAL journal mode (SQLite kept '", mode,
                       "'); evald needs a local file system that supports shared memory"));
    }
    // NORMAL is durable across process crashes in WAL mode; only an OS crash can lose the last
    // commits, never corrupt the file.
    db_->exec("PRAGMA synchronous=NORMAL");
    db_->exec("PRAGMA foreign_keys=ON");
    // Deleted secrets are overwritten with zeros instead of lingering in free pages.
    db_->exec("PRAGMA secure_delete=ON");
    db_->exec("PRAGMA cache_size=-8192");
    db_->exec("PRAGMA journal_size_limit=67108864");
    if (db_->execAndGet("PRAGMA foreign_keys").getInt() != 1) {
      return absl::InternalError("SQLite build ignores PRAGMA foreign_keys");
    }
    return absl::OkStatus();
  });
}

absl::Status Database::Migrate() {
  for (const Migration& m : Migrations()) {
    if (m.version <= schema_version_) continue;
    EVALD_RETURN_IF_ERROR(InTransaction(
        absl::StrCat("migrate to schema version ", m.version, " (", m.description, ")"),
        [&]() -> absl::Status {
          // Re-read inside the write lock: another process may have migrated meanwhile.
          const int current = db_->execAndGet("PRAGMA user_version").getInt();
          if (current >= m.version) return absl::OkStatus();
          if (current != m.version - 1) {
            return absl::InternalError(
                absl::StrCat("migration step ", m.version, " found schema version ", current));
          }
          db_->exec(m.sql);
          db_->exec(absl::StrCat("PRAGMA user_version=", m.version));
          db_->exec(absl::StrCat("PRAGMA application_id=", kEvaldApplicationId));
          return absl::OkStatus();
        }));
    schema_version_ = m.version;
  }
  return Run("read schema version", [&]() -> absl::Status {
    schema_version_ = db_->execAndGet("PRAGMA user_version").getInt();
    if (schema_version_ > LatestSchemaVersion()) {
      return absl::FailedPreconditionError(
          absl::StrCat(path_, " was upgraded to schema version ", schema_version_,
                       " by a newer evald while opening; run that version"));
    }
    return absl::OkStatus();
  });
}

StatementRef Database::Prepare(const std::string& sql) {
  auto it = statements_.find(sql);
  if (it == statements_.end()) {
    auto cached = std::make_unique<CachedStatement>();
    cached->stmt = std::make_unique<SQLite::Statement>(*db_, sql);
    it = statements_.emplace(sql, std::move(cached)).first;
  }
  CachedStatement& c = *it->second;
  // The same SQL text used twice at once (nested loops) gets a private statement.
  if (c.in_use) return StatementRef(std::make_unique<SQLite::Statement>(*db_, sql));
  c.in_use = true;
  return StatementRef(c.stmt.get(), &c.in_use);
}

bool Database::InOpenTransaction() noexcept {
  return sqlite3_get_autocommit(db_->getHandle()) == 0;
}

void Database::RollbackSavepoint() noexcept {
  if (!InOpenTransaction()) return;
  sqlite3* h = db_->getHandle();
  if (sqlite3_exec(h, "ROLLBACK TO evald_item; RELEASE evald_item", nullptr, nullptr, nullptr) !=
      SQLITE_OK) {
    sqlite3_exec(h, "ROLLBACK", nullptr, nullptr, nullptr);
  }
}

void Database::EnsureNoOpenTransaction() noexcept {
  sqlite3* h = db_->getHandle();
  if (sqlite3_get_autocommit(h) == 0) sqlite3_exec(h, "ROLLBACK", nullptr, nullptr, nullptr);
}

}  // namespace evald::storage
