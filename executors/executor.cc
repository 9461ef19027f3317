#include "executors/executor.h"

#include "absl/strings/str_cat.h"

namespace evald::executors {

// Defaults for executors without deployment support.
absl::Status Executor::ValidateDeployment(const deployment::DeploymentSpec&) const {
  return absl::UnimplementedError(
      absl::StrCat("the ", name(), " executor cannot deploy models yet; use deployment: none"));
}

absl::StatusOr<DeploymentStarted> Executor::StartDeployment(const DeploymentRecord&,
                                                            const deployment::DeploymentSpec& spec,
                                                            const std::map<std::string, std::string>&) {
  return ValidateDeployment(spec);
}

DeploymentObservation Executor::PollDeployment(const DeploymentRecord&,
                                               const deployment::DeploymentSpec&) {
  return {DeploymentObservation::Kind::kFailed, "deployments are not supported by this executor"};
}

absl::Status Executor::StopDeployment(const DeploymentRecord&, const deployment::DeploymentSpec&) {
  return absl::OkStatus();
}

absl::StatusOr<std::optional<DeploymentStarted>> Executor::RecoverDeployment(
    const DeploymentRecord&, const deployment::DeploymentSpec&) {
  return std::optional<DeploymentStarted>();
}

}  // namespace evald::executors
