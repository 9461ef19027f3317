// File: checkpointer.h
//
// Runs SQLite WAL checkpoints on a background thread with its own connection. With
// synchronous=NORMAL a checkpoint is the only fsync evald's database does, and it takes 15-35 ms
// for the default 1000 pages on our CI disk; SQLite's automatic checkpoint would run it inside
// whichever commit crosses the threshold, holding Store's mutex, so every concurrent Submit
// would wait for it. Instead, Database's WAL hook calls Notify() after each commit and this
// thread checkpoints (PASSIVE: it never blocks writers or readers) while writes go on.
// It checkpoints once per kBackgroundPages new WAL pages, not once per commit over the threshold:
// under steady writes the WAL never restarts (each checkpoint ends behind the commits made while
// it ran), and re-arming on every commit made it checkpoint ~80 times a second, two fdatasyncs
// each, during bench/daemon's Submit phase.
//
// Callers: Database only (it owns one per connection). Notify() is thread-safe and cheap.
//
//   EVALD_ASSIGN_OR_RETURN(auto cp, Checkpointer::Start(path));
//   cp->Notify(wal_pages);  // from sqlite3_wal_hook, after a commit
#pragma once

#include <SQLiteCpp/Database.h>

#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace evald::storage {

class Checkpointer {
 public:
  // WAL size (pages) at which a background checkpoint starts.
  static constexpr int kBackgroundPages = 1000;

  // Opens a second connection to the (existing, migrated) database at `path` and starts the
  // thread.
  static absl::StatusOr<std::unique_ptr<Checkpointer>> Start(const std::string& path);
  // Stops and joins the thread, then closes its connection.
  ~Checkpointer();
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  // Called after each commit with the number of pages in the WAL. Asks for a checkpoint, and
  // returns true, when the WAL has kBackgroundPages pages more than the last checkpoint covered.
  bool Notify(int wal_pages);

  // Checkpoints that completed (whatever their result) so far.
  int64_t completed() const;
  // Blocks until at least `count` checkpoints completed or `timeout` passed; true on success.
  bool WaitForCompletedForTest(int64_t count, absl::Duration timeout) const;

 private:
  explicit Checkpointer(std::unique_ptr<SQLite::Database> db);
  void Loop();

  mutable absl::Mutex mu_;
  bool pending_ ABSL_GUARDED_BY(mu_) = false;
  int wal_pages_ ABSL_GUARDED_BY(mu_) = 0;  // as last notified
  // WAL pages the last checkpoint started (or the running one) covers.
  int covered_pages_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  int64_t completed_ ABSL_GUARDED_BY(mu_) = 0;
  std::unique_ptr<SQLite::Database> db_;  // used by the thread only
  std::thread thread_;
};

}  // namespace evald::storage
