#include "core/deployment/deployment_spec.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/status_macros.h"

namespace evald::deployment {
namespace {

constexpr char kKnownTypes[] = "none, vllm, sglang, nim, trtllm, command";
constexpr char kHostPrefix[] = "$host:";
constexpr char kLitPrefix[] = "$lit:";
constexpr char kRuntimePrefix[] = "$runtime:";

std::string Describe(const YAML::Node& node) {
  if (!node.IsDefined()) return "nothing";  // also yaml-cpp's invalid "zombie" nodes
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Null:
      return "null";
    case YAML::NodeType::Scalar:
      return absl::StrCat("'", node.Scalar(), "'");
    default:
      return "nothing";
  }
}

absl::Status Bad(const std::string& path, absl::string_view expected, const YAML::Node& got) {
  return absl::InvalidArgumentError(
      absl::StrCat(path, ": expected ", expected, ", got ", Describe(got)));
}

bool Present(const YAML::Node& node) { return node.IsDefined() && !node.IsNull(); }

// `key` of `parent` (a map), or an undefined node. Never throws.
YAML::Node Child(const YAML::Node& parent, const char* key) {
  if (!parent.IsDefined() || !parent.IsMap()) return YAML::Node(YAML::NodeType::Undefined);
  return parent[key];
}

absl::StatusOr<std::optional<std::string>> OptString(const YAML::Node& node,
                                                     const std::string& path) {
  if (!Present(node)) return std::optional<std::string>();
  if (!node.IsScalar()) return Bad(path, "a string", node);
  if (node.Scalar() == "???") {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": missing mandatory value `???` (set it in the config or with -o)"));
  }
  return std::optional<std::string>(node.Scalar());
}

absl::StatusOr<std::string> RequiredString(const YAML::Node& node, const std::string& path,
                                           absl::string_view why) {
  EVALD_ASSIGN_OR_RETURN(std::optional<std::string> value, OptString(node, path));
  if (!value.has_value() || value->empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": missing; expected a non-empty string (", why, ")"));
  }
  return *value;
}

absl::StatusOr<std::optional<int64_t>> OptInt(const YAML::Node& node, const std::string& path,
                                              absl::string_view expected) {
  if (!Present(node)) return std::optional<int64_t>();
  int64_t value = 0;
  if (!node.IsScalar() || !absl::SimpleAtoi(node.Scalar(), &value)) {
    return Bad(path, expected, node);
  }
  return std::optional<int64_t>(value);
}

absl::StatusOr<int> PositiveInt(const YAML::Node& node, const std::string& path, int fallback) {
  constexpr absl::string_view kExpected = "an integer >= 1";
  EVALD_ASSIGN_OR_RETURN(std::optional<int64_t> value, OptInt(node, path, kExpected));
  if (!value.has_value()) return fallback;
  if (*value < 1 || *value > 1 << 20) return Bad(path, kExpected, node);
  return static_cast<int>(*value);
}

// Seconds: a number (fractions allowed) that is > 0, or >= 0 when zero_ok.
absl::StatusOr<std::optional<double>> OptSeconds(const YAML::Node& node, const std::string& path,
                                                 bool zero_ok) {
  if (!Present(node)) return std::optional<double>();
  const absl::string_view expected =
      zero_ok ? "a number of seconds >= 0" : "a number of seconds > 0";
  double value = 0;
  if (!node.IsScalar() || !absl::SimpleAtod(node.Scalar(), &value) || !std::isfinite(value) ||
      value < 0 || (!zero_ok && value == 0)) {
    return Bad(path, expected, node);
  }
  return std::optional<double>(value);
}

absl::StatusOr<bool> Bool(const YAML::Node& node, const std::string& path, bool fallback) {
  if (!Present(node)) return fallback;
  bool value = false;
  if (!node.IsScalar() || !YAML::convert<bool>::decode(node, value)) {
    return Bad(path, "true or false", node);
  }
  return value;
}

bool ValidEnvName(absl::string_view name) {
  if (name.empty() || absl::ascii_isdigit(static_cast<unsigned char>(name[0]))) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  }
  return true;
}

// Adds the entries of an env_vars mapping at `path` to the spec (later calls win per name).
absl::Status AddEnvVars(const YAML::Node& node, const std::string& path, DeploymentSpec& spec) {
  if (!Present(node)) return absl::OkStatus();
  if (!node.IsMap()) return Bad(path, "a mapping NAME: value", node);
  for (const auto& entry : node) {
    const std::string name = entry.first.Scalar();
    const std::string entry_path = absl::StrCat(path, ".", name);
    if (!ValidEnvName(name)) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": '", name,
                       "' is not a valid environment variable name ([A-Za-z_][A-Za-z0-9_]*)"));
    }
    if (name == "EVALD_PORT") {
      return absl::InvalidArgumentError(
          absl::StrCat(entry_path, ": EVALD_PORT is set by evald (the server's port)"));
    }
    std::string value;
    if (Present(entry.second)) {
      if (!entry.second.IsScalar()) return Bad(entry_path, "a string value", entry.second);
      value = entry.second.Scalar();
    }
    spec.env_vars.erase(name);
    spec.secret_env_vars.erase(name);
    if (absl::StartsWith(value, kHostPrefix)) {
      std::string host_name = value.substr(sizeof(kHostPrefix) - 1);
      if (!ValidEnvName(host_name)) {
        return absl::InvalidArgumentError(absl::StrCat(
            entry_path, ": expected `$host:NAME` with a valid variable name, got '", value, "'"));
      }
      spec.secret_env_vars[name] = std::move(host_name);
    } else if (absl::StartsWith(value, kRuntimePrefix)) {
      return absl::InvalidArgumentError(
          absl::StrCat(entry_path,
                       ": `$runtime:` values are not supported for deployments; use a literal "
                       "value or `$host:NAME`"));
    } else if (absl::StartsWith(value, kLitPrefix)) {
      spec.env_vars[name] = value.substr(sizeof(kLitPrefix) - 1);
    } else {
      spec.env_vars[name] = std::move(value);
    }
  }
  return absl::OkStatus();
}

absl::Status AddMounts(const YAML::Node& node, const std::string& path, DeploymentSpec& spec) {
  if (!Present(node)) return absl::OkStatus();
  if (!node.IsMap()) return Bad(path, "a mapping host_path: container_path", node);
  for (const auto& entry : node) {
    const std::string src = entry.first.Scalar();
    const std::string entry_path = absl::StrCat(path, ".", src);
    if (!entry.second.IsScalar() || entry.second.Scalar().empty() || src.empty()) {
      return Bad(entry_path, "a container path", entry.second);
    }
    spec.mounts[src] = entry.second.Scalar();
  }
  return absl::OkStatus();
}

absl::Status ParseEndpoints(const YAML::Node& node, DeploymentSpec& spec) {
  spec.endpoints = {
      {"chat", "/v1/chat/completions"}, {"completions", "/v1/completions"}, {"health", "/health"}};
  if (!node.IsDefined() || node.IsNull()) return absl::OkStatus();
  if (!node.IsMap()) return Bad("deployment.endpoints", "a mapping type: /path", node);
  for (const auto& entry : node) {
    const std::string type = entry.first.Scalar();
    const std::string path = absl::StrCat("deployment.endpoints.", type);
    if (entry.second.IsNull()) {
      spec.endpoints.erase(type);  // `health: null` turns health checks off
      continue;
    }
    if (!entry.second.IsScalar() || !absl::StartsWith(entry.second.Scalar(), "/")) {
      return Bad(path, "a URL path starting with '/'", entry.second);
    }
    spec.endpoints[type] = entry.second.Scalar();
  }
  return absl::OkStatus();
}

absl::Status ParsePort(const YAML::Node& node, DeploymentSpec& spec) {
  constexpr absl::string_view kExpected = "an integer 1..65535 or `auto`";
  if (!Present(node)) {
    spec.port = 8000;  // the reference's default in every deployment group
    return absl::OkStatus();
  }
  if (node.IsScalar() && node.Scalar() == "auto") {  // exactly what compose's auto rule matches
    spec.port_auto = true;
    spec.port = 0;
    return absl::OkStatus();
  }
  EVALD_ASSIGN_OR_RETURN(std::optional<int64_t> port, OptInt(node, "deployment.port", kExpected));
  if (*port < 1 || *port > 65535) return Bad("deployment.port", kExpected, node);
  spec.port = static_cast<int>(*port);
  return absl::OkStatus();
}

absl::Status ParseLocalLaunch(const YAML::Node& node, DeploymentSpec& spec) {
  EVALD_ASSIGN_OR_RETURN(std::optional<std::string> mode,
                         OptString(node, "deployment.local_launch"));
  if (!mode.has_value() || *mode == "auto") {
    spec.local_launch = LocalLaunchMode::kAuto;
  } else if (*mode == "host") {
    spec.local_launch = LocalLaunchMode::kHost;
  } else if (*mode == "container") {
    spec.local_launch = LocalLaunchMode::kContainer;
  } else {
    return Bad("deployment.local_launch", "one of auto, host, container", node);
  }
  return absl::OkStatus();
}

// The first of `candidates` that is present, parsed as seconds.
absl::StatusOr<std::optional<double>> FirstSeconds(
    const std::vector<std::pair<YAML::Node, std::string>>& candidates, bool zero_ok) {
  for (const auto& [node, path] : candidates) {
    EVALD_ASSIGN_OR_RETURN(std::optional<double> value, OptSeconds(node, path, zero_ok));
    if (value.has_value()) return value;
  }
  return std::optional<double>();
}

absl::StatusOr<DeploymentSpec> Parse(const YAML::Node& d, const YAML::Node& execution) {
  DeploymentSpec spec;
  if (!Present(d)) return spec;  // no deployment section: type none
  if (!d.IsMap()) return Bad("deployment", "a mapping", d);

  const YAML::Node type_node = Child(d, "type");
  if (!Present(type_node) || !type_node.IsScalar()) {
    return Bad("deployment.type", absl::StrCat("one of ", kKnownTypes), type_node);
  }
  std::optional<DeploymentType> type = ParseDeploymentType(type_node.Scalar());
  if (!type.has_value()) {
    return absl::InvalidArgumentError(absl::StrCat("deployment.type: unknown type '",
                                                   type_node.Scalar(), "'; known: ", kKnownTypes));
  }
  spec.type = *type;
  if (spec.type == DeploymentType::kNone) return spec;

  const bool nim = spec.type == DeploymentType::kNim;
  const std::string type_name = ToString(spec.type);

  EVALD_ASSIGN_OR_RETURN(std::optional<std::string> image,
                         OptString(Child(d, "image"), "deployment.image"));
  spec.image = image.value_or("");
  if (nim && spec.image.empty()) {
    return absl::InvalidArgumentError(
        "deployment.image: missing; expected the NIM container image (e.g. "
        "nvcr.io/nim/meta/llama-3.1-8b-instruct:1.8.6)");
  }
  for (auto [key, field] :
       {std::pair{"checkpoint_path", &spec.checkpoint_path},
        std::pair{"hf_model_handle", &spec.hf_model_handle},
        std::pair{"cache_path", &spec.cache_path}, std::pair{"extra_args", &spec.extra_args}}) {
    EVALD_ASSIGN_OR_RETURN(std::optional<std::string> value,
                           OptString(Child(d, key), absl::StrCat("deployment.", key)));
    *field = value.value_or("");
  }
  EVALD_ASSIGN_OR_RETURN(
      spec.served_model_name,
      RequiredString(Child(d, "served_model_name"), "deployment.served_model_name",
                     "the model name the evaluation sends"));
  EVALD_RETURN_IF_ERROR(ParsePort(Child(d, "port"), spec));

  EVALD_ASSIGN_OR_RETURN(
      spec.tensor_parallel_size,
      PositiveInt(Child(d, "tensor_parallel_size"), "deployment.tensor_parallel_size", 1));
  EVALD_ASSIGN_OR_RETURN(
      spec.pipeline_parallel_size,
      PositiveInt(Child(d, "pipeline_parallel_size"), "deployment.pipeline_parallel_size", 1));
  EVALD_ASSIGN_OR_RETURN(spec.data_parallel_size, PositiveInt(Child(d, "data_parallel_size"),
                                                              "deployment.data_parallel_size", 1));
  EVALD_RETURN_IF_ERROR(ParseEndpoints(Child(d, "endpoints"), spec));

  if (nim) {
    EVALD_ASSIGN_OR_RETURN(std::optional<std::string> command,
                           OptString(Child(d, "command"), "deployment.command"));
    spec.command = command.value_or("");
  } else {
    EVALD_ASSIGN_OR_RETURN(
        spec.command,
        RequiredString(Child(d, "command"), "deployment.command",
                       absl::StrCat("the server command line of a ", type_name, " deployment")));
  }
  if (spec.port_auto && !nim && !absl::StrContains(spec.command, "EVALD_PORT")) {
    return absl::InvalidArgumentError(
        "deployment.port: `auto` needs the port in deployment.command (write --port "
        "${deployment.port} in the command), or set a fixed port");
  }

  EVALD_RETURN_IF_ERROR(AddEnvVars(Child(d, "env_vars"), "deployment.env_vars", spec));
  const YAML::Node exec_env = Child(execution, "env_vars");
  if (Present(exec_env) && exec_env.IsMap()) {
    EVALD_RETURN_IF_ERROR(
        AddEnvVars(Child(exec_env, "deployment"), "execution.env_vars.deployment", spec));
  }
  const YAML::Node exec_mounts = Child(execution, "mounts");
  if (Present(exec_mounts) && exec_mounts.IsMap()) {
    EVALD_RETURN_IF_ERROR(
        AddMounts(Child(exec_mounts, "deployment"), "execution.mounts.deployment", spec));
  }

  EVALD_ASSIGN_OR_RETURN(spec.shared, Bool(Child(d, "shared"), "deployment.shared", true));
  EVALD_ASSIGN_OR_RETURN(
      spec.stop_on_evald_shutdown,
      Bool(Child(d, "stop_on_evald_shutdown"), "deployment.stop_on_evald_shutdown", false));
  EVALD_RETURN_IF_ERROR(ParseLocalLaunch(Child(d, "local_launch"), spec));

  const YAML::Node lepton_deployment = Child(Child(execution, "lepton_platform"), "deployment");
  EVALD_ASSIGN_OR_RETURN(
      std::optional<double> timeout,
      FirstSeconds(
          {{Child(d, "endpoint_readiness_timeout"), "deployment.endpoint_readiness_timeout"},
           {Child(execution, "endpoint_readiness_timeout"), "execution.endpoint_readiness_timeout"},
           {Child(lepton_deployment, "endpoint_readiness_timeout"),
            "execution.lepton_platform.deployment.endpoint_readiness_timeout"}},
          /*zero_ok=*/false));
  spec.readiness_timeout_s = timeout.value_or(600);
  EVALD_ASSIGN_OR_RETURN(std::optional<double> interval,
                         FirstSeconds({{Child(d, "endpoint_readiness_interval"),
                                        "deployment.endpoint_readiness_interval"},
                                       {Child(execution, "endpoint_readiness_interval"),
                                        "execution.endpoint_readiness_interval"}},
                                      /*zero_ok=*/false));
  spec.readiness_interval_s = interval.value_or(5);
  EVALD_ASSIGN_OR_RETURN(std::optional<double> no_health_wait,
                         OptSeconds(Child(d, "server_timeout"), "deployment.server_timeout",
                                    /*zero_ok=*/true));
  spec.no_health_wait_s = no_health_wait.value_or(60);
  EVALD_ASSIGN_OR_RETURN(std::optional<double> grace,
                         OptSeconds(Child(d, "stop_grace_period"), "deployment.stop_grace_period",
                                    /*zero_ok=*/true));
  spec.stop_grace_s = grace.value_or(30);
  spec.deployment_yaml = YAML::Dump(d);
  if (Present(execution)) spec.execution_yaml = YAML::Dump(execution);
  return spec;
}

}  // namespace

std::vector<std::string> HostSecretNames(const YAML::Node& config) {
  if (!config.IsMap()) return {};
  absl::StatusOr<DeploymentSpec> spec =
      ParseDeploymentSpec(config["deployment"], config["execution"]);
  if (!spec.ok()) return {};
  std::vector<std::string> names;
  for (const auto& [server_var, host_var] : spec->secret_env_vars) names.push_back(host_var);
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

std::string ToString(DeploymentType type) {
  switch (type) {
    case DeploymentType::kNone:
      return "none";
    case DeploymentType::kVllm:
      return "vllm";
    case DeploymentType::kSglang:
      return "sglang";
    case DeploymentType::kNim:
      return "nim";
    case DeploymentType::kTrtllm:
      return "trtllm";
    case DeploymentType::kCommand:
      return "command";
  }
  return "none";
}

std::optional<DeploymentType> ParseDeploymentType(absl::string_view name) {
  for (DeploymentType t :
       {DeploymentType::kNone, DeploymentType::kVllm, DeploymentType::kSglang, DeploymentType::kNim,
        DeploymentType::kTrtllm, DeploymentType::kCommand}) {
    if (name == ToString(t)) return t;
  }
  if (name == "generic") return DeploymentType::kCommand;
  return std::nullopt;
}

absl::StatusOr<DeploymentSpec> ParseDeploymentSpec(const YAML::Node& deployment,
                                                   const YAML::Node& execution) {
  // yaml-cpp throws on malformed node access; nothing escapes this module.
  try {
    return Parse(deployment, execution);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("deployment: ", e.what()));
  }
}

absl::StatusOr<DeploymentSpec> ParseDeploymentSpecYaml(const std::string& deployment_yaml,
                                                       const std::string& execution_yaml) {
  YAML::Node deployment, execution;
  try {
    deployment = YAML::Load(deployment_yaml);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("deployment: not readable YAML: ", e.what()));
  }
  try {
    execution = YAML::Load(execution_yaml);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("execution: not readable YAML: ", e.what()));
  }
  return ParseDeploymentSpec(deployment, execution);
}

std::string BaseUrl(int port) { return absl::StrCat("http://127.0.0.1:", port); }

std::string EndpointUrl(const DeploymentSpec& spec, int port, const std::string& endpoint_type) {
  auto it = spec.endpoints.find(endpoint_type);
  if (it == spec.endpoints.end() && endpoint_type == "vlm") it = spec.endpoints.find("chat");
  if (it == spec.endpoints.end()) return "";
  return BaseUrl(port) + it->second;
}

std::string HealthUrl(const DeploymentSpec& spec, int port) {
  auto it = spec.endpoints.find("health");
  if (it == spec.endpoints.end()) return "";
  return BaseUrl(port) + it->second;
}

std::string ReferenceCommand(const DeploymentSpec& spec) {
  if (spec.type == DeploymentType::kNone) return "";
  return spec.command;
}

}  // namespace evald::deployment
