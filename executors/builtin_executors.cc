// The one list of backends evald ships: add a new executor here (see
// docs/design/adding-an-executor.md). This file is compiled twice: into evald_executors with the
// executors themselves (BuiltinExecutors), and into evald_executor_configs with
// EVALD_EXECUTOR_CONFIGS_ONLY (BuiltinSchemas), so evalctl checks configs with the same keys
// without linking any backend code.
#include "executors/lepton/lepton_config.h"
#include "executors/local/local_config.h"
#include "executors/registry.h"
#include "executors/slurm/slurm_config.h"

#ifdef EVALD_EXECUTOR_CONFIGS_ONLY
#define EVALD_EXECUTOR(type) nullptr
#else
#include "executors/lepton/lepton_executor.h"
#include "executors/local/local_executor.h"
#include "executors/slurm/slurm_executor.h"
#define EVALD_EXECUTOR(type)                                        \
  [](const ExecutorContext& context) -> std::unique_ptr<Executor> { \
    return std::make_unique<type>(context);                         \
  }
#endif

namespace evald::executors {
namespace {

std::vector<ExecutorFactory> List() {
  return {
      {.name = "local",
       .execution_keys = LocalExecutionKeys,
       .create = EVALD_EXECUTOR(LocalExecutor)},
      // Renders run.sub (dry runs); submitting comes next (issue 10).
      {.name = "slurm",
       .execution_keys = SlurmExecutionKeys,
       .create = EVALD_EXECUTOR(SlurmExecutor)},
      // Batch jobs over the Lepton REST API; endpoints (deployments) not yet.
      {.name = "lepton",
       .execution_keys = LeptonExecutionKeys,
       .job_env = LeptonJobEnvNames,
       .create = EVALD_EXECUTOR(LeptonExecutor)},
  };
}

}  // namespace

#ifdef EVALD_EXECUTOR_CONFIGS_ONLY
std::vector<config::ExecutorSchema> BuiltinSchemas() {
  std::vector<config::ExecutorSchema> out;
  for (const ExecutorFactory& f : List()) out.push_back({f.name, f.execution_keys()});
  return out;
}
#else
const std::vector<ExecutorFactory>& BuiltinExecutors() {
  static const auto* list = new std::vector<ExecutorFactory>(List());
  return *list;
}
#endif

}  // namespace evald::executors
