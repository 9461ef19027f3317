#include "daemon/server_config.h"

#include <unistd.h>

#include <filesystem>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/config/compose.h"
#include "core/paths.h"
#include "core/status_macros.h"
#include "yaml-cpp/yaml.h"

namespace evald::daemon {
namespace {

namespace fs = std::filesystem;

absl::Status Expect(bool ok, const std::string& file, const YAML::Node& node,
                    const std::string& key, const std::string& what) {
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(file, ":", node.Mark().line + 1, ":",
                                                 node.Mark().column + 1, ": '", key,
                                                 "' must be ", what));
}

std::string SelfDir() {
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? "" : exe.parent_path().string();
}

}  // namespace

absl::StatusOr<ServerConfig> LoadServerConfig(const std::string& path) {
  ServerConfig cfg;
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    return absl::NotFoundError(absl::StrCat("cannot read server config ", path));
  } catch (const YAML::ParserException& e) {
    return absl::InvalidArgumentError(absl::StrCat(path, ":", e.mark.line + 1, ":",
                                                   e.mark.column + 1, ": ", e.msg));
  }
  if (root.IsNull()) return cfg;
  if (!root.IsMap()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": expected a mapping of settings"));
  }
  static const std::set<std::string> kKeys = {
      "state_dir", "listen",       "log_level",         "log_format", "supervisor_tick_ms",
      "stop_grace_seconds", "runner_path", "container_runtime", "eval_binary", "configs_dir",
      "max_request_bytes", "max_running_jobs", "insecure_tcp", "executor_poll_ms", "metrics_listen"};
  try {
    for (const auto& kv : root) {
      std::string key = kv.first.as<std::string>();
      const YAML::Node& v = kv.second;
      if (kKeys.count(key) == 0) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ":", kv.first.Mark().line + 1, ": unknown setting '", key,
                         "'; known: ", absl::StrJoin(kKeys, ", ")));
      }
      auto scalar = [&](std::string* out) -> absl::Status {
        EVALD_RETURN_IF_ERROR(Expect(v.IsScalar(), path, v, key, "a string"));
        *out = v.as<std::string>();
        return absl::OkStatus();
      };
      auto integer = [&](int64_t* out, int64_t min) -> absl::Status {
        int64_t n = 0;
        bool ok = v.IsScalar() && YAML::convert<int64_t>::decode(v, n) && n >= min;
        EVALD_RETURN_IF_ERROR(Expect(ok, path, v, key, absl::StrCat("an integer >= ", min)));
        *out = n;
        return absl::OkStatus();
      };
      auto list = [&](std::vector<std::string>* out) -> absl::Status {
        if (v.IsScalar()) {
          out->push_back(v.as<std::string>());
          return absl::OkStatus();
        }
        EVALD_RETURN_IF_ERROR(Expect(v.IsSequence(), path, v, key, "a list of strings"));
        for (const auto& item : v) {
          EVALD_RETURN_IF_ERROR(Expect(item.IsScalar(), path, item, key, "a list of strings"));
          out->push_back(item.as<std::string>());
        }
        return absl::OkStatus();
      };
      int64_t n = 0;
      if (key == "insecure_tcp") {
        bool ok = v.IsScalar() && YAML::convert<bool>::decode(v, cfg.insecure_tcp);
        EVALD_RETURN_IF_ERROR(Expect(ok, path, v, key, "true or false"));
      }
      if (key == "state_dir") EVALD_RETURN_IF_ERROR(scalar(&cfg.state_dir));
      if (key == "listen") EVALD_RETURN_IF_ERROR(list(&cfg.listen));
      if (key == "log_level") EVALD_RETURN_IF_ERROR(scalar(&cfg.log_level));
      if (key == "log_format") EVALD_RETURN_IF_ERROR(scalar(&cfg.log_format));
      if (key == "runner_path") EVALD_RETURN_IF_ERROR(scalar(&cfg.runner_path));
      if (key == "container_runtime") EVALD_RETURN_IF_ERROR(scalar(&cfg.container_runtime));
      if (key == "eval_binary") EVALD_RETURN_IF_ERROR(scalar(&cfg.eval_binary));
      if (key == "configs_dir") EVALD_RETURN_IF_ERROR(scalar(&cfg.configs_dir));
      if (key == "metrics_listen") EVALD_RETURN_IF_ERROR(scalar(&cfg.metrics_listen));
      if (key == "supervisor_tick_ms") {
        EVALD_RETURN_IF_ERROR(integer(&n, 10));
        cfg.tick = absl::Milliseconds(n);
      }
      if (key == "stop_grace_seconds") {
        EVALD_RETURN_IF_ERROR(integer(&n, 0));
        cfg.stop_grace = absl::Seconds(n);
      }
      if (key == "max_running_jobs") {
        EVALD_RETURN_IF_ERROR(integer(&n, 0));
        cfg.max_running_jobs = static_cast<int>(std::min<int64_t>(n, 1 << 20));
      }
      if (key == "executor_poll_ms") {
        EVALD_RETURN_IF_ERROR(
            Expect(v.IsMap(), path, v, key, "a mapping of executor name: milliseconds"));
        for (const auto& entry : v) {
          int64_t ms = 0;
          bool ok = entry.second.IsScalar() &&
                    YAML::convert<int64_t>::decode(entry.second, ms) && ms >= 10;
          EVALD_RETURN_IF_ERROR(Expect(ok, path, entry.second,
                                       absl::StrCat(key, ".", entry.first.as<std::string>()),
                                       "an integer >= 10 (milliseconds)"));
          cfg.executor_poll[entry.first.as<std::string>()] = absl::Milliseconds(ms);
        }
      }
      if (key == "max_request_bytes") {
        EVALD_RETURN_IF_ERROR(integer(&n, 1024));
        cfg.max_request_bytes = static_cast<int>(std::min<int64_t>(n, 1 << 30));
      }
    }
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", e.what()));
  }
  return cfg;
}

absl::Status FinalizeServerConfig(ServerConfig& cfg) {
  if (cfg.state_dir.empty()) cfg.state_dir = DefaultStateDir();
  std::error_code ec;
  fs::path state = fs::absolute(cfg.state_dir, ec);
  cfg.state_dir = state.lexically_normal().string();
  if (cfg.listen.empty()) {
    std::string socket = DefaultSocketPath(cfg.state_dir);
    if (socket.size() > kMaxUnixSocketPath) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the default socket path ", socket, " is ", socket.size(),
          " bytes, over the 107-byte limit of unix sockets; pass --listen unix:///short/path.sock"));
    }
    cfg.listen.push_back(UnixAddress(socket));
  }
  for (const std::string& addr : cfg.listen) {
    if (absl::StartsWith(addr, "unix:")) {
      std::string path = addr.substr(absl::StartsWith(addr, "unix://") ? 7 : 5);
      if (path.empty()) return absl::InvalidArgumentError(absl::StrCat("empty socket path in ", addr));
      if (path.size() > kMaxUnixSocketPath) {
        return absl::InvalidArgumentError(absl::StrCat("socket path ", path, " is ", path.size(),
                                                       " bytes; unix sockets allow 107"));
      }
    } else if (addr.find(':') == std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "listen address '", addr, "' is neither unix:///abs/path.sock nor host:port"));
    } else if (!cfg.insecure_tcp) {
      // Loopback is no protection on a machine with several users: any of them could connect.
      return absl::InvalidArgumentError(absl::StrCat(
          "listen address '", addr,
          "' is not a unix socket, and evald's API has no authentication or TLS yet: anyone who "
          "can connect (any local user, even on 127.0.0.1) could run commands as evald's user. "
          "Use unix:///abs/path.sock (mode 0600), or accept that with --insecure-tcp (server "
          "config: insecure_tcp: true)"));
    }
  }
  if (cfg.runner_path.empty()) cfg.runner_path = SelfDir() + "/evalrun";
  if (cfg.configs_dir.empty()) cfg.configs_dir = config::PackagedConfigDir();
  if (cfg.log_format != "text" && cfg.log_format != "json") {
    return absl::InvalidArgumentError(
        absl::StrCat("log format '", cfg.log_format, "' is not text or json"));
  }
  return absl::OkStatus();
}

}  // namespace evald::daemon
