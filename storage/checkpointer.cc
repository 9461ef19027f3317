#include "storage/checkpointer.h"

#include <sqlite3.h>

#include "storage/sqlite_status.h"

namespace evald::storage {

absl::StatusOr<std::unique_ptr<Checkpointer>> Checkpointer::Start(const std::string& path) {
  auto db = GuardSqlite(path, "open checkpoint connection",
                        [&]() -> absl::StatusOr<std::unique_ptr<SQLite::Database>> {
                          auto conn =
                              std::make_unique<SQLite::Database>(path, SQLite::OPEN_READWRITE);
                          // A connection only attaches to the WAL on its first read; until
                          // then sqlite3_wal_checkpoint quietly does nothing.
                          conn->execAndGet("SELECT count(*) FROM sqlite_master");
                          return conn;
                        });
  if (!db.ok()) return db.status();
  // The thread starts in the constructor, after every member is set.
  return std::unique_ptr<Checkpointer>(new Checkpointer(*std::move(db)));
}

Checkpointer::Checkpointer(std::unique_ptr<SQLite::Database> db) : db_(std::move(db)) {
  thread_ = std::thread([this] { Loop(); });
}

Checkpointer::~Checkpointer() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  thread_.join();
}

bool Checkpointer::Notify(int wal_pages) {
  absl::MutexLock lock(&mu_);
  // A smaller WAL than last time: it restarted from its beginning, which no checkpoint covers.
  if (wal_pages < wal_pages_) covered_pages_ = 0;
  wal_pages_ = wal_pages;
  if (wal_pages - covered_pages_ < kBackgroundPages) return false;
  pending_ = true;
  return true;
}

int64_t Checkpointer::completed() const {
  absl::MutexLock lock(&mu_);
  return completed_;
}

bool Checkpointer::WaitForCompletedForTest(int64_t count, absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto done = [this, count]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return completed_ >= count; };
  return mu_.AwaitWithTimeout(absl::Condition(&done), timeout);
}

void Checkpointer::Loop() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      auto wake = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return pending_ || stop_; };
      mu_.Await(absl::Condition(&wake));
      if (stop_) return;
      pending_ = false;
      // Commits during the checkpoint count from what it will cover, so they do not ask for
      // another one at once.
      covered_pages_ = wal_pages_;
    }
    // A failure (busy, disk full) or a partial copy leaves the WAL as it is: nothing is lost,
    // the commit kBackgroundPages pages later asks again, and Database checkpoints inline if the
    // WAL grows far too large.
    sqlite3_wal_checkpoint_v2(db_->getHandle(), "main", SQLITE_CHECKPOINT_PASSIVE, nullptr,
                              nullptr);
    absl::MutexLock lock(&mu_);
    ++completed_;
  }
}

}  // namespace evald::storage
