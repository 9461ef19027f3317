// `evalctl admin tokens create|ls|revoke` and `ls runs --mine/--user` against a scripted API.
#include <catch2/catch.hpp>

#include "absl/strings/match.h"
#include "nlohmann/json.hpp"
#include "tests/cli/fake_api.h"

namespace evald::cli::testing {
namespace {

class TokenApi : public FakeApi {
 public:
  std::vector<v1::CreateTokenRequest> creates;
  std::vector<v1::RevokeTokenRequest> revokes;
  absl::Status CreateToken(const v1::CreateTokenRequest& req,
                           v1::CreateTokenResponse* resp) override {
    creates.push_back(req);
    resp->set_token("evt_value-shown-once");
    resp->mutable_info()->set_id("a1b2c3d4e5f6");
    resp->mutable_info()->set_user(req.user());
    resp->mutable_info()->set_role(req.role());
    return absl::OkStatus();
  }
  absl::Status ListTokens(const v1::ListTokensRequest&, v1::ListTokensResponse* resp) override {
    v1::TokenInfo* t = resp->add_tokens();
    t->set_id("a1b2c3d4e5f6");
    t->set_user("ci-nightly");
    t->set_role("user");
    t->set_created_ms(1700000000000);
    return absl::OkStatus();
  }
  absl::Status RevokeToken(const v1::RevokeTokenRequest& req,
                           v1::RevokeTokenResponse* resp) override {
    revokes.push_back(req);
    resp->add_revoked()->set_id(req.id().empty() ? "x" : req.id());
    return absl::OkStatus();
  }
};

TEST_CASE("admin tokens create sends user, role and expiry and prints the value once on stdout") {
  TokenApi api;
  Harness h(&api);
  AdminTokensOptions o;
  o.user = "ci-nightly";
  o.role = "viewer";
  o.expires = "90d";
  REQUIRE(RunAdminTokensCreate(h.ctx, o) == kExitOk);
  REQUIRE(api.creates.size() == 1);
  CHECK(api.creates[0].user() == "ci-nightly");
  CHECK(api.creates[0].role() == "viewer");
  CHECK(api.creates[0].expires_in_seconds() == 90 * 86400);
  CHECK(h.out.str() == "evt_value-shown-once\n");
  CHECK(absl::StrContains(h.err.str(), "Shown once"));

  o.expires = "ninety days";
  CHECK(RunAdminTokensCreate(h.ctx, o) == kExitBadInput);
  CHECK(api.creates.size() == 1);
  CHECK(ParseExpiry("12h").value() == 12 * 3600);
  CHECK_FALSE(ParseExpiry("0d").ok());
  CHECK_FALSE(ParseExpiry("5y").ok());
}

TEST_CASE("admin tokens ls shows ids and users, revoke takes an id or --user, not both") {
  TokenApi api;
  Harness h(&api);
  AdminTokensOptions o;
  REQUIRE(RunAdminTokensList(h.ctx, o) == kExitOk);
  CHECK(absl::StrContains(h.out.str(), "a1b2c3d4e5f6  ci-nightly"));
  AdminTokensOptions r;
  CHECK(RunAdminTokensRevoke(h.ctx, r) == kExitBadInput);
  r.id = "a1b2c3d4e5f6";
  r.user = "bob";
  CHECK(RunAdminTokensRevoke(h.ctx, r) == kExitBadInput);
  r.user.clear();
  REQUIRE(RunAdminTokensRevoke(h.ctx, r) == kExitOk);
  REQUIRE(api.revokes.size() == 1);
  CHECK(api.revokes[0].id() == "a1b2c3d4e5f6");
}

TEST_CASE("ls runs --mine and --user NAME ask evald for those owners") {
  FakeApi api;
  Harness h(&api);
  LsRunsOptions o;
  o.mine = true;
  REQUIRE(RunLsRuns(h.ctx, o) == kExitOk);
  o.mine = false;
  o.user = "alice";
  REQUIRE(RunLsRuns(h.ctx, o) == kExitOk);
  REQUIRE(api.lists.size() == 2);
  CHECK(api.lists[0].mine());
  CHECK(api.lists[1].owner() == "alice");
  o.mine = true;
  CHECK(RunLsRuns(h.ctx, o) == kExitBadInput);
}

}  // namespace
}  // namespace evald::cli::testing
