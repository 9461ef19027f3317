#include "executors/slurm/run_sub.h"

#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/shell.h"
#include "core/status_macros.h"

namespace evald::executors {
namespace {

constexpr char kNow[] = "$(date -u +%Y-%m-%dT%H:%M:%SZ)";

// Values that reach an #SBATCH line or a pyxis option list: no control characters (a newline would
// end the comment for bash) and no backslash (sbatch would read it as an escape, bash would not).
absl::Status CheckLineValue(absl::string_view value, absl::string_view what) {
  for (char c : value) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f || c == '\\') {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " '", absl::CHexEscape(value),
                       "' holds a control character or a backslash, which run.sub cannot carry "
                       "on an #SBATCH line"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckSpec(const JobSpec& spec, const RunSubOptions& options) {
  const std::pair<const char*, const std::string*> fields[] = {
      {"job id", &spec.job_id},
      {"task name", &spec.task},
      {"task directory", &spec.task_dir},
      {"task image", &spec.image},
      {"container command", &spec.container_command},
      {"runner_path", &options.runner_path}};
  for (const auto& [what, value] : fields) {
    EVALD_RETURN_IF_ERROR(CheckShellValue(*value, what));
  }
  EVALD_RETURN_IF_ERROR(CheckLineValue(spec.task_dir, "task directory"));
  for (const auto& [dst, src] : spec.env_vars) {
    EVALD_RETURN_IF_ERROR(
        CheckEnvName(dst, absl::StrCat("task '", absl::CHexEscape(spec.task), "': env_vars")));
  }
  if (!spec.native) {
    EVALD_RETURN_IF_ERROR(CheckLineValue(spec.image, "task image"));
    if (spec.task_dir.find_first_of(",:") != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "task directory '", absl::CHexEscape(spec.task_dir),
          "' holds ',' or ':', which pyxis --container-mounts cannot carry; choose another "
          "execution.output_dir"));
    }
  }
  return absl::OkStatus();
}

void Sbatch(std::string& s, absl::string_view flag, absl::string_view value) {
  absl::StrAppend(&s, "#SBATCH --", flag);
  if (!value.empty()) absl::StrAppend(&s, " ", ShellQuote(value));
  s += "\n";
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
  EVALD_RETURN_IF_ERROR(CheckLineValue(comment, "sbatch comment"));
  Sbatch(s, "comment", comment);

  // Comments show quoted words too: a quoted word never holds a newline that would end them.
  absl::StrAppend(&s, "\n# evald job ", ShellQuote(spec.job_id), " task ", ShellQuote(spec.task),
                  " attempt ", spec.attempt, "\n");
  absl::StrAppend(&s, "set -u\ntask_dir=", ShellQuote(spec.task_dir), "\n",
                  "mkdir -p \"$task_dir/logs\" \"$task_dir/artifacts\"\n",
                  "rm -f \"$task_dir/logs/stage.exit\" \"$task_dir/logs/stage.running\"\n",
                  "echo \"${SLURM_JOB_ID:-}\" >> \"$task_dir/.slurm_job_id.list\"\n",
                  "finish() {\n  echo \"", kNow, " $1\" > \"$task_dir/logs/stage.exit.tmp\"\n",
                  "  mv -f \"$task_dir/logs/stage.exit.tmp\" \"$task_dir/logs/stage.exit\"\n",
                  "  exit \"$1\"\n}\n");

  std::vector<std::string> env_names;
  for (const auto& [dst, src] : spec.env_vars) env_names.push_back(dst);
  if (!env_names.empty()) {
    absl::StrAppend(&s, "# ", absl::StrJoin(env_names, ", "),
                    ": from a 0600 file evald writes at submission, never from this script.\n",
                    "set -a; source \"$task_dir/", kSlurmSecretsFile, "\" || { echo ",
                    ShellQuote(absl::StrCat("cannot read ", kSlurmSecretsFile, " next to run.sub")),
                    " >&2; finish 1; }; set +a\n");
  }
  for (const auto& [name, value] : config.evaluation_env) {
    // Names were checked by ParseSlurmConfig; values are literal config, not secrets.
    absl::StrAppend(&s, "export ", name, "=", ShellQuote(value), "\n");
    env_names.push_back(name);
  }

  // TODO(issue 10): deployment inside the job (the server as an `srun --overlap` step and a
  // health-wait loop with a timeout); SlurmExecutor::deployments() is nullptr until then, so
  // Submit refuses SLURM configs with a deployment.
  absl::StrAppend(&s, "echo \"", kNow, "\" > \"$task_dir/logs/stage.running\"\n");
  // One copy of the evaluation whatever ntasks-per-node says; --overlap lets it share the
  // allocation with a server step.
  const std::string redirect =
      " >>\"$task_dir/logs/stdout.log\" 2>>\"$task_dir/logs/stderr.log\"\n";
  if (spec.native) {
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
  absl::StrAppend(&s, "finish \"$?\"\n");
  out.script = std::move(s);
  return out;
}

}  // namespace evald::executors
