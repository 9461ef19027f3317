// File: lifecycle.h
//
// The one state machine of evald. Jobs move
//
//   pending --start ok--> submitted --seen running--> running --exit 0-------> succeeded
//      |                     |                          |------exit != 0----> failed
//      |                     |                          |------stopped------> killed
//      |                     |                          '------vanished-----> lost
//      '---------------------'--- (start failed / stop / vanished) --> failed | killed | lost
//
// and back from failed | killed | lost to pending only through Resume. Desired state (run/stop,
// what the user asked for) and exit reason (why it ended) are separate from the observed state.
//
// "Starting" is not a state but a moment of pending: Store::MarkStarting (from pending only, else
// Aborted) counts the attempt, records the executor with an empty handle state and appends a
// `job.starting` event (pending -> pending, "starting attempt N") right before Executor::Start;
// the job then leaves pending by one of the edges above. A pending job found with that empty
// handle after a restart is recovered, not started again.
//
// Deployments have their own small machine:
//
//   pending -> starting -> healthy -> stopping -> stopped
//                 '----------'---------'--------> failed
//
// Every change of state in the daemon goes through ValidateTransition(); an illegal edge is a bug
// in our code and returns Internal. Storage calls it inside the transaction that writes the state
// and its event, so nothing can bypass it.
//
//   EVALD_RETURN_IF_ERROR(ValidateTransition(JobState::kRunning, JobState::kSucceeded));
//   bool done = IsTerminal(job.state);
#pragma once

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace evald {

enum class JobState { kPending, kSubmitted, kRunning, kSucceeded, kFailed, kKilled, kLost };
enum class DesiredState { kRun, kStop };
enum class ExitReason {
  kNone,
  kExitCode,
  kKilledByUser,
  kTimeout,
  kPreempted,
  kNodeFailure,
  kEndpointUnhealthy,
  kStartFailed,
  kLost,
  kInternal,
};
enum class DeploymentState { kPending, kStarting, kHealthy, kFailed, kStopping, kStopped };

// Lower-case names used in the database, JSON output, events and CLI tables: the one vocabulary.
// The API's enums map to these in proto/state_enums.h; evalctl prints these names.
absl::string_view ToString(JobState s);
absl::string_view ToString(DesiredState s);
absl::string_view ToString(ExitReason r);
absl::string_view ToString(DeploymentState s);
std::optional<JobState> ParseJobState(absl::string_view s);
std::optional<DesiredState> ParseDesiredState(absl::string_view s);
std::optional<ExitReason> ParseExitReason(absl::string_view s);
std::optional<DeploymentState> ParseDeploymentState(absl::string_view s);

bool IsTerminal(JobState s);
bool IsTerminal(DeploymentState s);

// OK when `from -> to` is an edge of the machine above; Internal otherwise. from == to is not an
// edge (callers skip no-op updates).
absl::Status ValidateTransition(JobState from, JobState to);
absl::Status ValidateTransition(DeploymentState from, DeploymentState to);

// The state of an invocation, derived from its jobs. While any job is not terminal: running once
// any job has started or finished, else submitted if any was submitted, else pending. Once all are
// terminal: failed if any failed or was lost, else killed if any was killed, else succeeded.
JobState DeriveInvocationState(absl::Span<const JobState> jobs);

}  // namespace evald
