#include "daemon/job_planner.h"

#include <set>
#include <tuple>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "core/config/compose.h"
#include "core/redact.h"
#include "core/status_macros.h"
#include "nlohmann/json.hpp"

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
  EVALD_ASSIGN_OR_RETURN(
      config::RunConfig rc,
      config::ParseRunConfig(root, *catalog_, invocation.task_filter, executor_env_));
  auto shared = std::make_shared<const config::RunConfig>(std::move(rc));
  if (HasRedactions(text)) return shared;
  absl::MutexLock lock(&mu_);
  cache_[invocation.id] = shared;
  return shared;
}

void JobPlanner::Forget(const std::string& invocation_id) {
  absl::MutexLock lock(&mu_);
  cache_.erase(invocation_id);
  // Deployment ids are `<invocation>.d<index>`.
  deployments_.erase(deployments_.lower_bound(invocation_id + "."),
                     deployments_.lower_bound(invocation_id + "/"));
}

std::string JobPlanner::EncodeDeploymentSpec(const config::RunConfig& rc,
                                             const std::map<std::string, std::string>& secrets) {
  YAML::Node both(YAML::NodeType::Map);
  both["deployment"] = rc.deployment;
  both["execution"] = rc.execution;
  return Redactor(secrets)(config::ToYaml(both));
}

absl::StatusOr<deployment::DeploymentSpec> JobPlanner::DeploymentSpecFor(
    const InvocationRecord& invocation, const DeploymentRecord& record) {
  {
    absl::MutexLock lock(&mu_);
    auto it = deployments_.find(record.id);
    if (it != deployments_.end()) return it->second;
  }
  absl::StatusOr<deployment::DeploymentSpec> spec;
  std::string text = record.spec_yaml;
  if (secrets_ && HasRedactions(text)) {
    absl::StatusOr<std::map<std::string, std::string>> values = secrets_(invocation.id);
    if (values.ok()) text = Unredact(text, *values);
  }
  absl::StatusOr<YAML::Node> stored =
      config::ParseYaml(text, absl::StrCat("deployment ", record.id));
  if (stored.ok() && stored->IsMap() && (*stored)["deployment"] && (*stored)["execution"]) {
    spec = deployment::ParseDeploymentSpec((*stored)["deployment"], (*stored)["execution"]);
  } else {
    // Stored before deployments carried their plan: plan it from the invocation's config.
    EVALD_ASSIGN_OR_RETURN(std::shared_ptr<const config::RunConfig> rc, RunConfigFor(invocation));
    spec = deployment::ParseDeploymentSpec(rc->deployment, rc->execution);
  }
  if (!spec.ok() || HasRedactions(text)) return spec;
  absl::MutexLock lock(&mu_);
  deployments_[record.id] = *spec;
  return spec;
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
    const executors::JobSpec& spec, const std::map<std::string, std::string>& secrets) {
  std::map<std::string, std::string> env;
  for (const auto& [dst, src] : spec.env_vars) {
    auto it = secrets.find(src);
    if (it == secrets.end()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "task '", spec.task, "' needs the value of environment variable ", src, " (as ", dst,
          "), and evald does not hold it; export ", src, " and run `evalctl resume`"));
    }
    env[dst] = it->second;
  }
  if (!spec.deployment_yaml.empty()) {
    // A server that runs inside the job gets its secret variables from the job's environment.
    EVALD_ASSIGN_OR_RETURN(
        deployment::DeploymentSpec server,
        deployment::ParseDeploymentSpecYaml(spec.deployment_yaml, spec.execution_yaml));
    for (const auto& [server_var, host_var] : server.secret_env_vars) {
      auto it = secrets.find(host_var);
      if (it == secrets.end()) {
        return absl::FailedPreconditionError(absl::StrCat(
            "the model server of task '", spec.task, "' needs the value of environment variable ",
            host_var, " (as ", server_var, "), and evald does not hold it; export ", host_var,
            " and run `evalctl resume`"));
      }
      env.emplace(server_var, it->second);
    }
  }
  return env;
}

namespace {

// The spec's text fields that may hold a secret value (an `${oc.env:...}` of a secret variable
// put into the config reaches the plan, the command or the executor's section).
std::vector<std::string*> TextFields(executors::JobSpec& spec) {
  return {&spec.plan_yaml, &spec.image, &spec.container_command, &spec.execution_yaml,
          &spec.deployment_yaml};
}

// The eval-factory command carries the task's config base64-encoded (`echo "<b64>" | base64 -d >
// config_ef.yaml && ...`, BuildEvalFactoryCommand), where masking cannot see a secret value: it is
// stored decoded, beside the command, which keeps a marker in its place.
constexpr char kConfigMarker[] = "<container-config>";

std::pair<std::string, std::string> SplitContainerConfig(const std::string& command) {
  constexpr absl::string_view kEcho = "echo \"";
  if (!absl::StartsWith(command, kEcho)) return {command, ""};
  size_t end = command.find('"', kEcho.size());
  std::string decoded;
  if (end == std::string::npos ||
      !absl::Base64Unescape(command.substr(kEcho.size(), end - kEcho.size()), &decoded)) {
    return {command, ""};
  }
  return {absl::StrCat(kEcho, kConfigMarker, command.substr(end)), decoded};
}

std::string JoinContainerConfig(const std::string& command, const std::string& config) {
  return absl::StrReplaceAll(command, {{kConfigMarker, absl::Base64Escape(config)}});
}

}  // namespace

std::string JobPlanner::EncodeSpec(const executors::JobSpec& spec,
                                   const std::map<std::string, std::string>& secrets) {
  executors::JobSpec masked = spec;
  std::string container_config;
  std::tie(masked.container_command, container_config) =
      SplitContainerConfig(spec.container_command);
  Redactor redact(secrets);
  for (std::string* field : TextFields(masked)) *field = redact(*field);
  container_config = redact(container_config);
  nlohmann::json env = nlohmann::json::array();
  for (const auto& [dst, src] : masked.env_vars) env.push_back({dst, src});
  nlohmann::json j = {{"version", 1},
                      {"job_id", masked.job_id},
                      {"invocation_id", masked.invocation_id},
                      {"task", masked.task},
                      {"task_dir", masked.task_dir},
                      {"native", masked.native},
                      {"plan_yaml", masked.plan_yaml},
                      {"image", masked.image},
                      {"container_command", masked.container_command},
                      {"container_config", container_config},
                      {"env_vars", env},
                      {"execution_yaml", masked.execution_yaml}};
  // Only for a server inside the job; specs stored without one read back as "".
  if (!masked.deployment_yaml.empty()) j["deployment_yaml"] = masked.deployment_yaml;
  return j.dump();
}

namespace {

// A stored spec as stored: secret values still masked, the container's task config beside the
// command (which keeps the marker).
struct StoredSpec {
  executors::JobSpec spec;
  std::string container_config;
};

absl::StatusOr<StoredSpec> ReadStoredSpec(const std::string& text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object() || j.value("version", 0) != 1) {
    return absl::DataLossError("the job's stored plan is not readable (not a version 1 spec)");
  }
  StoredSpec stored;
  executors::JobSpec& spec = stored.spec;
  try {
    spec.job_id = j.at("job_id").get<std::string>();
    spec.invocation_id = j.at("invocation_id").get<std::string>();
    spec.task = j.at("task").get<std::string>();
    spec.task_dir = j.at("task_dir").get<std::string>();
    spec.native = j.at("native").get<bool>();
    spec.plan_yaml = j.at("plan_yaml").get<std::string>();
    spec.image = j.at("image").get<std::string>();
    spec.container_command = j.at("container_command").get<std::string>();
    stored.container_config = j.at("container_config").get<std::string>();
    for (const nlohmann::json& pair : j.at("env_vars")) {
      spec.env_vars.emplace_back(pair.at(0).get<std::string>(), pair.at(1).get<std::string>());
    }
    spec.execution_yaml = j.at("execution_yaml").get<std::string>();
    spec.deployment_yaml = j.value("deployment_yaml", "");
  } catch (const nlohmann::json::exception& e) {
    return absl::DataLossError(absl::StrCat("the job's stored plan is incomplete: ", e.what()));
  }
  return stored;
}

}  // namespace

absl::StatusOr<executors::JobSpec> JobPlanner::DecodeSpec(const std::string& text) {
  EVALD_ASSIGN_OR_RETURN(StoredSpec stored, ReadStoredSpec(text));
  stored.spec.container_command =
      JoinContainerConfig(stored.spec.container_command, stored.container_config);
  return stored.spec;
}

absl::StatusOr<executors::JobSpec> JobPlanner::SpecForStart(
    const InvocationRecord& invocation, const JobRecord& job, const DeploymentRecord* deployment,
    const std::map<std::string, std::string>& secrets) {
  executors::JobSpec spec;
  if (!job.spec_yaml.empty()) {
    EVALD_ASSIGN_OR_RETURN(StoredSpec stored, ReadStoredSpec(job.spec_yaml));
    spec = std::move(stored.spec);
    for (std::string* field : TextFields(spec)) *field = Unredact(*field, secrets);
    spec.container_command =
        JoinContainerConfig(spec.container_command, Unredact(stored.container_config, secrets));
  } else {
    // Stored before jobs carried their plan: plan it now, as Submit would have.
    EVALD_ASSIGN_OR_RETURN(std::shared_ptr<const config::RunConfig> rc, RunConfigFor(invocation));
    EVALD_ASSIGN_OR_RETURN(const config::TaskSpec* task, TaskForJob(*rc, job.index));
    EVALD_ASSIGN_OR_RETURN(config::EndpointSpec endpoint, config::EndpointForTask(*rc, *task));
    EVALD_ASSIGN_OR_RETURN(spec, BuildSpec(*rc, *task, job, endpoint));
  }
  spec.attempt = job.attempt;
  spec.task_dir = job.output_dir;
  if (deployment != nullptr) {
    // `port: auto` is only known now that the server runs.
    const std::string port = absl::StrCat(deployment->port);
    spec.plan_yaml = absl::StrReplaceAll(spec.plan_yaml, {{"${EVALD_PORT}", port}});
    spec.container_command = absl::StrReplaceAll(spec.container_command, {{"${EVALD_PORT}", port}});
    // A server elsewhere (a Lepton endpoint) answers at the URL its backend reported, not on
    // this host: the planned http://127.0.0.1:<port> becomes that URL.
    const std::string local = deployment::BaseUrl(deployment->port);
    if (!deployment->url.empty() && deployment->url != local) {
      spec.plan_yaml = absl::StrReplaceAll(spec.plan_yaml, {{local, deployment->url}});
      spec.container_command =
          absl::StrReplaceAll(spec.container_command, {{local, deployment->url}});
    }
  }
  return spec;
}

}  // namespace evald::daemon
