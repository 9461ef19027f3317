// File: server_config.h
//
// evald's own settings: built from the optional YAML server config (`--config FILE`, see
// configs/evald.example.yaml) and then the command-line flags, which win. Read once by main().
//
//   EVALD_ASSIGN_OR_RETURN(ServerConfig cfg, LoadServerConfig("/etc/evald/evald.yaml"));
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace evald::daemon {

struct ServerConfig {
  std::string state_dir;            // database, pidfile, secrets key, default socket
  std::vector<std::string> listen;  // unix:///abs/path.sock or host:port; default the socket
  // A TCP listen address needs TLS (tls_cert + tls_key). Plain TCP is allowed only on a loopback
  // address and only with this set (--insecure-tcp, `insecure: true` or `insecure_tcp: true`);
  // evald then warns at every start. Callers on TCP always need a bearer token.
  bool insecure_tcp = false;
  // TLS for TCP listen addresses (server config `tls: {cert, key, client_ca, refresh_seconds}`,
  // flags --tls-cert, --tls-key, --tls-client-ca): PEM files, re-read every tls_refresh while
  // evald runs (gRPC's FileWatcherCertificateProvider), so renewed certificates need no restart.
  // With client_ca, clients must present a certificate it signed (mTLS).
  std::string tls_cert;
  std::string tls_key;
  std::string tls_client_ca;
  absl::Duration tls_refresh = absl::Seconds(60);
  // The unix socket's group (name; empty = evald's primary group) and mode (default 0600, e.g.
  // 0660 to let a team group in). Local callers are identified by their uid (SO_PEERCRED).
  std::string socket_group;
  int socket_mode = 0600;
  std::string config_file;  // the file these settings came from ("" = flags only), for messages
  std::string log_level = "info";   // trace, debug, info, warn, error
  std::string log_format = "text";  // text | json
  absl::Duration tick = absl::Seconds(1);  // supervisor period (it also wakes on submit/kill)
  absl::Duration stop_grace = absl::Seconds(30);  // SIGTERM -> SIGKILL for killed jobs
  std::string runner_path;          // evalrun; default: next to the evald binary
  std::string container_runtime;    // docker | podman; default: whichever is on PATH
  std::string eval_binary = "nv_eval";
  std::string configs_dir;          // packaged configs; default PackagedConfigDir()
  int max_request_bytes = 4 << 20;
  // Jobs evald keeps started (submitted or running) at once, over all invocations; 0 = no limit.
  // Further pending jobs wait their turn.
  int max_running_jobs = 64;
  // Added to the nice value of the jobs evald starts on its own host (0-19), so job starts do not
  // take the CPU from the API: see executors::ExecutorContext::job_nice.
  int job_nice = 5;
  // Team-server rules on submits (daemon/submit_policy.h): where non-admin callers' output_dir may
  // be besides <state_dir>/runs and a uid caller's home; who may submit `command` deployments
  // (all | admins | none); per-user limits, 0 = none.
  std::vector<std::string> output_roots;
  std::string command_deployments = "admins";
  int limit_submits_per_minute = 0;
  int limit_active_jobs = 0;
  // How often each executor's live jobs are polled (`executor_poll_ms: {slurm: 5000}`); an
  // executor not listed uses its own default (local: every tick).
  std::map<std::string, absl::Duration> executor_poll;
  // host:port of the HTTP endpoint with /metrics, /healthz and the web dashboard (/api/v1/ and
  // its page, docs/dashboard-api.md); empty = none.
  std::string metrics_listen;
  // Who may use that port without a token (docs/dashboard-api.md, Authentication). auto: on a
  // loopback address /api/ reads are allowed as an anonymous viewer, elsewhere /api/ needs a
  // token; /metrics is open. tokens: /api/ and /metrics always need a token. /healthz is open.
  std::string http_auth = "auto";
  // Dashboard event streams (GET /api/v1/stream) open at once; more are refused with 503.
  int http_max_streams = 64;
};

// Reads a server config file. Unknown keys are errors (a typo must not be silently ignored);
// messages name the file, the key and what was expected.
absl::StatusOr<ServerConfig> LoadServerConfig(const std::string& path);

// Fills defaults that depend on the environment (state dir, socket, runner path) and checks the
// result: the socket path must fit the 107-byte limit, listen addresses must parse, a TCP address
// needs readable PEM TLS files whose key matches the certificate (or `insecure_tcp` and a
// loopback host), and the socket group must exist.
absl::Status FinalizeServerConfig(ServerConfig& config);

// True for 127.0.0.0/8, ::1 and localhost (host:port, [v6]:port).
bool IsLoopbackAddress(const std::string& host_port);

}  // namespace evald::daemon
