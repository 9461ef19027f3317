// File: container_runtime.h
//
// Which container runtime the local executor runs harness containers (and containerised model
// servers) with. A configured runtime (`container_runtime` in the evald config) is used as named,
// found on PATH. Otherwise the first of docker and podman on PATH that can run containers wins:
// it must answer `<runtime> info` with exit 0 within a few seconds, so a docker client without
// an engine (or a podman that cannot reach its storage) is passed over. The answer is kept for a
// minute, so a Submit does not probe every time and a runtime installed later is still found.
//
// Callers: LocalExecutor::ContainerRuntime: Start and a model server's start probe; Render and a
// model server's Validate run on Submit's gRPC threads and only read (`probe` false).
//
//   std::string runtime = PickContainerRuntime(context.container_runtime);  // "" = none usable
#pragma once

#include <functional>
#include <string>

#include "absl/time/time.h"

namespace evald::executors {

// The path of the runtime to call, or "" when none is configured and none answers `info`.
// Without `probe`: the answer kept from the last probe, else the first of docker and podman on
// PATH, without asking either (never waits on an engine).
std::string PickContainerRuntime(const std::string& configured, bool probe = true);

// The detection without the cache, with the probe as a parameter (tests).
std::string DetectContainerRuntime(const std::function<bool(const std::string& path)>& answers);

// Runs `<path> info` with its output discarded; true when it exits 0 before `timeout`.
bool RuntimeAnswersInfo(const std::string& path, absl::Duration timeout = absl::Seconds(10));

}  // namespace evald::executors
