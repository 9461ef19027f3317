// The tokens table (token_repository.h) and ownership columns (schema v4, v5) through the Store.
#include <catch2/catch.hpp>

#include "storage/job_repository.h"
#include "tests/storage/storage_test_util.h"

namespace evald::storage {
namespace {

using testing::Contains;
using testing::MakeInvocation;
using testing::MakeJobs;
using testing::Move;
using testing::OpenStore;
using testing::TempDir;

TokenRecord MakeToken(const std::string& id, const std::string& user, int64_t created_ms) {
  TokenRecord t;
  t.id = id;
  t.hash = std::string(64, id[0]);
  t.user = user;
  t.role = "user";
  t.created_by = "root";
  t.created_ms = created_ms;
  return t;
}

TEST_CASE("Tokens are stored by hash, listed, revoked once and touched") {
  TempDir dir;
  auto store = OpenStore(dir);
  REQUIRE_OK(store->CreateToken(MakeToken("a1", "alice", 10)));
  REQUIRE_OK(store->CreateToken(MakeToken("b2", "bob", 20)));
  REQUIRE_OK(store->CreateToken(MakeToken("c3", "alice", 30)));
  REQUIRE_CODE(store->CreateToken(MakeToken("a1", "eve", 40)), absl::StatusCode::kAlreadyExists);

  auto found = store->FindTokenByHash(std::string(64, 'b'));
  REQUIRE_OK(found);
  REQUIRE(found->has_value());
  CHECK((*found)->user == "bob");
  auto none = store->FindTokenByHash(std::string(64, 'z'));
  REQUIRE_OK(none);
  CHECK_FALSE(none->has_value());

  auto alice = store->ListTokens("alice");
  REQUIRE_OK(alice);
  REQUIRE(alice->size() == 2);
  CHECK((*alice)[0].id == "a1");
  CHECK((*alice)[1].id == "c3");
  auto all = store->ListTokens("");
  REQUIRE_OK(all);
  CHECK(all->size() == 3);

  auto revoked = store->RevokeToken("b2", 50);
  REQUIRE_OK(revoked);
  CHECK(revoked->revoked_ms == 50);
  REQUIRE_CODE(store->RevokeToken("b2", 60), absl::StatusCode::kFailedPrecondition);
  REQUIRE_CODE(store->RevokeToken("zz", 60), absl::StatusCode::kNotFound);
  auto by_user = store->RevokeUserTokens("alice", 70);
  REQUIRE_OK(by_user);
  CHECK(by_user->size() == 2);
  by_user = store->RevokeUserTokens("alice", 80);
  REQUIRE_OK(by_user);
  CHECK(by_user->empty());

  REQUIRE_OK(store->TouchToken("a1", 99));
  found = store->FindTokenByHash(std::string(64, 'a'));
  REQUIRE_OK(found);
  CHECK((*found)->last_used_ms == 99);
  CHECK((*found)->revoked_ms == 70);
}

TEST_CASE("An invocation keeps its owner, lists filter by it, and events name their actor") {
  TempDir dir;
  auto store = OpenStore(dir);
  for (const auto& [id, owner] : std::vector<std::pair<std::string, std::string>>{
           {"0000000a", "alice"}, {"0000000b", "bob"}, {"0000000c", "alice"}}) {
    InvocationRecord inv = MakeInvocation(id, 1000);
    inv.owner = owner;
    std::vector<EventRecord> events;
    REQUIRE_OK(store->CreateInvocation(inv, MakeJobs(inv), {}, {}, 1000, &events));
    REQUIRE(events.size() == 1);
    CHECK(events[0].actor == owner);
  }
  auto inv = store->GetInvocation("0000000b");
  REQUIRE_OK(inv);
  CHECK(inv->invocation.owner == "bob");

  InvocationFilter filter;
  filter.owner = "alice";
  auto page = store->ListInvocations(filter);
  REQUIRE_OK(page);
  REQUIRE(page->invocations.size() == 2);
  for (const InvocationRecord& r : page->invocations) CHECK(r.owner == "alice");

  std::vector<EventRecord> appended;
  REQUIRE_OK(store->RequestStop("0000000b", 2000, &appended, "carol"));
  auto events = store->ListEvents("0000000b", 0, 100);
  REQUIRE_OK(events);
  REQUIRE(events->size() == 2);
  CHECK((*events)[0].actor == "bob");
  CHECK((*events)[1].kind == "invocation.kill_requested");
  CHECK((*events)[1].actor == "carol");
}

TEST_CASE("A user's active jobs are counted over their invocations, from the active-jobs index") {
  TempDir dir;
  auto store = OpenStore(dir);
  for (const auto& [id, owner] : std::vector<std::pair<std::string, std::string>>{
           {"0000001a", "alice"}, {"0000001b", "bob"}, {"0000001c", "alice"}}) {
    InvocationRecord inv = MakeInvocation(id, 1000, "local", 3);
    inv.owner = owner;
    REQUIRE_OK(store->CreateInvocation(inv, MakeJobs(inv), {}, {}, 1000, nullptr));
  }
  CHECK(*store->CountActiveJobsOfOwner("alice") == 6);
  CHECK(*store->CountActiveJobsOfOwner("bob") == 3);
  CHECK(*store->CountActiveJobsOfOwner("carol") == 0);
  REQUIRE_OK(
      store->TransitionJob(Move("0000001a.0", JobState::kPending, JobState::kRunning), 1100));
  CHECK(*store->CountActiveJobsOfOwner("alice") == 6);  // running still counts
  REQUIRE_OK(
      store->TransitionJob(Move("0000001a.0", JobState::kRunning, JobState::kSucceeded), 1200));
  REQUIRE_OK(store->TransitionJob(Move("0000001c.2", JobState::kPending, JobState::kFailed), 1200));
  CHECK(*store->CountActiveJobsOfOwner("alice") == 4);

  auto raw = testing::Raw(dir / "state/evald.db");
  SQLite::Statement q(*raw, "EXPLAIN QUERY PLAN " + JobRepository::CountActiveOfOwnerSql());
  std::string plan;
  while (q.executeStep()) plan += q.getColumn(3).getString() + "\n";
  INFO(plan);
  CHECK(Contains(plan, "jobs_active"));
  CHECK(Contains(plan, "SEARCH i USING INDEX sqlite_autoindex_invocations_1 (id=?)"));
}

}  // namespace
}  // namespace evald::storage
