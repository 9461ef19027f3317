// Opening, migrations and the error paths of the environment: corrupt, foreign, newer, read-only
// and busy database files, and a full disk.
#include "storage/database.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <random>

#include "absl/strings/str_format.h"
#include "storage/migrations.h"
#include "storage/sqlite_status.h"
#include "storage_test_util.h"

namespace evald::storage {
namespace {

using testing::Contains;
using testing::CreateSimple;
using testing::OpenStore;
using testing::Raw;
using testing::ReadFileBytes;
using testing::ScopedMount;
using testing::TempDir;

std::string RandomBytes(size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::string out(n, '\0');
  for (char& c : out) c = static_cast<char>(gen() & 0xff);
  return out;
}

StoreOptions OptionsIn(const std::string& dir) {
  StoreOptions o;
  o.db_path = dir + "/evald.db";
  o.key_path = dir + "/secrets.key";
  return o;
}

TEST_CASE("Migrations are numbered 1..N without gaps") {
  int expected = 1;
  for (const Migration& m : Migrations()) {
    REQUIRE(m.version == expected);
    REQUIRE(std::string(m.sql).size() > 0);
    ++expected;
  }
  REQUIRE(LatestSchemaVersion() == expected - 1);
}

TEST_CASE("Open creates the folder and a WAL database at the latest schema version") {
  TempDir dir;
  auto store = OpenStore(dir);
  REQUIRE(store->schema_version() == LatestSchemaVersion());
  REQUIRE(store->path() == dir / "state/evald.db");
  REQUIRE(std::filesystem::is_regular_file(dir / "state/evald.db"));

  auto raw = Raw(dir / "state/evald.db");
  REQUIRE(raw->execAndGet("PRAGMA journal_mode").getString() == "wal");
  REQUIRE(raw->execAndGet("PRAGMA user_version").getInt() == LatestSchemaVersion());
  REQUIRE(raw->execAndGet("PRAGMA application_id").getInt() == kEvaldApplicationId);
  for (const char* table : {"invocations", "jobs", "events", "results", "secrets", "deployments"}) {
    INFO(table);
    REQUIRE(raw->tableExists(table));
  }
}

TEST_CASE("Reopening a database is idempotent and keeps its data") {
  TempDir dir;
  {
    auto store = OpenStore(dir);
    CreateSimple(*store, "0000000a", 1000);
  }
  for (int i = 0; i < 2; ++i) {
    auto store = OpenStore(dir);
    REQUIRE(store->schema_version() == LatestSchemaVersion());
    auto count = store->CountInvocations();
    REQUIRE_OK(count);
    REQUIRE(*count == 1);
    auto view = store->GetInvocation("0000000a");
    REQUIRE_OK(view);
    REQUIRE(view->jobs.size() == 2);
  }
  REQUIRE(Raw(dir / "state/evald.db")->execAndGet("PRAGMA user_version").getInt() ==
          LatestSchemaVersion());
}

TEST_CASE("A database with a newer schema version is refused and left unchanged") {
  TempDir dir;
  { OpenStore(dir); }
  const int newer = LatestSchemaVersion() + 5;
  Raw(dir / "state/evald.db")->exec("PRAGMA user_version=" + std::to_string(newer));

  StoreOptions o;
  o.db_path = dir / "state/evald.db";
  o.key_path = dir / "state/secrets.key";
  auto store = Store::Open(o);
  REQUIRE_CODE(store, absl::StatusCode::kFailedPrecondition);
  REQUIRE(Contains(std::string(store.status().message()), "newer"));
  REQUIRE(Contains(std::string(store.status().message()), o.db_path));
  REQUIRE(Raw(o.db_path)->execAndGet("PRAGMA user_version").getInt() == newer);
}

TEST_CASE("A corrupt file is DataLoss naming the path and is not modified") {
  TempDir dir;
  const StoreOptions o = OptionsIn(dir.path());
  const std::string garbage = RandomBytes(16384, 7);
  testing::WriteFileBytes(o.db_path, garbage);

  auto store = Store::Open(o);
  REQUIRE_CODE(store, absl::StatusCode::kDataLoss);
  const std::string msg(store.status().message());
  REQUIRE(Contains(msg, o.db_path));
  REQUIRE(Contains(msg, "not a valid evald database"));
  REQUIRE(ReadFileBytes(o.db_path) == garbage);
  REQUIRE_FALSE(std::filesystem::exists(o.key_path));
}

TEST_CASE("A database whose pages are damaged after creation reports DataLoss") {
  TempDir dir;
  {
    auto store = OpenStore(dir);
    for (int i = 0; i < 20; ++i) {
      CreateSimple(*store, absl::StrFormat("%08x", i + 1), 1000 + i);
    }
  }
  const std::string path = dir / "state/evald.db";
  Raw(path)->exec("PRAGMA wal_checkpoint(TRUNCATE)");
  std::string bytes = ReadFileBytes(path);
  REQUIRE(bytes.size() > 4096 * 3);
  // Keep the header page, overwrite the rest: the schema can be read, the tables cannot.
  const std::string noise = RandomBytes(bytes.size() - 4096, 11);
  bytes.replace(4096, noise.size(), noise);
  testing::WriteFileBytes(path, bytes);

  StoreOptions o;
  o.db_path = path;
  o.key_path = dir / "state/secrets.key";
  auto store = Store::Open(o);
  if (store.ok()) {
    // Opening may succeed (page 1 is intact); reading the damaged tables must not.
    auto page = (*store)->ListInvocations({});
    REQUIRE_CODE(page, absl::StatusCode::kDataLoss);
    REQUIRE(Contains(std::string(page.status().message()), path));
  } else {
    REQUIRE_CODE(store, absl::StatusCode::kDataLoss);
  }
}

TEST_CASE("Another program's SQLite database is refused and left unchanged") {
  TempDir dir;
  const StoreOptions o = OptionsIn(dir.path());
  {
    SQLite::Database other(o.db_path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    other.exec("CREATE TABLE photos (id INTEGER PRIMARY KEY, name TEXT)");
  }
  const std::string before = ReadFileBytes(o.db_path);
  auto store = Store::Open(o);
  REQUIRE_CODE(store, absl::StatusCode::kFailedPrecondition);
  REQUIRE(Contains(std::string(store.status().message()), "another program"));
  REQUIRE(ReadFileBytes(o.db_path) == before);
}

TEST_CASE("A path that is a folder is refused") {
  TempDir dir;
  StoreOptions o = OptionsIn(dir.path());
  std::filesystem::create_directories(o.db_path);
  auto store = Store::Open(o);
  REQUIRE_CODE(store, absl::StatusCode::kFailedPrecondition);
  REQUIRE(Contains(std::string(store.status().message()), o.db_path));
}

TEST_CASE("A read-only database is refused with a clear error and nothing is lost") {
  TempDir dir;
  const std::string src = dir / "src";
  {
    auto store = OpenStore(dir);
    CreateSimple(*store, "0000000b", 1000);
  }
  std::filesystem::create_directories(src);
  std::filesystem::rename(dir / "state", src + "/state");

  std::string ro_root;
  std::unique_ptr<ScopedMount> mount;
  bool chmodded = false;
  if (geteuid() == 0) {
    // Root ignores file modes, so only a read-only mount really stops writes.
    ro_root = dir / "ro";
    std::filesystem::create_directories(ro_root);
    std::string error;
    mount = ScopedMount::ReadOnlyBind(src, ro_root, &error);
    if (mount == nullptr) {
      WARN("READ-ONLY TEST NOT RUN: running as root but cannot create a read-only bind mount ("
           << error << "); the read-only database path is untested here");
      return;
    }
  } else {
    ro_root = src;
    std::filesystem::permissions(src + "/state/evald.db", std::filesystem::perms::owner_read |
                                                              std::filesystem::perms::group_read |
                                                              std::filesystem::perms::others_read);
    std::filesystem::permissions(
        src + "/state", std::filesystem::perms::owner_read | std::filesystem::perms::owner_exec,
        std::filesystem::perm_options::replace);
    chmodded = true;
  }

  StoreOptions o;
  o.db_path = ro_root + "/state/evald.db";
  o.key_path = ro_root + "/state/secrets.key";
  auto store = Store::Open(o);
  REQUIRE_CODE(store, absl::StatusCode::kFailedPrecondition);
  const std::string msg(store.status().message());
  INFO(msg);
  REQUIRE(Contains(msg, o.db_path));
  REQUIRE(Contains(msg, "read-only"));

  mount.reset();
  if (chmodded) {
    std::filesystem::permissions(src + "/state", std::filesystem::perms::owner_all);
    std::filesystem::permissions(src + "/state/evald.db", std::filesystem::perms::owner_read |
                                                              std::filesystem::perms::owner_write);
  }
  StoreOptions rw;
  rw.db_path = src + "/state/evald.db";
  rw.key_path = src + "/state/secrets.key";
  auto again = Store::Open(rw);
  REQUIRE_OK(again);
  auto view = (*again)->GetInvocation("0000000b");
  REQUIRE_OK(view);
  REQUIRE(view->jobs.size() == 2);
}

TEST_CASE("A full disk gives ResourceExhausted and the store keeps serving") {
  if (geteuid() != 0) {
    WARN("FULL-DISK TEST NOT RUN: it needs root to mount a small tmpfs");
    return;
  }
  TempDir dir;
  const std::string mnt = dir / "small";
  std::filesystem::create_directories(mnt);
  std::string error;
  auto mount = ScopedMount::Tmpfs(mnt, "size=3m,mode=0700", &error);
  if (mount == nullptr) {
    WARN("FULL-DISK TEST NOT RUN: cannot mount a tmpfs (" << error << ")");
    return;
  }
  {
    StoreOptions o = OptionsIn(mnt);
    auto opened = Store::Open(o);
    REQUIRE_OK(opened);
    Store& store = **opened;
    CreateSimple(store, "000000c1", 1000, "local", 2, {{"API_KEY", "v1"}});
    CreateSimple(store, "000000c2", 2000);

    // Fill the file system.
    const std::string filler = mnt + "/filler";
    {
      std::ofstream out(filler, std::ios::binary);
      const std::string chunk(64 * 1024, 'x');
      while (out.write(chunk.data(), chunk.size())) {
      }
    }
    {
      std::ofstream out(filler + "-tail", std::ios::binary);
      while (out.put('x')) out.flush();
    }

    InvocationRecord big = testing::MakeInvocation("000000c3", 3000);
    big.config_yaml = std::string(512 * 1024, 'y');
    absl::Status full = store.CreateInvocation(big, testing::MakeJobs(big), {}, {}, 3000, nullptr);
    REQUIRE_CODE(full, absl::StatusCode::kResourceExhausted);
    REQUIRE(Contains(std::string(full.message()), "disk full"));
    REQUIRE(Contains(std::string(full.message()), o.db_path));

    // Reads keep working and see nothing of the failed write.
    REQUIRE_OK(store.GetInvocation("000000c1"));
    REQUIRE_CODE(store.GetInvocation("000000c3"), absl::StatusCode::kNotFound);
    auto page = store.ListInvocations({});
    REQUIRE_OK(page);
    REQUIRE(page->invocations.size() == 2);

    // Space comes back: writes work again and nothing was lost.
    std::filesystem::remove(filler);
    std::filesystem::remove(filler + "-tail");
    REQUIRE_OK(store.CreateInvocation(big, testing::MakeJobs(big), {}, {}, 3000, nullptr));
    REQUIRE_OK(store.TransitionJob(
        testing::Move("000000c1.0", JobState::kPending, JobState::kSubmitted), 3100));
    auto secrets = store.GetSecrets("000000c1");
    REQUIRE_OK(secrets);
    REQUIRE(secrets->at("API_KEY") == "v1");
    auto count = store.CountInvocations();
    REQUIRE_OK(count);
    REQUIRE(*count == 3);
  }
  // And the file is a sound database after all this.
  REQUIRE(Raw(mnt + "/evald.db")->execAndGet("PRAGMA integrity_check").getString() == "ok");
}

TEST_CASE("A database locked by another connection gives Unavailable, then works") {
  TempDir dir;
  auto store = OpenStore(dir, /*busy_timeout_ms=*/50);
  auto other = Raw(dir / "state/evald.db");
  other->exec("BEGIN IMMEDIATE");
  InvocationRecord inv = testing::MakeInvocation("0000000d", 1000);
  absl::Status busy = store->CreateInvocation(inv, testing::MakeJobs(inv), {}, {}, 1000, nullptr);
  REQUIRE_CODE(busy, absl::StatusCode::kUnavailable);
  REQUIRE(Contains(std::string(busy.message()), "busy"));
  other->exec("ROLLBACK");
  REQUIRE_OK(store->CreateInvocation(inv, testing::MakeJobs(inv), {}, {}, 1000, nullptr));
}

TEST_CASE("Two stores on one file see each other's writes") {
  TempDir dir;
  auto a = OpenStore(dir);
  auto b = OpenStore(dir);
  CreateSimple(*a, "000000e1", 1000);
  CreateSimple(*b, "000000e2", 2000);
  REQUIRE_OK(
      a->TransitionJob(testing::Move("000000e2.0", JobState::kPending, JobState::kRunning), 2100));
  auto view = b->GetInvocation("000000e2");
  REQUIRE_OK(view);
  REQUIRE(view->jobs[0].state == JobState::kRunning);
  auto count = b->CountInvocations();
  REQUIRE_OK(count);
  REQUIRE(*count == 2);
}

TEST_CASE("SQLite result codes map to the documented status codes") {
  const std::string path = "/state/evald.db";
  struct Case {
    int code;
    absl::StatusCode want;
  };
  const Case cases[] = {
      {SQLITE_FULL, absl::StatusCode::kResourceExhausted},
      {SQLITE_CORRUPT, absl::StatusCode::kDataLoss},
      {SQLITE_NOTADB, absl::StatusCode::kDataLoss},
      {SQLITE_READONLY, absl::StatusCode::kFailedPrecondition},
      {SQLITE_READONLY_DBMOVED, absl::StatusCode::kFailedPrecondition},
      {SQLITE_CANTOPEN, absl::StatusCode::kFailedPrecondition},
      {SQLITE_PERM, absl::StatusCode::kFailedPrecondition},
      {SQLITE_BUSY, absl::StatusCode::kUnavailable},
      {SQLITE_BUSY_SNAPSHOT, absl::StatusCode::kUnavailable},
      {SQLITE_LOCKED, absl::StatusCode::kUnavailable},
      {SQLITE_IOERR_WRITE, absl::StatusCode::kUnavailable},
      {SQLITE_CONSTRAINT_PRIMARYKEY, absl::StatusCode::kAlreadyExists},
      {SQLITE_CONSTRAINT_UNIQUE, absl::StatusCode::kAlreadyExists},
      {SQLITE_CONSTRAINT_FOREIGNKEY, absl::StatusCode::kInvalidArgument},
      {SQLITE_CONSTRAINT_NOTNULL, absl::StatusCode::kInvalidArgument},
      {SQLITE_ERROR, absl::StatusCode::kInternal},
  };
  for (const Case& c : cases) {
    absl::Status s = SqliteCodeToStatus(c.code, "msg", path, "doing x");
    INFO(c.code << " -> " << s.ToString());
    REQUIRE(s.code() == c.want);
    if (c.want != absl::StatusCode::kAlreadyExists &&
        c.want != absl::StatusCode::kInvalidArgument) {
      REQUIRE(Contains(std::string(s.message()), path));
    }
  }
  REQUIRE(Contains(std::string(SqliteCodeToStatus(SQLITE_FULL, "m", path, "").message()),
                   "disk full while writing /state/evald.db"));
  REQUIRE(Contains(std::string(SqliteCodeToStatus(SQLITE_NOTADB, "m", path, "").message()),
                   "/state/evald.db is not a valid evald database (corrupt or not SQLite)"));
}

TEST_CASE("Exceptions thrown inside a guard become statuses") {
  absl::Status s = GuardSqlite(
      "/db", "test", []() -> absl::Status { throw SQLite::Exception("boom", SQLITE_FULL); });
  REQUIRE(s.code() == absl::StatusCode::kResourceExhausted);
  absl::StatusOr<int> v =
      GuardSqlite("/db", "test", []() -> absl::StatusOr<int> { throw std::runtime_error("bad"); });
  REQUIRE(v.status().code() == absl::StatusCode::kInternal);
}

TEST_CASE("A failed transaction rolls back everything it wrote") {
  TempDir dir;
  auto db = Database::Open(dir / "evald.db", 5000);
  REQUIRE_OK(db);
  absl::Status s = (*db)->InTransaction("test", [&]() -> absl::Status {
    (*db)->sqlite().exec(
        "INSERT INTO events (time_ms, invocation_id, job_id, kind, from_state, to_state, message) "
        "VALUES (1, '', '', 'x', '', '', '')");
    return absl::AbortedError("changed my mind");
  });
  REQUIRE(s.code() == absl::StatusCode::kAborted);
  REQUIRE(testing::CountRows(dir / "evald.db", "events") == 0);
  // The connection is usable afterwards.
  REQUIRE_OK((*db)->InTransaction("again", [&]() -> absl::Status { return absl::OkStatus(); }));
}

TEST_CASE("WAL checkpoints run on the background thread") {
  TempDir dir;
  const std::string path = dir / "evald.db";
  auto db = Database::Open(path, 5000);
  REQUIRE_OK(db);
  const auto before = std::filesystem::file_size(path);
  REQUIRE((*db)->checkpointer().completed() == 0);
  // About 1500 pages of events, in several commits: past the background threshold.
  for (int i = 0; i < 5; ++i) {
    REQUIRE_OK((*db)->InTransaction("fill", [&]() -> absl::Status {
      (*db)->sqlite().exec(
          "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300) "
          "INSERT INTO events (time_ms, invocation_id, job_id, kind, from_state, to_state, "
          "message) SELECT i, '', '', 'fill', '', '', hex(randomblob(2000)) FROM n");
      return absl::OkStatus();
    }));
  }
  // Not a timing assertion: the generous deadline only keeps a broken build from hanging.
  REQUIRE((*db)->checkpointer().WaitForCompletedForTest(1, absl::Seconds(120)));
  // The checkpoint copied the WAL's pages into the database file. It starts once the WAL holds
  // kBackgroundPages pages, but under load it may start before the last commits land, so only
  // part of the 1500 pages is sure to be copied; half the threshold is, a no-op checkpoint is not.
  REQUIRE(std::filesystem::file_size(path) >
          before + Checkpointer::kBackgroundPages / 2 * 4096);
  REQUIRE(testing::CountRows(path, "events") == 1500);
}

}  // namespace
}  // namespace evald::storage
