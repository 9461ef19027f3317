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

// YAML scalar/sequence/map to JSON; scalars keep YAML 1.2 core types (int, float, bool, null).
nlohmann::json YamlToJson(const YAML::Node& node);

// Applies a dotted override ("config.params.limit_samples=10"); the value is parsed as YAML, so
// 10 is an int, null is null and [1, 2] a list. Intermediate maps are created as needed.
absl::Status ApplyOverride(YAML::Node& root, const std::string& assignment);

// Emits JSON as block YAML with map keys sorted (as PyYAML's yaml.dump does). Strings that would
// read back as another type ("72", "true", "null", "") are quoted; doubles use the shortest text
// that reads back exactly.
std::string EmitYaml(const nlohmann::json& value);

}  // namespace evald::runner
