// File: compose.h
//
// Hydra-compatible composition of evaluation configs, so users bring their NeMo Evaluator
// Launcher configs unchanged. Handles a primary config with a `defaults:` list (groups
// `execution` and `deployment`, `_self_`), config groups searched in the user's config dirs first
// and then the packaged `configs/` dir, overrides (`a.b=v`, `+a.b=v`, `++a.b=v`, `~a.b`, group
// switches `execution=slurm/default`, YAML-typed values), OmegaConf interpolation (`${a.b}`,
// `${oc.env:VAR}`, `${oc.env:VAR,default}`, `${oc.select:a.b,default}`) and the `???` check.
//
// Callers: evalctl (composes on the submitting side, where the user's files and environment are)
// and evald (composes configs that API clients send with a `defaults:` list still in them).
// Errors are InvalidArgument (bad input) or NotFound (missing file/group) and always name the file,
// the key path and what was expected, e.g.
//   "examples/x.yaml:12:3: mapping values are not allowed here"
//   "unknown option 'execution=slurmm' for group 'execution'; available: local, slurm/default, ..."
//   "missing mandatory value at 'execution.output_dir' (set it in the config or with -o)"
//
//   ComposeRequest req;
//   req.primary_path = "examples/quickstart.yaml";
//   req.packaged_dir = PackagedConfigDir();
//   req.overrides = {"execution.output_dir=/tmp/out"};
//   req.env = ProcessEnv();
//   EVALD_ASSIGN_OR_RETURN(YAML::Node cfg, Compose(req));
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/config/yaml_io.h"
#include "yaml-cpp/yaml.h"

namespace evald::config {

// Looks up an environment variable for `${oc.env:...}`; nullopt when unset.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;

// The real process environment (getenv).
EnvLookup ProcessEnv();

struct ComposeRequest {
  // Exactly one of primary_path (a YAML file) or primary_yaml (its text; primary_name is used in
  // messages) is the primary config.
  std::string primary_path;
  std::string primary_yaml;
  std::string primary_name = "<submitted config>";
  // Folders searched for config groups before packaged_dir (--config-dir; the primary file's
  // folder is always searched first).
  std::vector<std::string> search_path;
  std::string packaged_dir;
  std::vector<std::string> overrides;
  // Resolves ${oc.env:...}; when empty, every oc.env without a default is an error.
  EnvLookup env;
  // Relative `execution.output_dir` is made absolute against this folder (the submitter's working
  // directory); relative `task_file` and `dataset` paths of evaluation.tasks[] against the primary
  // config file's folder (or working_dir for primary_yaml).
  std::string working_dir;
  // Leave `???` in place instead of failing (dry tooling only); default false.
  bool allow_missing = false;
};

// Composes, applies overrides, resolves every interpolation, checks `???`, and absolutizes paths.
// The result has no `defaults` key. Its scalars are typed as the reference types them (YAML 1.1:
// `yes` is true, `0755` is 493): strings carry tag "!", other scalars tag "?" in canonical form
// (`true`, `493`, `1.0e-05`), so ToYaml and ParseYaml (yaml_io.h) round-trip the types.
absl::StatusOr<YAML::Node> Compose(const ComposeRequest& request);

// The packaged configs dir: $EVALD_CONFIGS_DIR, else <exe dir>/../share/evald/configs when it
// exists, else the source tree's configs/ (compiled in).
std::string PackagedConfigDir();

}  // namespace evald::config
