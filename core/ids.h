// File: ids.h
//
// Identifiers, as the reference tool shapes them: an invocation id is 8 lower-case hex digits, a
// job id is `<invocation>.<index>` (0-based, in the order of evaluation.tasks), a deployment id is
// `<invocation>.d<index>`. The id rule everywhere: a string with a '.' names a job (or a
// deployment), one without names an invocation.
//
//   std::string inv = NewInvocationId();          // "3f9a0c1e"
//   std::string job = JobId(inv, 2);              // "3f9a0c1e.2"
//   auto [i, n] = *ParseJobId(job);               // {"3f9a0c1e", 2}
#pragma once

#include <optional>
#include <string>
#include <utility>

#include "absl/strings/string_view.h"

namespace evald {

std::string NewInvocationId();
std::string JobId(absl::string_view invocation_id, int index);
std::string DeploymentId(absl::string_view invocation_id, int index);

bool IsValidInvocationId(absl::string_view id);
// {invocation id, index} of a well-formed job id.
std::optional<std::pair<std::string, int>> ParseJobId(absl::string_view id);
// The invocation part of any id (everything before the first '.').
std::string InvocationIdOf(absl::string_view id);

}  // namespace evald
