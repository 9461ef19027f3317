// ToProto(EventRecord): the API's Event carries the states as enums next to their text forms.
#include "daemon/proto_convert.h"

#include <catch2/catch.hpp>

namespace evald::daemon {
namespace {

EventRecord Make(std::string kind, std::string from, std::string to) {
  EventRecord e;
  e.seq = 7;
  e.time_ms = 1000;
  e.invocation_id = "1a2b3c4d";
  e.job_id = "1a2b3c4d.0";
  e.kind = std::move(kind);
  e.from_state = std::move(from);
  e.to_state = std::move(to);
  e.message = "m";
  return e;
}

TEST_CASE("events carry job states as enums and keep the text") {
  v1::Event out;
  ToProto(Make("job.state", "running", "succeeded"), &out);
  CHECK(out.from_state() == "running");
  CHECK(out.to_state() == "succeeded");
  CHECK(out.from_job_state() == v1::JOB_STATE_RUNNING);
  CHECK(out.to_job_state() == v1::JOB_STATE_SUCCEEDED);
  CHECK(out.from_deployment_state() == v1::DEPLOYMENT_STATE_UNSPECIFIED);
  CHECK(out.to_deployment_state() == v1::DEPLOYMENT_STATE_UNSPECIFIED);
  CHECK(out.seq() == 7);
  CHECK(out.message() == "m");

  v1::Event starting;
  ToProto(Make("job.starting", "pending", "pending"), &starting);
  CHECK(starting.from_job_state() == v1::JOB_STATE_PENDING);
  CHECK(starting.to_job_state() == v1::JOB_STATE_PENDING);

  // Invocation states are in the job vocabulary; a missing side stays UNSPECIFIED.
  v1::Event submitted;
  ToProto(Make("invocation.submitted", "", "pending"), &submitted);
  CHECK(submitted.from_job_state() == v1::JOB_STATE_UNSPECIFIED);
  CHECK(submitted.to_job_state() == v1::JOB_STATE_PENDING);

  v1::Event kill;
  ToProto(Make("job.kill_requested", "", ""), &kill);
  CHECK(kill.from_job_state() == v1::JOB_STATE_UNSPECIFIED);
  CHECK(kill.to_job_state() == v1::JOB_STATE_UNSPECIFIED);
}

TEST_CASE("deployment events carry deployment states, not job states") {
  v1::Event out;
  // "failed" is a name in both vocabularies: the kind decides.
  ToProto(Make("deployment.state", "starting", "failed"), &out);
  CHECK(out.from_deployment_state() == v1::DEPLOYMENT_STATE_STARTING);
  CHECK(out.to_deployment_state() == v1::DEPLOYMENT_STATE_FAILED);
  CHECK(out.from_job_state() == v1::JOB_STATE_UNSPECIFIED);
  CHECK(out.to_job_state() == v1::JOB_STATE_UNSPECIFIED);
  CHECK(out.to_state() == "failed");
}

TEST_CASE("a state name that is not a state stays UNSPECIFIED") {
  v1::Event out;
  ToProto(Make("job.state", "bogus", "RUNNING"), &out);
  CHECK(out.from_job_state() == v1::JOB_STATE_UNSPECIFIED);
  CHECK(out.to_job_state() == v1::JOB_STATE_UNSPECIFIED);
  CHECK(out.from_state() == "bogus");
}

}  // namespace
}  // namespace evald::daemon
