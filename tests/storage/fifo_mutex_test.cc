// FifoMutex grants the lock in arrival order.
#include "storage/fifo_mutex.h"

#include <catch2/catch.hpp>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"

namespace evald::storage {
namespace {

TEST_CASE("FifoMutex hands the lock over in arrival order") {
  FifoMutex mu;
  absl::Mutex order_mu;
  std::vector<int> order;
  mu.Lock();
  std::vector<std::thread> threads;
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&, i] {
      FifoLock lock(&mu);
      absl::MutexLock l(&order_mu);
      order.push_back(i);
    });
    // Wait until thread i holds its ticket before starting the next one.
    while (mu.QueueLengthForTest() != static_cast<uint64_t>(i + 2))
      absl::SleepFor(absl::Milliseconds(1));
  }
  mu.Unlock();
  for (std::thread& t : threads) t.join();
  REQUIRE(order == std::vector<int>{0, 1, 2, 3, 4, 5});
  REQUIRE(mu.QueueLengthForTest() == 0);
}

}  // namespace
}  // namespace evald::storage
