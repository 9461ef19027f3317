// File: interpolation.h
//
// Private to core/config: OmegaConf interpolation over a composed tree, resolved in place.
// `${a.b}`, `${a.b[0]}`, `${.sibling}`, `${..uncle}`, `${oc.env:VAR}`, `${oc.env:VAR,default}`,
// `${oc.select:a.b,default}`, `${oc.decode:'[1,2]'}`, nesting (`${oc.select:a,${b}}`), chains,
// `\${` escapes. A value that is exactly one interpolation keeps the type of what it resolves to;
// inside a longer string the pieces are concatenated with Python's str(). Port auto: when
// `deployment.port` is `auto`, every reference to it yields the literal text `${EVALD_PORT}` (evald
// substitutes the real port later).
//
//   EVALD_RETURN_IF_ERROR(ResolveInterpolations(root, env, /*allow_missing=*/false));
//   std::vector<std::string> missing = FindMissing(root);   // {"execution.account", ...}
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "core/config/compose.h"
#include "core/config/value.h"

namespace evald::config::internal {

// Resolves every interpolation in `root`. A reference to a `???` value is an error naming both
// paths, or with `allow_missing` makes the referring value `???` too.
absl::Status ResolveInterpolations(Value& root, const EnvLookup& env, bool allow_missing);

// Key paths (`a.b[2].c`) of every `???` value, in document order.
std::vector<std::string> FindMissing(const Value& root);

}  // namespace evald::config::internal
