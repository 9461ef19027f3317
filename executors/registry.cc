#include "executors/registry.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace evald::executors {

absl::Status ExecutorRegistry::Register(std::unique_ptr<Executor> executor) {
  std::string name = executor->name();
  if (executors_.count(name) > 0) {
    return absl::AlreadyExistsError(absl::StrCat("executor '", name, "' registered twice"));
  }
  executors_.emplace(std::move(name), std::move(executor));
  return absl::OkStatus();
}

absl::StatusOr<Executor*> ExecutorRegistry::Get(const std::string& name) const {
  auto it = executors_.find(name);
  if (it == executors_.end()) {
    return absl::NotFoundError(absl::StrCat("executor '", name, "' is not available in this evald; available: ",
                                            absl::StrJoin(Names(), ", ")));
  }
  return it->second.get();
}

std::vector<std::string> ExecutorRegistry::Names() const {
  std::vector<std::string> names;
  for (const auto& [name, unused] : executors_) names.push_back(name);
  return names;
}

}  // namespace evald::executors
