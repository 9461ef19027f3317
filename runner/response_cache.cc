#include "runner/response_cache.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <sqlite3.h>

#include <chrono>
#include <filesystem>
#include <string_view>

#include "absl/strings/str_cat.h"

namespace evald::runner {

absl::StatusOr<std::unique_ptr<ResponseCache>> ResponseCache::Open(const Options& options) {
  std::error_code ec;
  std::filesystem::create_directories(options.dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("cache dir ", options.dir, ": cannot create: ", ec.message()));
  }
  std::unique_ptr<ResponseCache> c(new ResponseCache());
  c->options_ = options;
  c->path_ = (std::filesystem::path(options.dir) / "cache.sqlite3").string();
  try {
    c->db_ =
        std::make_unique<SQLite::Database>(c->path_, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    c->db_->setBusyTimeout(options.busy_timeout_ms);
    // One evalrun owns a job's cache: exclusive locking spares a file lock per statement (and a
    // second evalrun on the same job gets "database is locked" instead of interleaving).
    c->db_->exec("PRAGMA locking_mode=EXCLUSIVE");
    // No fsync, ever: a killed evalrun loses nothing (the kernel has the pages); only a crash of
    // the machine could lose or damage answers, and a cache can be deleted. An fsync on this
    // event loop costs a stall of milliseconds.
    c->db_->exec("PRAGMA synchronous=OFF");
    c->db_->exec("PRAGMA journal_mode=WAL");
    // Leave the WAL for the next run to read instead of copying it into the database at exit:
    // the copy would delay the end of every run by a page per few answers.
    sqlite3_db_config(c->db_->getHandle(), SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
    // Checkpoint (and fsync) every 16 MB of answers rather than every 4 MB.
    c->db_->exec("PRAGMA wal_autocheckpoint=4096");
    c->db_->exec(
        "CREATE TABLE IF NOT EXISTS answers (id INTEGER PRIMARY KEY, key BLOB NOT NULL, "
        "response BLOB NOT NULL, created_at REAL NOT NULL)");
    c->db_->exec(
        "CREATE TABLE IF NOT EXISTS requests (id INTEGER PRIMARY KEY, key BLOB NOT NULL, "
        "request BLOB NOT NULL)");
    SQLite::Statement keys(*c->db_, "SELECT id, key FROM answers");
    while (keys.executeStep()) {
      const SQLite::Column key = keys.getColumn(1);
      const std::string_view k(static_cast<const char*>(key.getBlob()), key.getBytes());
      c->index_.emplace(std::hash<std::string_view>{}(k), keys.getColumn(0).getInt64());
    }
    c->get_ = std::make_unique<SQLite::Statement>(*c->db_,
                                                  "SELECT key, response FROM answers WHERE id = ?");
    c->put_ = std::make_unique<SQLite::Statement>(
        *c->db_, "INSERT INTO answers (key, response, created_at) VALUES (?, ?, ?)");
    c->put_request_ = std::make_unique<SQLite::Statement>(
        *c->db_, "INSERT INTO requests (key, request) VALUES (?, ?)");
  } catch (const SQLite::Exception& e) {
    if (e.getErrorCode() == SQLITE_BUSY || e.getErrorCode() == SQLITE_LOCKED) {
      return absl::FailedPreconditionError(
          absl::StrCat("response cache ", c->path_, ": in use by another process (", e.what(),
                       "); is another evalrun running on this job?"));
    }
    return absl::FailedPreconditionError(
        absl::StrCat("response cache ", c->path_, ": ", e.what(),
                     " (delete the cache folder to start without it, or set use_caching: false)"));
  }
  return c;
}

ResponseCache::~ResponseCache() { (void)Flush(); }

std::optional<std::string> ResponseCache::Get(const std::string& key) {
  if (!options_.reuse || index_.empty()) return std::nullopt;
  auto [begin, end] = index_.equal_range(std::hash<std::string_view>{}(key));
  std::optional<std::string> found;
  int64_t found_id = -1;
  try {
    for (auto it = begin; it != end; ++it) {
      // The newest answer wins when a key was stored twice.
      if (it->second < found_id) continue;
      get_->reset();
      get_->bind(1, it->second);
      if (!get_->executeStep()) continue;
      const SQLite::Column k = get_->getColumn(0);
      if (std::string_view(static_cast<const char*>(k.getBlob()), k.getBytes()) != key) continue;
      const SQLite::Column col = get_->getColumn(1);
      found.emplace(static_cast<const char*>(col.getBlob()), col.getBytes());
      found_id = it->second;
    }
    get_->reset();
  } catch (const SQLite::Exception& e) {
    last_error_ = e.what();
    return std::nullopt;
  }
  return found;
}

void ResponseCache::Put(const std::string& key, absl::string_view request,
                        absl::string_view response) {
  try {
    if (!in_transaction_) {
      db_->exec("BEGIN");
      in_transaction_ = true;
    }
    const double now =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    put_->reset();
    put_->bind(1, key.data(), static_cast<int>(key.size()));
    put_->bind(2, response.data(), static_cast<int>(response.size()));
    put_->bind(3, now);
    put_->exec();
    if (options_.save_requests) {
      put_request_->reset();
      put_request_->bind(1, key.data(), static_cast<int>(key.size()));
      put_request_->bind(2, request.data(), static_cast<int>(request.size()));
      put_request_->exec();
    }
    ++pending_;
  } catch (const SQLite::Exception& e) {
    last_error_ = e.what();
  }
}

absl::Status ResponseCache::Flush() {
  if (in_transaction_) {
    try {
      db_->exec("COMMIT");
    } catch (const SQLite::Exception& e) {
      last_error_ = e.what();
      try {
        db_->exec("ROLLBACK");
      } catch (const SQLite::Exception&) {
      }
    }
    in_transaction_ = false;
    pending_ = 0;
  }
  if (!last_error_.empty()) {
    std::string err;
    err.swap(last_error_);
    return absl::DataLossError(absl::StrCat("response cache ", path_, ": ", err));
  }
  return absl::OkStatus();
}

int64_t ResponseCache::Count() {
  try {
    return db_->execAndGet("SELECT COUNT(DISTINCT key) FROM answers").getInt64();
  } catch (const SQLite::Exception&) {
    return -1;
  }
}

}  // namespace evald::runner
