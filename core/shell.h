// File: shell.h
//
// The one place that turns values into bash text. Everything an executor writes into a generated
// script or a `bash -c` command line (task names, ids, paths, model ids, images, mounts, env var
// names, comments included) is a ShellQuote'd word, or is refused first by CheckShellValue /
// CheckEnvName. A quoted word is always one line, so it is also safe inside a `# ...` comment.
//
// Callers: the local executor's run.sh (executors/local/run_script.cc), the deployment launch
// rendering (executors/local/local_launch.cc) and the eval-factory command
// (core/config/job_plan.cc).
//
//   EVALD_RETURN_IF_ERROR(CheckShellValue(spec.task, "task name"));
//   EVALD_RETURN_IF_ERROR(CheckEnvName(name, "env_vars name"));
//   absl::StrAppend(&script, "# task ", ShellQuote(spec.task), "\n");
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace evald {

// `word` as one bash word with exactly its bytes as value:
//  * unchanged when made of [A-Za-z0-9_-./:=@%+,] only, is not empty, and is no `NAME=...`
//    assignment (which bash would not run as a command);
//  * '...' ('it'\''s') when it holds no control character;
//  * otherwise ANSI-C $'...', with \n, \t, \r, \\, \' and \xNN for every other byte outside
//    printable ASCII, so the result never spans lines.
// For bash (not POSIX sh). A NUL would end the value early: refuse it with CheckShellValue.
std::string ShellQuote(absl::string_view word);

// InvalidArgument "<what> contains a NUL byte, which a shell script cannot carry" when `value`
// has one; OK otherwise (any other byte is quotable).
absl::Status CheckShellValue(absl::string_view value, absl::string_view what);

// True for a portable environment variable name: [A-Za-z_][A-Za-z0-9_]*.
bool IsEnvName(absl::string_view name);

// InvalidArgument "<what>: '<name>' is not a valid environment variable name
// ([A-Za-z_][A-Za-z0-9_]*)" unless IsEnvName(name). The name is shown escaped.
absl::Status CheckEnvName(absl::string_view name, absl::string_view what);

}  // namespace evald
