// File: hand_compose.h
//
// Test-only stand-in for core/config/compose.h, enough for a deployment group: load a group
// file, apply an example config's `deployment:` values on top, and resolve the interpolations the
// group files use (`${deployment.<key>}`, `${oc.select:deployment.<key>,<default>}`), with the
// compose rule for `port: auto` (`${deployment.port}` becomes `${EVALD_PORT}`). The parity tests
// compare what evald renders from this with the reference's command lines.
#pragma once

#include <string>

#include "yaml-cpp/yaml.h"

namespace evald::deployment::testing {

inline std::string ResolveScalar(const std::string& text, const YAML::Node& group) {
  static const std::string kSelect = "oc.select:";
  static const std::string kPrefix = "deployment.";
  std::string out;
  size_t pos = 0;
  while (true) {
    const size_t open = text.find("${", pos);
    const size_t close = open == std::string::npos ? open : text.find('}', open);
    if (close == std::string::npos) break;
    std::string expr = text.substr(open + 2, close - open - 2);
    const bool select = expr.rfind(kSelect, 0) == 0;
    if (select) expr = expr.substr(kSelect.size());
    std::string fallback;
    if (const size_t comma = expr.find(','); select && comma != std::string::npos) {
      fallback = expr.substr(comma + 1);
      expr = expr.substr(0, comma);
    }
    out += text.substr(pos, open - pos);
    pos = close + 1;
    if (expr.rfind(kPrefix, 0) != 0) {  // not ours (e.g. ${EVALD_PORT}): keep as written
      out += text.substr(open, close + 1 - open);
      continue;
    }
    const std::string key = expr.substr(kPrefix.size());
    const YAML::Node value = group[key];
    if (key == "port" && value.IsScalar() && value.Scalar() == "auto") {
      out += "${EVALD_PORT}";
    } else if (value.IsDefined() && !value.IsNull()) {
      out += ResolveScalar(value.Scalar(), group);
    } else if (select) {
      out += fallback;
    }
  }
  out += text.substr(pos);
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
