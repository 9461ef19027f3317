#include "executors/local/run_script.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/shell.h"
#include "core/status_macros.h"
#include "executors/job_spec_check.h"
#include "executors/local/local_config.h"
#include "yaml-cpp/yaml.h"

namespace evald::executors {
namespace {

// Writes the current UTC time (ISO 8601) and an optional word as one line, with bash's own
// printf: a `$(date ...)` costs a fork and an exec each (about 8 ms of CPU on a small VM), and a
// job start's prologue ran several of them while evald served other calls.
std::string StampLine(absl::string_view file, absl::string_view word = "") {
  return absl::StrCat("TZ=UTC0 printf '%(%Y-%m-%dT%H:%M:%SZ)T", word.empty() ? "" : " %s",
                      "\\n' -1", word.empty() ? "" : absl::StrCat(" ", word), " > ", file, "\n");
}

std::string ContainerName(const JobSpec& spec) {
  std::string name = absl::StrCat("evald-", spec.job_id, "-", spec.task);
  for (char& c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-') {
      c = '-';
    }
  }
  return name;
}

// Every value of the spec that run.sh shows, in the words of the error.
absl::Status CheckSpec(const JobSpec& spec, const RunScriptOptions& options) {
  EVALD_RETURN_IF_ERROR(CheckJobSpecForScript(spec));
  const std::pair<const char*, const std::string*> fields[] = {
      {"execution section", &spec.execution_yaml},
      {"runner_path", &options.runner_path},
      {"container runtime", &options.runtime_name}};
  for (const auto& [what, value] : fields) {
    EVALD_RETURN_IF_ERROR(CheckShellValue(*value, what));
  }
  // Run as a command: a builtin-looking or assignment-looking word would not run the runtime.
  const std::string& runtime = options.runtime_name;
  bool plain = !runtime.empty() && absl::ascii_isalnum(static_cast<unsigned char>(runtime[0]));
  for (char c : runtime) {
    plain = plain && (absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
                      absl::string_view("_.+-").find(c) != absl::string_view::npos);
  }
  if (!spec.native && !plain) {
    return absl::InvalidArgumentError(
        absl::StrCat("container runtime '", absl::CHexEscape(runtime),
                     "' is not a plain program name ([A-Za-z0-9][A-Za-z0-9_.+-]*)"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<RenderedJob> RenderRunScript(const JobSpec& spec, const RunScriptOptions& options) {
  EVALD_RETURN_IF_ERROR(CheckSpec(spec, options));
  RenderedJob out;
  std::string s;
  std::vector<std::string> names;
  for (const auto& [dst, src] : spec.env_vars) names.push_back(dst);
  // Comments show quoted words too: a quoted word never holds a newline that would end them.
  absl::StrAppend(
      &s, "#!/usr/bin/env bash\n# evald job ", ShellQuote(spec.job_id), " task ",
      ShellQuote(spec.task), "\n", "# Rerun by hand: bash ", ShellQuote(spec.task_dir + "/run.sh"),
      names.empty() ? "" : absl::StrCat(" (export ", absl::StrJoin(names, ", "), " first)"), "\n");
  absl::StrAppend(&s, "set -u\ntask_dir=", ShellQuote(spec.task_dir), "\n",
                  // Tests first, so a start (evald made the dirs) runs no external command.
                  "[ -d \"$task_dir/logs\" ] && [ -d \"$task_dir/artifacts\" ] || "
                  "mkdir -p \"$task_dir/logs\" \"$task_dir/artifacts\"\n",
                  "for f in \"$task_dir/logs/stage.exit\" \"$task_dir/logs/stage.running\"; do\n",
                  "  if [ -e \"$f\" ] || [ -L \"$f\" ]; then rm -f \"$f\"; fi\n", "done\n",
                  StampLine("\"$task_dir/logs/stage.pre-start\""));
  std::string stop_trap;
  if (spec.native) {
    out.plan = spec.plan_yaml;
    absl::StrAppend(&s, StampLine("\"$task_dir/logs/stage.running\""),
                    ShellQuote(options.runner_path), " --plan \"$task_dir/plan.yaml\"",
                    " >>\"$task_dir/logs/stdout.log\" 2>>\"$task_dir/logs/stderr.log\" &\n");
    stop_trap = "kill -TERM \"$child\" 2>/dev/null";
  } else {
    const std::string runtime = ShellQuote(options.runtime_name);
    const std::string name = ShellQuote(ContainerName(spec));
    absl::StrAppend(&s, "command -v ", runtime, " >/dev/null 2>&1 || { echo ",
                    ShellQuote(options.runtime_name + " not found"), " >&2; code=127; ",
                    StampLine("\"$task_dir/logs/stage.exit\"", "\"$code\""), "exit $code; }\n");
    absl::StrAppend(&s, StampLine("\"$task_dir/logs/stage.running\""));
    std::string env_flags;
    for (const auto& [dst, src] : spec.env_vars) absl::StrAppend(&env_flags, " -e ", dst);
    // The container command is shell text for the container's bash, by design: one quoted word
    // here, so nothing in it runs on this host.
    std::string inner = absl::StrCat(
        spec.container_command,
        " ; exit_code=$?; chmod 777 -R /results; if [ \"$exit_code\" -ne 0 ]; then echo \"The "
        "evaluation container failed with exit code $exit_code\" >&2; exit \"$exit_code\"; fi; "
        "echo \"Container completed successfully\" >&2; exit 0;");
    EVALD_ASSIGN_OR_RETURN(LocalConfig config, ParseLocalConfig(spec.execution_yaml));
    std::string extra_words;
    for (const std::string& word : config.extra_docker_args) {
      absl::StrAppend(&extra_words, " ", ShellQuote(word));
    }
    absl::StrAppend(&s, runtime, " run --rm --shm-size=100g --name ", name, extra_words,
                    " --volume \"$task_dir/artifacts\":/results", env_flags, " ",
                    ShellQuote(spec.image), " bash -c ", ShellQuote(inner),
                    " >>\"$task_dir/logs/stdout.log\" 2>>\"$task_dir/logs/stderr.log\" &\n");
    // `stop` runs in a session of its own: evald SIGKILLs this script's process group when the
    // grace period ends, which can be before the runtime's own stop timeout (10 s), and a killed
    // `stop` (like a killed `run` client) would leave the container running.
    stop_trap = absl::StrCat("setsid ", runtime, " stop ", name, " >/dev/null 2>&1");
  }
  absl::StrAppend(&s, "child=$!\n", "trap ", ShellQuote(stop_trap), " TERM INT\n",
                  "wait \"$child\"; code=$?\n",
                  "# wait returns early when a trapped signal arrives: wait for the real code.\n",
                  "while kill -0 \"$child\" 2>/dev/null; do wait \"$child\"; code=$?; done\n",
                  StampLine("\"$task_dir/logs/stage.exit.tmp\"", "\"$code\""),
                  "mv -f \"$task_dir/logs/stage.exit.tmp\" \"$task_dir/logs/stage.exit\"\n",
                  "exit \"$code\"\n");
  out.script = std::move(s);
  return out;
}

}  // namespace evald::executors
