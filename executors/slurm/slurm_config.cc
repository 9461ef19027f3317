#include "executors/slurm/slurm_config.h"

namespace evald::executors {

std::vector<config::SchemaRule> SlurmExecutionKeys() {
  using config::SchemaKey;
  using K = config::SchemaKinds;
  return {
      SchemaKey("execution.hostname", K::kStr),
      SchemaKey("execution.username", K::kStr | K::kNum),
      SchemaKey("execution.account", K::kStr | K::kInt),
      SchemaKey("execution.partition", K::kStr | K::kNull),
      SchemaKey("execution.cpu_partition", K::kStr | K::kNull),
      SchemaKey("execution.num_nodes", K::kInt).Min(1),
      SchemaKey("execution.num_instances", K::kInt | K::kNull).Min(1),
      SchemaKey("execution.ntasks_per_node", K::kInt | K::kNull).Min(1),
      SchemaKey("execution.gres", K::kStr | K::kNull),
      SchemaKey("execution.gpus_per_node", K::kInt | K::kNull).Min(1),
      // YAML 1.1 reads 1:00:00 as a sexagesimal integer; 01:00:00 stays a string.
      SchemaKey("execution.walltime", K::kStr | K::kInt),
      SchemaKey("execution.max_walltime", K::kStr | K::kInt | K::kNull),
      SchemaKey("execution.subproject", K::kStr | K::kNull),
      SchemaKey("execution.sbatch_comment", K::kStr | K::kNull),
      SchemaKey("execution.sbatch_extra_flags", K::kMap | K::kNull).Open(),
      SchemaKey("execution.deployment", K::kMap | K::kNull).Open(),
      SchemaKey("execution.proxy", K::kMap | K::kNull).Open(),
      SchemaKey("execution.mounts.auxiliary", K::kMap | K::kNull).Open(),
      SchemaKey("execution.auto_export.launcher_install_cmd", K::kStr | K::kNull),
      SchemaKey("execution.auto_export.export_image", K::kStr | K::kNull),
      SchemaKey("execution.auto_export.export_mounts", K::kAny),
  };
}

}  // namespace evald::executors
