#include "core/lifecycle.h"

#include <catch2/catch.hpp>

namespace evald {
namespace {

TEST_CASE("job states round-trip through their names") {
  for (JobState s : {JobState::kPending, JobState::kSubmitted, JobState::kRunning,
                     JobState::kSucceeded, JobState::kFailed, JobState::kKilled, JobState::kLost}) {
    REQUIRE(ParseJobState(ToString(s)) == s);
  }
  REQUIRE_FALSE(ParseJobState("success").has_value());
  REQUIRE(ParseExitReason("killed_by_user") == ExitReason::kKilledByUser);
  REQUIRE(ParseDeploymentState("healthy") == DeploymentState::kHealthy);
}

TEST_CASE("the job machine allows its edges and refuses the rest") {
  CHECK(ValidateTransition(JobState::kPending, JobState::kSubmitted).ok());
  CHECK(ValidateTransition(JobState::kSubmitted, JobState::kRunning).ok());
  CHECK(ValidateTransition(JobState::kRunning, JobState::kSucceeded).ok());
  CHECK(ValidateTransition(JobState::kRunning, JobState::kKilled).ok());
  CHECK(ValidateTransition(JobState::kKilled, JobState::kPending).ok());  // resume

  absl::Status s = ValidateTransition(JobState::kSucceeded, JobState::kRunning);
  CHECK(s.code() == absl::StatusCode::kInternal);
  CHECK(s.message() == "illegal job transition succeeded -> running");
  CHECK_FALSE(ValidateTransition(JobState::kSucceeded, JobState::kPending).ok());
  CHECK_FALSE(ValidateTransition(JobState::kRunning, JobState::kRunning).ok());
  CHECK_FALSE(ValidateTransition(JobState::kRunning, JobState::kPending).ok());
}

TEST_CASE("the deployment machine allows its edges and refuses the rest") {
  CHECK(ValidateTransition(DeploymentState::kPending, DeploymentState::kStarting).ok());
  CHECK(ValidateTransition(DeploymentState::kStarting, DeploymentState::kHealthy).ok());
  CHECK(ValidateTransition(DeploymentState::kHealthy, DeploymentState::kStopping).ok());
  CHECK(ValidateTransition(DeploymentState::kStopping, DeploymentState::kStopped).ok());
  CHECK_FALSE(ValidateTransition(DeploymentState::kStopped, DeploymentState::kHealthy).ok());
  CHECK_FALSE(ValidateTransition(DeploymentState::kPending, DeploymentState::kHealthy).ok());
}

TEST_CASE("terminal states") {
  CHECK(IsTerminal(JobState::kLost));
  CHECK_FALSE(IsTerminal(JobState::kSubmitted));
  CHECK(IsTerminal(DeploymentState::kFailed));
  CHECK_FALSE(IsTerminal(DeploymentState::kStopping));
}

TEST_CASE("invocation state is derived from its jobs") {
  using S = JobState;
  CHECK(DeriveInvocationState({}) == S::kSucceeded);
  CHECK(DeriveInvocationState({S::kPending, S::kPending}) == S::kPending);
  CHECK(DeriveInvocationState({S::kSubmitted, S::kPending}) == S::kSubmitted);
  CHECK(DeriveInvocationState({S::kRunning, S::kPending}) == S::kRunning);
  // Sequential mode: the first job done, the next not started yet.
  CHECK(DeriveInvocationState({S::kSucceeded, S::kPending}) == S::kRunning);
  CHECK(DeriveInvocationState({S::kSucceeded, S::kSucceeded}) == S::kSucceeded);
  CHECK(DeriveInvocationState({S::kSucceeded, S::kKilled}) == S::kKilled);
  CHECK(DeriveInvocationState({S::kKilled, S::kFailed}) == S::kFailed);
  CHECK(DeriveInvocationState({S::kSucceeded, S::kLost}) == S::kFailed);
}

}  // namespace
}  // namespace evald
