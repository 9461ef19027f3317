// File: local_config.h
//
// The local executor's own part of a config's `execution:` section: its keys for the schema check
// and the typed settings Render reads. Callers: the executor list (builtin_executors.cc) for the
// keys (evalctl too, through the configs-only build of that list); run_script.cc for the settings.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/config/schema.h"

namespace evald::executors {

struct LocalConfig {
  // execution.extra_docker_args, split into words (no shell: quotes group, nothing expands).
  std::vector<std::string> extra_docker_args;
};

std::vector<config::SchemaRule> LocalExecutionKeys();

// execution.extra_docker_args split into words the way bash would, without expansions: blanks
// separate words, '...' and "..." quote, a backslash escapes the next character. `$`, backticks
// and unquoted ;&|<>() are refused (InvalidArgument): the words reach docker as plain arguments.
absl::StatusOr<std::vector<std::string>> SplitDockerArgs(absl::string_view text);

// Parses the execution section as the planner stored it (YAML text). InvalidArgument naming the
// key when a value is unusable.
absl::StatusOr<LocalConfig> ParseLocalConfig(const std::string& execution_yaml);

}  // namespace evald::executors
