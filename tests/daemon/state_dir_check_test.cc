#include "daemon/state_dir_check.h"

#include <catch2/catch.hpp>
#include <filesystem>

#include "tests/executors/local/test_util.h"

namespace evald::daemon {
namespace {

namespace fs = std::filesystem;
using evald::testing::Slurp;
using evald::testing::Spit;
using evald::testing::TempDir;

bool Has(const absl::Status& s, const std::string& text) {
  return s.message().find(text) != std::string::npos;
}

TEST_CASE("a new state dir, or one whose first start failed early, needs no flag") {
  TempDir dir;
  CHECK(CheckDatabaseNotLost(dir.path(), false).ok());
  // A first start that died between creating the file and writing the schema.
  Spit(dir.path() + "/evald.db", "");
  Spit(dir.path() + "/evald.pid", "");
  CHECK(CheckDatabaseNotLost(dir.path(), false).ok());
}

TEST_CASE("a database with content is left to the database to judge") {
  TempDir dir;
  Spit(dir.path() + "/evald.db", "SQLite format 3");
  Spit(dir.path() + "/secrets.key", "k");
  CHECK(CheckDatabaseNotLost(dir.path(), false).ok());
}

TEST_CASE("an empty or missing database next to an earlier evald's files is refused") {
  TempDir dir;
  const std::string db = dir.path() + "/evald.db";
  Spit(dir.path() + "/secrets.key", "k");
  SECTION("0 bytes") {
    Spit(db, "");
    absl::Status s = CheckDatabaseNotLost(dir.path(), false);
    CHECK(s.code() == absl::StatusCode::kFailedPrecondition);
    CHECK(Has(s, "the database " + db + " is empty (0 bytes)"));
    CHECK(Has(s, "(secrets.key)"));
    CHECK(Has(s, "--initialize-db"));
    CHECK(fs::file_size(db) == 0);
  }
  SECTION("missing, with a write-ahead log left") {
    Spit(db + "-wal", "frames");
    absl::Status s = CheckDatabaseNotLost(dir.path(), false);
    CHECK(Has(s, "the database " + db + " is missing"));
    CHECK(Has(s, "(secrets.key, evald.db-wal)"));
    CHECK_FALSE(fs::exists(db));
    CHECK(Slurp(db + "-wal") == "frames");
  }
}

TEST_CASE("a lost database is accepted with --initialize-db, which moves its stale log aside") {
  TempDir dir;
  const std::string db = dir.path() + "/evald.db";
  Spit(db, "");
  Spit(db + "-wal", "frames");
  Spit(db + "-shm", "index");
  REQUIRE(CheckDatabaseNotLost(dir.path(), true).ok());
  CHECK(fs::file_size(db) == 0);
  CHECK_FALSE(fs::exists(db + "-wal"));
  CHECK_FALSE(fs::exists(db + "-shm"));
  int stale = 0;
  for (const auto& entry : fs::directory_iterator(dir.path())) {
    std::string name = entry.path().filename().string();
    if (name.rfind("evald.db-wal.stale-", 0) == 0) stale += Slurp(entry.path()) == "frames";
    if (name.rfind("evald.db-shm.stale-", 0) == 0) stale += Slurp(entry.path()) == "index";
  }
  CHECK(stale == 2);
  CHECK(CheckDatabaseNotLost(dir.path(), false).ok());  // nothing left to mark the old history
}

}  // namespace
}  // namespace evald::daemon
