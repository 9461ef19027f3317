#include "core/config/job_plan.h"

#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "core/config/compose.h"
#include "core/config/dotted_override.h"
#include "core/config/overrides.h"
#include "core/config/value.h"
#include "core/shell.h"

namespace evald::config {

using internal::Value;

namespace {

constexpr char kUrlOverride[] = "config.target.api_endpoint.url";

Value FromNode(const YAML::Node& node) {
  auto v = internal::ValueFromYaml(node, nullptr);
  return v.ok() ? std::move(*v) : Value::Null();
}

// Python's str.strip("\n").
std::string StripNewlines(const std::string& s) {
  size_t b = s.find_first_not_of('\n');
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of('\n');
  return s.substr(b, e - b + 1);
}

const Value* Child(const Value* v, const char* key) {
  return (v != nullptr && v->is_map()) ? v->Get(key) : nullptr;
}

std::string TaskLabel(const TaskSpec& task) {
  return absl::StrCat("task '", task.name, "' (evaluation.tasks[", task.index, "])");
}

// The reference passes overrides to `run_eval --overrides`, which reads each value as YAML; a
// quoted string such as "Think step by step." therefore arrives without its quotes. Native plans
// apply the same reading so both kinds of task see the same text.
Value OverrideValueAsRunEvalSeesIt(Value v) {
  if (!v.is_string()) return v;
  std::string s = StripNewlines(v.s);
  if (s.size() >= 2 && (s.front() == '"' || s.front() == '\'') && s.back() == s.front()) {
    auto parsed = ParseYaml(s, "override");
    if (parsed.ok() && parsed->IsScalar()) return Value::String(parsed->Scalar());
  }
  return Value::String(s);
}

}  // namespace

absl::StatusOr<EndpointSpec> EndpointForTask(const RunConfig& rc, const TaskSpec& task) {
  EndpointSpec e;
  e.type = task.endpoint_type;
  e.model_id = rc.target.model_id;
  e.api_key_name = rc.target.api_key_name.empty() ? "" : "API_KEY";
  std::string override_url;
  for (const auto& [key, value] : task.overrides) {
    if (key != kUrlOverride) continue;
    Value v = FromNode(value);
    if (!v.is_string() || v.s.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(TaskLabel(task), ": override ", kUrlOverride, " must be a URL"));
    }
    override_url = StripNewlines(v.s);
  }
  if (!override_url.empty()) {
    e.url = override_url;
    return e;
  }
  if (rc.deployment_type == "none") {
    if (rc.target.url.empty()) {
      return absl::InvalidArgumentError(
          "API endpoint URL is not set: add target.api_endpoint.url (the full URL, e.g. "
          "https://integrate.api.nvidia.com/v1/chat/completions)");
    }
    e.url = rc.target.url;
    return e;
  }
  if (!rc.target.url.empty()) {
    e.url = rc.target.url;
    return e;
  }
  Value deployment = FromNode(rc.deployment);
  const Value* port = Child(&deployment, "port");
  std::string port_text;
  if (port != nullptr && port->kind == Value::Kind::kInt) {
    port_text = absl::StrCat(port->i);
  } else if (port != nullptr && port->is_string() && port->s == "auto") {
    port_text = "${EVALD_PORT}";
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "deployment.port must be a port number or auto (deployment '", rc.deployment_type, "')"));
  }
  const Value* path = Child(Child(&deployment, "endpoints"), task.endpoint_type.c_str());
  if (path == nullptr || !path->is_string()) {
    return absl::InvalidArgumentError(
        absl::StrCat("deployment.endpoints.", task.endpoint_type, " is not set; ", TaskLabel(task),
                     " needs the ", task.endpoint_type, " endpoint path of deployment '",
                     rc.deployment_type, "'"));
  }
  e.url = absl::StrCat("http://127.0.0.1:", port_text, path->s);
  return e;
}

absl::StatusOr<YAML::Node> BuildNativePlan(const RunConfig& rc, const TaskSpec& task,
                                           const EndpointSpec& endpoint,
                                           const std::string& artifacts_dir) {
  if (!task.def.native()) {
    return absl::InvalidArgumentError(absl::StrCat(TaskLabel(task), " runs in container ",
                                                   task.container, "; it has no native plan"));
  }
  Value plan = Value::Map();
  plan.Put("config", Value::Map());
  plan.Put("target", Value::Map());
  // evaluation.config, then the task's config, deep-merged (job-contract.md).
  Value root = FromNode(rc.root);
  const Value* evaluation = Child(&root, "evaluation");
  internal::Path path;
  if (const Value* global = Child(evaluation, "config"); global != nullptr && global->is_map()) {
    absl::Status st = internal::MergeValue(plan, *global, path);
    if (!st.ok()) return st;
  }
  const Value* tasks = Child(evaluation, "tasks");
  if (tasks != nullptr && tasks->is_list() && task.index >= 0 &&
      static_cast<size_t>(task.index) < tasks->items.size()) {
    const Value* own = Child(&tasks->items[static_cast<size_t>(task.index)], "config");
    if (own != nullptr && own->is_map()) {
      absl::Status st = internal::MergeValue(plan, *own, path);
      if (!st.ok()) return st;
    }
  }
  Value* config = plan.Get("config");
  Value* target = plan.Get("target");
  if (!config->is_map() || !target->is_map()) {
    return absl::InvalidArgumentError(
        absl::StrCat(TaskLabel(task), ": config.config and config.target must be mappings"));
  }
  config->Put("type", Value::String(task.task_file.empty() ? task.def.name : task.name));
  config->Put("output_dir", Value::String(artifacts_dir));
  if (!task.task_file.empty()) config->Put("task_file", Value::String(task.task_file));
  if (!task.dataset.empty()) {
    Value* params = config->Get("params");
    if (params == nullptr || !params->is_map()) params = &config->Put("params", Value::Map());
    Value* extra = params->Get("extra");
    if (extra == nullptr || !extra->is_map()) extra = &params->Put("extra", Value::Map());
    extra->Put("dataset", Value::String(task.dataset));
  }
  Value* api = target->Get("api_endpoint");
  if (api == nullptr || !api->is_map()) api = &target->Put("api_endpoint", Value::Map());
  api->Put("url", Value::String(endpoint.url));
  api->Put("model_id", Value::String(endpoint.model_id));
  api->Put("type", Value::String(endpoint.type));
  api->Put("api_key",
           endpoint.api_key_name.empty() ? Value::Null() : Value::String(endpoint.api_key_name));

  for (const auto& [key, node] : task.overrides) {
    if (key == kUrlOverride) continue;  // already applied by EndpointForTask
    if (!absl::StartsWith(key, "config.") && !absl::StartsWith(key, "target.")) {
      return absl::InvalidArgumentError(absl::StrCat(
          TaskLabel(task), ": override key '", key,
          "' is outside config. and target.; a native task's plan has only those sections"));
    }
    absl::Status st = ApplyDottedOverride(plan, key, OverrideValueAsRunEvalSeesIt(FromNode(node)));
    if (!st.ok())
      return absl::InvalidArgumentError(absl::StrCat(TaskLabel(task), ": ", st.message()));
  }
  return internal::ValueToYaml(plan);
}

std::string BuildEvalFactoryCommand(const TaskSpec& task, const EndpointSpec& endpoint,
                                    const std::string& binary) {
  std::string config_yaml = "{}\n";
  if (task.config.IsMap() && task.config.size() > 0) config_yaml = ToYaml(task.config);
  std::vector<std::string> overrides;
  for (const auto& [key, node] : task.overrides) {
    Value v = FromNode(node);
    if (v.is_string()) v.s = StripNewlines(v.s);
    overrides.push_back(absl::StrCat(key, "=", internal::PyStr(v)));
  }
  // Unlike the reference, every value is one quoted word (core/shell.h): a model id or an
  // override must not run as shell text in the container. nv_eval reads quotes inside
  // --overrides itself (commas inside them do not split), so `k="a b"` keeps its meaning.
  std::string cmd = absl::StrCat(
      "echo \"", absl::Base64Escape(config_yaml),
      "\" | base64 -d > config_ef.yaml && cat config_ef.yaml && ",
      ShellQuote(binary.empty() ? "nv_eval" : binary), " run_eval --model_id ",
      ShellQuote(endpoint.model_id), " --model_type ", ShellQuote(endpoint.type), " --eval_type ",
      ShellQuote(task.def.name), " --model_url ", ShellQuote(endpoint.url), " --api_key_name ",
      ShellQuote(endpoint.api_key_name.empty() ? "API_KEY" : endpoint.api_key_name),
      " --output_dir /results --run_config config_ef.yaml");
  if (!overrides.empty()) {
    absl::StrAppend(&cmd, " --overrides ", ShellQuote(absl::StrJoin(overrides, ",")));
  }
  return cmd;
}

}  // namespace evald::config
