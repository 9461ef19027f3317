// File: config_compose.h
//
// The composition evalctl submits with: the config library (core/config/compose.h) run on the
// submitting side, where the user's files and environment are. Kept apart from the commands so
// that they (and their tests) do not need the config library.
//
// Callers: cli/main.cc, which hands ComposeWithConfigLibrary to RunSubmit.
//
//   absl::StatusOr<ComposedConfig> c = ComposeWithConfigLibrary(input);
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "cli/commands/commands.h"

namespace evald::cli {

// Compose (defaults list, overrides, interpolation, `???` check) + the schema check
// (CheckConfigSchema, errors naming the primary file) + ToYaml + SecretNamesOf +
// where each secret is used.
absl::StatusOr<ComposedConfig> ComposeWithConfigLibrary(const ComposeInput& input);

// The packaged configs dir (for `run -c NAME` without -d).
std::string PackagedConfigsDir();

}  // namespace evald::cli
