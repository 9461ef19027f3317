// File: slurm_config.h
//
// The SLURM executor's keys under `execution:` (configs/execution/slurm/default.yaml and the newer
// reference's keys), so a SLURM config is checked key by key, and the typed settings the run.sub
// renderer reads. Callers: the executor list (builtin_executors.cc) for the keys (evalctl too,
// through the configs-only build of that list); SlurmExecutor and run_sub.cc for the settings.
// No backend code here: evalctl links this file.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/config/schema.h"

namespace evald::executors {

// execution.runner: how a native task gets `evalrun` on the compute node.
struct SlurmRunner {
  enum class Kind {
    kOwn,     // evald's own runner path (--runner): the default for a cluster on this machine
    kPath,    // {path: /abs/evalrun}: a path on the cluster, used as is
    kImage,   // {image: <image>}: `evalrun` (the image's PATH) in a pyxis container step
    kUpload,  // {upload: true}: evald copies its own evalrun to <output_dir>/.evald-runner/
              // evalrun-<first 16 hex of its sha256>; the default for a remote cluster
  };
  Kind kind = Kind::kOwn;
  std::string value;  // the path (kPath) or the image (kImage)
};

struct SlurmConfig {
  std::string hostname;  // login node; "" = sbatch on this machine
  std::string username;
  std::string ssh_config_file;  // "" = the user's ssh config
  std::string account;
  std::string partition;  // "" = the cluster's default partition
  int num_nodes = 1;
  std::optional<int> ntasks_per_node;
  std::optional<std::string> gres;  // null skips the directive
  std::optional<int> gpus_per_node;
  std::string walltime = "01:00:00";
  std::string subproject;
  std::string sbatch_comment;
  // `#SBATCH --<flag> [value]` lines in config order; a bare flag has an empty value. Defaults to
  // {exclusive: true} like the reference; `false`/null values drop the flag.
  std::vector<std::pair<std::string, std::string>> sbatch_extra_flags;
  std::map<std::string, std::string> evaluation_env;     // literal, non-secret values
  std::map<std::string, std::string> evaluation_mounts;  // host path -> container path
  bool mount_home = true;
  std::optional<std::string> max_walltime;  // total across resumes (not enforced yet)
  int max_resumes = 0;                      // not enforced yet
  double poll_interval_s = 30;
  SlurmRunner runner;
  std::string output_dir;  // execution.output_dir as given ("" when unset)
};

std::vector<config::SchemaRule> SlurmExecutionKeys();

// Parses the execution section as the planner stored it (YAML text). InvalidArgument naming the
// key ("execution.walltime: ...") when a value is unusable; values that would leave their
// `#SBATCH` line or `srun` word (control characters, backslashes, ',' or ':' in mounts) are
// refused here so the renderer never has to guess.
absl::StatusOr<SlurmConfig> ParseSlurmConfig(const std::string& execution_yaml);

// The rules for a value on an `#SBATCH` line or in a pyxis option list, shared by the parser and
// run.sub's own values. InvalidArgument "<what> '<value>' holds a control character or a
// backslash, ..." when `value` has one (sbatch reads those lines with its own quoting rules, and a
// newline would end the comment for bash); OK otherwise.
absl::Status CheckSbatchLineValue(absl::string_view value, absl::string_view what);
// As above, and InvalidArgument "<what> '<path>': a mount path must be non-empty and hold no ','
// or ':' ..." (pyxis --container-mounts syntax).
absl::Status CheckPyxisMountPath(absl::string_view path, absl::string_view what);

}  // namespace evald::executors
