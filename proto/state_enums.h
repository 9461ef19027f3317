// File: state_enums.h
//
// The one mapping between core's state vocabulary (core/lifecycle.h: JobState, DesiredState,
// ExitReason, DeploymentState, their names and IsTerminal) and the API's enums (evald.v1). The
// daemon fills messages with ToProto (daemon/proto_convert.cc); evalctl turns what it receives
// back into core's enums with FromProto and prints core's names (cli/format.cc). Names and
// terminality are never defined for the v1 enums themselves. Header-only, so neither side links
// anything new.
//
//   v1::JobState wire = ToProto(JobState::kRunning);
//   std::optional<JobState> s = FromProto(wire);  // nullopt for UNSPECIFIED or unknown values
#pragma once

#include <optional>

#include "core/lifecycle.h"
#include "evald/v1/evald.pb.h"

namespace evald {

inline v1::JobState ToProto(JobState s) {
  switch (s) {
    case JobState::kPending:
      return v1::JOB_STATE_PENDING;
    case JobState::kSubmitted:
      return v1::JOB_STATE_SUBMITTED;
    case JobState::kRunning:
      return v1::JOB_STATE_RUNNING;
    case JobState::kSucceeded:
      return v1::JOB_STATE_SUCCEEDED;
    case JobState::kFailed:
      return v1::JOB_STATE_FAILED;
    case JobState::kKilled:
      return v1::JOB_STATE_KILLED;
    case JobState::kLost:
      return v1::JOB_STATE_LOST;
  }
  return v1::JOB_STATE_UNSPECIFIED;
}

inline std::optional<JobState> FromProto(v1::JobState s) {
  switch (s) {
    case v1::JOB_STATE_PENDING:
      return JobState::kPending;
    case v1::JOB_STATE_SUBMITTED:
      return JobState::kSubmitted;
    case v1::JOB_STATE_RUNNING:
      return JobState::kRunning;
    case v1::JOB_STATE_SUCCEEDED:
      return JobState::kSucceeded;
    case v1::JOB_STATE_FAILED:
      return JobState::kFailed;
    case v1::JOB_STATE_KILLED:
      return JobState::kKilled;
    case v1::JOB_STATE_LOST:
      return JobState::kLost;
    default:
      return std::nullopt;
  }
}

inline v1::DesiredState ToProto(DesiredState s) {
  return s == DesiredState::kRun ? v1::DESIRED_STATE_RUN : v1::DESIRED_STATE_STOP;
}

inline std::optional<DesiredState> FromProto(v1::DesiredState s) {
  switch (s) {
    case v1::DESIRED_STATE_RUN:
      return DesiredState::kRun;
    case v1::DESIRED_STATE_STOP:
      return DesiredState::kStop;
    default:
      return std::nullopt;
  }
}

// kNone travels as EXIT_REASON_UNSPECIFIED (and comes back as kNone).
inline v1::ExitReason ToProto(ExitReason r) {
  switch (r) {
    case ExitReason::kNone:
      return v1::EXIT_REASON_UNSPECIFIED;
    case ExitReason::kExitCode:
      return v1::EXIT_REASON_EXIT_CODE;
    case ExitReason::kKilledByUser:
      return v1::EXIT_REASON_KILLED_BY_USER;
    case ExitReason::kTimeout:
      return v1::EXIT_REASON_TIMEOUT;
    case ExitReason::kPreempted:
      return v1::EXIT_REASON_PREEMPTED;
    case ExitReason::kNodeFailure:
      return v1::EXIT_REASON_NODE_FAILURE;
    case ExitReason::kEndpointUnhealthy:
      return v1::EXIT_REASON_ENDPOINT_UNHEALTHY;
    case ExitReason::kStartFailed:
      return v1::EXIT_REASON_START_FAILED;
    case ExitReason::kLost:
      return v1::EXIT_REASON_LOST;
    case ExitReason::kInternal:
      return v1::EXIT_REASON_INTERNAL;
  }
  return v1::EXIT_REASON_UNSPECIFIED;
}

inline std::optional<ExitReason> FromProto(v1::ExitReason r) {
  switch (r) {
    case v1::EXIT_REASON_UNSPECIFIED:
      return ExitReason::kNone;
    case v1::EXIT_REASON_EXIT_CODE:
      return ExitReason::kExitCode;
    case v1::EXIT_REASON_KILLED_BY_USER:
      return ExitReason::kKilledByUser;
    case v1::EXIT_REASON_TIMEOUT:
      return ExitReason::kTimeout;
    case v1::EXIT_REASON_PREEMPTED:
      return ExitReason::kPreempted;
    case v1::EXIT_REASON_NODE_FAILURE:
      return ExitReason::kNodeFailure;
    case v1::EXIT_REASON_ENDPOINT_UNHEALTHY:
      return ExitReason::kEndpointUnhealthy;
    case v1::EXIT_REASON_START_FAILED:
      return ExitReason::kStartFailed;
    case v1::EXIT_REASON_LOST:
      return ExitReason::kLost;
    case v1::EXIT_REASON_INTERNAL:
      return ExitReason::kInternal;
    default:
      return std::nullopt;
  }
}

inline v1::DeploymentState ToProto(DeploymentState s) {
  switch (s) {
    case DeploymentState::kPending:
      return v1::DEPLOYMENT_STATE_PENDING;
    case DeploymentState::kStarting:
      return v1::DEPLOYMENT_STATE_STARTING;
    case DeploymentState::kHealthy:
      return v1::DEPLOYMENT_STATE_HEALTHY;
    case DeploymentState::kFailed:
      return v1::DEPLOYMENT_STATE_FAILED;
    case DeploymentState::kStopping:
      return v1::DEPLOYMENT_STATE_STOPPING;
    case DeploymentState::kStopped:
      return v1::DEPLOYMENT_STATE_STOPPED;
  }
  return v1::DEPLOYMENT_STATE_UNSPECIFIED;
}

inline std::optional<DeploymentState> FromProto(v1::DeploymentState s) {
  switch (s) {
    case v1::DEPLOYMENT_STATE_PENDING:
      return DeploymentState::kPending;
    case v1::DEPLOYMENT_STATE_STARTING:
      return DeploymentState::kStarting;
    case v1::DEPLOYMENT_STATE_HEALTHY:
      return DeploymentState::kHealthy;
    case v1::DEPLOYMENT_STATE_FAILED:
      return DeploymentState::kFailed;
    case v1::DEPLOYMENT_STATE_STOPPING:
      return DeploymentState::kStopping;
    case v1::DEPLOYMENT_STATE_STOPPED:
      return DeploymentState::kStopped;
    default:
      return std::nullopt;
  }
}

}  // namespace evald
