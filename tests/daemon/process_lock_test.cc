#include "daemon/process_lock.h"

#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "tests/executors/local/test_util.h"

namespace evald::daemon {
namespace {

namespace fs = std::filesystem;
using evald::testing::Slurp;
using evald::testing::Spit;
using evald::testing::TempDir;

// flock() locks belong to open file descriptions, so a second Acquire in this same process
// conflicts exactly as a second evald would.
TEST_CASE("the state dir lock admits one holder and names it") {
  TempDir dir;
  std::string path = dir.path() + "/evald.pid";
  {
    absl::StatusOr<ProcessLock> first = ProcessLock::Acquire(dir.path());
    REQUIRE(first.ok());
    CHECK(Slurp(path) == std::to_string(getpid()) + "\n");
    absl::StatusOr<ProcessLock> second = ProcessLock::Acquire(dir.path());
    REQUIRE_FALSE(second.ok());
    CHECK(second.status().code() == absl::StatusCode::kFailedPrecondition);
    CHECK(second.status().message().find("another evald (pid " + std::to_string(getpid()) +
                                         ") is already running with state dir " + dir.path()) !=
          std::string::npos);
  }
  CHECK(Slurp(path).empty());              // a stopped evald is not named
  CHECK(ProcessLock::Acquire(dir.path()).ok());  // released with its holder
}

// The old lock was a flock on evald.pid: after `rm evald.pid` a second evald locked a new file
// and both ran the same jobs.
TEST_CASE("deleting or rewriting evald.pid does not release the lock") {
  TempDir dir;
  absl::StatusOr<ProcessLock> first = ProcessLock::Acquire(dir.path());
  REQUIRE(first.ok());
  fs::remove(dir.path() + "/evald.pid");
  absl::StatusOr<ProcessLock> second = ProcessLock::Acquire(dir.path());
  REQUIRE_FALSE(second.ok());
  CHECK(second.status().message().find("another evald (pid unknown: no evald.pid)") !=
        std::string::npos);
  Spit(dir.path() + "/evald.pid", "");
  CHECK_FALSE(ProcessLock::Acquire(dir.path()).ok());
  CHECK(first->CheckHeld().ok());
}

TEST_CASE("the lock check fails once the state dir or a pinned file is swapped out") {
  TempDir dir;
  std::string state = dir.path() + "/state";
  fs::create_directories(state);
  Spit(state + "/evald.db", "db");
  absl::StatusOr<ProcessLock> lock = ProcessLock::Acquire(state);
  REQUIRE(lock.ok());
  REQUIRE(lock->Pin(state + "/evald.db").ok());
  CHECK(lock->CheckHeld().ok());

  SECTION("the state dir moved and another took its place") {
    fs::rename(state, dir.path() + "/moved");
    fs::create_directories(state);
    absl::Status s = lock->CheckHeld();
    CHECK(s.code() == absl::StatusCode::kFailedPrecondition);
    CHECK(s.message().find("state dir " + state + " is no longer the directory") !=
          std::string::npos);
    // What is at the path now is free for another evald: that is why this one must stop.
    CHECK(ProcessLock::Acquire(state).ok());
    fs::remove_all(state);
    fs::rename(dir.path() + "/moved", state);
    CHECK(lock->CheckHeld().ok());
  }
  SECTION("the database was removed") {
    fs::remove(state + "/evald.db");
    CHECK(lock->CheckHeld().message().find(state + "/evald.db was removed") != std::string::npos);
  }
  SECTION("the database was replaced") {
    Spit(state + "/new.db", "other");
    fs::rename(state + "/new.db", state + "/evald.db");
    CHECK(lock->CheckHeld().message().find(state + "/evald.db was replaced") !=
          std::string::npos);
  }
}

TEST_CASE("a lock left by a killed process does not block") {
  TempDir dir;
  pid_t child = fork();
  if (child == 0) {
    absl::StatusOr<ProcessLock> lock = ProcessLock::Acquire(dir.path());
    _exit(lock.ok() ? 0 : 1);  // dies holding it; the kernel drops the lock
  }
  int status = 0;
  waitpid(child, &status, 0);
  REQUIRE(WEXITSTATUS(status) == 0);
  CHECK(ProcessLock::Acquire(dir.path()).ok());
}

}  // namespace
}  // namespace evald::daemon
