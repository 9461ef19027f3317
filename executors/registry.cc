#include "executors/registry.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace evald::executors {

absl::Status ExecutorRegistry::Register(const ExecutorFactory& factory,
                                        const ExecutorContext& context) {
  if (known_.count(factory.name) > 0) {
    return absl::AlreadyExistsError(absl::StrCat("executor '", factory.name, "' registered twice"));
  }
  known_.emplace(factory.name, factory);
  schemas_.push_back({factory.name, factory.execution_keys ? factory.execution_keys()
                                                           : std::vector<config::SchemaRule>()});
  if (factory.create) executors_.emplace(factory.name, factory.create(context));
  return absl::OkStatus();
}

absl::Status ExecutorRegistry::Register(std::unique_ptr<Executor> executor) {
  ExecutorFactory factory{.name = executor->name()};
  if (known_.count(factory.name) > 0) {
    return absl::AlreadyExistsError(absl::StrCat("executor '", factory.name, "' registered twice"));
  }
  known_.emplace(factory.name, factory);
  schemas_.push_back({factory.name, {}});
  executors_.emplace(factory.name, std::move(executor));
  return absl::OkStatus();
}

absl::StatusOr<Executor*> ExecutorRegistry::Get(const std::string& name) const {
  auto it = executors_.find(name);
  if (it != executors_.end()) return it->second.get();
  if (known_.count(name) > 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "this evald checks '", name,
        "' configs but cannot run them yet; runnable here: ", absl::StrJoin(Names(), ", ")));
  }
  return absl::NotFoundError(
      absl::StrCat("executor '", name,
                   "' is not available in this evald; available: ", absl::StrJoin(Names(), ", ")));
}

std::vector<std::string> ExecutorRegistry::Names() const {
  std::vector<std::string> names;
  for (const auto& [name, unused] : executors_) names.push_back(name);
  return names;
}

config::ExecutorJobEnv ExecutorRegistry::JobEnv() const {
  return [this](const std::string& executor, const YAML::Node& execution) {
    auto it = known_.find(executor);
    if (it == known_.end() || !it->second.job_env) return std::vector<std::string>();
    return it->second.job_env(execution);
  };
}

absl::Status RegisterBuiltinExecutors(const ExecutorContext& context, ExecutorRegistry& registry) {
  for (const ExecutorFactory& factory : BuiltinExecutors()) {
    absl::Status s = registry.Register(factory, context);
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace evald::executors
