// LastStates: the bounded memo of raw backend states that the SLURM and Lepton executors show in
// Describe.
#include "executors/common/last_states.h"

#include <catch2/catch.hpp>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"

namespace evald::executors {
namespace {

TEST_CASE("LastStates returns the state before and keeps live jobs however many ended") {
  LastStates states(3);
  CHECK(states.Set("live", "PENDING").empty());
  CHECK(states.Set("live", "RUNNING") == "PENDING");
  for (int i = 0; i < 10; ++i) {
    states.Set(absl::StrCat("done", i), "RUNNING");
    CHECK(states.Set(absl::StrCat("done", i), "COMPLETED", /*final=*/true) == "RUNNING");
  }
  CHECK(states.Get("live") == "RUNNING");  // never final: never forgotten
  CHECK_FALSE(states.Get("done6").has_value());
  CHECK(states.Get("done7") == "COMPLETED");
  CHECK(states.Get("done9") == "COMPLETED");
  CHECK(states.size() == 4);  // the live job and the newest 3 that ended
}

TEST_CASE("LastStates counts a job reported final on several polls once") {
  LastStates states(2);
  states.Set("a", "COMPLETED", true);
  states.Set("b", "FAILED", true);
  for (int i = 0; i < 5; ++i) states.Set("b", "FAILED", true);  // polled again before recorded
  CHECK(states.Get("a") == "COMPLETED");
  states.Set("c", "COMPLETED", true);
  CHECK_FALSE(states.Get("a").has_value());
  CHECK(states.Get("b") == "FAILED");
  CHECK(states.Get("c") == "COMPLETED");
}

TEST_CASE("LastStates is safe from a writer and readers at once") {
  LastStates states(100);
  std::thread writer([&] {
    for (int i = 0; i < 5000; ++i) states.Set(absl::StrCat("j", i), "COMPLETED", true);
  });
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r) {
    readers.emplace_back([&] {
      for (int i = 0; i < 5000; ++i) (void)states.Get(absl::StrCat("j", i));
    });
  }
  writer.join();
  for (std::thread& t : readers) t.join();
  CHECK(states.size() == 100);
  CHECK(states.Get("j4999") == "COMPLETED");
}

}  // namespace
}  // namespace evald::executors
