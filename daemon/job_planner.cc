#include "daemon/job_planner.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "core/config/compose.h"
#include "core/redact.h"
#include "core/status_macros.h"

namespace evald::daemon {

JobPlanner::JobPlanner(const config::TaskCatalog* catalog, std::string eval_binary,
                       config::ExecutorJobEnv executor_env)
    : catalog_(catalog),
      eval_binary_(std::move(eval_binary)),
      executor_env_(std::move(executor_env)) {}

std::string JobPlanner::RunDirName(absl::Time created, const std::string& invocation_id) {
  return absl::StrCat(absl::FormatTime("%Y%m%d_%H%M%S", created, absl::LocalTimeZone()), "-",
                      invocation_id);
}

std::vector<std::string> JobPlanner::TaskDirNames(const config::RunConfig& rc) {
  std::vector<std::string> names;
  std::set<std::string> used;
  for (const config::TaskSpec& task : rc.tasks) {
    std::string name = absl::StrReplaceAll(task.name, {{"/", "_"}});
    if (name.empty() || name == "." || name == "..") name = absl::StrCat("task-", task.index);
    if (!used.insert(name).second) {
      name = absl::StrCat(name, "-", task.index);
      used.insert(name);
    }
    names.push_back(std::move(name));
  }
  return names;
}

absl::StatusOr<std::shared_ptr<const config::RunConfig>> JobPlanner::RunConfigFor(
    const InvocationRecord& invocation) {
  {
    absl::MutexLock lock(&mu_);
    auto it = cache_.find(invocation.id);
    if (it != cache_.end()) return it->second;
  }
  std::string text = invocation.config_yaml;
  if (secrets_ && HasRedactions(text)) {
    absl::StatusOr<std::map<std::string, std::string>> values = secrets_(invocation.id);
    if (values.ok()) text = Unredact(text, *values);
  }
  EVALD_ASSIGN_OR_RETURN(YAML::Node root,
                         config::ParseYaml(text, absl::StrCat("invocation ", invocation.id)));
  EVALD_ASSIGN_OR_RETURN(config::RunConfig rc,
                         config::ParseRunConfig(root, *catalog_, invocation.task_filter,
                                                executor_env_));
  auto shared = std::make_shared<const config::RunConfig>(std::move(rc));
  if (HasRedactions(text)) return shared;
  absl::MutexLock lock(&mu_);
  cache_[invocation.id] = shared;
  return shared;
}

void JobPlanner::Forget(const std::string& invocation_id) {
  absl::MutexLock lock(&mu_);
  cache_.erase(invocation_id);
}

absl::StatusOr<const config::TaskSpec*> JobPlanner::TaskForJob(const config::RunConfig& rc,
                                                               int index) {
  for (const config::TaskSpec& task : rc.tasks) {
    if (task.index == index) return &task;
  }
  return absl::InternalError(absl::StrCat("the stored config has no task with index ", index));
}

absl::StatusOr<executors::JobSpec> JobPlanner::BuildSpec(
    const config::RunConfig& rc, const config::TaskSpec& task, const JobRecord& job,
    const config::EndpointSpec& endpoint) const {
  executors::JobSpec spec;
  spec.job_id = job.id;
  spec.invocation_id = job.invocation_id;
  spec.task = task.name;
  spec.task_dir = job.output_dir;
  spec.attempt = job.attempt;
  spec.native = task.container.empty();
  spec.env_vars = task.env_vars;
  spec.execution_yaml = config::ToYaml(rc.execution);
  if (spec.native) {
    EVALD_ASSIGN_OR_RETURN(YAML::Node plan, config::BuildNativePlan(rc, task, endpoint,
                                                                    job.output_dir + "/artifacts"));
    spec.plan_yaml = config::ToYaml(plan);
  } else {
    spec.image = task.container;
    spec.container_command = config::BuildEvalFactoryCommand(task, endpoint, eval_binary_);
  }
  return spec;
}

absl::StatusOr<std::map<std::string, std::string>> JobPlanner::JobEnvironment(
    const config::TaskSpec& task, const std::map<std::string, std::string>& secrets) {
  std::map<std::string, std::string> env;
  for (const auto& [dst, src] : task.env_vars) {
    auto it = secrets.find(src);
    if (it == secrets.end()) {
      return absl::FailedPreconditionError(
          absl::StrCat("task '", task.name, "' needs the value of environment variable ", src,
                       " (as ", dst, "), and evald does not hold it; export ", src,
                       " and run `evalctl resume`"));
    }
    env[dst] = it->second;
  }
  return env;
}

}  // namespace evald::daemon
