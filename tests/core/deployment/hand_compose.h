// File: hand_compose.h
//
// Test-only stand-in for core/config/compose.h, enough for a deployment group: load a group
// file, apply an example config's `deployment:` values on top, and resolve the interpolations the
// group files use (`${deployment.<key>}`, `${oc.select:deployment.<key>,<default>}`), with the
// compose rule for `port: auto` (`${deployment.port}` becomes `${EVALD_PORT}`). The parity tests
// compare what evald renders from this with the reference's command lines.
#pragma once

#include <regex>
#include <string>

#include "yaml-cpp/yaml.h"

namespace evald::deployment::testing {

inline std::string ResolveScalar(const std::string& text, const YAML::Node& group) {
  static const std::regex kRef(R"(\$\{(oc\.select:)?deployment\.([A-Za-z_]+)(,([^}]*))?\})");
  std::string out;
  auto begin = std::sregex_iterator(text.begin(), text.end(), kRef);
  size_t copied = 0;
  for (auto it = begin; it != std::sregex_iterator(); ++it) {
    const std::smatch& m = *it;
    out += text.substr(copied, m.position(0) - copied);
    copied = m.position(0) + m.length(0);
    const std::string key = m[2].str();
    const YAML::Node value = group[key];
    if (key == "port" && value.IsScalar() && value.Scalar() == "auto") {
      out += "${EVALD_PORT}";
    } else if (value.IsDefined() && !value.IsNull()) {
      out += ResolveScalar(value.Scalar(), group);
    } else if (m[1].matched) {
      out += m[4].str();  // oc.select default
    }
  }
  out += text.substr(copied);
  return out;
}

// `group_path`: a deployment group file. `example_yaml`: the example config's `deployment:`
// mapping (its values replace the group's, as `_self_` does).
inline YAML::Node HandCompose(const std::string& group_path, const std::string& example_yaml) {
  YAML::Node group = YAML::Clone(YAML::LoadFile(group_path));
  const YAML::Node example = YAML::Load(example_yaml);
  if (example.IsMap()) {
    for (const auto& entry : example) group[entry.first.Scalar()] = YAML::Clone(entry.second);
  }
  YAML::Node resolved(YAML::NodeType::Map);
  for (const auto& entry : group) {
    const std::string key = entry.first.Scalar();
    if (entry.second.IsScalar()) {
      resolved[key] = ResolveScalar(entry.second.Scalar(), group);
    } else {
      resolved[key] = YAML::Clone(entry.second);
    }
  }
  return resolved;
}

}  // namespace evald::deployment::testing
