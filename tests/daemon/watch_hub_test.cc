#include "daemon/watch_hub.h"

#include <thread>

#include <catch2/catch.hpp>

namespace evald::daemon {
namespace {

TEST_CASE("waiters wake on a change and time out without one") {
  WatchHub hub;
  uint64_t g = hub.generation();
  CHECK(hub.WaitForChange(g, absl::Milliseconds(10)) == g);
  std::thread t([&] { hub.NotifyChanged(); });
  uint64_t after = hub.WaitForChange(g, absl::Seconds(30));
  t.join();
  CHECK(after == g + 1);
}

TEST_CASE("progress is kept per job and reported once per change") {
  WatchHub hub;
  uint64_t g = hub.generation();
  hub.PublishProgress("inv1", "inv1.0", {.done = 3, .total = 10});
  hub.PublishProgress("inv2", "inv2.0", {.done = 1});
  auto changed = hub.ProgressSince("inv1", g);
  REQUIRE(changed.size() == 1);
  CHECK(changed[0].first == "inv1.0");
  CHECK(changed[0].second.done == 3);
  CHECK(hub.ProgressSince("inv1", hub.generation()).empty());
  hub.Forget("inv1");
  CHECK(hub.ProgressSince("inv1", 0).empty());
}

TEST_CASE("shutdown releases waiters at once") {
  WatchHub hub;
  std::thread t([&] { hub.Shutdown(); });
  hub.WaitForChange(hub.generation() + 100, absl::Hours(1));
  t.join();
  CHECK(hub.shut_down());
}

}  // namespace
}  // namespace evald::daemon
