#include "daemon/server_config.h"

#include <cstdlib>
#include <fstream>

#include <catch2/catch.hpp>

#include "tests/executors/local/test_util.h"

namespace evald::daemon {
namespace {

using evald::testing::Spit;
using evald::testing::TempDir;

TEST_CASE("a server config file sets every documented key") {
  TempDir dir;
  std::string path = dir.path() + "/evald.yaml";
  Spit(path,
       "state_dir: /var/lib/evald\n"
       "listen: [unix:///run/evald.sock, 127.0.0.1:7070]\n"
       "log_level: debug\nlog_format: json\nsupervisor_tick_ms: 250\nstop_grace_seconds: 5\n"
       "runner_path: /opt/evalrun\ncontainer_runtime: podman\neval_binary: eval-factory\n"
       "max_request_bytes: 65536\nmax_running_jobs: 4\ninsecure_tcp: true\n"
       "executor_poll_ms: {local: 500, slurm: 5000}\njob_nice: 0\n"
       "output_roots: [/srv/evals, /data/runs]\ncommand_deployments: none\n"
       "limits: {submits_per_minute: 30, active_jobs: 64}\n");
  absl::StatusOr<ServerConfig> cfg = LoadServerConfig(path);
  REQUIRE(cfg.ok());
  CHECK(cfg->state_dir == "/var/lib/evald");
  CHECK(cfg->listen == std::vector<std::string>{"unix:///run/evald.sock", "127.0.0.1:7070"});
  CHECK(cfg->log_format == "json");
  CHECK(cfg->tick == absl::Milliseconds(250));
  CHECK(cfg->stop_grace == absl::Seconds(5));
  CHECK(cfg->container_runtime == "podman");
  CHECK(cfg->eval_binary == "eval-factory");
  CHECK(cfg->max_request_bytes == 65536);
  CHECK(cfg->max_running_jobs == 4);
  CHECK(cfg->job_nice == 0);  // default 5
  CHECK(cfg->output_roots == std::vector<std::string>{"/srv/evals", "/data/runs"});
  CHECK(cfg->command_deployments == "none");
  CHECK(cfg->limit_submits_per_minute == 30);
  CHECK(cfg->limit_active_jobs == 64);
  CHECK(cfg->insecure_tcp);
  CHECK(cfg->executor_poll ==
        std::map<std::string, absl::Duration>{{"local", absl::Milliseconds(500)},
                                              {"slurm", absl::Seconds(5)}});
}

TEST_CASE("server config mistakes name the file, the line and the key") {
  TempDir dir;
  std::string path = dir.path() + "/evald.yaml";
  Spit(path, "state_dir: /x\nlisten_addr: foo\n");
  absl::StatusOr<ServerConfig> cfg = LoadServerConfig(path);
  REQUIRE_FALSE(cfg.ok());
  CHECK(cfg.status().message().find(path + ":2: unknown setting 'listen_addr'") !=
        std::string::npos);

  Spit(path, "supervisor_tick_ms: soon\n");
  cfg = LoadServerConfig(path);
  REQUIRE_FALSE(cfg.ok());
  CHECK(cfg.status().message().find("'supervisor_tick_ms' must be an integer >= 10") !=
        std::string::npos);

  Spit(path, "limits: {active_jobs: -1}\n");
  CHECK(LoadServerConfig(path).status().message().find(
            "'limits.active_jobs' must be an integer >= 0 (per user; 0 = no limit)") !=
        std::string::npos);
  Spit(path, "limits: {running_jobs: 3}\n");
  CHECK(LoadServerConfig(path).status().message().find(
            "unknown setting 'limits.running_jobs'; known: limits.submits_per_minute, "
            "limits.active_jobs") != std::string::npos);
  Spit(path, "output_roots: [relative/dir]\n");
  CHECK(LoadServerConfig(path).status().message().find(
            "'output_roots' must be a list of absolute paths") != std::string::npos);
  Spit(path, "command_deployments: some\n");
  CHECK(LoadServerConfig(path).status().message().find(
            "'command_deployments' must be one of all, admins, none") != std::string::npos);

  Spit(path, "job_nice: 20\n");
  CHECK(LoadServerConfig(path).status().message().find(
            "'job_nice' must be an integer from 0 to 19") != std::string::npos);

  Spit(path, "executor_poll_ms: {local: 5}\n");
  CHECK(LoadServerConfig(path).status().message().find(
            "'executor_poll_ms.local' must be an integer >= 10 (milliseconds)") !=
        std::string::npos);

  Spit(path, "listen: [unclosed\n");
  CHECK(LoadServerConfig(path).status().message().find(path + ":") == 0);
  CHECK(LoadServerConfig(dir.path() + "/none.yaml").status().code() ==
        absl::StatusCode::kNotFound);
}

TEST_CASE("finalizing fills the default socket and refuses over-long socket paths") {
  ServerConfig cfg;
  cfg.state_dir = "/tmp/evald-state";
  REQUIRE(FinalizeServerConfig(cfg).ok());
  CHECK(cfg.listen == std::vector<std::string>{"unix:///tmp/evald-state/evald.sock"});
  CHECK_FALSE(cfg.runner_path.empty());

  ServerConfig deep;
  deep.state_dir = "/tmp/" + std::string(120, 'd');
  absl::Status s = FinalizeServerConfig(deep);
  CHECK(s.code() == absl::StatusCode::kInvalidArgument);
  CHECK(s.message().find("107-byte limit") != std::string::npos);

  ServerConfig bad;
  bad.state_dir = "/tmp/x";
  bad.listen = {"nonsense"};
  CHECK(FinalizeServerConfig(bad).message().find("neither unix:///abs/path.sock nor host:port") !=
        std::string::npos);
}

// Plain TCP carries bearer tokens in clear text: only on loopback, and only as an explicit opt-in.
TEST_CASE("a TCP listen address needs TLS, or insecure_tcp and a loopback host") {
  TempDir dir;
  std::string path = dir.path() + "/evald.yaml";
  Spit(path, "listen: [unix:///tmp/e.sock, 127.0.0.1:7070]\n");
  absl::StatusOr<ServerConfig> cfg = LoadServerConfig(path);
  REQUIRE(cfg.ok());
  CHECK_FALSE(cfg->insecure_tcp);
  cfg->state_dir = "/tmp/x";
  absl::Status s = FinalizeServerConfig(*cfg);
  CHECK(s.code() == absl::StatusCode::kInvalidArgument);
  CHECK(s.message().find("listen address '127.0.0.1:7070' is not a unix socket") !=
        std::string::npos);
  CHECK(s.message().find("TLS is not configured (server config " + path + ")") !=
        std::string::npos);
  CHECK(s.message().find("--insecure-tcp (server config: insecure: true)") != std::string::npos);

  cfg->insecure_tcp = true;
  CHECK(FinalizeServerConfig(*cfg).ok());

  // Plain TCP off loopback would carry tokens in clear text across the network.
  Spit(path, "listen: [0.0.0.0:7070]\ninsecure_tcp: true\n");
  cfg = LoadServerConfig(path);
  REQUIRE(cfg.ok());
  cfg->state_dir = "/tmp/x";
  s = FinalizeServerConfig(*cfg);
  CHECK(s.code() == absl::StatusCode::kInvalidArgument);
  CHECK(s.message().find("plain TCP (insecure) is allowed only on a loopback address") !=
        std::string::npos);
  Spit(path, "listen: ['[::1]:7070', 'localhost:7071']\ninsecure: true\n");
  cfg = LoadServerConfig(path);
  REQUIRE(cfg.ok());
  cfg->state_dir = "/tmp/x";
  CHECK(FinalizeServerConfig(*cfg).ok());

  Spit(path, "insecure_tcp: maybe\n");
  CHECK(LoadServerConfig(path).status().message().find("'insecure_tcp' must be true or false") !=
        std::string::npos);

  ServerConfig unix_only;
  unix_only.state_dir = "/tmp/x";
  unix_only.listen = {"unix:///tmp/x/a.sock", "unix:rel.sock"};
  CHECK(FinalizeServerConfig(unix_only).ok());
}

// A self-signed certificate and its key (and a second, unrelated key) made by the openssl CLI.
struct TestCert {
  explicit TestCert(const std::string& dir) : cert(dir + "/cert.pem"), key(dir + "/key.pem") {
    other_key = dir + "/other.pem";
    std::string cmd = "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost -keyout " + key +
          " -out " + cert + " 2>/dev/null && openssl genrsa -out " + other_key + " 2048 2>/dev/null";
    REQUIRE(std::system(cmd.c_str()) == 0);
  }
  std::string cert, key, other_key;
};

TEST_CASE("the tls section is read, and its files are checked with messages naming the setting") {
  TempDir dir;
  TestCert tc(dir.path());
  std::string path = dir.path() + "/evald.yaml";
  Spit(path, "listen: [0.0.0.0:7443]\ntls:\n  cert: " + tc.cert + "\n  key: " + tc.key +
                 "\n  client_ca: " + tc.cert + "\n  refresh_seconds: 5\n"
                 "socket_group: root\nsocket_mode: \"0660\"\n");
  absl::StatusOr<ServerConfig> cfg = LoadServerConfig(path);
  REQUIRE(cfg.ok());
  CHECK(cfg->tls_cert == tc.cert);
  CHECK(cfg->tls_key == tc.key);
  CHECK(cfg->tls_client_ca == tc.cert);
  CHECK(cfg->tls_refresh == absl::Seconds(5));
  CHECK(cfg->socket_group == "root");
  CHECK(cfg->socket_mode == 0660);
  cfg->state_dir = "/tmp/x";
  absl::Status ok = FinalizeServerConfig(*cfg);
  INFO(ok.message());
  CHECK(ok.ok());

  ServerConfig wrong_key = *cfg;
  wrong_key.tls_key = tc.other_key;
  absl::Status s = FinalizeServerConfig(wrong_key);
  CHECK(s.code() == absl::StatusCode::kInvalidArgument);
  CHECK(s.message().find("tls.key (--tls-key, server config " + path + ") " + tc.other_key +
                         ": is not the key of the certificate " + tc.cert) != std::string::npos);

  ServerConfig not_pem = *cfg;
  not_pem.tls_cert = path;
  s = FinalizeServerConfig(not_pem);
  CHECK(s.message().find("tls.cert") != std::string::npos);
  CHECK(s.message().find("is not a PEM certificate") != std::string::npos);

  ServerConfig missing = *cfg;
  missing.tls_client_ca = dir.path() + "/nope.pem";
  s = FinalizeServerConfig(missing);
  CHECK(s.message().find("tls.client_ca") != std::string::npos);
  CHECK(s.message().find("cannot be read") != std::string::npos);

  ServerConfig half = *cfg;
  half.tls_key.clear();
  s = FinalizeServerConfig(half);
  CHECK(s.message().find("TLS needs both tls.cert (--tls-cert) and tls.key (--tls-key)") !=
        std::string::npos);

  Spit(path, "socket_mode: 660x\n");
  CHECK(LoadServerConfig(path).status().message().find("'socket_mode' must be an octal file mode") !=
        std::string::npos);
  Spit(path, "tls: {cert: a, kee: b}\n");
  CHECK(LoadServerConfig(path).status().message().find("unknown setting 'tls.kee'") !=
        std::string::npos);
  ServerConfig no_group;
  no_group.state_dir = "/tmp/x";
  no_group.socket_group = "no-such-group-evald";
  CHECK(FinalizeServerConfig(no_group).message().find("no group named 'no-such-group-evald'") !=
        std::string::npos);
}

}  // namespace
}  // namespace evald::daemon
