// The dashboard API's pure parts (daemon/dashboard/http_util.h): status mapping, error bodies,
// query parsing and the session cookie.
#include "daemon/dashboard/http_util.h"

#include <catch2/catch.hpp>

#include "nlohmann/json.hpp"

namespace evald::daemon {
namespace {

TEST_CASE("dashboard: absl codes map to HTTP statuses") {
  CHECK(HttpStatusOf(absl::StatusCode::kOk) == 200);
  CHECK(HttpStatusOf(absl::StatusCode::kInvalidArgument) == 400);
  CHECK(HttpStatusOf(absl::StatusCode::kUnauthenticated) == 401);
  CHECK(HttpStatusOf(absl::StatusCode::kPermissionDenied) == 403);
  CHECK(HttpStatusOf(absl::StatusCode::kNotFound) == 404);
  CHECK(HttpStatusOf(absl::StatusCode::kFailedPrecondition) == 409);
  CHECK(HttpStatusOf(absl::StatusCode::kAlreadyExists) == 409);
  CHECK(HttpStatusOf(absl::StatusCode::kResourceExhausted) == 429);
  CHECK(HttpStatusOf(absl::StatusCode::kUnavailable) == 503);
  CHECK(HttpStatusOf(absl::StatusCode::kDeadlineExceeded) == 504);
  CHECK(HttpStatusOf(absl::StatusCode::kInternal) == 500);
  CHECK(HttpStatusOf(absl::StatusCode::kDataLoss) == 500);
}

TEST_CASE("dashboard: error bodies carry the message and the code name") {
  nlohmann::json j =
      nlohmann::json::parse(ErrorJson(absl::PermissionDeniedError("bob may not kill \"x\"")));
  CHECK(j["error"] == "bob may not kill \"x\"");
  CHECK(j["code"] == "PERMISSION_DENIED");
  // Invalid UTF-8 in a message is replaced, not thrown on.
  CHECK(nlohmann::json::parse(ErrorJson(absl::NotFoundError("no job \xff")))["code"] ==
        "NOT_FOUND");
}

TEST_CASE("dashboard: the invocation list query") {
  QueryParams p = {{"state", "running"}, {"executor", "LOCAL"}, {"owner", "alice"},
                   {"task", "arith"},    {"q", " 3fa9 "},      {"page_token", "tok"},
                   {"limit", "25"}};
  absl::StatusOr<v1::ListInvocationsRequest> r = ParseListQuery(p);
  REQUIRE(r.ok());
  CHECK(r->state() == v1::JOB_STATE_RUNNING);
  CHECK(r->executor() == "LOCAL");
  CHECK(r->owner() == "alice");
  CHECK(r->task() == "arith");
  CHECK(r->query() == "3fa9");
  CHECK(r->page_token() == "tok");
  CHECK(r->limit() == 25);

  CHECK(ParseListQuery({{"state", "JOB_STATE_KILLED"}})->state() == v1::JOB_STATE_KILLED);
  CHECK(ParseListQuery({})->limit() == 0);  // the core's default
  CHECK(ParseListQuery({{"state", "bogus"}}).status().code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK(ParseListQuery({{"state", "unspecified"}}).status().code() ==
        absl::StatusCode::kInvalidArgument);
  for (const char* bad : {"0", "1001", "-1", "ten"}) {
    INFO(bad);
    CHECK(ParseListQuery({{"limit", bad}}).status().code() == absl::StatusCode::kInvalidArgument);
  }
}

TEST_CASE("dashboard: compare ids, log specs and the session cookie") {
  absl::StatusOr<std::vector<std::string>> ids = ParseCompareIds("aaaaaaaa, bbbbbbbb,cccccccc");
  REQUIRE(ids.ok());
  CHECK(*ids == std::vector<std::string>{"aaaaaaaa", "bbbbbbbb", "cccccccc"});
  CHECK_FALSE(ParseCompareIds("aaaaaaaa").ok());
  CHECK_FALSE(ParseCompareIds("aaaaaaaa,").ok());
  CHECK_FALSE(ParseCompareIds("aaaaaaaa,aaaaaaaa").ok());

  absl::StatusOr<LogSpec> log = ParseLogSpec("aaaaaaaa.0:stderr");
  REQUIRE(log.ok());
  CHECK(log->job_id == "aaaaaaaa.0");
  CHECK(log->stream == "stderr");
  CHECK(ParseLogSpec("aaaaaaaa.1")->stream == "stdout");
  CHECK_FALSE(ParseLogSpec("aaaaaaaa.1:all").ok());
  CHECK_FALSE(ParseLogSpec(":stdout").ok());

  CHECK(CookieValue("a=1; evald_session=evt_abc-_x; b=2", "evald_session") == "evt_abc-_x");
  CHECK(CookieValue("xevald_session=no", "evald_session").empty());
  CHECK(CookieValue("", "evald_session").empty());
}

}  // namespace
}  // namespace evald::daemon
