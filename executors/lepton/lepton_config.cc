#include "executors/lepton/lepton_config.h"

namespace evald::executors {

std::vector<config::SchemaRule> LeptonExecutionKeys() {
  using config::SchemaKey;
  using K = config::SchemaKinds;
  const std::string platform = "execution.lepton_platform";
  return {
      SchemaKey("execution.env_var_names", K::kList | K::kNull),
      SchemaKey("execution.env_var_names[]", K::kStr),
      SchemaKey("execution.evaluation_tasks", K::kMap | K::kNull),
      SchemaKey("execution.evaluation_tasks.resource_shape", K::kStr | K::kNull),
      SchemaKey("execution.evaluation_tasks.timeout", K::kNum | K::kNull).Above(0),
      SchemaKey("execution.evaluation_tasks.use_shared_storage", K::kBool | K::kNull),
      SchemaKey(platform, K::kMap | K::kNull),
      SchemaKey(platform + ".deployment", K::kMap | K::kNull),
      SchemaKey(platform + ".deployment.node_group", K::kStr | K::kNull),
      SchemaKey(platform + ".deployment.endpoint_readiness_timeout", K::kNum | K::kNull).Above(0),
      SchemaKey(platform + ".deployment.platform_defaults", K::kMap | K::kNull).Open(),
      SchemaKey(platform + ".tasks", K::kMap | K::kNull),
      SchemaKey(platform + ".tasks.node_group", K::kStr | K::kNull),
      SchemaKey(platform + ".tasks.env_vars", K::kMap | K::kNull).Open(),
      SchemaKey(platform + ".tasks.mounts", K::kList | K::kNull),
      SchemaKey(platform + ".tasks.mounts[]", K::kMap).Open(),
      SchemaKey(platform + ".tasks.image_pull_secrets", K::kList | K::kNull),
      SchemaKey(platform + ".tasks.api_tokens", K::kList | K::kNull),
  };
}

std::vector<std::string> LeptonJobEnvNames(const YAML::Node& execution) {
  std::vector<std::string> names;
  // Const lookups only: yaml-cpp's non-const operator[] and Node assignment change the tree.
  if (!execution.IsMap()) return names;
  const YAML::Node platform = execution["lepton_platform"];
  if (!platform || !platform.IsMap()) return names;
  const YAML::Node tasks = platform["tasks"];
  if (!tasks || !tasks.IsMap()) return names;
  const YAML::Node env = tasks["env_vars"];
  if (!env || !env.IsMap()) return names;
  for (const auto& entry : env) {
    if (entry.first.IsScalar()) names.push_back(entry.first.Scalar());
  }
  return names;
}

}  // namespace evald::executors
