#include "daemon/proto_convert.h"

#include "nlohmann/json.hpp"

namespace evald::daemon {

v1::JobState ToProto(JobState s) {
  switch (s) {
    case JobState::kPending: return v1::JOB_STATE_PENDING;
    case JobState::kSubmitted: return v1::JOB_STATE_SUBMITTED;
    case JobState::kRunning: return v1::JOB_STATE_RUNNING;
    case JobState::kSucceeded: return v1::JOB_STATE_SUCCEEDED;
    case JobState::kFailed: return v1::JOB_STATE_FAILED;
    case JobState::kKilled: return v1::JOB_STATE_KILLED;
    case JobState::kLost: return v1::JOB_STATE_LOST;
  }
  return v1::JOB_STATE_UNSPECIFIED;
}

std::optional<JobState> FromProto(v1::JobState s) {
  switch (s) {
    case v1::JOB_STATE_PENDING: return JobState::kPending;
    case v1::JOB_STATE_SUBMITTED: return JobState::kSubmitted;
    case v1::JOB_STATE_RUNNING: return JobState::kRunning;
    case v1::JOB_STATE_SUCCEEDED: return JobState::kSucceeded;
    case v1::JOB_STATE_FAILED: return JobState::kFailed;
    case v1::JOB_STATE_KILLED: return JobState::kKilled;
    case v1::JOB_STATE_LOST: return JobState::kLost;
    default: return std::nullopt;
  }
}

v1::DesiredState ToProto(DesiredState s) {
  return s == DesiredState::kRun ? v1::DESIRED_STATE_RUN : v1::DESIRED_STATE_STOP;
}

v1::ExitReason ToProto(ExitReason r) {
  switch (r) {
    case ExitReason::kNone: return v1::EXIT_REASON_UNSPECIFIED;
    case ExitReason::kExitCode: return v1::EXIT_REASON_EXIT_CODE;
    case ExitReason::kKilledByUser: return v1::EXIT_REASON_KILLED_BY_USER;
    case ExitReason::kTimeout: return v1::EXIT_REASON_TIMEOUT;
    case ExitReason::kPreempted: return v1::EXIT_REASON_PREEMPTED;
    case ExitReason::kNodeFailure: return v1::EXIT_REASON_NODE_FAILURE;
    case ExitReason::kEndpointUnhealthy: return v1::EXIT_REASON_ENDPOINT_UNHEALTHY;
    case ExitReason::kStartFailed: return v1::EXIT_REASON_START_FAILED;
    case ExitReason::kLost: return v1::EXIT_REASON_LOST;
    case ExitReason::kInternal: return v1::EXIT_REASON_INTERNAL;
  }
  return v1::EXIT_REASON_UNSPECIFIED;
}

v1::DeploymentState ToProto(DeploymentState s) {
  switch (s) {
    case DeploymentState::kPending: return v1::DEPLOYMENT_STATE_PENDING;
    case DeploymentState::kStarting: return v1::DEPLOYMENT_STATE_STARTING;
    case DeploymentState::kHealthy: return v1::DEPLOYMENT_STATE_HEALTHY;
    case DeploymentState::kFailed: return v1::DEPLOYMENT_STATE_FAILED;
    case DeploymentState::kStopping: return v1::DEPLOYMENT_STATE_STOPPING;
    case DeploymentState::kStopped: return v1::DEPLOYMENT_STATE_STOPPED;
  }
  return v1::DEPLOYMENT_STATE_UNSPECIFIED;
}

std::string BackendId(const executors::ExecutorRegistry& registry, const JobHandle& handle) {
  if (handle.executor.empty() || handle.state.empty()) return "";
  absl::StatusOr<executors::Executor*> ex = registry.Get(handle.executor);
  return ex.ok() ? (*ex)->Describe(handle).backend_id : "";
}

void ToProto(const JobRecord& job, const std::string& executor,
             const executors::ExecutorRegistry& registry, v1::Job* out) {
  out->set_job_id(job.id);
  out->set_invocation_id(job.invocation_id);
  out->set_index(job.index);
  out->set_task(job.task);
  out->set_harness(job.harness);
  out->set_state(ToProto(job.state));
  out->set_desired(ToProto(job.desired));
  out->set_exit_reason(ToProto(job.exit_reason));
  if (job.exit_code) out->set_exit_code(*job.exit_code);
  out->set_message(job.message);
  v1::Progress* p = out->mutable_progress();
  p->set_done(job.progress_done);
  p->set_total(job.progress_total);
  p->set_rate(job.progress_rate);
  p->set_errors(job.progress_errors);
  p->set_updated_ms(job.progress_updated_ms);
  out->set_output_dir(job.output_dir);
  out->set_executor(executor);
  out->set_backend_id(BackendId(registry, job.handle));
  out->set_attempt(job.attempt);
  out->set_created_ms(job.created_ms);
  out->set_started_ms(job.started_ms);
  out->set_ended_ms(job.ended_ms);
  out->set_endpoint_type(job.endpoint_type);
  out->set_container(job.container);
}

void ToProto(const DeploymentRecord& d, const executors::ExecutorRegistry& registry,
             v1::Deployment* out) {
  out->set_deployment_id(d.id);
  out->set_invocation_id(d.invocation_id);
  out->set_type(d.type);
  out->set_state(ToProto(d.state));
  out->set_url(d.url);
  out->set_health_url(d.health_url);
  out->set_backend_id(BackendId(registry, d.handle));
  out->set_started_ms(d.started_ms);
  out->set_healthy_ms(d.healthy_ms);
  if (d.healthy_ms > 0 && d.started_ms > 0) out->set_time_to_healthy_ms(d.healthy_ms - d.started_ms);
  out->set_ended_ms(d.ended_ms);
  out->set_message(d.message);
  out->set_command(d.command);
  out->set_port(d.port);
  out->set_job_id(d.job_id);
  out->set_log_path(d.log_path);
}

void ToProto(const InvocationRecord& inv, v1::Invocation* out) {
  out->set_invocation_id(inv.id);
  out->set_state(ToProto(inv.state));
  out->set_desired(ToProto(inv.desired));
  out->set_executor(inv.executor);
  out->set_created_ms(inv.created_ms);
  out->set_updated_ms(inv.updated_ms);
  out->set_ended_ms(inv.ended_ms);
  out->set_run_dir(inv.run_dir);
  for (const std::string& t : inv.tasks) out->add_tasks(t);
  for (const std::string& s : inv.secret_names) out->add_secret_names(s);
  out->set_client(inv.client);
  out->set_job_count(static_cast<int32_t>(inv.tasks.size()));
}

void ToProto(const EventRecord& e, v1::Event* out) {
  out->set_seq(e.seq);
  out->set_time_ms(e.time_ms);
  out->set_invocation_id(e.invocation_id);
  out->set_job_id(e.job_id);
  out->set_kind(e.kind);
  out->set_from_state(e.from_state);
  out->set_to_state(e.to_state);
  out->set_message(e.message);
}

void ToProto(const ResultRecord& r, v1::Metric* out) {
  out->set_task(r.task);
  out->set_metric(r.metric);
  out->set_score(r.score);
  out->set_value(r.value);
  if (r.has_stats) {
    v1::ScoreStats* s = out->mutable_stats();
    s->set_count(r.count);
    s->set_mean(r.mean);
    s->set_stderr(r.stderr_);
    s->set_stddev(r.stddev);
    s->set_min(r.min);
    s->set_max(r.max);
    s->set_sum(r.sum);
  }
}

}  // namespace evald::daemon
