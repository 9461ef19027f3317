#include "daemon/server_config.h"

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
       "executor_poll_ms: {local: 500, slurm: 5000}\n");
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

// TCP has no authentication: on a shared machine any local user could run commands as evald's
// user through a loopback port, so it takes an explicit opt-in.
TEST_CASE("a TCP listen address is refused unless insecure_tcp is set") {
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
  CHECK(s.message().find("--insecure-tcp (server config: insecure_tcp: true)") !=
        std::string::npos);

  cfg->insecure_tcp = true;
  CHECK(FinalizeServerConfig(*cfg).ok());

  Spit(path, "listen: [0.0.0.0:7070]\ninsecure_tcp: true\n");
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

}  // namespace
}  // namespace evald::daemon
