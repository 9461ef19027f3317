// File: yaml_io.h
//
// YAML text in and out for everything evald and evalrun write or read: plan.yaml, the stored
// config, dry-run output, `evalctl config`, evalrun's results.yml and run_config.yml. Scalars are
// written so that a YAML 1.1 reader (the reference's PyYAML) gets the same types back as
// value.h's one scalar rule gives: floats as PyYAML writes them (`1.0e-05`, `.inf`), and strings
// that any YAML 1.1 or 1.2 reader would take for a bool, null, number or date quoted (`"yes"`,
// `"0x1f"`, `"1:20"`, `"2024-01-01"`). yaml-cpp's exceptions stop here.
//
//   EVALD_ASSIGN_OR_RETURN(YAML::Node node, ParseYaml(text, "plan.yaml"));
//   std::string text = ToYaml(node);
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "yaml-cpp/yaml.h"

namespace evald::config {

// Deterministic block-style YAML (map key order as given).
std::string ToYaml(const YAML::Node& node);

// Parses YAML text (valid UTF-8, no control characters, bounded alias expansion, no duplicate keys
// or unknown tags); errors name `source_name:line:column`.
absl::StatusOr<YAML::Node> ParseYaml(const std::string& text, const std::string& source_name);

}  // namespace evald::config
