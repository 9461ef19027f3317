#include "executors/slurm/slurm_config.h"

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/shell.h"
#include "core/status_macros.h"
#include "yaml-cpp/yaml.h"

namespace evald::executors {

std::vector<config::SchemaRule> SlurmExecutionKeys() {
  using config::SchemaKey;
  using K = config::SchemaKinds;
  return {
      SchemaKey("execution.hostname", K::kStr),
      SchemaKey("execution.username", K::kStr | K::kNum),
      // evald's own: an ssh client config to use instead of ~/.ssh/config (port, key, known
      // hosts of the login node), e.g. the test cluster's from `scripts/slurm-local env`.
      SchemaKey("execution.ssh_config_file", K::kStr | K::kNull),
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
      SchemaKey("execution.max_resumes", K::kInt | K::kNull).Min(0),
      SchemaKey("execution.poll_interval", K::kNum | K::kNull).Above(0),
      SchemaKey("execution.subproject", K::kStr | K::kNull),
      SchemaKey("execution.sbatch_comment", K::kStr | K::kNull),
      SchemaKey("execution.sbatch_extra_flags", K::kMap | K::kNull).Open(),
      // evald's own: where native tasks find evalrun on the compute node (one of the three).
      SchemaKey("execution.runner", K::kMap | K::kNull),
      SchemaKey("execution.runner.path", K::kStr | K::kNull),
      SchemaKey("execution.runner.image", K::kStr | K::kNull),
      SchemaKey("execution.runner.upload", K::kBool | K::kNull),
      SchemaKey("execution.deployment", K::kMap | K::kNull).Open(),
      SchemaKey("execution.proxy", K::kMap | K::kNull).Open(),
      SchemaKey("execution.mounts.auxiliary", K::kMap | K::kNull).Open(),
      SchemaKey("execution.auto_export.launcher_install_cmd", K::kStr | K::kNull),
      SchemaKey("execution.auto_export.export_image", K::kStr | K::kNull),
      SchemaKey("execution.auto_export.export_mounts", K::kAny),
  };
}

namespace {

absl::Status Bad(absl::string_view key, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("execution.", key, ": ", why));
}

bool Present(const YAML::Node& n) { return n && !n.IsNull(); }

// true/false in any spelling YAML accepts; nullopt for other scalars.
std::optional<bool> AsBool(const YAML::Node& n) {
  bool value = false;
  if (!n.IsScalar() || !YAML::convert<bool>::decode(n, value)) return std::nullopt;
  return value;
}

// A value that ends up on an `#SBATCH` line or in an srun option, named by its key.
absl::Status CheckLineValue(absl::string_view key, absl::string_view value) {
  return CheckSbatchLineValue(value, absl::StrCat("execution.", key, ":"));
}

absl::StatusOr<std::string> Str(const YAML::Node& execution, absl::string_view key,
                                std::string fallback) {
  YAML::Node n = execution[std::string(key)];
  if (!Present(n)) return fallback;
  if (!n.IsScalar()) return Bad(key, "expected a string");
  EVALD_RETURN_IF_ERROR(CheckLineValue(key, n.Scalar()));
  return n.Scalar();
}

absl::StatusOr<std::optional<int>> OptInt(const YAML::Node& execution, absl::string_view key,
                                          int min) {
  YAML::Node n = execution[std::string(key)];
  if (!Present(n)) return std::optional<int>();
  int value = 0;
  if (!n.IsScalar() || !absl::SimpleAtoi(n.Scalar(), &value) || value < min) {
    return Bad(key,
               absl::StrCat("expected an integer >= ", min, ", got '",
                            absl::CHexEscape(n.IsScalar() ? n.Scalar() : "<not a scalar>"), "'"));
  }
  return value;
}

// SLURM time formats: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS.
absl::Status CheckTime(absl::string_view key, absl::string_view value) {
  bool ok = !value.empty();
  for (char c : value)
    ok = ok && (absl::ascii_isdigit(static_cast<unsigned char>(c)) || c == ':' || c == '-');
  if (!ok) {
    return Bad(key, absl::StrCat("'", absl::CHexEscape(value),
                                 "' is not a SLURM time (minutes, HH:MM:SS or D-HH:MM:SS)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::map<std::string, std::string>> StrMap(const YAML::Node& node,
                                                          absl::string_view key) {
  std::map<std::string, std::string> out;
  if (!Present(node)) return out;
  if (!node.IsMap()) return Bad(key, "expected a mapping");
  for (const auto& kv : node) {
    if (!kv.first.IsScalar() || !kv.second.IsScalar()) {
      return Bad(key, "expected scalar keys and values");
    }
    out[kv.first.Scalar()] = kv.second.Scalar();
  }
  return out;
}

absl::Status ParseExtraFlags(const YAML::Node& execution, SlurmConfig& config) {
  YAML::Node flags = execution["sbatch_extra_flags"];
  if (!flags) {
    config.sbatch_extra_flags = {{"exclusive", ""}};  // the reference's default
    return absl::OkStatus();
  }
  if (flags.IsNull()) return absl::OkStatus();
  if (!flags.IsMap()) return Bad("sbatch_extra_flags", "expected a mapping of flag: value");
  for (const auto& kv : flags) {
    const std::string name = kv.first.Scalar();
    const std::string key = absl::StrCat("sbatch_extra_flags.", name);
    bool ok = !name.empty() && absl::ascii_isalnum(static_cast<unsigned char>(name[0]));
    for (char c : name)
      ok = ok && (absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_');
    if (!ok) {
      return Bad(key,
                 "a flag name is letters, digits, '-' and '_' (written without the leading --)");
    }
    if (!Present(kv.second)) continue;
    if (!kv.second.IsScalar()) return Bad(key, "expected a scalar value or true");
    const std::optional<bool> b = AsBool(kv.second);
    if (b.has_value() && !*b) continue;
    const std::string& value = kv.second.Scalar();
    EVALD_RETURN_IF_ERROR(CheckLineValue(key, value));
    config.sbatch_extra_flags.emplace_back(name, b.has_value() ? "" : value);
  }
  return absl::OkStatus();
}

// execution.runner: {path: /abs/evalrun}, {image: <image>} or {upload: true}; unset = upload for
// a remote cluster, evald's own runner path for a cluster on this machine.
absl::Status ParseRunner(const YAML::Node& execution, SlurmConfig& config) {
  using Kind = SlurmRunner::Kind;
  config.runner = {.kind = config.hostname.empty() ? Kind::kOwn : Kind::kUpload};
  YAML::Node n = execution["runner"];
  if (!Present(n)) return absl::OkStatus();
  constexpr char kForms[] =
      "expected {path: /abs/path/evalrun}, {image: <container image>} or {upload: true}";
  if (!n.IsMap()) {
    return Bad("runner",
               absl::StrCat(kForms, ", got '",
                            absl::CHexEscape(n.IsScalar() ? n.Scalar() : "<a list>"), "'"));
  }
  for (const auto& kv : n) {
    const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : "?";
    if (key != "path" && key != "image" && key != "upload") {
      return Bad(absl::StrCat("runner.", absl::CHexEscape(key)),
                 absl::StrCat("unknown key; ", kForms));
    }
  }
  std::optional<bool> upload;
  if (YAML::Node u = n["upload"]; Present(u)) {
    upload = AsBool(u);
    if (!upload) return Bad("runner.upload", "expected true or false");
  }
  const bool has_path = Present(n["path"]), has_image = Present(n["image"]);
  if (has_path && has_image) {
    return Bad("runner",
               "give path or image, not both (path runs evalrun on the node, image runs it in a "
               "container)");
  }
  if ((has_path || has_image) && upload.value_or(false)) {
    return Bad("runner", absl::StrCat("give one of path, image or upload: true, not ",
                                      has_path ? "path" : "image", " and upload"));
  }
  if (has_path) {
    YAML::Node p = n["path"];
    if (!p.IsScalar()) return Bad("runner.path", "expected a string");
    const std::string& path = p.Scalar();
    EVALD_RETURN_IF_ERROR(CheckShellValue(path, "execution.runner.path"));
    EVALD_RETURN_IF_ERROR(CheckLineValue("runner.path", path));
    if (path.empty() || path[0] != '/') {
      return Bad("runner.path", absl::StrCat("'", absl::CHexEscape(path),
                                             "' is not an absolute path (evalrun's path on the "
                                             "cluster's compute nodes)"));
    }
    config.runner = {.kind = Kind::kPath, .value = path};
    return absl::OkStatus();
  }
  if (has_image) {
    YAML::Node i = n["image"];
    if (!i.IsScalar()) return Bad("runner.image", "expected a string");
    const std::string& image = i.Scalar();
    EVALD_RETURN_IF_ERROR(CheckShellValue(image, "execution.runner.image"));
    EVALD_RETURN_IF_ERROR(CheckLineValue("runner.image", image));
    if (image.empty()) return Bad("runner.image", "must not be empty");
    config.runner = {.kind = Kind::kImage, .value = image};
    return absl::OkStatus();
  }
  if (upload.value_or(false)) {
    config.runner = {.kind = Kind::kUpload};
    return absl::OkStatus();
  }
  return Bad("runner",
             absl::StrCat(kForms, upload ? " (upload: false needs a path or an image)" : ""));
}

}  // namespace

absl::Status CheckSbatchLineValue(absl::string_view value, absl::string_view what) {
  for (char c : value) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f || c == '\\') {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " '", absl::CHexEscape(value),
                       "' holds a control character or a backslash, which an #SBATCH line "
                       "cannot carry"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckPyxisMountPath(absl::string_view path, absl::string_view what) {
  EVALD_RETURN_IF_ERROR(CheckSbatchLineValue(path, what));
  if (path.empty() || path.find_first_of(",:") != absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " '", absl::CHexEscape(path),
                     "': a mount path must be non-empty and hold no ',' or ':' (pyxis "
                     "--container-mounts syntax)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<SlurmConfig> ParseSlurmConfig(const std::string& execution_yaml) {
  SlurmConfig config;
  YAML::Node execution;
  try {
    execution = YAML::Load(execution_yaml);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("execution: not readable YAML: ", e.what()));
  }
  if (!execution.IsMap()) return absl::InvalidArgumentError("execution: expected a mapping");
  EVALD_ASSIGN_OR_RETURN(config.hostname, Str(execution, "hostname", ""));
  EVALD_ASSIGN_OR_RETURN(config.username, Str(execution, "username", ""));
  EVALD_ASSIGN_OR_RETURN(config.ssh_config_file, Str(execution, "ssh_config_file", ""));
  for (const auto& [key, value] :
       {std::pair{"hostname", &config.hostname}, std::pair{"username", &config.username}}) {
    // ssh would read a leading '-' as an option.
    if (!value->empty() && (*value)[0] == '-') return Bad(key, "must not start with '-'");
  }
  EVALD_ASSIGN_OR_RETURN(config.account, Str(execution, "account", ""));
  if (config.account.empty())
    return Bad("account", "missing; expected the SLURM account to charge");
  EVALD_ASSIGN_OR_RETURN(config.partition, Str(execution, "partition", ""));
  EVALD_ASSIGN_OR_RETURN(std::optional<int> nodes, OptInt(execution, "num_nodes", 1));
  config.num_nodes = nodes.value_or(1);
  EVALD_ASSIGN_OR_RETURN(config.ntasks_per_node, OptInt(execution, "ntasks_per_node", 1));
  EVALD_ASSIGN_OR_RETURN(config.gpus_per_node, OptInt(execution, "gpus_per_node", 1));
  if (Present(execution["gres"])) {
    EVALD_ASSIGN_OR_RETURN(config.gres, Str(execution, "gres", ""));
  }
  EVALD_ASSIGN_OR_RETURN(config.walltime, Str(execution, "walltime", "01:00:00"));
  EVALD_RETURN_IF_ERROR(CheckTime("walltime", config.walltime));
  if (Present(execution["max_walltime"])) {
    EVALD_ASSIGN_OR_RETURN(config.max_walltime, Str(execution, "max_walltime", ""));
    EVALD_RETURN_IF_ERROR(CheckTime("max_walltime", *config.max_walltime));
  }
  EVALD_ASSIGN_OR_RETURN(std::optional<int> resumes, OptInt(execution, "max_resumes", 0));
  config.max_resumes = resumes.value_or(0);
  if (YAML::Node p = execution["poll_interval"]; Present(p)) {
    if (!p.IsScalar() || !absl::SimpleAtod(p.Scalar(), &config.poll_interval_s) ||
        !(config.poll_interval_s > 0)) {
      return Bad("poll_interval", "expected a number of seconds > 0");
    }
  }
  EVALD_ASSIGN_OR_RETURN(config.subproject, Str(execution, "subproject", ""));
  EVALD_ASSIGN_OR_RETURN(config.sbatch_comment, Str(execution, "sbatch_comment", ""));
  EVALD_RETURN_IF_ERROR(ParseExtraFlags(execution, config));
  EVALD_RETURN_IF_ERROR(ParseRunner(execution, config));
  if (YAML::Node o = execution["output_dir"]; Present(o) && o.IsScalar()) {
    config.output_dir = o.Scalar();
  }

  YAML::Node env = execution["env_vars"];
  if (Present(env) && env.IsMap()) {
    EVALD_ASSIGN_OR_RETURN(config.evaluation_env, StrMap(env["evaluation"], "env_vars.evaluation"));
    for (const auto& [name, value] : config.evaluation_env) {
      EVALD_RETURN_IF_ERROR(CheckEnvName(name, "execution.env_vars.evaluation"));
      EVALD_RETURN_IF_ERROR(CheckShellValue(value, "execution.env_vars.evaluation"));
      if (value.rfind("$host:", 0) == 0) {
        return Bad(absl::StrCat("env_vars.evaluation.", name),
                   "$host: values are not supported for SLURM evaluation env yet; name the "
                   "secret in the task's env_vars instead");
      }
    }
  }
  YAML::Node mounts = execution["mounts"];
  if (Present(mounts) && mounts.IsMap()) {
    EVALD_ASSIGN_OR_RETURN(config.evaluation_mounts,
                           StrMap(mounts["evaluation"], "mounts.evaluation"));
    for (const auto& [src, dst] : config.evaluation_mounts) {
      for (const std::string* p : {&src, &dst}) {
        EVALD_RETURN_IF_ERROR(CheckPyxisMountPath(*p, "execution.mounts.evaluation:"));
      }
    }
    if (YAML::Node home = mounts["mount_home"]; Present(home)) {
      std::optional<bool> b = AsBool(home);
      if (!b) return Bad("mounts.mount_home", "expected true or false");
      config.mount_home = *b;
    }
  }
  return config;
}

}  // namespace evald::executors
