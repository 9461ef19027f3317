#include "core/lifecycle.h"

#include "absl/strings/str_cat.h"

namespace evald {
namespace {

struct JobEdge {
  JobState from;
  JobState to;
};

// The whole job machine. Resume is the only way back out of a terminal state.
constexpr JobEdge kJobEdges[] = {
    {JobState::kPending, JobState::kSubmitted},   {JobState::kPending, JobState::kRunning},
    {JobState::kPending, JobState::kFailed},      {JobState::kPending, JobState::kKilled},
    {JobState::kSubmitted, JobState::kRunning},   {JobState::kSubmitted, JobState::kSucceeded},
    {JobState::kSubmitted, JobState::kFailed},    {JobState::kSubmitted, JobState::kKilled},
    {JobState::kSubmitted, JobState::kLost},      {JobState::kRunning, JobState::kSucceeded},
    {JobState::kRunning, JobState::kFailed},      {JobState::kRunning, JobState::kKilled},
    {JobState::kRunning, JobState::kLost},        {JobState::kFailed, JobState::kPending},
    {JobState::kKilled, JobState::kPending},      {JobState::kLost, JobState::kPending},
    // A job that vanished can still turn out finished when its exit file shows up late.
    {JobState::kLost, JobState::kSucceeded},      {JobState::kLost, JobState::kFailed},
};

struct DeploymentEdge {
  DeploymentState from;
  DeploymentState to;
};

constexpr DeploymentEdge kDeploymentEdges[] = {
    {DeploymentState::kPending, DeploymentState::kStarting},
    {DeploymentState::kPending, DeploymentState::kFailed},
    {DeploymentState::kPending, DeploymentState::kStopped},
    {DeploymentState::kStarting, DeploymentState::kHealthy},
    {DeploymentState::kStarting, DeploymentState::kFailed},
    {DeploymentState::kStarting, DeploymentState::kStopping},
    {DeploymentState::kStarting, DeploymentState::kStopped},
    {DeploymentState::kHealthy, DeploymentState::kStopping},
    {DeploymentState::kHealthy, DeploymentState::kFailed},
    {DeploymentState::kHealthy, DeploymentState::kStopped},
    {DeploymentState::kStopping, DeploymentState::kStopped},
    {DeploymentState::kStopping, DeploymentState::kFailed},
    // A resumed invocation brings its deployment up again.
    {DeploymentState::kStopped, DeploymentState::kPending},
    {DeploymentState::kFailed, DeploymentState::kPending},
};

template <typename T, size_t N>
std::optional<T> ParseByName(absl::string_view s, const T (&values)[N]) {
  for (T v : values) {
    if (ToString(v) == s) return v;
  }
  return std::nullopt;
}

constexpr JobState kAllJobStates[] = {JobState::kPending,   JobState::kSubmitted,
                                      JobState::kRunning,   JobState::kSucceeded,
                                      JobState::kFailed,    JobState::kKilled,
                                      JobState::kLost};
constexpr DesiredState kAllDesired[] = {DesiredState::kRun, DesiredState::kStop};
constexpr ExitReason kAllReasons[] = {
    ExitReason::kNone,         ExitReason::kExitCode,          ExitReason::kKilledByUser,
    ExitReason::kTimeout,      ExitReason::kPreempted,         ExitReason::kNodeFailure,
    ExitReason::kEndpointUnhealthy, ExitReason::kStartFailed,  ExitReason::kLost,
    ExitReason::kInternal};
constexpr DeploymentState kAllDeploymentStates[] = {
    DeploymentState::kPending, DeploymentState::kStarting, DeploymentState::kHealthy,
    DeploymentState::kFailed,  DeploymentState::kStopping, DeploymentState::kStopped};

}  // namespace

absl::string_view ToString(JobState s) {
  switch (s) {
    case JobState::kPending: return "pending";
    case JobState::kSubmitted: return "submitted";
    case JobState::kRunning: return "running";
    case JobState::kSucceeded: return "succeeded";
    case JobState::kFailed: return "failed";
    case JobState::kKilled: return "killed";
    case JobState::kLost: return "lost";
  }
  return "unknown";
}

absl::string_view ToString(DesiredState s) {
  return s == DesiredState::kRun ? "run" : "stop";
}

absl::string_view ToString(ExitReason r) {
  switch (r) {
    case ExitReason::kNone: return "none";
    case ExitReason::kExitCode: return "exit_code";
    case ExitReason::kKilledByUser: return "killed_by_user";
    case ExitReason::kTimeout: return "timeout";
    case ExitReason::kPreempted: return "preempted";
    case ExitReason::kNodeFailure: return "node_failure";
    case ExitReason::kEndpointUnhealthy: return "endpoint_unhealthy";
    case ExitReason::kStartFailed: return "start_failed";
    case ExitReason::kLost: return "lost";
    case ExitReason::kInternal: return "internal";
  }
  return "unknown";
}

absl::string_view ToString(DeploymentState s) {
  switch (s) {
    case DeploymentState::kPending: return "pending";
    case DeploymentState::kStarting: return "starting";
    case DeploymentState::kHealthy: return "healthy";
    case DeploymentState::kFailed: return "failed";
    case DeploymentState::kStopping: return "stopping";
    case DeploymentState::kStopped: return "stopped";
  }
  return "unknown";
}

std::optional<JobState> ParseJobState(absl::string_view s) { return ParseByName(s, kAllJobStates); }
std::optional<DesiredState> ParseDesiredState(absl::string_view s) {
  return ParseByName(s, kAllDesired);
}
std::optional<ExitReason> ParseExitReason(absl::string_view s) {
  return ParseByName(s, kAllReasons);
}
std::optional<DeploymentState> ParseDeploymentState(absl::string_view s) {
  return ParseByName(s, kAllDeploymentStates);
}

bool IsTerminal(JobState s) {
  return s == JobState::kSucceeded || s == JobState::kFailed || s == JobState::kKilled ||
         s == JobState::kLost;
}

bool IsTerminal(DeploymentState s) {
  return s == DeploymentState::kFailed || s == DeploymentState::kStopped;
}

absl::Status ValidateTransition(JobState from, JobState to) {
  for (const JobEdge& e : kJobEdges) {
    if (e.from == from && e.to == to) return absl::OkStatus();
  }
  return absl::InternalError(
      absl::StrCat("illegal job transition ", ToString(from), " -> ", ToString(to)));
}

absl::Status ValidateTransition(DeploymentState from, DeploymentState to) {
  for (const DeploymentEdge& e : kDeploymentEdges) {
    if (e.from == from && e.to == to) return absl::OkStatus();
  }
  return absl::InternalError(
      absl::StrCat("illegal deployment transition ", ToString(from), " -> ", ToString(to)));
}

JobState DeriveInvocationState(absl::Span<const JobState> jobs) {
  bool any_active = false, any_started = false, any_submitted = false;
  bool any_failed = false, any_killed = false;
  for (JobState s : jobs) {
    any_active |= !IsTerminal(s);
    any_started |= (s == JobState::kRunning || IsTerminal(s));
    any_submitted |= (s == JobState::kSubmitted);
    any_failed |= (s == JobState::kFailed || s == JobState::kLost);
    any_killed |= (s == JobState::kKilled);
  }
  if (any_active) {
    // Once any job has started (or finished), the invocation as a whole is running.
    if (any_started) return JobState::kRunning;
    return any_submitted ? JobState::kSubmitted : JobState::kPending;
  }
  if (any_failed) return JobState::kFailed;
  if (any_killed) return JobState::kKilled;
  return JobState::kSucceeded;
}

}  // namespace evald
