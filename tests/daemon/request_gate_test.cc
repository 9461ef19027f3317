#include "daemon/request_gate.h"

#include <catch2/catch.hpp>
#include <thread>

#include "absl/strings/match.h"

namespace evald::daemon {
namespace {

TEST_CASE("a full gate refuses with RESOURCE_EXHAUSTED, and a released slot lets one in") {
  RequestGate gate(2, absl::Milliseconds(10));
  auto a = gate.Acquire();
  auto b = gate.Acquire();
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK(gate.in_use() == 2);
  auto c = gate.Acquire();
  REQUIRE_FALSE(c.ok());
  CHECK(c.status().code() == absl::StatusCode::kResourceExhausted);
  CHECK(absl::StrContains(c.status().message(), "evald is busy: 2 submitted configs"));
  a->Release();
  a->Release();  // twice is once
  CHECK(gate.in_use() == 1);
  {
    auto d = gate.Acquire();
    REQUIRE(d.ok());
    d->TrimAtEnd();
    CHECK(gate.in_use() == 2);
    RequestGate::Slot moved = std::move(*d);
    CHECK(gate.in_use() == 2);
  }
  CHECK(gate.in_use() == 1);
}

TEST_CASE("a waiter gets the slot released while it waits") {
  RequestGate gate(1, absl::Hours(1));
  auto held = gate.Acquire();
  REQUIRE(held.ok());
  std::thread releaser([&] { held->Release(); });
  auto next = gate.Acquire();  // blocks until the other thread releases
  releaser.join();
  REQUIRE(next.ok());
  CHECK(gate.in_use() == 1);
}

}  // namespace
}  // namespace evald::daemon
