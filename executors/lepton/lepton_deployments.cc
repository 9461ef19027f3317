// LeptonExecutor's model servers: each deployment is a Lepton endpoint (lepton-api.md b.2),
// created from `deployment.lepton_config` and `execution.lepton_platform.deployment` with the
// fields the reference's generate_lepton_spec builds (peer-launcher.md 3.4), waited for until it
// is Ready and its URL answers, and deleted when it stops or fails.
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "core/deployment/readiness.h"
#include "core/shell.h"
#include "core/status_macros.h"
#include "executors/common/http_probe.h"
#include "executors/lepton/lepton_executor.h"
#include "executors/write_file.h"
#include "spdlog/spdlog.h"

namespace evald::executors {
namespace {

using json = nlohmann::json;
using deployment::DeploymentSpec;
using deployment::DeploymentType;
using Kind = DeploymentObservation::Kind;
namespace fs = std::filesystem;

constexpr int kHandleVersion = 1;
constexpr char kRecordFile[] = "lepton-endpoint.json";
constexpr size_t kMaxNameLength = 36;  // lepton-api.md b.8
// A probe blocks the executor's thread: endpoints answer health checks quickly or not at all.
constexpr double kProbeSeconds = 5.0;
// How often a healthy endpoint is looked at (gone, Error?): the API has no SLA for frequent calls.
constexpr double kHealthyLookSeconds = 30.0;

// What evald reads from the config for one endpoint.
struct EndpointConfig {
  LeptonConfig lepton;         // execution.lepton_platform (api url, workspace, tasks.*)
  std::string node_group;      // lepton_platform.deployment.node_group (a name or an id)
  json platform_defaults;      // lepton_platform.deployment.platform_defaults
  std::string endpoint_name;   // lepton_config.endpoint_name (the name's base)
  std::string resource_shape;  // lepton_config.resource_shape
  int min_replicas = 1;
  int max_replicas = 1;
  json auto_scaler;             // copied
  json health;                  // merged over the platform default
  json envs = json::array();    // lepton_config.envs as [{name, value|value_from}]
  json mounts = json::array();  // the model cache mount, when enabled
  json image_pull_secrets;      // lepton_config.image_pull_secrets (a list) or null
  json api_tokens = json::array();
};

YAML::Node Child(const YAML::Node& node, const char* key) {
  if (!node || !node.IsMap()) return YAML::Node();
  return node[key];
}

bool Present(const YAML::Node& node) { return node && node.IsDefined() && !node.IsNull(); }

absl::Status Bad(const std::string& key, const std::string& why) {
  return absl::FailedPreconditionError(absl::StrCat(key, ": ", why));
}

absl::StatusOr<int> IntOf(const YAML::Node& node, const std::string& key, int fallback) {
  if (!Present(node)) return fallback;
  int v = 0;
  if (!node.IsScalar() || !absl::SimpleAtoi(node.Scalar(), &v) || v < 0) {
    return Bad(key, "must be a whole number >= 0");
  }
  return v;
}

absl::StatusOr<EndpointConfig> ParseEndpointConfig(const DeploymentSpec& spec) {
  EndpointConfig c;
  EVALD_ASSIGN_OR_RETURN(c.lepton, ParseLeptonConfig(spec.execution_yaml));
  YAML::Node deployment, execution;
  try {
    deployment = YAML::Load(spec.deployment_yaml);
    execution = YAML::Load(spec.execution_yaml);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("deployment: cannot read the section: ", e.what()));
  }
  const YAML::Node platform = Child(Child(execution, "lepton_platform"), "deployment");
  if (const YAML::Node ng = Child(platform, "node_group"); Present(ng) && ng.IsScalar()) {
    c.node_group = ng.Scalar();
  }
  c.platform_defaults = LeptonYamlToJson(Child(platform, "platform_defaults"));
  if (!c.platform_defaults.is_object()) c.platform_defaults = json::object();
  const YAML::Node lc = Child(deployment, "lepton_config");
  if (!Present(lc) || !lc.IsMap()) {
    // As the reference: an endpoint needs its Lepton settings.
    return Bad("deployment.lepton_config",
               "is required for a deployment on Lepton (at least resource_shape, e.g. gpu.1xh200)");
  }
  auto text = [&](const char* key) -> std::string {
    const YAML::Node n = Child(lc, key);
    return Present(n) && n.IsScalar() ? n.Scalar() : "";
  };
  c.endpoint_name = text("endpoint_name");
  c.resource_shape = absl::AsciiStrToLower(text("resource_shape"));
  if (c.resource_shape.empty()) {
    return Bad("deployment.lepton_config.resource_shape",
               "is required: the endpoint's shape, e.g. gpu.1xh200");
  }
  EVALD_ASSIGN_OR_RETURN(
      c.min_replicas, IntOf(Child(lc, "min_replicas"), "deployment.lepton_config.min_replicas", 1));
  EVALD_ASSIGN_OR_RETURN(c.max_replicas,
                         IntOf(Child(lc, "max_replicas"), "deployment.lepton_config.max_replicas",
                               std::max(c.min_replicas, 1)));
  if (c.min_replicas < 1 || c.max_replicas < c.min_replicas) {
    return Bad("deployment.lepton_config",
               "needs 1 <= min_replicas <= max_replicas (an endpoint scaled to 0 never comes up "
               "for the evaluation)");
  }
  c.auto_scaler = LeptonYamlToJson(Child(lc, "auto_scaler"));
  c.health = LeptonYamlToJson(Child(lc, "health"));
  if (const YAML::Node envs = Child(lc, "envs"); Present(envs)) {
    if (!envs.IsMap()) return Bad("deployment.lepton_config.envs", "must be a mapping");
    for (const auto& kv : envs) {
      const std::string name = kv.first.Scalar();
      const std::string key = "deployment.lepton_config.envs." + name;
      if (!IsEnvName(name)) return Bad(key, "is not an environment variable name");
      if (kv.second.IsScalar()) {
        c.envs.push_back({{"name", name}, {"value", kv.second.Scalar()}});
        continue;
      }
      const YAML::Node ref = Child(Child(kv.second, "value_from"), "secret_name_ref");
      if (!Present(ref) || !ref.IsScalar() || ref.Scalar().empty()) {
        return Bad(key, "must be a value or {value_from: {secret_name_ref: <secret name>}}");
      }
      c.envs.push_back({{"name", name}, {"value_from", {{"secret_name_ref", ref.Scalar()}}}});
    }
  }
  if (const YAML::Node m = Child(lc, "mounts"); Present(m) && m.IsMap()) {
    const YAML::Node enabled = Child(m, "enabled");
    if (Present(enabled) && enabled.IsScalar() && enabled.Scalar() == "true") {
      const YAML::Node cache = Child(m, "cache_path");
      const YAML::Node mount_path = Child(m, "mount_path");
      if (!Present(cache) || !Present(mount_path)) {
        return Bad("deployment.lepton_config.mounts",
                   "enabled needs cache_path (on the Lepton storage) and mount_path");
      }
      // As the reference: on the storage of the tasks' first mount.
      const std::string from =
          c.lepton.mounts.empty() ? "node-nfs:lepton-shared-fs" : c.lepton.mounts[0].from;
      c.mounts.push_back({{"path", cache.Scalar()},
                          {"from", from},
                          {"mount_path", mount_path.Scalar()},
                          {"mount_options", json::object()}});
    }
  }
  if (const YAML::Node ips = Child(lc, "image_pull_secrets"); Present(ips) && ips.IsSequence()) {
    c.image_pull_secrets = LeptonYamlToJson(ips);
  }
  if (const YAML::Node tokens = Child(lc, "api_tokens"); Present(tokens)) {
    if (!tokens.IsSequence()) return Bad("deployment.lepton_config.api_tokens", "must be a list");
    for (const YAML::Node& t : tokens) {
      const std::string key = "deployment.lepton_config.api_tokens[]";
      if (t.IsScalar()) {
        c.api_tokens.push_back({{"value", t.Scalar()}});
      } else if (const YAML::Node v = Child(t, "value"); Present(v) && v.IsScalar()) {
        c.api_tokens.push_back({{"value", v.Scalar()}});
      } else if (const YAML::Node r = Child(Child(t, "value_from"), "token_name_ref");
                 Present(r) && r.IsScalar()) {
        c.api_tokens.push_back({{"value_from", {{"token_name_ref", r.Scalar()}}}});
      } else {
        return Bad(key, "must be {value: ...} or {value_from: {token_name_ref: <secret name>}}");
      }
    }
  } else if (const YAML::Node legacy = Child(lc, "api_token"); Present(legacy)) {
    if (!legacy.IsScalar()) return Bad("deployment.lepton_config.api_token", "must be a string");
    c.api_tokens.push_back({{"value", legacy.Scalar()}});
  }
  return c;
}

// The model the server loads: the HF id or path the reference passes.
std::string ModelPath(const DeploymentSpec& spec) {
  return spec.checkpoint_path.empty() ? spec.hf_model_handle : spec.checkpoint_path;
}

// The container command of the reference (nim: none, its image's entrypoint).
std::vector<std::string> ServerCommand(const DeploymentSpec& spec) {
  std::vector<std::string> cmd;
  if (spec.type == DeploymentType::kVllm) {
    cmd = {"vllm",
           "serve",
           ModelPath(spec),
           absl::StrCat("--tensor-parallel-size=", spec.tensor_parallel_size),
           absl::StrCat("--pipeline-parallel-size=", spec.pipeline_parallel_size),
           absl::StrCat("--data-parallel-size=", spec.data_parallel_size),
           absl::StrCat("--port=", spec.port),
           absl::StrCat("--served-model-name=", spec.served_model_name)};
  } else if (spec.type == DeploymentType::kSglang) {
    cmd = {"python3",
           "-m",
           "sglang.launch_server",
           absl::StrCat("--model-path=", ModelPath(spec)),
           "--host=0.0.0.0",
           absl::StrCat("--port=", spec.port),
           absl::StrCat("--served-model-name=", spec.served_model_name),
           absl::StrCat("--tp=", spec.tensor_parallel_size),
           absl::StrCat("--dp=", spec.data_parallel_size)};
  } else {
    return cmd;
  }
  for (absl::string_view arg :
       absl::StrSplit(spec.extra_args, absl::ByAnyChar(" \t\n"), absl::SkipEmpty())) {
    cmd.emplace_back(arg);
  }
  return cmd;
}

// `{{MODEL_CACHE_NAME}}`: the image's last path part without its tag, '.' -> '-'.
std::string ModelCacheName(const std::string& image) {
  std::string base =
      image.substr(image.find_last_of('/') == std::string::npos ? 0 : image.find_last_of('/') + 1);
  base = base.substr(0, base.find(':'));
  return absl::StrReplaceAll(base, {{".", "-"}});
}

void ReplaceInStrings(json& j, const std::string& from, const std::string& to) {
  if (j.is_string()) {
    j = absl::StrReplaceAll(j.get<std::string>(), {{from, to}});
  } else if (j.is_object() || j.is_array()) {
    for (json& item : j) ReplaceInStrings(item, from, to);
  }
}

// The SDK omits null fields (exclude_none): so does evald.
void DropNulls(json& j) {
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end();) {
      if (it->is_null()) {
        it = j.erase(it);
      } else {
        DropNulls(*it);
        ++it;
      }
    }
  } else if (j.is_array()) {
    for (json& item : j) DropNulls(item);
  }
}

void MergeInto(json& base, const json& over) {
  if (!base.is_object() || !over.is_object()) {
    base = over;
    return;
  }
  for (auto it = over.begin(); it != over.end(); ++it) MergeInto(base[it.key()], it.value());
}

// The endpoint's index in its invocation: `<inv>.d<index>` -> index.
std::string IndexOf(const std::string& deployment_id) {
  size_t dot = deployment_id.rfind(".d");
  return dot == std::string::npos ? "0" : deployment_id.substr(dot + 2);
}

// `<base>-<invocation>-<index>[-<generation>]`, lower-case RFC 1123, at most 36 characters: the
// base (lepton_config.endpoint_name, else the deployment type) is cut to fit.
std::string EndpointName(const DeploymentSpec& spec, const EndpointConfig& c,
                         const DeploymentRef& ref, int generation) {
  std::string suffix =
      absl::StrCat("-", absl::AsciiStrToLower(ref.invocation_id), "-", IndexOf(ref.id));
  if (generation > 1) absl::StrAppend(&suffix, "-", generation);
  std::string base;
  for (char ch : absl::AsciiStrToLower(c.endpoint_name)) {
    bool ok = absl::ascii_isalnum(static_cast<unsigned char>(ch));
    if (!ok && (base.empty() || base.back() == '-')) continue;
    base.push_back(ok ? ch : '-');
  }
  if (base.empty() || !absl::ascii_isalpha(static_cast<unsigned char>(base[0]))) {
    base = deployment::ToString(spec.type);
  }
  if (base.size() + suffix.size() > kMaxNameLength) base.resize(kMaxNameLength - suffix.size());
  while (!base.empty() && base.back() == '-') base.pop_back();
  return base + suffix;
}

// The body of POST /deployments. `node_group_id` "" with a node group configured renders a
// placeholder (dry runs).
json BuildEndpoint(const DeploymentSpec& spec, const EndpointConfig& c, const std::string& name,
                   const std::string& node_group_id) {
  json s = c.platform_defaults;
  s.erase("enable_rdma");  // for Ray clusters only; the SDK drops it from endpoint specs
  json& rr = s["resource_requirement"];
  if (!rr.is_object()) rr = json::object();
  rr["resource_shape"] = c.resource_shape;
  rr["min_replicas"] = c.min_replicas;
  rr["max_replicas"] = c.max_replicas;
  if (!c.node_group.empty()) {
    rr["affinity"]["allowed_dedicated_node_groups"] =
        json::array({node_group_id.empty() ? absl::StrCat("<id of node group ", c.node_group, ">")
                                           : node_group_id});
  }
  if (c.auto_scaler.is_object()) {
    s["auto_scaler"] = c.auto_scaler;
    // Not in the SDK's model (scale from zero is not supported): dropped as the SDK drops it.
    if (s["auto_scaler"].contains("scale_down") && s["auto_scaler"]["scale_down"].is_object()) {
      s["auto_scaler"]["scale_down"].erase("scale_from_zero");
    }
  }
  json container = {{"image", spec.image},
                    {"ports", json::array({json{{"container_port", spec.port}}})}};
  if (std::vector<std::string> cmd = ServerCommand(spec); !cmd.empty()) container["command"] = cmd;
  s["container"] = std::move(container);
  json envs = c.envs;
  std::set<std::string> named;
  for (const json& e : envs) named.insert(e["name"].get<std::string>());
  auto add = [&](const std::string& n, const std::string& v) {
    if (named.insert(n).second) envs.push_back({{"name", n}, {"value", v}});
  };
  add("SERVED_MODEL_NAME", spec.served_model_name);
  add("MODEL_PORT", absl::StrCat(spec.port));
  if (spec.type == DeploymentType::kNim) {
    add("NIM_MODEL_NAME", spec.served_model_name);
  } else {
    add("MODEL_PATH", ModelPath(spec));
    add("TENSOR_PARALLEL_SIZE", absl::StrCat(spec.tensor_parallel_size));
  }
  for (const auto& [n, v] : spec.env_vars) add(n, v);  // deployment.env_vars (literal values)
  s["envs"] = std::move(envs);
  if (c.health.is_object()) MergeInto(s["health"], c.health);
  if (!c.mounts.empty()) s["mounts"] = c.mounts;
  if (c.image_pull_secrets.is_array()) s["image_pull_secrets"] = c.image_pull_secrets;
  if (s.contains("image_pull_secrets") && !s["image_pull_secrets"].is_array()) {
    s.erase("image_pull_secrets");  // kept only when a list, as the reference
  }
  if (!c.api_tokens.empty()) s["api_tokens"] = c.api_tokens;
  ReplaceInStrings(s, "{{MODEL_CACHE_NAME}}", ModelCacheName(spec.image));
  DropNulls(s);
  return json{{"metadata", {{"id", name}, {"name", name}}}, {"spec", std::move(s)}};
}

absl::Status CheckEndpoint(const DeploymentSpec& spec, const EndpointConfig& c) {
  if (spec.type != DeploymentType::kVllm && spec.type != DeploymentType::kSglang &&
      spec.type != DeploymentType::kNim) {
    return Bad("deployment.type", absl::StrCat("'", deployment::ToString(spec.type),
                                               "' cannot run as a Lepton endpoint; evald creates "
                                               "endpoints for vllm, sglang and nim"));
  }
  if (spec.port_auto) {
    return Bad("deployment.port", "`auto` has no meaning on a Lepton endpoint; set a port");
  }
  if (spec.image.empty()) return Bad("deployment.image", "is required for a Lepton endpoint");
  if (spec.type != DeploymentType::kNim && ModelPath(spec).empty()) {
    return Bad("deployment.checkpoint_path",
               "is required: the model the endpoint serves (a Hugging Face id or a path on the "
               "endpoint's storage)");
  }
  if (!spec.secret_env_vars.empty()) {
    return Bad(absl::StrCat("deployment.env_vars.", spec.secret_env_vars.begin()->first),
               "a Lepton endpoint gets secrets only as workspace secrets: use "
               "deployment.lepton_config.envs: {NAME: {value_from: {secret_name_ref: <secret>}}} "
               "(evald never puts a secret value into an endpoint spec)");
  }
  for (const json& t : c.api_tokens) {
    if (t.contains("value")) {
      return Bad("deployment.lepton_config.api_tokens",
                 "a literal token would be a secret value in the endpoint spec (and in evald's "
                 "records): create a workspace secret and use {value_from: {token_name_ref: "
                 "<secret name>}}");
    }
  }
  if (!c.api_tokens.empty()) {
    bool mapped = false;
    for (const LeptonEnvVar& e : c.lepton.env_vars) mapped |= e.name == "API_KEY";
    if (!mapped) {
      std::string ref = "<the endpoint's token secret>";
      for (const json& t : c.api_tokens) {
        if (t.contains("value_from")) ref = t["value_from"]["token_name_ref"].get<std::string>();
      }
      return Bad("execution.lepton_platform.tasks.env_vars.API_KEY",
                 absl::StrCat("the endpoint requires a token (deployment.lepton_config."
                              "api_tokens), so the tasks need it as API_KEY: add `API_KEY: "
                              "{value_from: {secret_name_ref: ",
                              ref,
                              "}}` (native tasks also need target.api_endpoint.api_key_name: "
                              "API_KEY)"));
    }
  }
  return absl::OkStatus();
}

// The record Start writes before its POST, in the deployment's dir.
struct Record {
  std::string name;
  int generation = 0;  // 0: no record
  bool deleted = false;
  LeptonExecutor::Target target;
};

std::string RecordPath(const DeploymentRef& ref) {
  std::string dir = ref.log_path.empty() ? "" : fs::path(ref.log_path).parent_path().string();
  return dir.empty() ? "" : dir + "/" + kRecordFile;
}

Record ReadRecord(const DeploymentRef& ref) {
  Record r;
  std::string path = RecordPath(ref);
  if (path.empty()) return r;
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  json j = json::parse(ss.str(), nullptr, false);
  if (!j.is_object() || !j.contains("target") || !j["target"].is_object()) return r;
  r.name = j.value("name", std::string());
  r.generation = j.value("generation", 0);
  r.deleted = j.value("deleted", false);
  const json& t = j["target"];
  r.target = {t.value("api_url", std::string()), t.value("workspace_id", std::string()),
              t.value("token_env", std::string())};
  if (r.name.empty()) r.generation = 0;
  return r;
}

absl::Status WriteRecord(const DeploymentRef& ref, const Record& r) {
  std::string path = RecordPath(ref);
  if (path.empty()) return absl::InternalError("the deployment has no directory for its record");
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  json j = {{"name", r.name},
            {"generation", r.generation},
            {"deleted", r.deleted},
            {"deployment_id", ref.id},
            {"target",
             {{"api_url", r.target.api_url},
              {"workspace_id", r.target.workspace_id},
              {"token_env", r.target.token_env}}}};
  return WriteFileAtomically(path, j.dump(2) + "\n", 0644);
}

void MarkDeleted(const DeploymentRef& ref) {
  Record r = ReadRecord(ref);
  if (r.generation == 0 || r.deleted) return;
  r.deleted = true;
  WriteRecord(ref, r).IgnoreError();
}

// One line in the deployment's log (server.log): what evald did and saw.
void Note(const DeploymentRef& ref, const std::string& line) {
  if (ref.log_path.empty()) return;
  std::error_code ec;
  fs::create_directories(fs::path(ref.log_path).parent_path(), ec);
  std::ofstream(ref.log_path, std::ios::app)
      << absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::Now(), absl::UTCTimeZone())
      << " evald: " << line << "\n";
}

struct Handle {
  std::string name;
  LeptonExecutor::Target target;
};

JobHandle EncodeHandle(const Handle& h) {
  JobHandle out;
  out.version = kHandleVersion;
  out.executor = "lepton";
  out.state = json{{"kind", "endpoint"},
                   {"name", h.name},
                   {"id", h.name},
                   {"target",
                    {{"api_url", h.target.api_url},
                     {"workspace_id", h.target.workspace_id},
                     {"token_env", h.target.token_env}}}}
                  .dump();
  return out;
}

std::optional<Handle> DecodeHandle(const JobHandle& h) {
  if (h.executor != "lepton" || h.version != kHandleVersion) return std::nullopt;
  json j = json::parse(h.state, nullptr, false);
  if (!j.is_object() || j.value("kind", std::string()) != "endpoint" || !j.contains("target") ||
      !j["target"].is_object()) {
    return std::nullopt;
  }
  const json& t = j["target"];
  Handle out{j.value("name", std::string()),
             {t.value("api_url", std::string()), t.value("workspace_id", std::string()),
              t.value("token_env", std::string())}};
  if (out.name.empty()) return std::nullopt;
  return out;
}

std::string StateOf(const json& dep) {
  if (!dep.is_object() || !dep.contains("status") || !dep["status"].is_object()) return "";
  const json& st = dep["status"];
  return st.contains("state") && st["state"].is_string() ? st["state"].get<std::string>() : "";
}

std::string ExternalUrl(const json& dep) {
  if (!dep.is_object() || !dep.contains("status") || !dep["status"].is_object()) return "";
  const json& st = dep["status"];
  if (!st.contains("endpoint") || !st["endpoint"].is_object()) return "";
  const json& e = st["endpoint"];
  if (!e.contains("external_endpoint") || !e["external_endpoint"].is_string()) return "";
  return std::string(absl::StripSuffix(e["external_endpoint"].get<std::string>(), "/"));
}

// A URL evald may put into a job's plan and command as it is.
bool UsableUrl(const std::string& url) {
  if (!absl::StartsWith(url, "http://") && !absl::StartsWith(url, "https://")) return false;
  for (char ch : url) {
    if (static_cast<unsigned char>(ch) <= ' ' || ch == '\'' || ch == '"' || ch == '\\' ||
        ch == '`' || ch == '$') {
      return false;
    }
  }
  return true;
}

std::string TargetKey(const LeptonExecutor::Target& t) {
  return absl::StrCat(t.api_url, " ", t.workspace_id);
}

// Lepton's readiness reasons and crashed containers, in a few words each (deduplicated).
struct Reasons {
  std::vector<std::string> lines;
  bool config_error = false;  // ConfigError / SystemError
  bool crashed = false;       // /termination has entries
};

Reasons ReadReasons(const lepton::LeptonClient& client, const std::string& name) {
  Reasons out;
  std::set<std::string> seen;
  auto add = [&](std::string line) {
    if (seen.insert(line).second) out.lines.push_back(std::move(line));
  };
  if (absl::StatusOr<json> r = client.GetDeploymentReadiness(name); r.ok() && r->is_object()) {
    for (auto it = r->begin(); it != r->end(); ++it) {
      const json& entries = it.value();
      if (!entries.is_array()) continue;
      for (const json& e : entries) {
        if (!e.is_object()) continue;
        std::string reason = e.value("reason", std::string());
        std::string message = e.value("message", std::string());
        if (reason == "Ready" || reason == "InProgress" || (reason.empty() && message.empty())) {
          continue;
        }
        out.config_error |= reason == "ConfigError" || reason == "SystemError";
        add(absl::StrCat(reason, message.empty() ? "" : ": ", message));
      }
    }
  }
  if (absl::StatusOr<json> t = client.GetDeploymentTermination(name); t.ok() && t->is_object()) {
    for (auto it = t->begin(); it != t->end(); ++it) {
      const json& entries = it.value();
      if (!entries.is_array()) continue;
      for (const json& e : entries) {
        if (!e.is_object()) continue;
        out.crashed = true;
        std::string line = "container exited";
        if (e.contains("exit_code") && e["exit_code"].is_number_integer()) {
          absl::StrAppend(&line, " with code ", e["exit_code"].get<int>());
        }
        std::string reason = e.value("reason", std::string());
        std::string message = e.value("message", std::string());
        if (!reason.empty()) absl::StrAppend(&line, ": ", reason);
        if (!message.empty())
          absl::StrAppend(&line, reason.empty() ? ": " : " (", message, reason.empty() ? "" : ")");
        add(line);
      }
    }
  }
  return out;
}

std::string ReasonText(const Reasons& r) {
  if (r.lines.empty()) return "";
  return absl::StrCat("; Lepton says: ", absl::StrJoin(r.lines, "; "));
}

double SecondsSince(int64_t ms) {
  return absl::ToDoubleSeconds(absl::Now() - absl::FromUnixMillis(ms));
}

}  // namespace

absl::Status LeptonDeployments::Validate(const DeploymentSpec& spec) const {
  absl::StatusOr<EndpointConfig> c = ParseEndpointConfig(spec);
  if (!c.ok()) return absl::FailedPreconditionError(c.status().message());
  return CheckEndpoint(spec, *c);
}

absl::StatusOr<std::string> LeptonDeployments::Render(const DeploymentRef& ref,
                                                      const DeploymentSpec& spec) const {
  EVALD_ASSIGN_OR_RETURN(EndpointConfig c, ParseEndpointConfig(spec));
  EVALD_RETURN_IF_ERROR(CheckEndpoint(spec, c));
  json body = BuildEndpoint(spec, c, EndpointName(spec, c, ref, 1), "");
  const std::string workspace =
      c.lepton.workspace_id.empty() ? "<workspace id>" : c.lepton.workspace_id;
  return absl::StrCat(
      "# POST ", c.lepton.api_url, "/api/v2/workspaces/", workspace, "/deployments\n", body.dump(2),
      "\n", "# then: wait for Ready (", deployment::FormatSeconds(spec.readiness_timeout_s),
      " s at most), probe <external_endpoint>",
      spec.endpoints.count("health") > 0 ? spec.endpoints.at("health") : std::string("/v1/models"),
      ", run the tasks against <external_endpoint>, DELETE the endpoint when they "
      "end\n");
}

std::vector<std::string> LeptonDeployments::SecretNames(const DeploymentSpec& spec) const {
  absl::StatusOr<LeptonConfig> c = ParseLeptonConfig(spec.execution_yaml);
  if (!c.ok()) return {};
  return {c->token_env};
}

void LeptonDeployments::Adopt(const DeploymentRef& ref, const DeploymentSpec& spec,
                              const std::map<std::string, std::string>& secrets) {
  (void)ref;
  absl::StatusOr<LeptonConfig> c = ParseLeptonConfig(spec.execution_yaml);
  if (!c.ok()) return;
  auto it = secrets.find(c->token_env);
  if (it == secrets.end() || it->second.empty()) return;
  executor_.RememberToken({c->api_url, c->workspace_id, c->token_env}, it->second);
}

absl::StatusOr<DeploymentStarted> LeptonDeployments::Start(
    const DeploymentRef& ref, const DeploymentSpec& spec,
    const std::map<std::string, std::string>& secret_env) {
  absl::StatusOr<DeploymentStarted> started = StartEndpoint(ref, spec, secret_env);
  if (started.ok()) return started;
  // The deployment fails: an endpoint this start (or an earlier evald's) may have created must
  // not stay behind, paid for and unused.
  Record record = ReadRecord(ref);
  if (record.generation > 0 && !record.deleted) {
    absl::StatusOr<lepton::LeptonClient> client = executor_.ClientFor(record.target);
    absl::Status deleted = client.ok() ? client->DeleteDeployment(record.name) : client.status();
    if (deleted.ok()) {
      MarkDeleted(ref);
      Note(ref, absl::StrCat("start failed; endpoint ", record.name, " deleted (if it existed)"));
    } else {
      Note(ref, absl::StrCat("start failed and endpoint ", record.name,
                             " could not be deleted: ", deleted.message()));
      spdlog::error("lepton: deployment {}: Lepton endpoint {} may be left running: {}", ref.id,
                    record.name, std::string(deleted.message()));
    }
  }
  return started;
}

absl::StatusOr<DeploymentStarted> LeptonDeployments::StartEndpoint(
    const DeploymentRef& ref, const DeploymentSpec& spec,
    const std::map<std::string, std::string>& secret_env) {
  EVALD_ASSIGN_OR_RETURN(EndpointConfig c, ParseEndpointConfig(spec));
  EVALD_RETURN_IF_ERROR(LeptonWorkspaceError(c.lepton));
  EVALD_RETURN_IF_ERROR(CheckEndpoint(spec, c));
  const LeptonExecutor::Target target{c.lepton.api_url, c.lepton.workspace_id, c.lepton.token_env};
  Adopt(ref, spec, secret_env);
  EVALD_ASSIGN_OR_RETURN(lepton::LeptonClient client, executor_.ClientFor(target));
  failing_.erase(ref.id);
  next_look_.erase(ref.id);
  last_message_.erase(ref.id);

  // Node group: a name (resolved to its id) or already an id (the reference's examples).
  std::string group_id;
  if (!c.node_group.empty()) {
    EVALD_ASSIGN_OR_RETURN(auto groups, client.ListNodeGroups());
    for (const auto& [n, id] : groups) {
      if (n == c.node_group || id == c.node_group) group_id = id;
    }
    if (group_id.empty()) {
      std::string known;
      for (const auto& [n, id] : groups) absl::StrAppend(&known, known.empty() ? "" : ", ", n);
      return absl::FailedPreconditionError(absl::StrCat(
          "execution.lepton_platform.deployment.node_group: no dedicated node group named (or "
          "with id) '",
          c.node_group, "' in workspace ", c.lepton.workspace_id,
          " (it has: ", known.empty() ? "none" : known, ")"));
    }
  }

  // The name: the record's unless evald deleted that endpoint (then the next generation). A name
  // still held by an endpoint being deleted is skipped too.
  Record record = ReadRecord(ref);
  int generation = record.generation == 0 ? 1 : record.generation + (record.deleted ? 1 : 0);
  std::string name;
  for (int tries = 0;; ++tries) {
    name = EndpointName(spec, c, ref, generation);
    absl::StatusOr<json> existing = client.GetDeployment(name);
    if (absl::IsNotFound(existing.status())) break;
    if (!existing.ok()) return existing.status();
    const std::string state = StateOf(*existing);
    if (state != "Deleting" && state != "Stopping" && state != "Stopped" && tries == 0 &&
        record.generation == generation && !record.deleted) {
      // This attempt's endpoint, created by a Start whose answer was lost: adopt it.
      Note(ref,
           absl::StrCat("Lepton endpoint ", name, " exists already (state ", state, "): adopted"));
      DeploymentStarted out;
      out.handle = EncodeHandle({name, target});
      out.port = spec.port;
      out.command = absl::StrJoin(ServerCommand(spec), " ");
      return out;
    }
    if (tries >= 5) {
      return absl::FailedPreconditionError(
          absl::StrCat("no free Lepton endpoint name for deployment ", ref.id, " (", name,
                       " is taken, state ", state, ")"));
    }
    ++generation;
  }
  json body = BuildEndpoint(spec, c, name, group_id);
  // Before the POST: a restarted evald finds the endpoint by this name (Recover).
  EVALD_RETURN_IF_ERROR(WriteRecord(ref, {name, generation, false, target}));
  Note(ref, absl::StrCat("creating Lepton endpoint ", name, " in workspace ", c.lepton.workspace_id,
                         " (", c.resource_shape, ", image ", spec.image, ")"));
  absl::StatusOr<json> created = client.CreateDeployment(body);
  if (absl::IsAlreadyExists(created.status())) {
    // Our name, unique per invocation: an earlier POST of ours landed late.
    absl::StatusOr<json> found = client.GetDeployment(name);
    if (found.ok()) created = found;
  }
  if (!created.ok()) {
    Note(ref, absl::StrCat("creating ", name, " failed: ", created.status().message()));
    return created.status();
  }
  spdlog::info("lepton: deployment {} is Lepton endpoint {} in workspace {}", ref.id, name,
               c.lepton.workspace_id);
  DeploymentStarted out;
  out.handle = EncodeHandle({name, target});
  out.port = spec.port;
  out.command = absl::StrJoin(ServerCommand(spec), " ");
  return out;
}

DeploymentObservation LeptonDeployments::Fail(const DeploymentRef& ref,
                                              const std::string& message) {
  std::optional<Handle> h = DecodeHandle(ref.handle);
  if (h) {
    absl::StatusOr<lepton::LeptonClient> client = executor_.ClientFor(h->target);
    absl::Status deleted = client.ok() ? client->DeleteDeployment(h->name) : client.status();
    if (!deleted.ok()) {
      failing_[ref.id] = message;
      Note(ref, absl::StrCat("deleting ", h->name, " failed (retrying): ", deleted.message()));
      return {Kind::kStarting,
              absl::StrCat(message, " (deleting the endpoint: ", deleted.message(), ")")};
    }
    Note(ref, absl::StrCat(message, "; endpoint ", h->name, " deleted"));
    MarkDeleted(ref);
  }
  failing_.erase(ref.id);
  next_look_.erase(ref.id);
  last_message_.erase(ref.id);
  spdlog::warn("lepton: deployment {}: {}", ref.id, message);
  return {Kind::kFailed, absl::StrCat(message, h ? "; the endpoint was deleted" : "")};
}

DeploymentObservation LeptonDeployments::Poll(const DeploymentRef& ref,
                                              const DeploymentSpec& spec) {
  std::optional<Handle> h = DecodeHandle(ref.handle);
  if (!h) return {Kind::kFailed, "the deployment's Lepton handle is unreadable"};
  if (auto it = failing_.find(ref.id); it != failing_.end()) return Fail(ref, it->second);
  // The API has no SLA for frequent calls: one look per readiness interval.
  const absl::Time now = absl::Now();
  if (auto it = next_look_.find(ref.id); it != next_look_.end() && now < it->second) {
    Kind kind = ref.state == DeploymentState::kHealthy    ? Kind::kHealthy
                : ref.state == DeploymentState::kStopping ? Kind::kStopping
                                                          : Kind::kStarting;
    return {kind, last_message_[ref.id]};
  }
  // A healthy endpoint only needs to be seen alive now and then.
  next_look_[ref.id] =
      now + absl::Seconds(ref.state == DeploymentState::kHealthy
                              ? std::max(spec.readiness_interval_s, kHealthyLookSeconds)
                              : spec.readiness_interval_s);
  auto waiting = [&](Kind kind, std::string message) -> DeploymentObservation {
    last_message_[ref.id] = message;
    return {kind, std::move(message)};
  };
  absl::StatusOr<lepton::LeptonClient> client = executor_.ClientFor(h->target);
  if (!client.ok()) {
    Kind kind = ref.state == DeploymentState::kStopping  ? Kind::kStopping
                : ref.state == DeploymentState::kHealthy ? Kind::kHealthy
                                                         : Kind::kStarting;
    return waiting(kind, std::string(client.status().message()));
  }
  const std::string& name = h->name;
  absl::StatusOr<json> dep = client->GetDeployment(name);

  if (ref.state == DeploymentState::kStopping) {
    if (absl::IsNotFound(dep.status())) {
      MarkDeleted(ref);
      Note(ref, absl::StrCat("endpoint ", name, " is gone"));
      next_look_.erase(ref.id);
      last_message_.erase(ref.id);
      return {Kind::kStopped, absl::StrCat("Lepton endpoint ", name, " deleted")};
    }
    if (dep.ok() && StateOf(*dep) != "Deleting") {
      client->DeleteDeployment(name).IgnoreError();  // idempotent; an earlier one may have failed
    }
    return waiting(Kind::kStopping, absl::StrCat("deleting Lepton endpoint ", name));
  }

  if (absl::IsNotFound(dep.status())) {
    MarkDeleted(ref);
    next_look_.erase(ref.id);
    return {Kind::kFailed, absl::StrCat("Lepton endpoint ", name, " no longer exists in workspace ",
                                        h->target.workspace_id, " (deleted outside evald?)")};
  }
  const double waited = ref.started_ms > 0 ? SecondsSince(ref.started_ms) : 0;
  const bool timed_out =
      ref.state == DeploymentState::kStarting && waited > spec.readiness_timeout_s;
  if (!dep.ok()) {
    if (timed_out) {
      return Fail(ref, absl::StrCat("Lepton endpoint ", name, " was not ready within ",
                                    deployment::FormatSeconds(spec.readiness_timeout_s),
                                    " s (endpoint_readiness_timeout); last answer: ",
                                    dep.status().message()));
    }
    return waiting(ref.state == DeploymentState::kHealthy ? Kind::kHealthy : Kind::kStarting,
                   absl::StrCat("cannot read endpoint ", name, ": ", dep.status().message()));
  }
  const std::string state = StateOf(*dep);
  if (state == "Error") {
    Reasons reasons = ReadReasons(*client, name);
    return Fail(ref,
                absl::StrCat("Lepton endpoint ", name, " is in state Error", ReasonText(reasons)));
  }
  if (ref.state == DeploymentState::kHealthy) {
    if (state == "Deleting" || state == "Stopped" || state == "Stopping") {
      return Fail(ref, absl::StrCat("Lepton endpoint ", name, " is ", state,
                                    " (stopped or deleted outside evald)"));
    }
    return waiting(Kind::kHealthy, state == "Ready" || state == "Running"
                                       ? ""
                                       : absl::StrCat("endpoint state ", state));
  }

  // Starting.
  if (state == "Deleting" || state == "Stopped" || state == "Stopping") {
    return Fail(ref, absl::StrCat("Lepton endpoint ", name, " is ", state,
                                  " before it was ever ready (stopped or deleted outside evald)"));
  }
  if (state == "Not Ready") {
    Reasons reasons = ReadReasons(*client, name);
    if (reasons.config_error || reasons.crashed) {
      // A crash loop or a bad spec does not heal by waiting: fail now.
      return Fail(
          ref, absl::StrCat("Lepton endpoint ", name, " is Not Ready and its server keeps failing",
                            ReasonText(reasons)));
    }
    if (timed_out) {
      return Fail(ref, absl::StrCat("Lepton endpoint ", name, " was not ready within ",
                                    deployment::FormatSeconds(spec.readiness_timeout_s),
                                    " s (endpoint_readiness_timeout; state Not Ready)",
                                    ReasonText(reasons)));
    }
    return waiting(Kind::kStarting, absl::StrCat("endpoint state Not Ready", ReasonText(reasons)));
  }
  if (state == "Ready" || state == "Running") {
    const std::string url = ExternalUrl(*dep);
    std::string answer;
    if (url.empty()) {
      answer = "Ready, but Lepton gives no external_endpoint yet";
    } else if (!UsableUrl(url)) {
      return Fail(
          ref, absl::StrCat("Lepton endpoint ", name,
                            " is Ready with an external_endpoint evald cannot use: '", url, "'"));
    } else {
      // The endpoint's token is a workspace secret evald does not hold: a 401/403 shows the
      // endpoint answers (the tasks send the token).
      std::vector<std::string> paths;
      if (auto it = spec.endpoints.find("health"); it != spec.endpoints.end()) {
        paths.push_back(it->second);
      }
      paths.push_back("/v1/models");
      for (const std::string& path : paths) {
        ProbeResult probe = HttpGet(url + path, kProbeSeconds);
        const int code = probe.http_status;
        if ((code >= 200 && code < 300) || code == 401 || code == 403) {
          std::string message = absl::StrCat(
              "Lepton endpoint ", name, " ready after ", deployment::FormatSeconds(waited), " s; ",
              path, " answered HTTP ", code, code == 401 || code == 403 ? " (token required)" : "");
          Note(ref, absl::StrCat(message, "; URL ", url));
          next_look_.erase(ref.id);
          last_message_.erase(ref.id);
          DeploymentObservation obs{Kind::kHealthy, message};
          obs.url = url;
          return obs;
        }
        answer = code > 0 ? absl::StrCat("Ready; ", url, path, " answered HTTP ", code)
                          : absl::StrCat("Ready; ", url, path, ": ", probe.error);
        if (code != 404) break;  // 404: try the next path
      }
    }
    if (timed_out) {
      return Fail(ref, absl::StrCat("Lepton endpoint ", name, " did not answer within ",
                                    deployment::FormatSeconds(spec.readiness_timeout_s),
                                    " s (endpoint_readiness_timeout): ", answer));
    }
    return waiting(Kind::kStarting, answer);
  }
  // Starting, Scaling, Updating, NoCapacity waits, "" or states evald does not know: wait.
  if (timed_out) {
    Reasons reasons = ReadReasons(*client, name);
    return Fail(ref, absl::StrCat("Lepton endpoint ", name, " was not ready within ",
                                  deployment::FormatSeconds(spec.readiness_timeout_s),
                                  " s (endpoint_readiness_timeout; state '", state, "')",
                                  ReasonText(reasons)));
  }
  return waiting(Kind::kStarting, absl::StrCat("endpoint state '", state, "'"));
}

absl::Status LeptonDeployments::Stop(const DeploymentRef& ref, const DeploymentSpec& spec) {
  (void)spec;
  std::optional<Handle> h = DecodeHandle(ref.handle);
  if (!h) return absl::OkStatus();
  failing_.erase(ref.id);
  next_look_.erase(ref.id);
  last_message_.erase(ref.id);
  EVALD_ASSIGN_OR_RETURN(lepton::LeptonClient client, executor_.ClientFor(h->target));
  EVALD_RETURN_IF_ERROR(client.DeleteDeployment(h->name));  // 404 counts as deleted
  Note(ref, absl::StrCat("deleting Lepton endpoint ", h->name));
  spdlog::info("lepton: deployment {}: deleting Lepton endpoint {}", ref.id, h->name);
  return absl::OkStatus();
}

std::vector<std::pair<std::string, std::string>> LeptonDeployments::Sweep(
    const std::vector<DeploymentRef>& ended) {
  struct Candidate {
    const DeploymentRef* ref;
    std::string name;
  };
  struct Workspace {
    LeptonExecutor::Target target;
    std::vector<Candidate> candidates;
  };
  std::map<std::string, Workspace> workspaces;
  for (const DeploymentRef& ref : ended) {
    if (!ref.handle.executor.empty() && ref.handle.executor != "lepton") continue;
    std::optional<LeptonExecutor::Target> target;
    std::set<std::string> names;  // only names evald gave its own endpoints
    if (std::optional<Handle> h = DecodeHandle(ref.handle)) {
      names.insert(h->name);
      target = h->target;
    }
    if (Record r = ReadRecord(ref); r.generation > 0) {
      names.insert(r.name);
      if (!target) target = r.target;
    }
    if (!target || names.empty()) continue;
    Workspace& w = workspaces[TargetKey(*target)];
    w.target = *target;
    for (const std::string& name : names) w.candidates.push_back({&ref, name});
  }
  std::vector<std::pair<std::string, std::string>> out;
  for (auto& [key, w] : workspaces) {
    absl::StatusOr<lepton::LeptonClient> client = executor_.ClientFor(w.target);
    if (!client.ok()) {
      spdlog::debug("lepton: cannot sweep workspace {}: {}", w.target.workspace_id,
                    std::string(client.status().message()));
      continue;
    }
    absl::StatusOr<std::vector<json>> listed = client->ListDeployments();
    if (!listed.ok()) {
      spdlog::warn("lepton: cannot list the endpoints of workspace {} to sweep them: {}",
                   w.target.workspace_id, std::string(listed.status().message()));
      continue;
    }
    std::map<std::string, std::string> alive;  // name -> state
    for (const json& dep : *listed) {
      if (!dep.is_object() || !dep.contains("metadata") || !dep["metadata"].is_object()) continue;
      const json& md = dep["metadata"];
      std::string name = md.value("name", std::string());
      if (name.empty()) name = md.value("id", std::string());
      if (!name.empty()) alive[name] = StateOf(dep);
    }
    for (const Candidate& c : w.candidates) {
      auto it = alive.find(c.name);
      if (it == alive.end() || it->second == "Deleting") continue;
      const std::string failed_key = absl::StrCat(w.target.workspace_id, "/", c.name);
      absl::Status deleted = client->DeleteDeployment(c.name);
      if (deleted.ok()) {
        sweep_failed_.erase(failed_key);
        MarkDeleted(*c.ref);
        std::string message = absl::StrCat("lepton endpoint ", c.name,
                                           " of a finished invocation was still running: deleted",
                                           " (Lepton state '", it->second, "')");
        Note(*c.ref, message);
        spdlog::warn("lepton: deployment {}: {}", c.ref->id, message);
        out.emplace_back(c.ref->id, std::move(message));
        continue;
      }
      std::string message = absl::StrCat("lepton endpoint ", c.name,
                                         " of a finished invocation is still running and could "
                                         "not be deleted (retried every few minutes): ",
                                         deleted.message());
      spdlog::error("lepton: deployment {}: {}", c.ref->id, message);
      if (sweep_failed_.insert(failed_key).second) {
        Note(*c.ref, message);
        out.emplace_back(c.ref->id, std::move(message));
      }
    }
  }
  return out;
}

absl::StatusOr<std::optional<DeploymentStarted>> LeptonDeployments::Recover(
    const DeploymentRef& ref, const DeploymentSpec& spec) {
  Record record = ReadRecord(ref);
  if (record.generation == 0 || record.deleted) return std::optional<DeploymentStarted>();
  EVALD_ASSIGN_OR_RETURN(lepton::LeptonClient client, executor_.ClientFor(record.target));
  absl::StatusOr<json> dep = client.GetDeployment(record.name);
  if (absl::IsNotFound(dep.status())) return std::optional<DeploymentStarted>();
  if (!dep.ok()) return dep.status();
  const std::string state = StateOf(*dep);
  if (state == "Deleting" || state == "Stopping" || state == "Stopped") {
    return std::optional<DeploymentStarted>();
  }
  Note(ref, absl::StrCat("re-attached to Lepton endpoint ", record.name, " (state ", state, ")"));
  DeploymentStarted out;
  out.handle = EncodeHandle({record.name, record.target});
  out.port = spec.port;
  out.command = absl::StrJoin(ServerCommand(spec), " ");
  return std::optional<DeploymentStarted>(std::move(out));
}

}  // namespace evald::executors
