#include "executors/local/local_launch.h"

#include <cmath>
#include <set>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/status_macros.h"

namespace evald::deployment {
namespace {

constexpr absl::string_view kCheckpointDir = "/checkpoint";

bool IsAssignment(absl::string_view word) {
  const size_t eq = word.find('=');
  if (eq == 0 || eq == absl::string_view::npos) return false;
  for (size_t i = 0; i < eq; ++i) {
    const char c = word[i];
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  }
  return !absl::ascii_isdigit(static_cast<unsigned char>(word[0]));
}

std::vector<std::string> Words(absl::string_view command) {
  return absl::StrSplit(command, absl::ByAnyChar(" \t\n"), absl::SkipEmpty());
}

// The program a command line runs: its first word after leading VAR=value assignments and
// `exec`, without surrounding quotes.
std::string ProgramOf(const std::vector<std::string>& words, size_t* index) {
  size_t i = 0;
  while (i < words.size() && (IsAssignment(words[i]) || words[i] == "exec")) ++i;
  *index = i;
  if (i == words.size()) return "";
  std::string program = words[i];
  if (program.size() >= 2 && (program.front() == '\'' || program.front() == '"') &&
      program.back() == program.front()) {
    program = program.substr(1, program.size() - 2);
  }
  return program;
}

// Builtins that start a compound command line (`cd /srv && ./server ...`): bash has them, so
// the line can run on the host as far as its first word goes.
bool IsShellBuiltin(absl::string_view word) {
  for (absl::string_view builtin : {"cd", "export", "source", ".", "set", "ulimit", "umask"}) {
    if (word == builtin) return true;
  }
  return false;
}

// `python3 -m sglang.launch_server ...`: the interpreter exists everywhere, the module may not.
bool IsPythonModuleLaunch(const std::vector<std::string>& words, size_t program_index,
                          const std::string& program) {
  const absl::string_view base =
      absl::string_view(program).substr(program.find_last_of('/') + 1);  // npos + 1 == 0
  if (!absl::StartsWith(base, "python")) return false;
  for (char c : base.substr(6)) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c)) && c != '.') return false;
  }
  for (size_t i = program_index + 1; i < words.size() && absl::StartsWith(words[i], "-"); ++i) {
    if (words[i] == "-m") return true;
  }
  return false;
}

// Calls fn(pos) for every `/checkpoint` that stands as a path of its own: preceded by the start,
// whitespace, '=' or a quote, followed by the end, whitespace, '/' or a quote.
template <typename Fn>
void ForEachCheckpointWord(absl::string_view command, Fn fn) {
  size_t pos = 0;
  while ((pos = command.find(kCheckpointDir, pos)) != absl::string_view::npos) {
    const size_t end = pos + kCheckpointDir.size();
    const bool start_ok = pos == 0 || absl::string_view(" \t\n='\"").find(command[pos - 1]) !=
                                          absl::string_view::npos;
    const bool end_ok =
        end == command.size() ||
        absl::string_view(" \t\n/'\"").find(command[end]) != absl::string_view::npos;
    if (start_ok && end_ok) fn(pos);
    pos = end;
  }
}

bool UsesCheckpoint(absl::string_view command) {
  bool uses = false;
  ForEachCheckpointWord(command, [&](size_t) { uses = true; });
  return uses;
}

std::string ReplaceCheckpoint(absl::string_view command, const std::string& path) {
  std::string out;
  size_t copied = 0;
  const std::string replacement = ShellQuote(path);
  ForEachCheckpointWord(command, [&](size_t pos) {
    absl::StrAppend(&out, command.substr(copied, pos - copied), replacement);
    copied = pos + kCheckpointDir.size();
  });
  absl::StrAppend(&out, command.substr(copied));
  return out;
}

// True when `exec` can prefix the command: one simple command, no shell lists or pipelines.
bool IsSimpleCommand(const std::string& command, const std::vector<std::string>& words) {
  if (words.empty() || IsAssignment(words[0]) || words[0] == "exec") return false;
  return command.find_first_of(";&|()`\n") == std::string::npos;
}

bool ValidContainerName(absl::string_view name) {
  if (name.empty() || !absl::ascii_isalnum(static_cast<unsigned char>(name[0]))) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) &&
        absl::string_view("_.-").find(c) == absl::string_view::npos) {
      return false;
    }
  }
  return true;
}

// What reaches the command line or the environment: env names must be names (`-e NAME`, execve's
// NAME=value) and no value may hold a NUL (a shell word and an environment entry end there).
absl::Status CheckRenderable(const DeploymentSpec& spec) {
  const std::pair<const char*, const std::string*> fields[] = {
      {"deployment.image", &spec.image},
      {"deployment.checkpoint_path", &spec.checkpoint_path},
      {"deployment.cache_path", &spec.cache_path},
      {"deployment.served_model_name", &spec.served_model_name},
      {"deployment.hf_model_handle", &spec.hf_model_handle},
      {"deployment.command", &spec.command}};
  for (const auto& [field, value] : fields) EVALD_RETURN_IF_ERROR(CheckShellValue(*value, field));
  for (const auto& [src, dst] : spec.mounts) {
    EVALD_RETURN_IF_ERROR(CheckShellValue(src, "execution.mounts.deployment host path"));
    EVALD_RETURN_IF_ERROR(CheckShellValue(dst, "execution.mounts.deployment container path"));
  }
  for (const auto& [name, value] : spec.env_vars) {
    EVALD_RETURN_IF_ERROR(CheckEnvName(name, "deployment.env_vars"));
    EVALD_RETURN_IF_ERROR(CheckShellValue(value, absl::StrCat("deployment.env_vars.", name)));
  }
  for (const auto& [name, host] : spec.secret_env_vars) {
    EVALD_RETURN_IF_ERROR(CheckEnvName(name, "deployment.env_vars"));
    EVALD_RETURN_IF_ERROR(
        CheckEnvName(host, absl::StrCat("deployment.env_vars.", name, " $host:")));
  }
  return absl::OkStatus();
}

LocalLaunch RenderContainer(const DeploymentSpec& spec, int port,
                            const LaunchEnvironment& environment, const std::string& name,
                            LocalLaunch launch) {
  const std::string& runtime = environment.container_runtime;
  const bool nim = spec.type == DeploymentType::kNim;
  std::vector<std::string> argv = {"exec", runtime,     "run",  "--rm",  "--init", "--name",
                                   name,   "--network", "host", "--ipc", "host"};
  if (environment.gpus) {
    // Podman reaches NVIDIA GPUs through CDI; docker through its --gpus flag.
    if (runtime == "podman") {
      argv.insert(argv.end(), {"--device", "nvidia.com/gpu=all"});
    } else {
      argv.insert(argv.end(), {"--gpus", "all"});
    }
  }
  if (!spec.checkpoint_path.empty()) {
    argv.insert(argv.end(), {"-v", absl::StrCat(spec.checkpoint_path, ":/checkpoint:ro")});
  }
  if (!spec.cache_path.empty()) {
    argv.insert(argv.end(),
                {"-v", absl::StrCat(spec.cache_path, nim ? ":/opt/nim/.cache" : ":/cache")});
  }
  for (const auto& [src, dst] : spec.mounts) {
    argv.insert(argv.end(), {"-v", absl::StrCat(src, ":", dst)});
  }
  if (nim) {
    // NIM's documented settings; a user's deployment.env_vars entry of the same name wins.
    launch.env.emplace("NIM_SERVED_MODEL_NAME", spec.served_model_name);
    launch.env.emplace("NIM_SERVER_PORT", absl::StrCat(port));
    if (!spec.checkpoint_path.empty()) {
      launch.env.emplace("NIM_MODEL_PATH", std::string(kCheckpointDir));
    } else if (!spec.hf_model_handle.empty()) {
      launch.env.emplace("NIM_MODEL_PATH", absl::StrCat("hf://", spec.hf_model_handle));
    }
  }
  std::set<std::string> names;
  for (const auto& entry : launch.env) names.insert(entry.first);
  for (const auto& entry : launch.secret_env) names.insert(entry.first);
  for (const std::string& env_name : names) argv.insert(argv.end(), {"-e", env_name});

  if (!spec.command.empty()) {
    const std::vector<std::string> words = Words(spec.command);
    const std::string inner =
        IsSimpleCommand(spec.command, words) ? absl::StrCat("exec ", spec.command) : spec.command;
    argv.insert(argv.end(), {"--entrypoint", "/bin/sh", spec.image, "-c", inner});
  } else {
    argv.push_back(spec.image);  // nim: the image's own entrypoint
  }

  std::vector<std::string> quoted;
  quoted.reserve(argv.size());
  for (const std::string& word : argv) quoted.push_back(ShellQuote(word));
  launch.shell_command = absl::StrJoin(quoted, " ");
  launch.container = true;
  launch.container_name = name;
  const int64_t grace = static_cast<int64_t>(std::ceil(spec.stop_grace_s));
  launch.stop_command =
      absl::StrCat(ShellQuote(runtime), " stop --time ", grace, " ", ShellQuote(name));
  launch.kill_command = absl::StrCat(ShellQuote(runtime), " rm -f ", ShellQuote(name));
  return launch;
}

}  // namespace

absl::StatusOr<LocalLaunch> RenderLocalLaunch(const DeploymentSpec& spec, int port,
                                              const LaunchEnvironment& environment,
                                              const std::string& name) {
  const std::string type = ToString(spec.type);
  if (spec.type == DeploymentType::kNone) {
    return absl::InvalidArgumentError("deployment type none has no server to launch");
  }
  if (port < 1 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("server port ", port, " is not in 1..65535"));
  }
  if (!spec.port_auto && port != spec.port) {
    return absl::InvalidArgumentError(absl::StrCat(
        "server port ", port, " differs from deployment.port ", spec.port,
        " (the command already names its port; only `port: auto` takes a picked one)"));
  }
  if (!ValidContainerName(name)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "deployment name '", name, "' is not a valid container name ([A-Za-z0-9][A-Za-z0-9_.-]*)"));
  }
  EVALD_RETURN_IF_ERROR(CheckRenderable(spec));
  if (UsesCheckpoint(spec.command) && spec.checkpoint_path.empty()) {
    return absl::FailedPreconditionError(
        "deployment.command reads the model from /checkpoint but deployment.checkpoint_path is "
        "not set (set it, or set deployment.hf_model_handle)");
  }

  const std::vector<std::string> words = Words(spec.command);
  size_t program_index = 0;
  const std::string program = ProgramOf(words, &program_index);
  const bool nim = spec.type == DeploymentType::kNim;
  const bool has_runtime = !environment.container_runtime.empty();
  const bool can_container = has_runtime && !spec.image.empty();
  const bool can_host =
      !nim && !program.empty() &&
      (IsShellBuiltin(program) || (environment.has_binary && environment.has_binary(program)));

  std::string container_missing;  // why a container launch is impossible, in words
  if (!has_runtime) {
    container_missing = "no docker or podman found";
  } else if (spec.image.empty()) {
    container_missing = "deployment.image is not set";
  }

  bool use_container = false;
  switch (spec.local_launch) {
    case LocalLaunchMode::kHost:
      if (nim) {
        return absl::FailedPreconditionError(
            "deployment.local_launch is host, but deployment type nim runs only as its container "
            "image");
      }
      if (!can_host) {
        return absl::FailedPreconditionError(
            absl::StrCat("deployment.local_launch is host, but `", program, "` is not on PATH"));
      }
      break;
    case LocalLaunchMode::kContainer:
      if (!can_container) {
        return absl::FailedPreconditionError(
            absl::StrCat("deployment.local_launch is container, but ", container_missing));
      }
      use_container = true;
      break;
    case LocalLaunchMode::kAuto:
      if (nim) {
        if (!can_container) {
          return absl::FailedPreconditionError(absl::StrCat(
              "deployment type nim runs only as its container image and needs docker or podman "
              "on PATH with deployment.image set; ",
              container_missing));
        }
        use_container = true;
      } else if (can_container &&
                 (!can_host || IsPythonModuleLaunch(words, program_index, program))) {
        use_container = true;
      } else if (!can_host) {
        return absl::FailedPreconditionError(
            absl::StrCat("deployment type ", type, " needs `", program,
                         "` on PATH or docker/podman with deployment.image set; neither found (`",
                         program, "` is not on PATH; ", container_missing, ")"));
      }
      break;
  }

  LocalLaunch launch;
  launch.env = spec.env_vars;
  launch.env["EVALD_PORT"] = absl::StrCat(port);
  launch.secret_env = spec.secret_env_vars;
  if (use_container) return RenderContainer(spec, port, environment, name, std::move(launch));

  launch.shell_command = spec.checkpoint_path.empty()
                             ? spec.command
                             : ReplaceCheckpoint(spec.command, spec.checkpoint_path);
  return launch;
}

}  // namespace evald::deployment
