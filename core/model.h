// File: model.h
//
// The plain records evald keeps in its database: one struct per table row. storage/ reads and
// writes them, daemon/ turns them into protos, executors/ fill JobHandle. No behaviour here.
// Times are unix epoch milliseconds; 0 means unset.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/lifecycle.h"

namespace evald {

// What an executor needs to find a started job again after evald restarts (cf. Nomad's
// TaskHandle). `state` is opaque to everyone but the executor that wrote it (for local jobs:
// pid, process start time, job dir). Bump `version` when an executor changes its layout.
struct JobHandle {
  int version = 1;
  std::string executor;
  std::string state;
};

struct InvocationRecord {
  std::string id;
  std::string executor;            // local | slurm | lepton
  JobState state = JobState::kPending;  // derived from the jobs, stored for listing
  DesiredState desired = DesiredState::kRun;
  std::string config_yaml;         // resolved config, interpolations done, no secret values
  std::string run_dir;             // <output_dir>/<YYYYmmdd_HHMMSS>-<id>
  std::string mode;                // parallel | sequential
  std::vector<std::string> tasks;  // task names in job order
  std::vector<std::string> task_filter;  // Submit's task filter, to re-derive job specs later
  std::vector<std::string> secret_names;
  std::string client;
  std::string owner;  // the user who submitted it (daemon/auth/caller.h); "" before schema v5
  int64_t created_ms = 0;
  int64_t updated_ms = 0;
  int64_t ended_ms = 0;
};

struct JobRecord {
  std::string id;             // <invocation>.<index>
  std::string invocation_id;
  int index = 0;
  std::string task;           // as written in evaluation.tasks[].name
  std::string harness;
  std::string endpoint_type;  // chat | completions | vlm
  std::string container;      // image for container tasks, empty for native ones
  JobState state = JobState::kPending;
  DesiredState desired = DesiredState::kRun;
  ExitReason exit_reason = ExitReason::kNone;
  std::optional<int> exit_code;
  std::string message;
  std::string output_dir;     // the job's task dir: run.sh, plan.yaml, logs/, artifacts/
  std::string spec_yaml;      // everything the executor needs to (re)start the job
  JobHandle handle;           // empty executor until the job was started
  int attempt = 0;            // 0 = never started; +1 on each start
  int64_t progress_done = 0;
  int64_t progress_total = 0;  // 0 = unknown
  int64_t progress_errors = 0;
  double progress_rate = 0;
  int64_t progress_updated_ms = 0;
  int64_t created_ms = 0;
  int64_t submitted_ms = 0;
  int64_t started_ms = 0;
  int64_t ended_ms = 0;
};

// Append-only history; one row per state change and per notable action.
struct EventRecord {
  int64_t seq = 0;  // assigned by storage
  int64_t time_ms = 0;
  std::string invocation_id;
  std::string job_id;  // empty for invocation- and deployment-level events
  std::string kind;    // job.state | deployment.state | invocation.submitted | job.kill_requested ...
  std::string from_state;
  std::string to_state;
  std::string message;
  std::string actor;  // the user whose request made it; "" for evald's own changes
};

// One score of one metric of one finished job, read from artifacts/results.yml.
struct ResultRecord {
  std::string job_id;
  std::string invocation_id;
  std::string task;    // task key inside results.yml
  std::string metric;
  std::string score;   // empty for plain-value metrics
  double value = 0;
  bool has_stats = false;
  int64_t count = 0;
  double mean = 0, stderr_ = 0, stddev = 0, min = 0, max = 0, sum = 0;
};

struct DeploymentRecord {
  std::string id;             // <invocation>.d<index>
  std::string invocation_id;
  std::string job_id;         // empty when shared by the whole invocation
  std::string type;           // vllm | sglang | nim | trtllm | command
  DeploymentState state = DeploymentState::kPending;
  DesiredState desired = DesiredState::kRun;
  std::string spec_yaml;      // the deployment section as resolved at submit
  std::string command;        // rendered server command (no secret values)
  std::string url;            // base URL http://127.0.0.1:<port>
  std::string health_url;
  int port = 0;
  JobHandle handle;
  std::string log_path;
  std::string message;
  int64_t created_ms = 0;
  int64_t started_ms = 0;
  int64_t healthy_ms = 0;
  int64_t ended_ms = 0;
};

}  // namespace evald

namespace evald {

// A request to move one job from one state to another, with what changes alongside. The daemon
// builds these; Store::TransitionJob is the only code that applies them.
struct JobTransition {
  std::string job_id;
  JobState from = JobState::kPending;
  JobState to = JobState::kPending;
  ExitReason reason = ExitReason::kNone;
  std::optional<int> exit_code;
  std::string message;
  std::optional<JobHandle> handle;  // with pending -> submitted: persisted in the same transaction
  std::string output_dir;           // with pending -> submitted, when the executor chose it
};

struct DeploymentTransition {
  std::string deployment_id;
  DeploymentState from = DeploymentState::kPending;
  DeploymentState to = DeploymentState::kPending;
  std::string message;
  std::optional<JobHandle> handle;  // with pending -> starting
  std::optional<int> port;          // with pending -> starting (port: auto resolved)
  std::optional<std::string> url;
  std::optional<std::string> health_url;
  std::optional<std::string> command;
};

}  // namespace evald
