// evald: the evaluation daemon. Runs in the foreground (systemd or a terminal), serves
// evald.v1.EvalService over gRPC, and supervises every job it was given until it ends.
//
// Exit codes: 0 clean shutdown (SIGTERM/SIGINT), 2 bad flags or server config (including a TCP
// listen address without TLS, or plain TCP off loopback or without --insecure-tcp), 3 another evald holds the state dir, 4 the state dir,
// database or listen address is unusable (including a lost database, see state_dir_check.h).
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "daemon/dashboard/dashboard_api.h"
#include "daemon/fmt_absl.h"
#include "daemon/http_endpoint.h"
#include "daemon/logging.h"
#include "daemon/process_lock.h"
#include "daemon/server_config.h"
#include "daemon/server_core.h"
#include "daemon/services/eval_service_impl.h"
#include "daemon/state_dir_check.h"
#include "daemon/systemd_notify.h"
#include "daemon/tls_credentials.h"
#include "daemon/unix_listener.h"
#include "spdlog/spdlog.h"

#ifndef EVALD_VERSION
#define EVALD_VERSION "0.0.0"
#endif

namespace {

namespace fs = std::filesystem;
using evald::daemon::ServerConfig;

constexpr int kExitUsage = 2;
constexpr int kExitLocked = 3;
constexpr int kExitUnusable = 4;
// More than the RequestGate's 4 concurrent Submits plus a few Watch and log streams.
constexpr int kMaxIdleRpcThreads = 16;

int Fail(int code, const std::string& message) {
  std::fprintf(stderr, "evald: %s\n", message.c_str());
  return code;
}

std::string UnixPath(const std::string& addr) {
  if (absl::StartsWith(addr, "unix://")) return addr.substr(7);
  if (absl::StartsWith(addr, "unix:")) return addr.substr(5);
  return "";
}

// True when something already accepts connections on this unix socket. gRPC would unlink the
// file and bind anew, silently stealing the path from a live server.
bool SocketInUse(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  bool in_use = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return in_use;
}

}  // namespace

int main(int argc, char** argv) {
#ifdef NDEBUG
  // Debian builds Abseil without NDEBUG, which leaves deadlock detection on: every absl::Mutex
  // lock in the process (gRPC's own included) then takes one process-wide spinlock to update the
  // lock graph, a serialization point under concurrent Submits. Debug and sanitizer builds keep it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
#endif
  CLI::App app{"evald: evaluation-orchestration daemon (gRPC API evald.v1)"};
  std::string config_file;
  std::string state_dir;
  std::vector<std::string> listen;
  std::string log_level;
  std::string log_format;
  int tick_ms = 0;
  std::string runner_path;
  bool version = false;
  bool insecure_tcp = false;
  bool initialize_db = false;
  app.add_option("--config", config_file, "YAML server config (see configs/evald.example.yaml)")
      ->check(CLI::ExistingFile);
  app.add_option("--state-dir", state_dir,
                 "database, pidfile, secrets key and default socket (default "
                 "$XDG_STATE_HOME/evald or ~/.local/state/evald)");
  app.add_option("--listen", listen,
                 "unix:///abs/path.sock or host:port (repeatable; default <state-dir>/evald.sock)");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error");
  app.add_option("--log-format", log_format, "text or json (one JSON object per line)");
  app.add_option("--tick-ms", tick_ms, "supervisor period in milliseconds (default 1000)");
  app.add_option("--runner", runner_path, "evalrun binary (default: next to evald)");
  std::string metrics_listen;
  app.add_option("--metrics-listen", metrics_listen,
                 "host:port for GET /metrics (Prometheus), /healthz and the web dashboard "
                 "(/api/v1/; tokens as on gRPC, docs/dashboard-api.md) (default: none)");
  app.add_flag("--insecure-tcp", insecure_tcp,
               "allow a loopback host:port listen address without TLS (callers still need a "
               "token, which then crosses the connection in clear text; docs/operations.md)");
  std::string tls_cert, tls_key, tls_client_ca, socket_group, socket_mode;
  app.add_option("--tls-cert", tls_cert, "PEM certificate (chain) for TCP listen addresses");
  app.add_option("--tls-key", tls_key, "PEM private key of --tls-cert");
  app.add_option("--tls-client-ca", tls_client_ca,
                 "PEM CA: TCP clients must present a certificate it signed (mTLS)");
  app.add_option("--socket-group", socket_group, "group of the unix socket (default: evald's)");
  app.add_option("--socket-mode", socket_mode, "mode of the unix socket, octal (default 0600)");
  std::vector<std::string> output_roots;
  app.add_option("--output-root", output_roots,
                 "a folder non-admin callers' output_dir may be under, besides <state-dir>/runs "
                 "and their home (repeatable; adds to the server config's output_roots)");
  app.add_flag("--initialize-db", initialize_db,
               "start a new empty database even though the state dir holds an earlier evald's "
               "files (secrets.key, evald.db-wal) and evald.db is missing or empty");
  app.add_flag("--version", version, "print the version and exit");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : kExitUsage;
  }
  if (version) {
    std::printf("evald %s (api evald.v1)\n", EVALD_VERSION);
    return 0;
  }

  ServerConfig config;
  if (!config_file.empty()) {
    absl::StatusOr<ServerConfig> loaded = evald::daemon::LoadServerConfig(config_file);
    if (!loaded.ok()) return Fail(kExitUsage, std::string(loaded.status().message()));
    config = *loaded;
  }
  if (!state_dir.empty()) config.state_dir = state_dir;
  if (!listen.empty()) config.listen = listen;
  if (insecure_tcp) config.insecure_tcp = true;
  config.output_roots.insert(config.output_roots.end(), output_roots.begin(), output_roots.end());
  if (!log_level.empty()) config.log_level = log_level;
  if (!log_format.empty()) config.log_format = log_format;
  if (tick_ms > 0) config.tick = absl::Milliseconds(tick_ms);
  if (!runner_path.empty()) config.runner_path = runner_path;
  if (!metrics_listen.empty()) config.metrics_listen = metrics_listen;
  if (!tls_cert.empty()) config.tls_cert = tls_cert;
  if (!tls_key.empty()) config.tls_key = tls_key;
  if (!tls_client_ca.empty()) config.tls_client_ca = tls_client_ca;
  if (!socket_group.empty()) config.socket_group = socket_group;
  if (!socket_mode.empty()) {
    if (socket_mode.size() > 4 || socket_mode.find_first_not_of("01234567") != std::string::npos) {
      return Fail(kExitUsage, "--socket-mode '" + socket_mode + "' is not an octal mode like 0660");
    }
    config.socket_mode = std::stoi(socket_mode, nullptr, 8);
  }
  if (absl::Status s = evald::daemon::FinalizeServerConfig(config); !s.ok()) {
    return Fail(kExitUsage, std::string(s.message()));
  }
  if (absl::Status s = evald::daemon::SetupLogging(config.log_level, config.log_format); !s.ok()) {
    return Fail(kExitUsage, std::string(s.message()));
  }
  // Under systemd with WatchdogSec, a pass must end well within the interval (systemd_notify.h).
  evald::daemon::SystemdNotifier notifier;
  if (config.tick > notifier.MaxTick()) {
    spdlog::warn("supervisor tick {} shortened to {}: a third of systemd's WatchdogSec",
                 absl::FormatDuration(config.tick), absl::FormatDuration(notifier.MaxTick()));
    config.tick = notifier.MaxTick();
  }

  std::error_code ec;
  fs::create_directories(config.state_dir, ec);
  if (ec)
    return Fail(kExitUnusable, "cannot create state dir " + config.state_dir + ": " + ec.message());
  chmod(config.state_dir.c_str(), 0700);
  absl::StatusOr<evald::daemon::ProcessLock> lock =
      evald::daemon::ProcessLock::Acquire(config.state_dir);
  if (!lock.ok()) return Fail(kExitLocked, std::string(lock.status().message()));
  if (absl::Status s = evald::daemon::CheckDatabaseNotLost(config.state_dir, initialize_db);
      !s.ok()) {
    return Fail(kExitUnusable, std::string(s.message()));
  }

  // Blocked before any thread starts, so every gRPC and supervisor thread inherits the mask and
  // the signals reach sigwait() below.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  // SIGHUP, which operators send to reload (systemctl reload): by default it would end evald.
  sigaddset(&stop_signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  evald::daemon::ProcessLock* held = &*lock;
  absl::StatusOr<std::unique_ptr<evald::daemon::ServerCore>> core =
      evald::daemon::ServerCore::Create(
          config, [held] { return held->CheckHeld(); }, {}, &notifier);
  if (!core.ok()) return Fail(kExitUnusable, std::string(core.status().message()));
  if (absl::Status s = lock->Pin(config.state_dir + "/evald.db"); !s.ok()) {
    return Fail(kExitUnusable, std::string(s.message()));
  }

  // evald accepts on its unix sockets itself to learn each caller's uid (unix_listener.h).
  evald::daemon::UnixPeers unix_peers;
  std::vector<std::unique_ptr<evald::daemon::UnixListener>> unix_listeners;
  for (const std::string& addr : config.listen) {
    std::string path = UnixPath(addr);
    if (path.empty()) continue;
    if (SocketInUse(path)) {
      return Fail(kExitUnusable, "another server is already listening on " + path);
    }
    fs::create_directories(fs::path(path).parent_path(), ec);
    absl::StatusOr<std::unique_ptr<evald::daemon::UnixListener>> listener =
        evald::daemon::UnixListener::Bind(path, config.socket_mode, config.socket_group);
    if (!listener.ok()) return Fail(kExitUnusable, std::string(listener.status().message()));
    unix_listeners.push_back(std::move(*listener));
  }

  evald::daemon::CallerResolver callers(&(*core)->store(), &unix_peers);
  evald::daemon::EvalServiceImpl service(core->get(), &callers);
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  std::vector<std::unique_ptr<int>> ports;
  for (const std::string& addr : config.listen) {
    ports.push_back(std::make_unique<int>(0));
    if (!UnixPath(addr).empty()) continue;
    if (!config.tls_cert.empty()) {
      builder.AddListeningPort(addr, evald::daemon::ServerTlsCredentials(config),
                               ports.back().get());
      continue;
    }
    spdlog::warn(
        "--insecure-tcp: listening on {} without TLS: bearer tokens cross it in clear text, and "
        "anyone on this machine who can read them can act as their users",
        addr);
    builder.AddListeningPort(addr, grpc::InsecureServerCredentials(), ports.back().get());
  }
  builder.SetMaxReceiveMessageSize(config.max_request_bytes);
  // Threads that finish a call go back to waiting for the next one, up to kMaxIdleRpcThreads.
  // gRPC's default of 2 ends every other thread after its call and starts a new one for the next
  // call: with 8 clients submitting at once, ~200 thread starts and exits a second, each exit a
  // madvise with TLB shootdowns, on the cores the Submits need.
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MAX_POLLERS,
                              kMaxIdleRpcThreads);
  builder.RegisterService(&service);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(
      std::make_unique<evald::daemon::RpcMetricsInterceptorFactory>(&(*core)->metrics()));
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr) {
    return Fail(kExitUnusable, "cannot listen on " + absl::StrJoin(config.listen, ", "));
  }
  for (size_t i = 0; i < config.listen.size(); ++i) {
    if (UnixPath(config.listen[i]).empty() && *ports[i] == 0) {
      return Fail(kExitUnusable, "cannot listen on " + config.listen[i]);
    }
  }
  server->GetHealthCheckService()->SetServingStatus("evald.v1.EvalService", true);

  (*core)->StartSupervisor();
  std::unique_ptr<evald::daemon::DashboardApi> dashboard;
  std::unique_ptr<evald::daemon::HttpEndpoint> http;
  if (!config.metrics_listen.empty()) {
    // The web dashboard shares the port and the gRPC API's token store (docs/dashboard-api.md).
    dashboard = std::make_unique<evald::daemon::DashboardApi>(
        core->get(), &callers,
        evald::daemon::DashboardApi::Options{
            .loopback = evald::daemon::IsLoopbackAddress(config.metrics_listen),
            .require_tokens = config.http_auth == "tokens",
            .max_streams = config.http_max_streams});
    // Unhealthy after three ticks without a completed pass (at least 10 s).
    absl::StatusOr<std::unique_ptr<evald::daemon::HttpEndpoint>> started =
        evald::daemon::HttpEndpoint::Start(config.metrics_listen, &(*core)->metrics(),
                                           std::max(3 * config.tick, absl::Seconds(10)),
                                           dashboard.get());
    if (!started.ok()) return Fail(kExitUnusable, std::string(started.status().message()));
    http = std::move(*started);
    spdlog::info("metrics, health and dashboard on http://{} (/metrics, /healthz, /api/v1/)",
                 config.metrics_listen);
  }
  for (auto& listener : unix_listeners) listener->Start(server.get(), &unix_peers);
  spdlog::info("evald {} ready: listening on {}, state dir {}, runner {}", EVALD_VERSION,
               absl::StrJoin(config.listen, ", "), config.state_dir, config.runner_path);
  notifier.Ready(absl::StrCat("listening on ", absl::StrJoin(config.listen, ", ")));

  int signo = 0;
  while (sigwait(&stop_signals, &signo) != 0 || signo == SIGHUP) {
    if (signo != SIGHUP) continue;
    signo = 0;
    // The TLS files are already watched (tls_credentials.h); nothing else is reloadable.
    if (config.tls_cert.empty()) {
      spdlog::info("received SIGHUP: nothing to reload (no TLS); still running");
    } else {
      spdlog::info(
          "received SIGHUP: the TLS certificate and key are re-read every {} s "
          "(tls.refresh_seconds) without a signal; nothing else to reload; still running",
          absl::ToInt64Seconds(config.tls_refresh));
    }
  }
  spdlog::info("received {}; stopping (running jobs keep running)",
               signo == SIGTERM ? "SIGTERM" : "SIGINT");
  notifier.Stopping();
  server->GetHealthCheckService()->SetServingStatus(false);
  if (http) http->Stop();
  for (auto& listener : unix_listeners) listener->Stop();
  (*core)->Shutdown();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  server->Wait();
  core->reset();
  spdlog::info("evald stopped");
  spdlog::shutdown();
  return 0;
}
