// libFuzzer target for the YAML limits (core/yaml_budget.h): MeasureYaml and CheckYamlLimits must
// never crash, and when CheckYamlLimits lets a text through (measured, or by its no-parse
// shortcut), the tree YAML::Load builds from it, aliases expanded, must be within the limits. Small
// limits make the fuzzer reach them with short inputs.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "core/yaml_budget.h"
#include "yaml-cpp/yaml.h"

namespace {

constexpr evald::YamlLimits kLimits{.max_nodes = 500, .max_scalar_bytes = 4000, .max_depth = 20};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto measured = evald::MeasureYaml(text, "f", kLimits);
  if (!evald::CheckYamlLimits(text, "f", kLimits).ok()) return 0;
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception&) {
    return 0;  // a syntax error: the callers report it
  }
  uint64_t nodes = 0;
  uint64_t bytes = 0;
  std::function<void(const YAML::Node&, int)> walk = [&](const YAML::Node& n, int level) {
    if (level > kLimits.max_depth || ++nodes > kLimits.max_nodes) __builtin_trap();
    if (n.IsScalar()) bytes += n.Scalar().size();
    if (bytes > kLimits.max_scalar_bytes) __builtin_trap();
    if (n.IsSequence()) {
      for (const YAML::Node& item : n) walk(item, level + 1);
    } else if (n.IsMap()) {
      for (auto it = n.begin(); it != n.end(); ++it) {
        walk(it->first, level + 1);
        walk(it->second, level + 1);
      }
    }
  };
  walk(root, 0);
  // The measure counts what the walk sees (an empty text has no node but loads as null).
  if (measured.ok() && measured->nodes + 1 < nodes) __builtin_trap();
  return 0;
}
