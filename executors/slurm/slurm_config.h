// File: slurm_config.h
//
// The SLURM executor's keys under `execution:` (configs/execution/slurm/default.yaml and the newer
// reference's keys), so a SLURM config is checked key by key even in a build that cannot run SLURM
// jobs yet. Caller: the executor list (builtin_executors.cc).
#pragma once

#include <vector>

#include "core/config/schema.h"

namespace evald::executors {

std::vector<config::SchemaRule> SlurmExecutionKeys();

}  // namespace evald::executors
