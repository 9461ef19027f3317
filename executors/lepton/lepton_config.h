// File: lepton_config.h
//
// The Lepton executor's part of `execution:` (configs/execution/lepton/default.yaml): its keys for
// the schema check, and the env vars a Lepton job gets from lepton_platform.tasks.env_vars (they
// satisfy a task's required env vars). Checked even in a build that cannot run Lepton jobs yet.
// Caller: the executor list (builtin_executors.cc).
#pragma once

#include <string>
#include <vector>

#include "core/config/schema.h"
#include "yaml-cpp/yaml.h"

namespace evald::executors {

std::vector<config::SchemaRule> LeptonExecutionKeys();
std::vector<std::string> LeptonJobEnvNames(const YAML::Node& execution);

}  // namespace evald::executors
