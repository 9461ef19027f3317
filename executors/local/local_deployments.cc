// LocalExecutor's model servers: each deployment is `bash -c <launch command>` in its own session
// (a bare server command, or `exec docker|podman run ...`), logging to its server.log, probed on
// its health URL until healthy, and stopped as a whole process group (containers explicitly with
// `<runtime> stop`, then `<runtime> rm -f`).
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "core/status_macros.h"
#include "executors/common/http_probe.h"
#include "executors/common/net.h"
#include "executors/local/local_executor.h"
#include "executors/local/process.h"
#include "nlohmann/json.hpp"

namespace evald::executors {
namespace {

namespace fs = std::filesystem;
using deployment::DeploymentSpec;
using Kind = DeploymentObservation::Kind;

constexpr int kDeploymentHandleVersion = 1;
// A probe blocks the local executor's thread; servers answer health checks in milliseconds.
constexpr double kMaxProbeSeconds = 2.0;

struct ServerState {
  pid_t pid = 0;
  uint64_t start_ticks = 0;
  int port = 0;
  std::string container_name;
  std::string stop_command;
  std::string kill_command;
};

std::string Encode(const ServerState& s) {
  return nlohmann::json{{"pid", s.pid},
                        {"start_ticks", s.start_ticks},
                        {"port", s.port},
                        {"container_name", s.container_name},
                        {"stop_command", s.stop_command},
                        {"kill_command", s.kill_command}}
      .dump();
}

std::optional<ServerState> Decode(const std::string& text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  ServerState s;
  s.pid = j.value("pid", 0);
  s.start_ticks = j.value("start_ticks", uint64_t{0});
  s.port = j.value("port", 0);
  s.container_name = j.value("container_name", std::string());
  s.stop_command = j.value("stop_command", std::string());
  s.kill_command = j.value("kill_command", std::string());
  return s;
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

double NowSeconds() { return absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch()); }

// Runs a short command (a container stop or removal) detached, without waiting for it.
void RunDetached(const std::string& command, const std::string& log_path) {
  if (command.empty()) return;
  SpawnDetached({.argv = {"bash", "-c", command}, .stdout_path = log_path, .stderr_path = log_path})
      .IgnoreError();
}

std::string ServerName(const DeploymentRef& record) {
  std::string name = absl::StrCat("evald-", record.id);
  for (char& c : name) {
    if (c == '.') c = '-';
  }
  return name;
}

DeploymentStarted StartedFrom(const DeploymentSpec& spec, const ServerState& state,
                              const std::string& command) {
  DeploymentStarted out;
  out.handle = JobHandle{kDeploymentHandleVersion, "local", Encode(state)};
  out.port = state.port;
  out.url = deployment::BaseUrl(state.port);
  out.health_url = deployment::HealthUrl(spec, state.port);
  out.command = command;
  return out;
}

}  // namespace

deployment::LaunchEnvironment LocalDeployments::LaunchEnvironment(bool probe) const {
  deployment::LaunchEnvironment env;
  env.has_binary = [](const std::string& name) { return !FindOnPath(name).empty(); };
  std::string runtime = executor_.ContainerRuntime(probe);
  env.container_runtime = runtime.empty() ? "" : fs::path(runtime).filename().string();
  // `--gpus all` fails on a machine without the NVIDIA container toolkit.
  env.gpus = !FindOnPath("nvidia-smi").empty();
  return env;
}

absl::Status LocalDeployments::Validate(const DeploymentSpec& spec) const {
  return deployment::RenderLocalLaunch(spec, spec.port_auto ? 8000 : spec.port,
                                       LaunchEnvironment(/*probe=*/false), "evald-check")
      .status();
}

absl::StatusOr<DeploymentStarted> LocalDeployments::Start(
    const DeploymentRef& record, const DeploymentSpec& spec,
    const std::map<std::string, std::string>& secret_env) {
  int port = spec.port;
  if (spec.port_auto) {
    EVALD_ASSIGN_OR_RETURN(port, PickFreePort());
  } else {
    // A health check must never pass against somebody else's server.
    EVALD_RETURN_IF_ERROR(CheckPortFree(port));
  }
  EVALD_ASSIGN_OR_RETURN(deployment::LocalLaunch launch,
                         deployment::RenderLocalLaunch(
                             spec, port, LaunchEnvironment(/*probe=*/true), ServerName(record)));
  std::map<std::string, std::string> env = launch.env;
  for (const auto& [server_var, host_var] : launch.secret_env) {
    auto it = secret_env.find(server_var);
    if (it == secret_env.end()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the deployment needs the value of ", host_var, " (as ", server_var,
          ") and evald does not hold it; export ", host_var, " and submit or resume again"));
    }
    env[server_var] = it->second;
  }
  fs::path log_dir = fs::path(record.log_path).parent_path();
  std::error_code ec;
  fs::create_directories(log_dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create ", log_dir.string(), ": ", ec.message()));
  }
  for (const char* stale : {"server.pid", "server.json"}) fs::remove(log_dir / stale, ec);
  ServerState state;
  state.port = port;
  if (launch.container) {
    state.container_name = launch.container_name;
    state.stop_command = launch.stop_command;
    state.kill_command = launch.kill_command;
  }
  // Written before the server exists, so a restarted evald can find it (RecoverDeployment).
  std::ofstream(log_dir / "server.json") << Encode(state);
  {
    std::ofstream(record.log_path, std::ios::app)
        << "evald: starting deployment " << record.id << " on port " << port << ": "
        << launch.shell_command << "\n";
  }
  EVALD_ASSIGN_OR_RETURN(ProcessId pid,
                         SpawnDetached({.argv = {"bash", "-c", launch.shell_command},
                                        .env = env,
                                        .cwd = log_dir.string(),
                                        .stdout_path = record.log_path,
                                        .stderr_path = record.log_path,
                                        .pid_file = (log_dir / "server.pid").string()}));
  state.pid = pid.pid;
  state.start_ticks = pid.start_ticks;
  waiters_.erase(record.id);
  kill_deadlines_.erase(record.id);
  return StartedFrom(spec, state, launch.shell_command);
}

DeploymentObservation LocalDeployments::Poll(const DeploymentRef& record,
                                             const DeploymentSpec& spec) {
  std::optional<ServerState> state = Decode(record.handle.state);
  if (!state) return {Kind::kFailed, "the deployment's handle is unreadable"};
  ProcessState ps = Inspect({state->pid, state->start_ticks});
  bool alive = ps.status == ProcessStatus::kAlive;
  auto cleanup = [&] {
    if (state->pid > 1) SignalGroup(state->pid, SIGKILL).IgnoreError();
    RunDetached(state->kill_command, record.log_path);
    waiters_.erase(record.id);
    kill_deadlines_.erase(record.id);
  };
  auto exit_words = [&] {
    if (ps.status == ProcessStatus::kExited && ps.exit_code) {
      return absl::StrCat("server process exited with code ", *ps.exit_code);
    }
    return std::string("server process is gone");
  };

  if (record.state == DeploymentState::kStopping) {
    if (!alive && !GroupAlive(state->pid)) {
      cleanup();
      return {Kind::kStopped, "server stopped"};
    }
    auto deadline = kill_deadlines_.find(record.id);
    if (deadline == kill_deadlines_.end()) {
      // Stop was requested by an earlier evald: start the grace period now.
      kill_deadlines_[record.id] = absl::Now() + absl::Seconds(spec.stop_grace_s);
    } else if (absl::Now() >= deadline->second) {
      SignalGroup(state->pid, SIGKILL).IgnoreError();
      RunDetached(state->kill_command, record.log_path);
    }
    return {Kind::kStopping, "waiting for the server to exit"};
  }

  if (record.state == DeploymentState::kHealthy) {
    if (alive) return {Kind::kHealthy, ""};
    std::string why = exit_words() + " while serving";
    cleanup();
    return {Kind::kFailed, why};
  }

  // Starting: wait for the health URL, on wall-clock time so a restart keeps the timeout.
  auto it = waiters_.find(record.id);
  if (it == waiters_.end()) {
    double started_s =
        record.started_ms > 0 ? static_cast<double>(record.started_ms) / 1000.0 : NowSeconds();
    it = waiters_
             .emplace(record.id,
                      deployment::HealthWaiter(deployment::ReadinessOptionsOf(spec), started_s))
             .first;
  }
  deployment::HealthWaiter& waiter = it->second;
  double now = NowSeconds();
  deployment::ProcessState process;
  process.alive = alive;
  if (!alive && ps.exit_code) {
    process.exit_code = *ps.exit_code >= 128 ? -1 : *ps.exit_code;
    process.signal = *ps.exit_code >= 128 ? *ps.exit_code - 128 : 0;
  }
  std::optional<deployment::ProbeResult> probe;
  if (alive && !record.health_url.empty() && waiter.ProbeDue(now)) {
    probe = HttpGet(record.health_url, std::min(waiter.ProbeTimeout(), kMaxProbeSeconds));
  }
  switch (waiter.Observe(now, process, probe ? &*probe : nullptr)) {
    case deployment::Readiness::kHealthy: {
      std::string message =
          absl::StrCat("healthy after ", deployment::FormatSeconds(waiter.healthy_after_s()), " s");
      waiters_.erase(record.id);
      return {Kind::kHealthy, message};
    }
    case deployment::Readiness::kFailed: {
      std::string why = waiter.reason();
      cleanup();
      return {Kind::kFailed, why};
    }
    case deployment::Readiness::kWaiting:
      break;
  }
  return {Kind::kStarting, waiter.last_answer()};
}

absl::Status LocalDeployments::Stop(const DeploymentRef& record, const DeploymentSpec& spec) {
  std::optional<ServerState> state = Decode(record.handle.state);
  if (!state || state->pid <= 1) return absl::OkStatus();
  if (kill_deadlines_.count(record.id) == 0) {
    kill_deadlines_[record.id] = absl::Now() + absl::Seconds(spec.stop_grace_s);
  }
  waiters_.erase(record.id);
  // A container stops through its runtime: signalling the `run` client alone can leave it running.
  RunDetached(state->stop_command, record.log_path);
  return SignalGroup(state->pid, SIGTERM);
}

absl::StatusOr<std::optional<DeploymentStarted>> LocalDeployments::Recover(
    const DeploymentRef& record, const DeploymentSpec& spec) {
  fs::path log_dir = fs::path(record.log_path).parent_path();
  std::optional<ServerState> state = Decode(ReadText((log_dir / "server.json").string()));
  pid_t pid = 0;
  if (!state ||
      !absl::SimpleAtoi(absl::StripAsciiWhitespace(ReadText((log_dir / "server.pid").string())),
                        &pid) ||
      pid <= 1) {
    return std::optional<DeploymentStarted>();
  }
  absl::StatusOr<uint64_t> ticks = StartTicks(pid);
  if (!ticks.ok() || !absl::StartsWith(CommandLine(pid), "bash -c ")) {
    return std::optional<DeploymentStarted>();
  }
  state->pid = pid;
  state->start_ticks = *ticks;
  return std::optional<DeploymentStarted>(
      StartedFrom(spec, *state, CommandLine(pid).substr(std::string("bash -c ").size())));
}

}  // namespace evald::executors
