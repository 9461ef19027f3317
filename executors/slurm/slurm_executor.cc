#include "executors/slurm/slurm_executor.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "executors/slurm/run_sub.h"
#include "executors/slurm/slurm_config.h"
#include "nlohmann/json.hpp"

namespace evald::executors {
namespace {

constexpr int kHandleVersion = 1;

RunSubOptions Options(const ExecutorContext& context) {
  // TODO(issue 10): the runner as the compute node sees it (a configured path, an image, or an
  // evalrun evald uploads once per cluster); until then the daemon's own path, or PATH.
  return {.runner_path = context.runner_path.empty() ? "evalrun" : context.runner_path};
}

}  // namespace

JobHandle EncodeSlurmHandle(const SlurmHandleState& s) {
  nlohmann::json j = {
      {"hostname", s.hostname}, {"slurm_job_id", s.slurm_job_id}, {"task_dir", s.task_dir}};
  return {.version = kHandleVersion, .executor = "slurm", .state = j.dump()};
}

std::optional<SlurmHandleState> DecodeSlurmHandle(const JobHandle& h) {
  if (h.executor != "slurm" || h.version != kHandleVersion) return std::nullopt;
  nlohmann::json j = nlohmann::json::parse(h.state, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  SlurmHandleState s;
  for (auto [key, field] :
       {std::pair{"hostname", &s.hostname}, std::pair{"slurm_job_id", &s.slurm_job_id},
        std::pair{"task_dir", &s.task_dir}}) {
    auto it = j.find(key);
    if (it != j.end() && it->is_string()) *field = it->get<std::string>();
  }
  return s;
}

SlurmExecutor::SlurmExecutor(ExecutorContext context) : context_(std::move(context)) {}

absl::Status SlurmExecutor::Validate(const JobSpec& spec) const {
  // Also called for dry runs, so it checks what Render needs and nothing about submitting.
  return Render(spec).status();
}

absl::StatusOr<RenderedJob> SlurmExecutor::Render(const JobSpec& spec) const {
  EVALD_ASSIGN_OR_RETURN(SlurmConfig config, ParseSlurmConfig(spec.execution_yaml));
  return RenderRunSub(spec, config, Options(context_));
}

absl::StatusOr<JobHandle> SlurmExecutor::Start(const JobSpec& spec,
                                               const std::map<std::string, std::string>& env) {
  (void)spec;
  (void)env;
  return absl::FailedPreconditionError(
      "submitting to SLURM is not available in this build yet; use --dry-run to see the run.sub");
}

std::vector<Observation> SlurmExecutor::Poll(const std::vector<JobRef>& jobs) {
  (void)jobs;
  return {};  // nothing is ever submitted yet
}

absl::Status SlurmExecutor::Stop(const JobRef& job, absl::Duration grace) {
  (void)job;
  (void)grace;
  return absl::OkStatus();
}

absl::StatusOr<std::optional<JobHandle>> SlurmExecutor::Recover(const JobRef& job) {
  (void)job;
  return std::optional<JobHandle>();  // no attempt was ever submitted
}

HandleInfo SlurmExecutor::Describe(const JobHandle& handle) const {
  HandleInfo info;
  std::optional<SlurmHandleState> h = DecodeSlurmHandle(handle);
  if (!h) return info;
  if (!h->slurm_job_id.empty()) info.backend_id = absl::StrCat("slurm ", h->slurm_job_id);
  if (!h->hostname.empty()) info.details.emplace_back("cluster", h->hostname);
  if (!h->task_dir.empty()) info.details.emplace_back("task dir", h->task_dir);
  return info;
}

}  // namespace evald::executors
