#include "executors/slurm/run_sub.h"

#include <map>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/shell.h"
#include "core/status_macros.h"
#include "executors/job_spec_check.h"

namespace evald::executors {
namespace {

constexpr char kNow[] = "$(date -u +%Y-%m-%dT%H:%M:%SZ)";

absl::Status CheckSpec(const JobSpec& spec, const RunSubOptions& options) {
  EVALD_RETURN_IF_ERROR(CheckJobSpecForScript(spec));
  EVALD_RETURN_IF_ERROR(CheckShellValue(options.runner_path, "runner_path"));
  EVALD_RETURN_IF_ERROR(CheckSbatchLineValue(spec.task_dir, "task directory"));
  if (spec.native && !options.runner_image.empty()) {
    EVALD_RETURN_IF_ERROR(CheckSbatchLineValue(options.runner_image, "execution.runner.image:"));
  }
  if (!spec.native) EVALD_RETURN_IF_ERROR(CheckSbatchLineValue(spec.image, "task image"));
  if (!spec.native || !options.runner_image.empty()) {
    if (spec.task_dir.find_first_of(",:") != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "task directory '", absl::CHexEscape(spec.task_dir),
          "' holds ',' or ':', which pyxis --container-mounts cannot carry; choose another "
          "execution.output_dir"));
    }
  }
  return absl::OkStatus();
}

// Sources the 0600 secrets file evald writes next to run.sub at submission.
void AppendSourceSecrets(std::string& s) {
  absl::StrAppend(&s, "set -a; source \"$task_dir/", kSlurmSecretsFile, "\" || fail ",
                  ShellQuote(absl::StrCat("cannot read ", kSlurmSecretsFile, " next to run.sub")),
                  "; set +a\n");
}

// The server and the evaluation share the batch script's environment (the reference exports
// both sets there): a name both set must come from the same place, or one would silently get
// the other's value.
absl::Status CheckSharedEnv(const JobSpec& spec, const SlurmConfig& config,
                            const deployment::DeploymentSpec& d) {
  std::map<std::string, std::string> evaluation;  // name -> where its value comes from
  for (const auto& [name, host_var] : spec.env_vars) evaluation[name] = "$host:" + host_var;
  for (const auto& [name, value] : config.evaluation_env) evaluation[name] = "=" + value;
  auto check = [&](const std::string& name, const std::string& source) -> absl::Status {
    auto it = evaluation.find(name);
    if (it == evaluation.end() || it->second == source) return absl::OkStatus();
    auto what = [](const std::string& src) {
      return src[0] == '$' ? absl::StrCat("from ", src.substr(6)) : std::string("a literal value");
    };
    return absl::InvalidArgumentError(absl::StrCat(
        "deployment env var ", name, " (", what(source), ") and the evaluation's ", name, " (",
        what(it->second),
        ") would be one variable in the SLURM job's environment; give both the same value or "
        "rename one"));
  };
  for (const auto& [name, host_var] : d.secret_env_vars) {
    EVALD_RETURN_IF_ERROR(check(name, "$host:" + host_var));
  }
  for (const auto& [name, value] : d.env_vars) EVALD_RETURN_IF_ERROR(check(name, "=" + value));
  return absl::OkStatus();
}

void Sbatch(std::string& s, absl::string_view flag, absl::string_view value) {
  absl::StrAppend(&s, "#SBATCH --", flag);
  if (!value.empty()) absl::StrAppend(&s, " ", ShellQuote(value));
  s += "\n";
}

// The model server as an srun step beside the evaluation (peer-launcher §3.2), then a wait for
// its health endpoint that fails the job with a message when the step dies or the readiness
// timeout passes. `secret_count` > 0 means secrets.env was sourced already.
absl::Status AppendServer(std::string& s, const deployment::DeploymentSpec& d,
                          const SlurmConfig& config, size_t secret_count) {
  if (d.port_auto) {
    return absl::InvalidArgumentError(
        "deployment.port: `auto` is not supported by the slurm executor (the server runs inside "
        "the job, and the evaluation's endpoint URL is fixed at submission); set a fixed port");
  }
  EVALD_RETURN_IF_ERROR(CheckShellValue(d.command, "deployment.command"));
  std::vector<std::string> env_names;
  for (const auto& [name, value] : d.env_vars) {
    EVALD_RETURN_IF_ERROR(CheckEnvName(name, "deployment env_vars"));
    EVALD_RETURN_IF_ERROR(CheckShellValue(value, "deployment env_vars"));
    env_names.push_back(name);
  }
  for (const auto& [server_var, host_var] : d.secret_env_vars) {
    EVALD_RETURN_IF_ERROR(CheckEnvName(server_var, "deployment env_vars"));
    env_names.push_back(server_var);
  }
  if (!d.secret_env_vars.empty() && secret_count == 0) AppendSourceSecrets(s);
  // Literal server environment; secret values came from secrets.env. Server values win over the
  // evaluation's on the same name, as they are set later.
  for (const auto& [name, value] : d.env_vars) {
    absl::StrAppend(&s, "export ", name, "=", ShellQuote(value), "\n");
  }
  std::string flags;
  if (!d.image.empty()) {
    EVALD_RETURN_IF_ERROR(CheckSbatchLineValue(d.image, "deployment.image"));
    std::vector<std::string> mounts;
    if (!d.checkpoint_path.empty()) {
      EVALD_RETURN_IF_ERROR(CheckPyxisMountPath(d.checkpoint_path, "deployment.checkpoint_path"));
      mounts.push_back(d.checkpoint_path + ":/checkpoint:ro");
    }
    if (!d.cache_path.empty()) {
      EVALD_RETURN_IF_ERROR(CheckPyxisMountPath(d.cache_path, "deployment.cache_path"));
      mounts.push_back(d.cache_path + ":/cache");
    }
    for (const auto& [src, dst] : d.mounts) {
      EVALD_RETURN_IF_ERROR(CheckPyxisMountPath(src, "execution.mounts.deployment"));
      EVALD_RETURN_IF_ERROR(CheckPyxisMountPath(dst, "execution.mounts.deployment"));
      mounts.push_back(src + ":" + dst);
    }
    absl::StrAppend(&flags, " --container-image ", ShellQuote(d.image));
    if (!mounts.empty()) {
      absl::StrAppend(&flags, " --container-mounts ", ShellQuote(absl::StrJoin(mounts, ",")));
    }
    if (!config.mount_home) absl::StrAppend(&flags, " --no-container-mount-home");
    if (!env_names.empty()) {
      absl::StrAppend(&flags, " --container-env ", absl::StrJoin(env_names, ","));
    }
  }
  const std::string health_url = deployment::HealthUrl(d, d.port);
  EVALD_RETURN_IF_ERROR(CheckShellValue(health_url, "deployment health URL"));
  // The server command is shell text by design (the reference passes it to srun as script
  // text); here it is one quoted word for the step's own bash. PMIx as the reference asks for a
  // container server (multi-GPU images use it); a bare command runs like the native evaluation
  // step, which also works on clusters without the PMIx library.
  absl::StrAppend(&s,
                  "# Model server: an srun step in this allocation, stopped when the job ends.\n",
                  d.image.empty() ? "srun" : "srun --mpi pmix", " --overlap --nodes 1 --ntasks 1",
                  flags, " --output \"$task_dir/logs/server-%A.out\" bash -c ",
                  ShellQuote(d.command), " &\n", "server_pid=$!\n",
                  "stop_server() { kill \"$server_pid\" 2>/dev/null; wait \"$server_pid\" "
                  "2>/dev/null; }\n",
                  "trap 'stop_server; finish 143' TERM INT\n");
  const int64_t timeout_s = static_cast<int64_t>(d.readiness_timeout_s + 0.999);
  if (health_url.empty()) {
    // Health checks off: give the server the configured time, as the local executor does.
    absl::StrAppend(&s, "sleep ", static_cast<int64_t>(d.no_health_wait_s + 0.999), "\n",
                    "kill -0 \"$server_pid\" 2>/dev/null || fail \"model server exited during its "
                    "start-up wait; see logs/server-${SLURM_JOB_ID:-}.out\"\n");
    return absl::OkStatus();
  }
  absl::StrAppend(
      &s, "deadline=$((SECONDS + ", timeout_s, "))\n",
      "until [ \"$(curl -s -o /dev/null -m 10 -w '%{http_code}' ", ShellQuote(health_url),
      ")\" = 200 ]; do\n",
      "  kill -0 \"$server_pid\" 2>/dev/null || fail \"model server exited before it became "
      "healthy; see logs/server-${SLURM_JOB_ID:-}.out\"\n",
      "  if [ \"$SECONDS\" -ge \"$deadline\" ]; then stop_server; fail ",
      ShellQuote(absl::StrCat("model server not healthy at ", health_url, " after ", timeout_s,
                              " s (endpoint_readiness_timeout)")),
      "; fi\n", "  sleep ", absl::StrCat(d.readiness_interval_s), "\n", "done\n");
  return absl::OkStatus();
}

}  // namespace

std::string SlurmJobName(const std::string& job_id, int attempt) {
  std::string name = absl::StrCat("evald-", job_id, "-a", attempt);
  for (char& c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-') {
      c = '-';
    }
  }
  return name;
}

absl::StatusOr<RenderedJob> RenderRunSub(const JobSpec& spec, const SlurmConfig& config,
                                         const RunSubOptions& options) {
  EVALD_RETURN_IF_ERROR(CheckSpec(spec, options));
  RenderedJob out;
  std::string s = "#!/bin/bash\n";
  // Headers in the reference's order; sbatch stops reading them at the first command.
  Sbatch(s, "time", config.walltime);
  Sbatch(s, "account", config.account);
  if (!config.partition.empty()) Sbatch(s, "partition", config.partition);
  Sbatch(s, "nodes", absl::StrCat(config.num_nodes));
  if (config.ntasks_per_node) Sbatch(s, "ntasks-per-node", absl::StrCat(*config.ntasks_per_node));
  if (config.gpus_per_node) Sbatch(s, "gpus-per-node", absl::StrCat(*config.gpus_per_node));
  if (config.gres) Sbatch(s, "gres", *config.gres);
  Sbatch(s, "job-name", SlurmJobName(spec.job_id, spec.attempt));
  for (const auto& [flag, value] : config.sbatch_extra_flags) Sbatch(s, flag, value);
  Sbatch(s, "output", spec.task_dir + "/logs/slurm-%A.out");
  Sbatch(s, "error", spec.task_dir + "/logs/slurm-%A.out");
  // evald resumes jobs itself (a new attempt, a new job): SLURM must not requeue this one.
  Sbatch(s, "no-requeue", "");
  std::string comment = absl::StrCat("evald job ", spec.job_id, " attempt ", spec.attempt);
  if (!config.sbatch_comment.empty()) absl::StrAppend(&comment, "; ", config.sbatch_comment);
  EVALD_RETURN_IF_ERROR(CheckSbatchLineValue(comment, "sbatch comment"));
  Sbatch(s, "comment", comment);

  // Comments show quoted words too: a quoted word never holds a newline that would end them.
  absl::StrAppend(&s, "\n# evald job ", ShellQuote(spec.job_id), " task ", ShellQuote(spec.task),
                  " attempt ", spec.attempt, "\n");
  absl::StrAppend(&s, "set -u\ntask_dir=", ShellQuote(spec.task_dir), "\n",
                  "mkdir -p \"$task_dir/logs\" \"$task_dir/artifacts\"\n",
                  "rm -f \"$task_dir/logs/stage.exit\" \"$task_dir/logs/stage.running\" ",
                  "\"$task_dir/", kSlurmErrorFile, "\"\n",
                  "echo \"${SLURM_JOB_ID:-}\" >> \"$task_dir/.slurm_job_id.list\"\n",
                  "finish() {\n  echo \"", kNow, " $1\" > \"$task_dir/logs/stage.exit.tmp\"\n",
                  "  mv -f \"$task_dir/logs/stage.exit.tmp\" \"$task_dir/logs/stage.exit\"\n",
                  "  exit \"$1\"\n}\n",
                  "# A failure of the job script itself: its reason goes to stderr and to ",
                  kSlurmErrorFile, ",\n# which evald shows in the job's message.\n",
                  "fail() {\n  echo \"$1\" >&2\n  printf '%s\\n' \"$1\" > \"$task_dir/",
                  kSlurmErrorFile, "\"\n  finish 1\n}\n");

  std::vector<std::string> env_names;
  for (const auto& [dst, src] : spec.env_vars) env_names.push_back(dst);
  if (!env_names.empty()) {
    absl::StrAppend(&s, "# ", absl::StrJoin(env_names, ", "),
                    ": from a 0600 file evald writes at submission, never from this script.\n");
    AppendSourceSecrets(s);
  }
  for (const auto& [name, value] : config.evaluation_env) {
    // Names were checked by ParseSlurmConfig; values are literal config, not secrets.
    absl::StrAppend(&s, "export ", name, "=", ShellQuote(value), "\n");
    env_names.push_back(name);
  }

  if (options.deployment != nullptr) {
    EVALD_RETURN_IF_ERROR(CheckSharedEnv(spec, config, *options.deployment));
    EVALD_RETURN_IF_ERROR(AppendServer(s, *options.deployment, config, spec.env_vars.size()));
  }
  absl::StrAppend(&s, "echo \"", kNow, "\" > \"$task_dir/logs/stage.running\"\n");
  // One copy of the evaluation whatever ntasks-per-node says; --overlap lets it share the
  // allocation with a server step.
  const std::string redirect =
      " >>\"$task_dir/logs/stdout.log\" 2>>\"$task_dir/logs/stderr.log\"\n";
  if (spec.native && !options.runner_image.empty()) {
    // evalrun inside a container (pyxis): the task dir at its own path, so the plan's paths
    // (outputs, response cache) are the same inside and out. No --mpi pmix: evalrun needs none.
    out.plan = spec.plan_yaml;
    std::string mounts = absl::StrCat(spec.task_dir, ":", spec.task_dir);
    for (const auto& [src, dst] : config.evaluation_mounts) {
      absl::StrAppend(&mounts, ",", src, ":", dst);
    }
    std::string flags = absl::StrCat(" --container-image ", ShellQuote(options.runner_image));
    if (!env_names.empty()) {
      absl::StrAppend(&flags, " --container-env ", absl::StrJoin(env_names, ","));
    }
    if (!config.mount_home) absl::StrAppend(&flags, " --no-container-mount-home");
    absl::StrAppend(&flags, " --container-mounts ", ShellQuote(mounts));
    absl::StrAppend(&s, "srun --overlap --nodes 1 --ntasks 1", flags, " ",
                    ShellQuote(options.runner_path), " --plan \"$task_dir/plan.yaml\"", redirect);
  } else if (spec.native) {
    out.plan = spec.plan_yaml;
    absl::StrAppend(&s, "srun --overlap --nodes 1 --ntasks 1 ", ShellQuote(options.runner_path),
                    " --plan \"$task_dir/plan.yaml\"", redirect);
  } else {
    std::string mounts = spec.task_dir + "/artifacts:/results";
    for (const auto& [src, dst] : config.evaluation_mounts) {
      absl::StrAppend(&mounts, ",", src, ":", dst);
    }
    std::string flags = absl::StrCat(" --container-image ", ShellQuote(spec.image));
    if (!env_names.empty()) {
      absl::StrAppend(&flags, " --container-env ", absl::StrJoin(env_names, ","));
    }
    if (!config.mount_home) absl::StrAppend(&flags, " --no-container-mount-home");
    absl::StrAppend(&flags, " --container-mounts ", ShellQuote(mounts));
    // The container command is shell text for the container's bash, by design: one quoted word
    // here, so nothing in it runs on the node outside the container.
    const std::string inner = absl::StrCat(
        spec.container_command,
        " ; exit_code=$?; if [ \"$exit_code\" -ne 0 ]; then echo \"The evaluation container "
        "failed with exit code $exit_code\" >&2; exit \"$exit_code\"; fi; echo \"Container "
        "completed successfully\" >&2; exit 0;");
    absl::StrAppend(&s, "srun --mpi pmix --overlap --nodes 1 --ntasks 1", flags, " bash -c ",
                    ShellQuote(inner), redirect);
  }
  if (options.deployment != nullptr) {
    absl::StrAppend(&s, "code=$?\nstop_server\nfinish \"$code\"\n");
  } else {
    absl::StrAppend(&s, "finish \"$?\"\n");
  }
  out.script = std::move(s);
  return out;
}

}  // namespace evald::executors
