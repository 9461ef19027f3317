// File: local_launch.h
//
// What the local executor runs for a deployment, as data: one `bash -c` command line, the
// environment to give it, and, for containers, how to stop the container. Pure: the caller says
// which binaries and which container runtime exist; nothing here looks at the machine.
//
// Rules (docs/deployments.md has the full table):
//  * host launch: the composed command itself, when its program is on PATH (`vllm serve ...`);
//    a `/checkpoint` word is replaced by deployment.checkpoint_path.
//  * container launch, when deployment.image is set and docker or podman exists:
//      exec <runtime> run --rm --init --name <name> --network host --ipc host [--gpus all]
//        [-v <checkpoint_path>:/checkpoint:ro] [-v <cache_path>:/cache] [-v src:dst ...]
//        -e EVALD_PORT [-e NAME ...] --entrypoint /bin/sh <image> -c '<command>'
//    Host networking keeps one meaning for the port inside and outside the container, so the
//    health URL http://127.0.0.1:<port>/... and the port-collision check stay valid. nim keeps the
//    image's entrypoint and gets NIM_SERVED_MODEL_NAME, NIM_SERVER_PORT (and NIM_MODEL_PATH).
//    Stopping: run `stop_command` (`<runtime> stop --time <grace> <name>`: SIGTERM to the
//    container's init, which forwards it to the server, SIGKILL after the grace), then
//    `kill_command` (`<runtime> rm -f <name>`) if the container is still there. Signalling the
//    `<runtime> run` client alone is not enough: a SIGKILLed client leaves the container running.
//  * deployment.local_launch: host | container forces one way; auto (default) prefers the host
//    launch, except for `python -m <module>` commands (the interpreter says nothing about the
//    module) which prefer a container when one is possible.
// Environment values (EVALD_PORT, the literal env_vars) travel in `env`, never on the command
// line; containers get them by name (`-e NAME`). Every word of the rendered command is
// ShellQuote'd (core/shell.h); env var names that are not [A-Za-z_][A-Za-z0-9_]* and NUL bytes
// in any rendered field are refused with InvalidArgument. Secret values are never known here:
// `secret_env` names what the executor must fill from the invocation's secrets.
//
// Caller: the local executor.
//
//   LaunchEnvironment env;
//   env.has_binary = OnPath;            // e.g. a PATH search
//   env.container_runtime = "docker";   // or "podman", or "" when neither exists
//   EVALD_ASSIGN_OR_RETURN(LocalLaunch launch, RenderLocalLaunch(spec, port, env, "evald-ab12"));
//   // spawn: bash -c launch.shell_command, with launch.env (+ secret values) in its environment
#pragma once

#include <functional>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/deployment/deployment_spec.h"
#include "core/shell.h"

namespace evald::deployment {

struct LaunchEnvironment {
  // True when `name` (a bare program name, or a path) is an executable the executor can run.
  std::function<bool(const std::string&)> has_binary;
  std::string container_runtime;  // "docker" | "podman" | "" when neither exists
  bool gpus = true;               // expose all GPUs to a container
};

struct LocalLaunch {
  std::string shell_command;               // for `bash -c`
  std::map<std::string, std::string> env;  // EVALD_PORT, literal env_vars, NIM_*: never secrets
  // Server variable NAME -> host variable NAME whose secret value the executor adds to the
  // environment of the process (from deployment.env_vars `$host:NAME`).
  std::map<std::string, std::string> secret_env;
  bool container = false;
  std::string container_name;
  std::string stop_command;  // container only: graceful stop, waits up to the grace period
  std::string kill_command;  // container only: forced removal
};

// `port`: the actual port (the picked one for `port: auto`; must equal deployment.port
// otherwise). `name`: the container name ([A-Za-z0-9][A-Za-z0-9_.-]*), used only for containers.
// Errors: InvalidArgument for a bad port/name or type none; FailedPrecondition when neither way
// can run, e.g. "deployment type vllm needs `vllm` on PATH or docker/podman with deployment.image
// set; neither found (`vllm` is not on PATH; no docker or podman found)".
absl::StatusOr<LocalLaunch> RenderLocalLaunch(const DeploymentSpec& spec, int port,
                                              const LaunchEnvironment& environment,
                                              const std::string& name);

// Quoting lives in core/shell.h (the one quoting function of every generated script).
using ::evald::ShellQuote;

}  // namespace evald::deployment
