// File: run_script.h
//
// The local executor's job script, run.sh, as text (docs/design/job-contract.md): it writes the
// stage files and runs evalrun (native tasks) or the harness container (docker/podman). Pure: the
// caller says which runner and which container runtime to name. Every value from the job spec
// reaches the script as a ShellQuote'd word (core/shell.h), comments included; NUL bytes, env
// var names outside [A-Za-z_][A-Za-z0-9_]* and unparsable execution.extra_docker_args are refused
// with InvalidArgument.
//
// Callers: LocalExecutor::Render/Start, and tests/fuzz/script_fuzz.cc.
//
//   EVALD_ASSIGN_OR_RETURN(RenderedJob job,
//                          RenderRunScript(spec, {.runner_path = "/opt/evald/bin/evalrun"}));
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "executors/executor.h"
#include "executors/local/local_config.h"

namespace evald::executors {

struct RunScriptOptions {
  std::string runner_path;              // native tasks: the evalrun binary
  std::string runtime_name = "docker";  // container tasks: the runtime command run.sh calls
};

absl::StatusOr<RenderedJob> RenderRunScript(const JobSpec& spec, const RunScriptOptions& options);


}  // namespace evald::executors
