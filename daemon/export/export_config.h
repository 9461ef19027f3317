// File: export_config.h
//
// One exporter's configuration as a JSON object: `execution.auto_export.configs.<dest>` from the
// invocation's config, then the CLI's `-o export.<dest>.key=value` overrides on top (last wins,
// peer-launcher.md 6.1), plus typed getters that name the key in their errors. Called by the
// exporters' callers (the Export RPC: daemon/export_runner.cc; auto-export:
// daemon/auto_exporter.cc) and by the exporters.
//
//   EVALD_ASSIGN_OR_RETURN(nlohmann::json cfg,
//       MergeExportConfig(root["execution"]["auto_export"]["configs"]["local"],
//                         {"export.local.format=csv"}, "local"));
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "yaml-cpp/yaml.h"

namespace evald::daemon::exporters {

// A YAML node as JSON with scalars typed by evald's one scalar rule (core/config/value.h):
// `true` a bool, `5` an int, `0.5` a float, quoted scalars strings.
nlohmann::json YamlToTypedJson(const YAML::Node& node);

// `base` may be null/undefined (no configs for `dest`). Overrides are `export.<dest>.<key>=<value>`
// (overrides for another destination are skipped) or a bare `<key>=<value>`; a dotted key makes
// nested maps (`tags.framework=vLLM`); the value is parsed as YAML (`[a, b]` is a list). Errors
// name the override.
absl::StatusOr<nlohmann::json> MergeExportConfig(const YAML::Node& base,
                                                 const std::vector<std::string>& overrides,
                                                 const std::string& dest);

// Typed reads: the default when the key is absent or null; InvalidArgument naming `dest.key`
// when the value has another type.
absl::StatusOr<std::string> ConfigString(const nlohmann::json& cfg, const std::string& dest,
                                         const std::string& key, const std::string& fallback);
absl::StatusOr<bool> ConfigBool(const nlohmann::json& cfg, const std::string& dest,
                                const std::string& key, bool fallback);
// A list of strings; a single string counts as a one-item list.
absl::StatusOr<std::vector<std::string>> ConfigStringList(const nlohmann::json& cfg,
                                                          const std::string& dest,
                                                          const std::string& key);
// A mapping of scalars rendered as strings (tags, extra_metadata); empty when absent.
absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ConfigStringMap(
    const nlohmann::json& cfg, const std::string& dest, const std::string& key);

// A scalar as Python's str() renders it (True, 0.5, text), which is what the reference sends.
std::string ScalarText(const nlohmann::json& v);

}  // namespace evald::daemon::exporters
