#include "core/config/run_config.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/config/compose.h"
#include "core/config/interpolation.h"
#include "core/config/value.h"

namespace evald::config {

using internal::MapEntry;
using internal::Value;

namespace {

constexpr const char* kModes[] = {"parallel", "sequential"};
constexpr const char* kDeployments[] = {"none", "vllm", "sglang", "nim", "trtllm", "command"};
constexpr const char* kEndpointTypes[] = {"chat", "completions", "vlm"};
constexpr char kApiKeyPlaceholder[] = "<YOUR_API_KEY_NAME>";

template <size_t N>
bool OneOf(const std::string& s, const char* const (&set)[N]) {
  return std::any_of(std::begin(set), std::end(set), [&](const char* x) { return s == x; });
}

template <size_t N>
std::string Listed(const char* const (&set)[N]) {
  std::vector<std::string> v(std::begin(set), std::end(set));
  return absl::StrJoin(v, ", ");
}

absl::Status Invalid(const std::string& msg) { return absl::InvalidArgumentError(msg); }

bool IsEnvName(const std::string& s) {
  if (s.empty() || !(absl::ascii_isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_')) {
    return false;
  }
  return std::all_of(s.begin(), s.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

// A scalar as text (model ids such as `1234` are numbers in YAML); nullopt for containers/null.
std::optional<std::string> ScalarText(const Value* v) {
  if (v == nullptr || v->is_null() || v->is_container()) return std::nullopt;
  return v->is_string() ? v->s : internal::CanonicalScalar(*v);
}

const Value* Child(const Value* v, const char* key) {
  return (v != nullptr && v->is_map()) ? v->Get(key) : nullptr;
}

// DST -> SRC pairs of an env_vars mapping; `where` names it in messages.
absl::Status ReadEnvVars(const Value* v, const std::string& where,
                         std::vector<std::pair<std::string, std::string>>* out) {
  if (v == nullptr || v->is_null()) return absl::OkStatus();
  if (!v->is_map()) {
    return Invalid(absl::StrCat(where, " must be a mapping of CONTAINER_VAR: HOST_VAR, not ",
                                internal::KindName(*v)));
  }
  for (const MapEntry& e : v->entries) {
    if (!IsEnvName(e.key)) {
      return Invalid(
          absl::StrCat(where, ": '", e.key, "' is not a valid environment variable name"));
    }
    if (!e.value.is_string() || !IsEnvName(e.value.s)) {
      return Invalid(absl::StrCat(
          where, ".", e.key,
          " must be the name of a host environment variable that holds the value (letters, "
          "digits and _), not the value itself"));
    }
    auto it =
        std::find_if(out->begin(), out->end(), [&](const auto& p) { return p.first == e.key; });
    if (it != out->end()) {
      it->second = e.value.s;
    } else {
      out->emplace_back(e.key, e.value.s);
    }
  }
  return absl::OkStatus();
}

absl::Status ReadOverrides(const Value* v, const std::string& where,
                           std::vector<std::pair<std::string, YAML::Node>>* out) {
  if (v == nullptr || v->is_null()) return absl::OkStatus();
  if (!v->is_map()) {
    return Invalid(absl::StrCat(where, " must be a mapping of dotted.key: value, not ",
                                internal::KindName(*v)));
  }
  for (const MapEntry& e : v->entries) {
    auto it =
        std::find_if(out->begin(), out->end(), [&](const auto& p) { return p.first == e.key; });
    if (it != out->end()) {
      it->second = internal::ValueToYaml(e.value);
    } else {
      out->emplace_back(e.key, internal::ValueToYaml(e.value));
    }
  }
  return absl::OkStatus();
}

std::string TaskWhere(int index) { return absl::StrCat("evaluation.tasks[", index, "]"); }

// A user-defined task: its endpoint_type comes from the task file (evalrun checks the rest).
absl::StatusOr<TaskDef> UserTaskDef(const std::string& name, const std::string& task_file,
                                    int index) {
  const std::string where = absl::StrCat(TaskWhere(index), " (", name, ")");
  if (task_file.empty() || !std::filesystem::path(task_file).is_absolute()) {
    return Invalid(absl::StrCat(where, ": task_file '", task_file,
                                "' must be an absolute path (relative paths are resolved when "
                                "the config is composed)"));
  }
  auto text = internal::ReadSmallFile(task_file);
  if (!text.ok()) {
    return Invalid(absl::StrCat(where, ": task_file ", text.status().message()));
  }
  auto node = ParseYaml(*text, task_file);
  if (!node.ok()) return Invalid(absl::StrCat(where, ": ", node.status().message()));
  auto value = internal::ValueFromYaml(*node, std::make_shared<const std::string>(task_file));
  if (!value.ok()) return Invalid(absl::StrCat(where, ": ", value.status().message()));
  TaskDef def;
  def.name = name;
  def.harness = "native";
  def.endpoint_type = "chat";
  def.description = absl::StrCat("user-defined task from ", task_file);
  if (!value->is_map()) {
    return Invalid(
        absl::StrCat(where, ": task_file '", task_file, "' must hold a mapping at the top level"));
  }
  if (const Value* type = value->Get("endpoint_type"); type != nullptr && !type->is_null()) {
    if (!type->is_string() || (type->s != "chat" && type->s != "completions")) {
      return Invalid(absl::StrCat(type->mark.ToString(),
                                  ": endpoint_type must be chat or "
                                  "completions"));
    }
    def.endpoint_type = type->s;
  }
  return def;
}

// Indexes of the tasks a filter selects, in config order.
absl::StatusOr<std::vector<int>> SelectTasks(const std::vector<std::string>& names,
                                             const std::vector<std::string>& filter) {
  std::vector<int> all;
  for (size_t k = 0; k < names.size(); ++k) all.push_back(static_cast<int>(k));
  if (filter.empty()) return all;
  std::set<int> chosen;
  for (const std::string& f : filter) {
    std::vector<int> hits;
    size_t dot = f.rfind('.');
    if (dot != std::string::npos && dot > 0 && dot + 1 < f.size() &&
        std::all_of(f.begin() + static_cast<long>(dot) + 1, f.end(),
                    [](char c) { return absl::ascii_isdigit(static_cast<unsigned char>(c)); })) {
      std::string base = f.substr(0, dot);
      std::vector<int> same;
      for (int k : all) {
        if (names[static_cast<size_t>(k)] == base) same.push_back(k);
      }
      if (!same.empty()) {
        size_t n = 0;
        if (!absl::SimpleAtoi(f.substr(dot + 1), &n) || n >= same.size()) {
          return Invalid(absl::StrCat("task filter '", f, "': the config has ", same.size(),
                                      " task", same.size() == 1 ? "" : "s", " named '", base, "' (",
                                      base, ".0 to ", base, ".", same.size() - 1, ")"));
        }
        hits.push_back(same[n]);
      }
    }
    if (hits.empty()) {
      for (int k : all) {
        if (names[static_cast<size_t>(k)] == f) hits.push_back(k);
      }
    }
    if (hits.empty()) {
      std::vector<std::string> unique;
      for (const std::string& n : names) {
        if (std::find(unique.begin(), unique.end(), n) == unique.end()) unique.push_back(n);
      }
      return Invalid(absl::StrCat("task filter '", f, "' matches no task; tasks in the config: ",
                                  absl::StrJoin(unique, ", ")));
    }
    chosen.insert(hits.begin(), hits.end());
  }
  return std::vector<int>(chosen.begin(), chosen.end());
}

bool HasUrlOverride(const Value* overrides) {
  return overrides != nullptr && overrides->is_map() &&
         overrides->Get("config.target.api_endpoint.url") != nullptr;
}

}  // namespace

std::vector<std::string> SecretNamesOf(const YAML::Node& composed) {
  std::set<std::string> names;
  auto root = internal::ValueFromYaml(composed, nullptr);
  if (!root.ok()) return {};
  const Value* key = Child(Child(Child(&*root, "target"), "api_endpoint"), "api_key_name");
  if (key != nullptr && key->is_string() && IsEnvName(key->s)) names.insert(key->s);
  const Value* evaluation = Child(&*root, "evaluation");
  auto add_sources = [&](const Value* env) {
    if (env == nullptr || !env->is_map()) return;
    for (const MapEntry& e : env->entries) {
      if (e.value.is_string() && IsEnvName(e.value.s)) names.insert(e.value.s);
    }
  };
  add_sources(Child(evaluation, "env_vars"));
  const Value* tasks = Child(evaluation, "tasks");
  if (tasks != nullptr && tasks->is_list()) {
    for (const Value& t : tasks->items) add_sources(Child(&t, "env_vars"));
  }
  return {names.begin(), names.end()};
}

absl::StatusOr<RunConfig> ParseRunConfig(const YAML::Node& composed, const TaskCatalog& catalog,
                                         const std::vector<std::string>& task_filter,
                                         const ExecutorJobEnv& executor_env) {
  auto parsed = internal::ValueFromYaml(composed, nullptr);
  if (!parsed.ok()) return parsed.status();
  const Value& root = *parsed;
  if (!root.is_map()) {
    return Invalid(absl::StrCat("the config must be a mapping at the top level, not ",
                                internal::KindName(root)));
  }
  std::vector<std::string> missing = internal::FindMissing(root);
  if (missing.size() == 1) {
    return Invalid(absl::StrCat("missing mandatory value at '", missing[0],
                                "' (set it in the config or with -o)"));
  }
  if (!missing.empty()) {
    return Invalid(absl::StrCat("missing mandatory values at '", absl::StrJoin(missing, "', '"),
                                "' (set them in the config or with -o)"));
  }
  RunConfig rc;
  rc.root = internal::ValueToYaml(root);

  // execution
  const Value* execution = root.Get("execution");
  if (execution == nullptr || !execution->is_map()) {
    return Invalid(
        "execution must be a mapping with at least type and output_dir; "
        "start from a packaged group (defaults: - execution: local)");
  }
  auto type = ScalarText(execution->Get("type"));
  if (!type.has_value() || type->empty()) {
    return Invalid("execution.type is not set (start from a packaged group: defaults: - "
                   "execution: local)");
  }
  rc.executor = *type;
  rc.mode = "parallel";
  if (const Value* mode = execution->Get("mode"); mode != nullptr && !mode->is_null()) {
    auto m = ScalarText(mode);
    if (!m.has_value() || !OneOf(*m, kModes)) {
      return Invalid(absl::StrCat("unknown execution.mode '", m.value_or(internal::PyStr(*mode)),
                                  "'; available: ", Listed(kModes)));
    }
    rc.mode = *m;
  }
  const Value* output_dir = execution->Get("output_dir");
  if (output_dir != nullptr && !output_dir->is_null() && !output_dir->is_string()) {
    return Invalid(absl::StrCat("execution.output_dir must be an absolute path (a string), not ",
                                internal::KindName(*output_dir)));
  }
  if (output_dir == nullptr || !output_dir->is_string() || output_dir->s.empty()) {
    return Invalid("execution.output_dir is not set; give the folder for the results");
  }
  if (!std::filesystem::path(output_dir->s).is_absolute()) {
    return Invalid(absl::StrCat("execution.output_dir must be an absolute path, got '",
                                output_dir->s,
                                "' (relative paths are made absolute when the config is "
                                "composed with a working directory)"));
  }
  rc.output_dir = output_dir->s;
  rc.execution = internal::ValueToYaml(*execution);

  // deployment
  const Value* deployment = root.Get("deployment");
  if (deployment == nullptr || deployment->is_null()) {
    Value none = Value::Map();
    none.Put("type", Value::String("none"));
    rc.deployment = internal::ValueToYaml(none);
    rc.deployment_type = "none";
  } else {
    if (!deployment->is_map()) {
      return Invalid(
          absl::StrCat("deployment must be a mapping, not ", internal::KindName(*deployment)));
    }
    auto dtype = ScalarText(deployment->Get("type"));
    if (!dtype.has_value()) {
      return Invalid(absl::StrCat("deployment.type is not set; available: ", Listed(kDeployments)));
    }
    if (!OneOf(*dtype, kDeployments)) {
      return Invalid(absl::StrCat("unknown deployment '", *dtype,
                                  "' at deployment.type; available: ", Listed(kDeployments)));
    }
    rc.deployment_type = *dtype;
    rc.deployment = internal::ValueToYaml(*deployment);
  }
  const bool deployed = rc.deployment_type != "none";

  // target
  const Value* target = root.Get("target");
  if (target != nullptr && !target->is_null() && !target->is_map()) {
    return Invalid(absl::StrCat("target must be a mapping, not ", internal::KindName(*target)));
  }
  const Value* api = Child(target, "api_endpoint");
  if (api != nullptr && !api->is_null() && !api->is_map()) {
    return Invalid(
        absl::StrCat("target.api_endpoint must be a mapping, not ", internal::KindName(*api)));
  }
  if (deployed) {
    for (const char* key : {"url", "model_id"}) {
      if (Child(api, key) != nullptr) {
        return Invalid(absl::StrCat("target.api_endpoint.", key,
                                    " must not be set when a deployment is configured "
                                    "(deployment.type: ",
                                    rc.deployment_type,
                                    "): evald derives it from the deployment; "
                                    "remove it"));
      }
    }
    auto served = ScalarText(deployment->Get("served_model_name"));
    if (!served.has_value() || served->empty()) {
      return Invalid(absl::StrCat("deployment.served_model_name is not set; deployment '",
                                  rc.deployment_type, "' needs the model name it serves"));
    }
    rc.target.model_id = *served;
  } else {
    const Value* url = Child(api, "url");
    if (url != nullptr && !url->is_null() && !url->is_string()) {
      return Invalid(absl::StrCat("target.api_endpoint.url must be a URL (a string), not ",
                                  internal::KindName(*url)));
    }
    rc.target.url = url != nullptr && url->is_string() ? url->s : "";
    auto model = ScalarText(Child(api, "model_id"));
    if (!model.has_value() || model->empty()) {
      return Invalid(
          "target.api_endpoint.model_id is not set; give the model name the endpoint "
          "serves");
    }
    rc.target.model_id = *model;
  }
  if (const Value* key = Child(api, "api_key_name"); key != nullptr && !key->is_null()) {
    if (!key->is_string()) {
      return Invalid(
          "target.api_endpoint.api_key_name must be the name of an environment "
          "variable, or null for no key");
    }
    if (key->s == kApiKeyPlaceholder) {
      return Invalid(absl::StrCat(
          "target.api_endpoint.api_key_name is still the placeholder '", kApiKeyPlaceholder,
          "': set it to the name of the environment variable that holds your API key (e.g. -o "
          "target.api_endpoint.api_key_name=NGC_API_KEY), or to null if the endpoint needs no "
          "key"));
    }
    if (!key->s.empty() && !IsEnvName(key->s)) {
      // Never echo the value: a pasted key would land in logs.
      return Invalid(
          "target.api_endpoint.api_key_name must be the NAME of the environment "
          "variable that holds the key (letters, digits and _), not the key itself");
    }
    rc.target.api_key_name = key->s;
  }

  // evaluation
  const Value* evaluation = root.Get("evaluation");
  const Value* tasks = Child(evaluation, "tasks");
  if (evaluation != nullptr && evaluation->is_list() && !evaluation->items.empty()) {
    return Invalid(
        "evaluation must be a mapping with tasks (and optionally overrides, env_vars, "
        "config), not a list");
  }
  if (evaluation != nullptr && !evaluation->is_null() && !evaluation->is_map() &&
      !evaluation->is_list()) {
    return Invalid(absl::StrCat("evaluation must be a mapping with tasks, not ",
                                internal::KindName(*evaluation)));
  }
  if (tasks == nullptr || tasks->is_null() || (tasks->is_list() && tasks->items.empty())) {
    return Invalid("no tasks: add evaluation.tasks (a list of - name: <task>)");
  }
  if (!tasks->is_list()) {
    return Invalid(absl::StrCat("evaluation.tasks must be a list of - name: <task>, not ",
                                internal::KindName(*tasks)));
  }
  std::vector<std::string> names;
  for (size_t k = 0; k < tasks->items.size(); ++k) {
    const Value& t = tasks->items[k];
    const std::string where = TaskWhere(static_cast<int>(k));
    if (!t.is_map()) {
      return Invalid(absl::StrCat(where, " must be a mapping such as `- name: ifeval`, not ",
                                  internal::KindName(t)));
    }
    auto name = ScalarText(t.Get("name"));
    if (!name.has_value() || name->empty()) {
      return Invalid(absl::StrCat(where, ".name is not set; every task needs a name"));
    }
    names.push_back(*name);
  }
  auto selected = SelectTasks(names, task_filter);
  if (!selected.ok()) return selected.status();

  const Value* global_overrides = Child(evaluation, "overrides");
  const Value* global_env = Child(evaluation, "env_vars");
  const Value* global_config = Child(evaluation, "config");
  if (global_config != nullptr && !global_config->is_null() && !global_config->is_map()) {
    return Invalid(absl::StrCat("evaluation.config must be a mapping, not ",
                                internal::KindName(*global_config)));
  }
  // Required env vars may also be given by the executor's own job environment.
  std::set<std::string> executor_given;
  if (executor_env) {
    for (std::string& name : executor_env(rc.executor, internal::ValueToYaml(*execution))) {
      executor_given.insert(std::move(name));
    }
  }

  std::set<std::string> secrets;
  for (int index : *selected) {
    const Value& t = tasks->items[static_cast<size_t>(index)];
    const std::string where = TaskWhere(index);
    TaskSpec spec;
    spec.index = index;
    spec.name = names[static_cast<size_t>(index)];

    if (const Value* file = t.Get("task_file"); file != nullptr && !file->is_null()) {
      if (!file->is_string()) return Invalid(absl::StrCat(where, ".task_file must be a path"));
      auto def = UserTaskDef(spec.name, file->s, index);
      if (!def.ok()) return def.status();
      spec.def = std::move(*def);
      spec.task_file = file->s;
    } else {
      auto def = catalog.Find(spec.name);
      if (!def.ok()) {
        return Invalid(absl::StrCat(where, ".name: ", def.status().message()));
      }
      spec.def = **def;
    }

    spec.container = spec.def.container;
    if (const Value* c = t.Get("container"); c != nullptr && !c->is_null()) {
      if (!c->is_string() || c->s.empty()) {
        return Invalid(absl::StrCat(where, ".container must be an image name"));
      }
      if (spec.def.native()) {
        return Invalid(absl::StrCat(where, ".container: '", spec.name,
                                    "' is a native task run by evalrun; it takes no container"));
      }
      spec.container = c->s;
    }
    spec.endpoint_type = spec.def.endpoint_type;
    if (const Value* e = t.Get("endpoint_type"); e != nullptr && !e->is_null()) {
      if (!e->is_string() || !OneOf(e->s, kEndpointTypes) || (spec.def.native() && e->s == "vlm")) {
        return Invalid(
            absl::StrCat(where, ".endpoint_type must be one of ",
                         spec.def.native() ? "chat, completions" : Listed(kEndpointTypes)));
      }
      spec.endpoint_type = e->s;
    }
    for (const char* key : {"dataset", "dataset_dir"}) {
      const Value* d = t.Get(key);
      if (d == nullptr || d->is_null() || !spec.dataset.empty()) continue;
      if (!d->is_string()) return Invalid(absl::StrCat(where, ".", key, " must be a path or URL"));
      spec.dataset = d->s;
    }

    absl::Status st = ReadOverrides(global_overrides, "evaluation.overrides", &spec.overrides);
    if (st.ok()) st = ReadOverrides(t.Get("overrides"), where + ".overrides", &spec.overrides);
    if (st.ok()) st = ReadEnvVars(global_env, "evaluation.env_vars", &spec.env_vars);
    if (st.ok()) st = ReadEnvVars(t.Get("env_vars"), where + ".env_vars", &spec.env_vars);
    if (!st.ok()) return st;
    if (!deployed && rc.target.url.empty() && !HasUrlOverride(t.Get("overrides")) &&
        !HasUrlOverride(global_overrides)) {
      return Invalid(
          "target.api_endpoint.url is not set; give the full URL of the endpoint "
          "(e.g. https://integrate.api.nvidia.com/v1/chat/completions)");
    }
    if (!rc.target.api_key_name.empty()) {
      for (const auto& [dst, src] : spec.env_vars) {
        if (dst == "API_KEY") {
          return Invalid(absl::StrCat(
              where,
              ": env_vars maps API_KEY, which evald sets from "
              "target.api_endpoint.api_key_name; remove it there or set api_key_name to null"));
        }
      }
      spec.env_vars.emplace_back("API_KEY", rc.target.api_key_name);
    }
    for (const std::string& required : spec.def.required_env_vars) {
      bool mapped = executor_given.count(required) != 0 ||
                    std::any_of(spec.env_vars.begin(), spec.env_vars.end(),
                                [&](const auto& p) { return p.first == required; });
      if (!mapped) {
        return Invalid(absl::StrCat("task '", spec.name, "' (", where,
                                    ") requires environment variable ", required, ": add `",
                                    required, ": <NAME_OF_A_HOST_VARIABLE_HOLDING_IT>` to ", where,
                                    ".env_vars (or to evaluation.env_vars)"));
      }
    }
    for (const auto& [dst, src] : spec.env_vars) secrets.insert(src);

    Value config = Value::Map();
    if (global_config != nullptr && global_config->is_map()) config = *global_config;
    if (const Value* c = t.Get("config"); c != nullptr && !c->is_null()) {
      if (!c->is_map()) {
        return Invalid(
            absl::StrCat(where, ".config must be a mapping, not ", internal::KindName(*c)));
      }
      // The reference shallow-updates evaluation.config with the task's config.
      for (const MapEntry& e : c->entries) config.Put(e.key, e.value);
    }
    spec.config = internal::ValueToYaml(config);
    rc.tasks.push_back(std::move(spec));
  }
  rc.secret_names.assign(secrets.begin(), secrets.end());
  return rc;
}

}  // namespace evald::config
