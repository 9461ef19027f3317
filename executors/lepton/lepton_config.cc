#include "executors/lepton/lepton_config.h"

#include <cmath>
#include <exception>

#include "absl/strings/str_cat.h"
#include "core/shell.h"
#include "nlohmann/json.hpp"

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
      SchemaKey("execution.evaluation_tasks.runner_image", K::kStr | K::kNull),
      SchemaKey("execution.evaluation_tasks.runner_command", K::kStr | K::kNull),
      SchemaKey("execution.evaluation_tasks.ttl_seconds_after_finished", K::kNum | K::kNull).Min(0),
      SchemaKey(platform, K::kMap | K::kNull),
      SchemaKey(platform + ".api_url", K::kStr | K::kNull),
      SchemaKey(platform + ".workspace_id", K::kStr | K::kNull),
      SchemaKey(platform + ".api_token_env", K::kStr | K::kNull),
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

namespace {

absl::Status Bad(const std::string& key, const std::string& why) {
  return absl::InvalidArgumentError(absl::StrCat("execution.", key, ": ", why));
}

// The scalar at `node` as text, or `fallback` when absent or null.
absl::StatusOr<std::string> Text(const YAML::Node& node, const std::string& key,
                                 const std::string& fallback = "") {
  if (!node || node.IsNull()) return fallback;
  if (!node.IsScalar()) return Bad(key, "must be a string");
  return node.Scalar();
}

YAML::Node Child(const YAML::Node& node, const char* key) {
  if (!node || !node.IsMap()) return YAML::Node();
  return node[key];
}

// A YAML map as a JSON object (mount_options); scalars stay strings unless they are numbers or
// booleans.
nlohmann::json ToJson(const YAML::Node& node) {
  if (node.IsMap()) {
    nlohmann::json out = nlohmann::json::object();
    for (const auto& kv : node) out[kv.first.Scalar()] = ToJson(kv.second);
    return out;
  }
  if (node.IsSequence()) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& item : node) out.push_back(ToJson(item));
    return out;
  }
  if (!node.IsScalar()) return nullptr;
  const std::string& s = node.Scalar();
  if (s == "true" || s == "false") return s == "true";
  nlohmann::json number = nlohmann::json::parse(s, nullptr, /*allow_exceptions=*/false);
  if (number.is_number()) return number;
  return s;
}

absl::StatusOr<LeptonConfig> Parse(const YAML::Node& execution) {
  LeptonConfig c;
  const YAML::Node platform = Child(execution, "lepton_platform");
  const YAML::Node tasks = Child(platform, "tasks");
  const YAML::Node eval_tasks = Child(execution, "evaluation_tasks");
#define EVALD_TEXT(field, node, key)                          \
  {                                                           \
    absl::StatusOr<std::string> v = Text(node, key, c.field); \
    if (!v.ok()) return v.status();                           \
    c.field = *v;                                             \
  }
  EVALD_TEXT(api_url, Child(platform, "api_url"), "lepton_platform.api_url");
  EVALD_TEXT(workspace_id, Child(platform, "workspace_id"), "lepton_platform.workspace_id");
  EVALD_TEXT(token_env, Child(platform, "api_token_env"), "lepton_platform.api_token_env");
  EVALD_TEXT(resource_shape, Child(eval_tasks, "resource_shape"),
             "evaluation_tasks.resource_shape");
  EVALD_TEXT(runner_image, Child(eval_tasks, "runner_image"), "evaluation_tasks.runner_image");
  EVALD_TEXT(runner_command, Child(eval_tasks, "runner_command"),
             "evaluation_tasks.runner_command");
  EVALD_TEXT(node_group, Child(tasks, "node_group"), "lepton_platform.tasks.node_group");
#undef EVALD_TEXT
  if (c.api_url.empty()) return Bad("lepton_platform.api_url", "must not be empty");
  if (!IsEnvName(c.token_env)) {
    return Bad("lepton_platform.api_token_env", "must be an environment variable name");
  }
  if (const YAML::Node v = Child(eval_tasks, "use_shared_storage"); v && !v.IsNull()) {
    c.use_shared_storage = v.as<bool>();
  }
  if (const YAML::Node v = Child(eval_tasks, "ttl_seconds_after_finished"); v && !v.IsNull()) {
    c.ttl_seconds_after_finished = v.as<int>();
  }
  if (const YAML::Node v = Child(eval_tasks, "timeout"); v && !v.IsNull()) {
    const double seconds = v.as<double>();
    if (!(seconds > 0) || seconds > 1e9) {
      return Bad("evaluation_tasks.timeout", "must be a number of seconds above 0");
    }
    c.task_timeout_s = static_cast<int64_t>(std::ceil(seconds));
  }
  if (const YAML::Node env = Child(tasks, "env_vars"); env && env.IsMap()) {
    for (const auto& kv : env) {
      LeptonEnvVar e;
      e.name = kv.first.Scalar();
      const std::string key = "lepton_platform.tasks.env_vars." + e.name;
      if (!IsEnvName(e.name)) return Bad(key, "is not an environment variable name");
      const YAML::Node ref = Child(Child(kv.second, "value_from"), "secret_name_ref");
      if (kv.second.IsMap()) {
        if (!ref || !ref.IsScalar() || ref.Scalar().empty()) {
          return Bad(key, "must be a value or {value_from: {secret_name_ref: <secret name>}}");
        }
        e.secret_ref = ref.Scalar();
      } else if (kv.second.IsScalar()) {
        e.value = kv.second.Scalar();
      } else {
        return Bad(key, "must be a value or {value_from: {secret_name_ref: <secret name>}}");
      }
      c.env_vars.push_back(std::move(e));
    }
  }
  if (const YAML::Node mounts = Child(tasks, "mounts"); mounts && mounts.IsSequence()) {
    for (size_t i = 0; i < mounts.size(); ++i) {
      const std::string key = absl::StrCat("lepton_platform.tasks.mounts[", i, "]");
      LeptonMount m;
      for (auto [field, name] :
           {std::pair{&m.from, "from"}, std::pair{&m.path, "path"},
            std::pair{&m.mount_path, "mount_path"}, std::pair{&m.local_path, "local_path"}}) {
        absl::StatusOr<std::string> v = Text(Child(mounts[i], name), key + "." + name);
        if (!v.ok()) return v.status();
        *field = *v;
      }
      if (m.path.empty() || m.mount_path.empty()) {
        return Bad(key, "needs path (on the Lepton storage) and mount_path (in the job)");
      }
      if (m.from.empty()) m.from = "node-nfs:lepton-shared-fs";
      if (const YAML::Node o = Child(mounts[i], "mount_options"); o && o.IsMap()) {
        m.mount_options_json = ToJson(o).dump();
      }
      c.mounts.push_back(std::move(m));
    }
  }
  if (const YAML::Node secrets = Child(tasks, "image_pull_secrets");
      secrets && secrets.IsSequence()) {
    for (const auto& s : secrets) {
      if (s.IsScalar()) c.image_pull_secrets.push_back(s.Scalar());
    }
  }
  return c;
}

}  // namespace

nlohmann::json LeptonYamlToJson(const YAML::Node& node) {
  if (!node || node.IsNull()) return nullptr;
  return ToJson(node);
}

absl::Status LeptonWorkspaceError(const LeptonConfig& config) {
  if (!config.workspace_id.empty()) return absl::OkStatus();
  return Bad("lepton_platform.workspace_id",
             "is required: the id of the Lepton workspace (not its name) the jobs run in");
}

absl::StatusOr<LeptonConfig> ParseLeptonConfig(const std::string& execution_yaml) {
  // Exceptions stop here, at the config edge.
  try {
    return Parse(YAML::Load(execution_yaml));
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("execution (lepton): cannot read the section: ", e.what()));
  }
}

}  // namespace evald::executors
