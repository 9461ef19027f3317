#include "daemon/proto_convert.h"

#include "absl/strings/match.h"

namespace evald::daemon {

executors::HandleInfo Describe(const executors::ExecutorRegistry& registry,
                               const JobHandle& handle) {
  if (handle.executor.empty() || handle.state.empty()) return {};
  absl::StatusOr<executors::Executor*> ex = registry.Get(handle.executor);
  return ex.ok() ? (*ex)->Describe(handle) : executors::HandleInfo{};
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
  executors::HandleInfo info = Describe(registry, job.handle);
  out->set_backend_id(info.backend_id);
  for (const auto& [key, value] : info.details) (*out->mutable_backend_details())[key] = value;
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
  executors::HandleInfo info = Describe(registry, d.handle);
  out->set_backend_id(info.backend_id);
  for (const auto& [key, value] : info.details) (*out->mutable_backend_details())[key] = value;
  out->set_started_ms(d.started_ms);
  out->set_healthy_ms(d.healthy_ms);
  if (d.healthy_ms > 0 && d.started_ms > 0)
    out->set_time_to_healthy_ms(d.healthy_ms - d.started_ms);
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
  out->set_owner(inv.owner);
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
  out->set_actor(e.actor);
  // Typed forms of the stored names; a name that is not a state (or "") stays UNSPECIFIED.
  if (absl::StartsWith(e.kind, "deployment.")) {
    if (auto s = ParseDeploymentState(e.from_state)) out->set_from_deployment_state(ToProto(*s));
    if (auto s = ParseDeploymentState(e.to_state)) out->set_to_deployment_state(ToProto(*s));
  } else {
    if (auto s = ParseJobState(e.from_state)) out->set_from_job_state(ToProto(*s));
    if (auto s = ParseJobState(e.to_state)) out->set_to_job_state(ToProto(*s));
  }
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
