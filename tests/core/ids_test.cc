#include "core/ids.h"

#include <set>

#include <catch2/catch.hpp>

namespace evald {
namespace {

TEST_CASE("invocation ids are 8 lower-case hex digits and differ") {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    std::string id = NewInvocationId();
    REQUIRE(IsValidInvocationId(id));
    seen.insert(id);
  }
  CHECK(seen.size() > 990);
  CHECK_FALSE(IsValidInvocationId("ABCDEF12"));
  CHECK_FALSE(IsValidInvocationId("abcdef1"));
  CHECK_FALSE(IsValidInvocationId("abcdefgh"));
}

TEST_CASE("job ids parse back into invocation and index") {
  CHECK(JobId("3f9a0c1e", 2) == "3f9a0c1e.2");
  auto parsed = ParseJobId("3f9a0c1e.12");
  REQUIRE(parsed.has_value());
  CHECK(parsed->first == "3f9a0c1e");
  CHECK(parsed->second == 12);
  CHECK_FALSE(ParseJobId("3f9a0c1e").has_value());
  CHECK_FALSE(ParseJobId("3f9a0c1e.d0").has_value());
  CHECK_FALSE(ParseJobId("3f9a0c1e.-1").has_value());
  CHECK_FALSE(ParseJobId("xyz.1").has_value());
  CHECK(DeploymentId("3f9a0c1e", 0) == "3f9a0c1e.d0");
  CHECK(InvocationIdOf("3f9a0c1e.d0") == "3f9a0c1e");
  CHECK(InvocationIdOf("3f9a0c1e") == "3f9a0c1e");
}

}  // namespace
}  // namespace evald
