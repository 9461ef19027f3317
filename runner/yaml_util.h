// File: yaml_util.h
//
// Typed reads from yaml-cpp nodes that turn every problem into an InvalidArgument naming the file,
// the line and the key path ("plan.yaml:12: config.params.parallelism: expected an integer, got
// 'abc'"). Used by the plan, adapter-config and user-task parsers; yaml-cpp exceptions stop here.
//
//   YamlDoc doc;
//   EVALD_ASSIGN_OR_RETURN(doc, YamlDoc::Load("/abs/plan.yaml"));
//   EVALD_ASSIGN_OR_RETURN(std::optional<int64_t> n,
//                          doc.OptInt(doc.At(doc.root(), "config.params.limit_samples"), "...")));
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "yaml-cpp/yaml.h"

namespace evald::runner {

// A parsed YAML document plus the name used in its error messages.
class YamlDoc {
 public:
  static absl::StatusOr<YamlDoc> Load(const std::string& path);
  static absl::StatusOr<YamlDoc> Parse(const std::string& text, const std::string& name);

  const YAML::Node& root() const { return root_; }
  YAML::Node& mutable_root() { return root_; }
  const std::string& name() const { return name_; }

  // "<file>:<line>: <path>" (line omitted when the node has no position, e.g. it is absent).
  std::string Where(const YAML::Node& node, const std::string& path) const;
  absl::Status Error(const YAML::Node& node, const std::string& path,
                     const std::string& message) const;

  // Child of a map by dotted path; an undefined node when any step is missing or not a map.
  static YAML::Node Child(const YAML::Node& node, const std::string& dotted);

  // Readers: absent or null gives nullopt; a wrong type is an error naming `path`.
  absl::StatusOr<std::optional<std::string>> OptString(const YAML::Node& node,
                                                       const std::string& path) const;
  absl::StatusOr<std::optional<int64_t>> OptInt(const YAML::Node& node,
                                                const std::string& path) const;
  absl::StatusOr<std::optional<double>> OptDouble(const YAML::Node& node,
                                                  const std::string& path) const;
  absl::StatusOr<std::optional<bool>> OptBool(const YAML::Node& node,
                                              const std::string& path) const;
  absl::StatusOr<std::vector<std::string>> StringList(const YAML::Node& node,
                                                      const std::string& path) const;
  // A map (or absent/null) node; anything else is an error.
  absl::Status ExpectMap(const YAML::Node& node, const std::string& path) const;

 private:
  YamlDoc(YAML::Node root, std::string name) : root_(std::move(root)), name_(std::move(name)) {}
  YAML::Node root_;
  std::string name_;
};

// YAML scalar/sequence/map to JSON; scalars typed by core's one rule (YAML 1.1 as the daemon and
// the reference read them: `yes` a bool, `0x1f` 31, `1e-5` a float, quoted text a string).
nlohmann::json YamlToJson(const YAML::Node& node);

// Applies dotted overrides ("config.params.limit_samples=10", "config.params.extra.stop[0]=x")
// with core's one applier (core/config/dotted_override.h), the same as the daemon applies a
// task's overrides to its plan: values read as YAML, missing keys and maps created. Errors name
// the override and the key path. Once applied, the document's nodes carry no line numbers.
absl::Status ApplyOverrides(YamlDoc& doc, const std::vector<std::string>& assignments);

// Emits JSON as block YAML with map keys sorted (as PyYAML's yaml.dump does), through core's
// emitter (core/config/yaml_io.h): floats as PyYAML writes them (1.0e-05), strings that would read
// back as another type ("72", "true", "yes", "") quoted.
std::string EmitYaml(const nlohmann::json& value);

}  // namespace evald::runner
