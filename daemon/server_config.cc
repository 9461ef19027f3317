#include "daemon/server_config.h"

#include <grp.h>
#include <unistd.h>

#include <filesystem>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/config/compose.h"
#include "core/paths.h"
#include "core/status_macros.h"
#include "daemon/tls_credentials.h"
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

// " (server config FILE)" when the settings came from a file, for error messages.
std::string SourceNote(const ServerConfig& cfg) {
  return cfg.config_file.empty() ? "" : absl::StrCat(" (server config ", cfg.config_file, ")");
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
      "max_request_bytes", "max_running_jobs", "insecure_tcp", "executor_poll_ms", "metrics_listen",
      "insecure", "tls", "socket_group", "socket_mode", "job_nice", "output_roots",
      "command_deployments", "limits", "http_auth", "http_max_streams"};
  cfg.config_file = path;
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
      if (key == "insecure_tcp" || key == "insecure") {
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
      if (key == "socket_group") EVALD_RETURN_IF_ERROR(scalar(&cfg.socket_group));
      if (key == "socket_mode") {
        // Octal as written ("0660" or 0660); YAML would read 0660 as decimal 660 otherwise.
        std::string text = v.IsScalar() ? v.as<std::string>() : "";
        bool ok = !text.empty() && text.size() <= 4 &&
                  text.find_first_not_of("01234567") == std::string::npos;
        EVALD_RETURN_IF_ERROR(
            Expect(ok, path, v, key, "an octal file mode such as \"0600\" or \"0660\""));
        cfg.socket_mode = std::stoi(text, nullptr, 8) & 0777;
      }
      if (key == "tls") {
        EVALD_RETURN_IF_ERROR(Expect(v.IsMap(), path, v, key,
                                     "a mapping with cert, key, client_ca, refresh_seconds"));
        for (const auto& entry : v) {
          std::string sub = entry.first.as<std::string>();
          const YAML::Node& e = entry.second;
          std::string name = absl::StrCat("tls.", sub);
          if (sub == "cert" || sub == "key" || sub == "client_ca") {
            EVALD_RETURN_IF_ERROR(Expect(e.IsScalar(), path, e, name, "a PEM file path"));
            (sub == "cert" ? cfg.tls_cert : sub == "key" ? cfg.tls_key : cfg.tls_client_ca) =
                e.as<std::string>();
          } else if (sub == "refresh_seconds") {
            bool ok = e.IsScalar() && YAML::convert<int64_t>::decode(e, n) && n >= 1;
            EVALD_RETURN_IF_ERROR(Expect(ok, path, e, name, "an integer >= 1 (seconds)"));
            cfg.tls_refresh = absl::Seconds(n);
          } else {
            return absl::InvalidArgumentError(
                absl::StrCat(path, ":", entry.first.Mark().line + 1, ": unknown setting '", name,
                             "'; known: tls.cert, tls.key, tls.client_ca, tls.refresh_seconds"));
          }
        }
      }
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
      if (key == "output_roots") {
        EVALD_RETURN_IF_ERROR(list(&cfg.output_roots));
        for (const std::string& allowed : cfg.output_roots) {
          EVALD_RETURN_IF_ERROR(Expect(!allowed.empty() && allowed[0] == '/', path, v, key,
                                       "a list of absolute paths"));
        }
      }
      if (key == "http_auth") {
        EVALD_RETURN_IF_ERROR(scalar(&cfg.http_auth));
        EVALD_RETURN_IF_ERROR(Expect(cfg.http_auth == "auto" || cfg.http_auth == "tokens", path,
                                     v, key, "auto or tokens"));
      }
      if (key == "http_max_streams") {
        EVALD_RETURN_IF_ERROR(integer(&n, 1));
        EVALD_RETURN_IF_ERROR(Expect(n <= 1024, path, v, key, "an integer from 1 to 1024"));
        cfg.http_max_streams = static_cast<int>(n);
      }
      if (key == "command_deployments") {
        EVALD_RETURN_IF_ERROR(scalar(&cfg.command_deployments));
        const std::string& c = cfg.command_deployments;
        EVALD_RETURN_IF_ERROR(Expect(c == "all" || c == "admins" || c == "none", path, v, key,
                                     "one of all, admins, none"));
      }
      if (key == "limits") {
        EVALD_RETURN_IF_ERROR(Expect(v.IsMap(), path, v, key,
                                     "a mapping with submits_per_minute and/or active_jobs"));
        for (const auto& entry : v) {
          const std::string name = entry.first.as<std::string>();
          const std::string full = absl::StrCat("limits.", name);
          int64_t limit = -1;
          const bool number = entry.second.IsScalar() &&
                              YAML::convert<int64_t>::decode(entry.second, limit) && limit >= 0;
          if (name != "submits_per_minute" && name != "active_jobs") {
            return absl::InvalidArgumentError(absl::StrCat(
                path, ":", entry.first.Mark().line + 1, ": unknown setting '", full,
                "'; known: limits.submits_per_minute, limits.active_jobs"));
          }
          EVALD_RETURN_IF_ERROR(Expect(number, path, entry.second, full,
                                       "an integer >= 0 (per user; 0 = no limit)"));
          const int clamped = static_cast<int>(std::min<int64_t>(limit, 1 << 20));
          if (name == "submits_per_minute") cfg.limit_submits_per_minute = clamped;
          if (name == "active_jobs") cfg.limit_active_jobs = clamped;
        }
      }
      if (key == "job_nice") {
        EVALD_RETURN_IF_ERROR(integer(&n, 0));
        EVALD_RETURN_IF_ERROR(Expect(n <= 19, path, v, key, "an integer from 0 to 19"));
        cfg.job_nice = static_cast<int>(n);
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

bool IsLoopbackAddress(const std::string& host_port) {
  size_t colon = host_port.rfind(':');
  std::string host = host_port.substr(0, colon == std::string::npos ? host_port.size() : colon);
  if (absl::StartsWith(host, "[") && absl::EndsWith(host, "]")) {
    host = host.substr(1, host.size() - 2);
  }
  return host == "localhost" || host == "::1" || absl::StartsWith(host, "127.");
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
    } else if (cfg.tls_cert.empty()) {
      if (!cfg.insecure_tcp) {
        return absl::InvalidArgumentError(absl::StrCat(
            "listen address '", addr, "' is not a unix socket and TLS is not configured",
            SourceNote(cfg), ": TCP needs a certificate and key (server config tls: {cert: ",
            "FILE.pem, key: FILE.pem}, or --tls-cert/--tls-key). Plain TCP is allowed only on a "
            "loopback address with --insecure-tcp (server config: insecure: true)"));
      }
      if (!IsLoopbackAddress(addr)) {
        // Tokens would cross the network in clear text.
        return absl::InvalidArgumentError(absl::StrCat(
            "listen address '", addr, "'", SourceNote(cfg),
            ": plain TCP (insecure) is allowed only on a loopback address (127.0.0.1, [::1], "
            "localhost); configure tls.cert and tls.key to listen on other addresses"));
      }
    }
  }
  if (cfg.tls_cert.empty() != cfg.tls_key.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "TLS needs both tls.cert (--tls-cert) and tls.key (--tls-key)", SourceNote(cfg),
        "; only ", cfg.tls_cert.empty() ? "tls.key" : "tls.cert", " is set"));
  }
  if (!cfg.tls_client_ca.empty() && cfg.tls_cert.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tls.client_ca (--tls-client-ca) is set but tls.cert and tls.key are not", SourceNote(cfg),
        "; client certificates need TLS"));
  }
  if (!cfg.tls_cert.empty()) EVALD_RETURN_IF_ERROR(CheckTlsFiles(cfg));
  if (!cfg.socket_group.empty() && getgrnam(cfg.socket_group.c_str()) == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("socket_group (--socket-group)", SourceNote(cfg),
                                                   ": no group named '", cfg.socket_group,
                                                   "' on this machine"));
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
