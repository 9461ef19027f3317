// File: schema.h
//
// The schema of a composed config: one table of key paths with the type each one takes (string,
// integer, number, bool, list, mapping, null), its limits (minimum, maximum, one of a set) and
// whether a mapping may hold keys the table does not list. `execution.*` is checked against the
// keys of the selected executor (local, slurm, lepton) and `deployment.*` against those of the
// selected deployment type, so a typo in a SLURM config is caught even though evald cannot run
// SLURM yet. Maps that are passed through to a harness or a platform (evaluation.overrides,
// evaluation.config, env_vars, auto_export.configs, ...) are open; their well-known keys
// (config.params.parallelism, ...) are still type-checked. The top level is open too (Hydra configs
// keep helper values there for interpolation), except that a key one typo away from a section name
// is refused.
//
// Callers: evald Submit (before ParseRunConfig) and evalctl (after composing, so the message names
// the user's file). Every problem is reported, up to 20, one per line, each with the key path, what
// was expected and what was found, plus "did you mean" for unknown keys:
//
//   my.yaml: execution.outptu_dir: unknown key for execution type local; did you mean 'output_dir'?
//
//   EVALD_RETURN_IF_ERROR(CheckConfigSchema(composed, "my.yaml"));
#pragma once

#include <string>

#include "absl/status/status.h"
#include "yaml-cpp/yaml.h"

namespace evald::config {

// Checks a composed config (interpolations resolved) against the schema. `source` names the config
// in the message (the user's file, or "<submitted config>"). Values still `???` are left to
// ParseRunConfig, which names all of them. InvalidArgument listing every problem (at most 20).
absl::Status CheckConfigSchema(const YAML::Node& composed, const std::string& source);

}  // namespace evald::config
