// Submit's idempotency keys in the Store: one invocation per key, refused reuse for another
// request, the key written in the invocation's transaction, the v1 -> v2 migration, and the tag
// that tells a database failure from a refused request.
#include <sqlite3.h>

#include "storage/sqlite_status.h"
#include "storage/submit_key_repository.h"
#include "storage_test_util.h"

namespace evald::storage {
namespace {

using testing::Contains;
using testing::CountRows;
using testing::MakeInvocation;
using testing::MakeJobs;
using testing::OpenStore;
using testing::Raw;
using testing::TempDir;

absl::Status Create(Store& store, const std::string& id, SubmitKey* key,
                    std::vector<EventRecord>* events = nullptr) {
  InvocationRecord inv = MakeInvocation(id, 1000);
  return store.CreateInvocation(inv, MakeJobs(inv), {}, {{"API_KEY", "sk-1"}}, 1000, events, key);
}

TEST_CASE("The same key and request give one invocation and the retry stores nothing") {
  TempDir dir;
  auto store = OpenStore(dir);
  SubmitKey key{"ci-4711-2", "config A", ""};
  REQUIRE_OK(Create(*store, "0000000a", &key));
  CHECK(key.existing_invocation_id.empty());

  std::vector<EventRecord> events;
  SubmitKey again{"ci-4711-2", "config A", ""};
  REQUIRE_OK(Create(*store, "0000000b", &again, &events));
  CHECK(again.existing_invocation_id == "0000000a");
  CHECK(events.empty());
  const std::string db = dir / "state/evald.db";
  CHECK(CountRows(db, "invocations") == 1);
  CHECK(CountRows(db, "jobs") == 2);
  CHECK(CountRows(db, "events") == 1);
  CHECK(CountRows(db, "submit_keys") == 1);
  CHECK_FALSE(store->GetInvocation("0000000b").ok());

  // Another key is another invocation.
  SubmitKey other{"ci-4711-3", "config A", ""};
  REQUIRE_OK(Create(*store, "0000000c", &other));
  CHECK(other.existing_invocation_id.empty());
  CHECK(CountRows(db, "invocations") == 2);
}

TEST_CASE("A key reused for a different request is refused naming its invocation") {
  TempDir dir;
  auto store = OpenStore(dir);
  SubmitKey key{"k1", "config A", ""};
  REQUIRE_OK(Create(*store, "0000000a", &key));
  SubmitKey reuse{"k1", "config B", ""};
  absl::Status s = Create(*store, "0000000b", &reuse);
  REQUIRE_CODE(s, absl::StatusCode::kFailedPrecondition);
  CHECK(Contains(std::string(s.message()), "idempotency key 'k1'"));
  CHECK(Contains(std::string(s.message()), "0000000a"));
  CHECK(reuse.existing_invocation_id.empty());
  CHECK(CountRows(dir / "state/evald.db", "invocations") == 1);
}

TEST_CASE("A key is stored only with its invocation") {
  TempDir dir;
  auto store = OpenStore(dir);
  REQUIRE_OK(Create(*store, "0000000a", nullptr));
  // The invocation insert fails (id taken): the key must not be left behind.
  SubmitKey key{"k1", "config A", ""};
  REQUIRE_CODE(Create(*store, "0000000a", &key), absl::StatusCode::kAlreadyExists);
  CHECK(CountRows(dir / "state/evald.db", "submit_keys") == 0);
  REQUIRE_OK(Create(*store, "0000000b", &key));
  CHECK(key.existing_invocation_id.empty());
  auto row = Raw(dir / "state/evald.db")
                 ->execAndGet("SELECT invocation_id FROM submit_keys WHERE key = 'k1'")
                 .getString();
  CHECK(row == "0000000b");
  // Only the fingerprint of the request is stored.
  auto sha = Raw(dir / "state/evald.db")
                 ->execAndGet("SELECT request_sha256 FROM submit_keys WHERE key = 'k1'")
                 .getString();
  CHECK(sha == SubmitKeyRepository::Sha256Hex("config A"));
  CHECK(sha.size() == 64);

  SubmitKey empty{"", "config A", ""};
  REQUIRE_CODE(Create(*store, "0000000c", &empty), absl::StatusCode::kInvalidArgument);
}

TEST_CASE("A schema version 1 database gets the submit_keys table and keeps its data") {
  TempDir dir;
  const std::string db = dir / "state/evald.db";
  {
    auto store = OpenStore(dir);
    REQUIRE_OK(Create(*store, "0000000a", nullptr));
  }
  {
    auto raw = Raw(db);
    raw->exec("DROP TABLE submit_keys");
    // What versions 4 to 6 added, so the file is a real version 1 file (v3 is IF NOT EXISTS).
    raw->exec("DROP TABLE invocation_tasks");
    raw->exec("DROP TABLE tokens");
    raw->exec("DROP INDEX invocations_by_owner");
    raw->exec("ALTER TABLE invocations DROP COLUMN owner");
    raw->exec("ALTER TABLE events DROP COLUMN actor");
    raw->exec("PRAGMA user_version=1");
  }
  auto store = OpenStore(dir);
  CHECK(store->schema_version() >= 2);
  CHECK(Raw(db)->tableExists("submit_keys"));
  REQUIRE_OK(store->GetInvocation("0000000a"));
  SubmitKey key{"k1", "config A", ""};
  REQUIRE_OK(Create(*store, "0000000b", &key));
}

TEST_CASE("Database failures are tagged and refusals of the request are not") {
  for (int code : {SQLITE_IOERR_WRITE, SQLITE_CORRUPT, SQLITE_READONLY, SQLITE_FULL, SQLITE_BUSY,
                   SQLITE_NOTADB, SQLITE_ERROR}) {
    INFO(code);
    CHECK(IsStorageFailure(SqliteCodeToStatus(code, "msg", "/s/evald.db", "insert")));
  }
  CHECK(SqliteCodeToStatus(SQLITE_CORRUPT, "m", "/s/evald.db", "x").code() ==
        absl::StatusCode::kDataLoss);
  CHECK_FALSE(IsStorageFailure(SqliteCodeToStatus(SQLITE_CONSTRAINT_UNIQUE, "m", "p", "x")));
  CHECK_FALSE(IsStorageFailure(SqliteCodeToStatus(SQLITE_TOOBIG, "m", "p", "x")));
  CHECK_FALSE(IsStorageFailure(absl::NotFoundError("no invocation 0000000a")));
  CHECK_FALSE(IsStorageFailure(absl::OkStatus()));
}

}  // namespace
}  // namespace evald::storage
