#include "daemon/executor_driver.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "tests/daemon/fake_executor.h"
#include "tests/executors/local/test_util.h"

namespace evald::daemon {
namespace {

using evald::testing::FakeExecutor;
using evald::testing::WaitFor;

TEST_CASE("calls run in order on the driver's thread and results come back in order", "[driver]") {
  FakeExecutor fake("fake");
  std::atomic<int> done{0};
  ExecutorDriver driver(&fake, [&] { ++done; });
  std::vector<int> applied;
  for (int i = 0; i < 5; ++i) {
    driver.Queue("call", [i, &applied](executors::Executor&) -> ExecutorDriver::Apply {
      return [i, &applied] { applied.push_back(i); };
    });
  }
  REQUIRE(WaitFor([&] { return done == 5; }, 5));
  CHECK(driver.Pending() == 0);
  for (ExecutorDriver::Apply& apply : driver.TakeResults()) apply();
  CHECK(applied == std::vector<int>{0, 1, 2, 3, 4});
  CHECK(driver.TakeResults().empty());
}

TEST_CASE("a hung call shows as running, the caller never waits for it", "[driver]") {
  FakeExecutor fake("fake");
  fake.HangPolls(true);
  ExecutorDriver driver(&fake, [] {});
  absl::Time queued = absl::Now();
  driver.Queue("Poll", [](executors::Executor& ex) -> ExecutorDriver::Apply {
    ex.Poll({});
    return nullptr;
  });
  CHECK(absl::Now() - queued < absl::Milliseconds(100));
  REQUIRE(WaitFor([&] { return driver.Running().has_value(); }, 5));
  CHECK(driver.Running()->first == "Poll");
  CHECK(driver.Pending() == 1);
  // A call queued behind it waits; RunAndWait gives up after its wait.
  CHECK_FALSE(driver.RunAndWait(
      "Stop", [](executors::Executor&) {}, absl::Milliseconds(100)));
  fake.Release();
  REQUIRE(WaitFor([&] { return driver.Pending() == 0; }, 5));
  CHECK(driver.RunAndWait(
      "Stop", [](executors::Executor&) {}, absl::Seconds(5)));
  CHECK(driver.Shutdown(absl::Seconds(5)));
}

}  // namespace
}  // namespace evald::daemon
