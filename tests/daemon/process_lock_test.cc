#include "daemon/process_lock.h"

#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "tests/executors/local/test_util.h"

namespace evald::daemon {
namespace {

using evald::testing::Slurp;
using evald::testing::TempDir;

// flock() locks belong to open file descriptions, so a second Acquire in this same process
// conflicts exactly as a second evald would.
TEST_CASE("the pidfile lock admits one holder and names it") {
  TempDir dir;
  std::string path = dir.path() + "/evald.pid";
  {
    absl::StatusOr<ProcessLock> first = ProcessLock::Acquire(path);
    REQUIRE(first.ok());
    CHECK(Slurp(path) == std::to_string(getpid()) + "\n");
    absl::StatusOr<ProcessLock> second = ProcessLock::Acquire(path);
    REQUIRE_FALSE(second.ok());
    CHECK(second.status().code() == absl::StatusCode::kFailedPrecondition);
    CHECK(second.status().message().find("another evald (pid " + std::to_string(getpid()) +
                                         ") is already running with state dir " + dir.path()) !=
          std::string::npos);
  }
  CHECK(ProcessLock::Acquire(path).ok());  // released with its holder
}

TEST_CASE("a lock left by a killed process does not block") {
  TempDir dir;
  std::string path = dir.path() + "/evald.pid";
  pid_t child = fork();
  if (child == 0) {
    absl::StatusOr<ProcessLock> lock = ProcessLock::Acquire(path);
    _exit(lock.ok() ? 0 : 1);  // dies holding it; the kernel drops the lock
  }
  int status = 0;
  waitpid(child, &status, 0);
  REQUIRE(WEXITSTATUS(status) == 0);
  CHECK(ProcessLock::Acquire(path).ok());
}

}  // namespace
}  // namespace evald::daemon
