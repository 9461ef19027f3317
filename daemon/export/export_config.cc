#include "daemon/export/export_config.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/config/value.h"

namespace evald::daemon::exporters {
namespace {

using json = nlohmann::json;
namespace cfgi = ::evald::config::internal;

json ValueToJson(const cfgi::Value& v) {
  switch (v.kind) {
    case cfgi::Value::Kind::kNull:
      return nullptr;
    case cfgi::Value::Kind::kBool:
      return v.b;
    case cfgi::Value::Kind::kInt:
      return v.i;
    case cfgi::Value::Kind::kFloat:
      return v.f;
    case cfgi::Value::Kind::kString:
      return v.s;
    case cfgi::Value::Kind::kList: {
      json out = json::array();
      for (const cfgi::Value& item : v.items) out.push_back(ValueToJson(item));
      return out;
    }
    case cfgi::Value::Kind::kMap: {
      json out = json::object();
      for (const cfgi::MapEntry& e : v.entries) out[e.key] = ValueToJson(e.value);
      return out;
    }
  }
  return nullptr;
}

std::string Where(const std::string& dest, const std::string& key) {
  return absl::StrCat("export config ", dest, ".", key);
}

}  // namespace

json YamlToTypedJson(const YAML::Node& node) {
  if (!node || node.IsNull()) return nullptr;
  if (node.IsScalar()) return ValueToJson(cfgi::TypeYamlScalar(node));
  if (node.IsSequence()) {
    json out = json::array();
    for (const auto& item : node) out.push_back(YamlToTypedJson(item));
    return out;
  }
  json out = json::object();
  for (const auto& kv : node) out[kv.first.as<std::string>()] = YamlToTypedJson(kv.second);
  return out;
}

absl::StatusOr<json> MergeExportConfig(const YAML::Node& base,
                                       const std::vector<std::string>& overrides,
                                       const std::string& dest) {
  json cfg = json::object();
  if (base && !base.IsNull()) {
    if (!base.IsMap()) {
      return absl::InvalidArgumentError(
          absl::StrCat("execution.auto_export.configs.", dest, " must be a mapping"));
    }
    cfg = YamlToTypedJson(base);
  }
  const std::string prefix = absl::StrCat("export.", dest, ".");
  for (const std::string& o : overrides) {
    size_t eq = o.find('=');
    if (eq == std::string::npos || eq == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("override '", o, "': expected export.", dest, ".KEY=VALUE"));
    }
    std::string key = o.substr(0, eq);
    if (absl::StartsWith(key, "export.")) {
      if (!absl::StartsWith(key, prefix)) continue;  // another destination's
      key = key.substr(prefix.size());
    }
    if (key.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("override '", o, "': empty key"));
    }
    json value;
    try {
      value = YamlToTypedJson(YAML::Load(o.substr(eq + 1)));
    } catch (const YAML::Exception& e) {
      return absl::InvalidArgumentError(absl::StrCat("override '", key, "': ", e.what()));
    }
    json* at = &cfg;
    std::vector<std::string> parts = absl::StrSplit(key, '.');
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      json& next = (*at)[parts[i]];
      if (!next.is_object()) next = json::object();
      at = &next;
    }
    (*at)[parts.back()] = std::move(value);
  }
  return cfg;
}

absl::StatusOr<std::string> ConfigString(const json& cfg, const std::string& dest,
                                         const std::string& key, const std::string& fallback) {
  auto it = cfg.find(key);
  if (it == cfg.end() || it->is_null()) return fallback;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number() || it->is_boolean()) return ScalarText(*it);
  return absl::InvalidArgumentError(absl::StrCat(Where(dest, key), " must be a string"));
}

absl::StatusOr<bool> ConfigBool(const json& cfg, const std::string& dest, const std::string& key,
                                bool fallback) {
  auto it = cfg.find(key);
  if (it == cfg.end() || it->is_null()) return fallback;
  if (it->is_boolean()) return it->get<bool>();
  return absl::InvalidArgumentError(
      absl::StrCat(Where(dest, key), " must be true or false, not ", it->dump()));
}

absl::StatusOr<std::vector<std::string>> ConfigStringList(const json& cfg, const std::string& dest,
                                                          const std::string& key) {
  std::vector<std::string> out;
  auto it = cfg.find(key);
  if (it == cfg.end() || it->is_null()) return out;
  if (it->is_string()) {
    out.push_back(it->get<std::string>());
    return out;
  }
  if (!it->is_array()) {
    return absl::InvalidArgumentError(absl::StrCat(Where(dest, key), " must be a list"));
  }
  for (const json& item : *it) {
    if (item.is_object() || item.is_array() || item.is_null()) {
      return absl::InvalidArgumentError(
          absl::StrCat(Where(dest, key), " must be a list of strings"));
    }
    out.push_back(ScalarText(item));
  }
  return out;
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ConfigStringMap(
    const json& cfg, const std::string& dest, const std::string& key) {
  std::vector<std::pair<std::string, std::string>> out;
  auto it = cfg.find(key);
  if (it == cfg.end() || it->is_null()) return out;
  if (!it->is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(Where(dest, key), " must be a mapping"));
  }
  for (const auto& [k, v] : it->items()) {
    out.emplace_back(k, v.is_string()                     ? v.get<std::string>()
                        : (v.is_object() || v.is_array()) ? v.dump()
                                                          : ScalarText(v));
  }
  return out;
}

std::string ScalarText(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "True" : "False";
  if (v.is_null()) return "None";
  if (v.is_number_float()) return cfgi::PyFloatRepr(v.get<double>());
  return v.dump();
}

}  // namespace evald::daemon::exporters
