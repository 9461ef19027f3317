// File: dotted_override.h
//
// The one dotted-override applier of evald and evalrun: `config.params.top_p=1e-5` into a config
// or plan tree. Keys are dotted paths whose list items are addressed as `stop[1]` or `stop.1`;
// missing keys and maps on the way are created (Hydra's `++key=value`, which is what the
// reference's `run_eval --overrides` does), an existing map given a map value is merged into, and
// a path through a scalar or past a list's end is InvalidArgument naming the key path. Values are
// typed by value.h's one scalar rule (YAML 1.1, as the reference reads them).
//
// Callers: BuildNativePlan (a task's `overrides:` into its plan.yaml) and evalrun's `--overrides`
// (runner/plan.cc). `evalctl -o` uses the same applier (internal::ApplyOverride) with Hydra's
// struct-mode operators `+`, `++` and `~`.
//
//   Value plan = ...;
//   EVALD_RETURN_IF_ERROR(ApplyDottedAssignment(plan, "config.params.extra.stop[0]=###"));
//   EVALD_RETURN_IF_ERROR(ApplyDottedOverride(plan, "config.params.top_p", Value::Float(1e-5)));
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/config/value.h"

namespace evald::config {

// Sets `key` to `value` in `root` (a null root becomes a map).
absl::Status ApplyDottedOverride(internal::Value& root, const std::string& key,
                                 internal::Value value);

// `key=value` with the value read as YAML (`10` an int, `1e-5` a float, `yes` a bool, `[1, 2]` a
// list, `'x'` a string; text that is not valid YAML stays a string).
absl::Status ApplyDottedAssignment(internal::Value& root, const std::string& assignment);

// The value half of an assignment, read as above.
internal::Value ParseYamlOverrideValue(const std::string& text);

}  // namespace evald::config
