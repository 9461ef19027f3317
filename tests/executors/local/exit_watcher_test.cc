#include "executors/local/exit_watcher.h"

#include <signal.h>

#include <atomic>
#include <catch2/catch.hpp>

#include "tests/executors/local/test_util.h"

namespace evald::executors {
namespace {

using testing::Spit;
using testing::TempDir;
using testing::WaitFor;

TEST_CASE("the exit watcher calls back once per watched process that exits") {
  TempDir dir;
  ExitWatcher exits;
  std::atomic<int> calls{0};
  exits.SetCallback([&] { ++calls; });
  // The process waits for a file, so the watch is in place before it exits.
  const std::string go = dir.path() + "/go";
  absl::StatusOr<ProcessId> p =
      SpawnDetached({.argv = {"sh", "-c", "while [ ! -e \"$1\" ]; do sleep 0.01; done", "sh", go},
                     .cwd = dir.path()});
  REQUIRE(p.ok());
  REQUIRE(exits.Watch(*p).ok());
  CHECK(exits.Watch(*p).ok());  // watching twice is one watch
  CHECK(exits.watched() == 1);
  CHECK(calls == 0);
  Spit(go, "");
  REQUIRE(WaitFor([&] { return calls.load() == 1; }));
  CHECK(exits.watched() == 0);
  CHECK(Inspect(*p).status == ProcessStatus::kExited);  // still ours to reap

  // A recycled pid (other start time) or a process that is gone is not watched.
  absl::StatusOr<ProcessId> q = SpawnDetached({.argv = {"sleep", "30"}, .cwd = dir.path()});
  REQUIRE(q.ok());
  CHECK(exits.Watch({q->pid, q->start_ticks + 1}).code() == absl::StatusCode::kNotFound);
  SignalGroup(q->pid, SIGKILL).IgnoreError();
  REQUIRE(WaitFor([&] { return Inspect(*q).status != ProcessStatus::kAlive; }));
  CHECK(exits.Watch(*q).code() == absl::StatusCode::kNotFound);
  CHECK(calls == 1);
}

TEST_CASE("after the callback is cleared, exits call nobody") {
  TempDir dir;
  ExitWatcher exits;
  std::atomic<int> calls{0};
  exits.SetCallback([&] { ++calls; });
  exits.SetCallback(nullptr);
  absl::StatusOr<ProcessId> p = SpawnDetached({.argv = {"sleep", "0.05"}, .cwd = dir.path()});
  REQUIRE(p.ok());
  REQUIRE(exits.Watch(*p).ok());
  REQUIRE(WaitFor([&] { return exits.watched() == 0; }));
  CHECK(calls == 0);
}

}  // namespace
}  // namespace evald::executors
