// login: check that evald answers with the given address, TLS settings and token, then save them
// in evalctl's config file (token in its own 0600 file) so later commands need no flags.
#include <limits.h>
#include <termios.h>
#include <unistd.h>

#include <fstream>
#include <istream>
#include <iterator>
#include <memory>
#include <ostream>

#include "absl/strings/str_cat.h"
#include "cli/commands/commands.h"

namespace evald::cli {
namespace {

std::string AbsolutePath(const std::string& path) {
  if (path.empty() || path[0] == '/') return path;
  char buf[PATH_MAX];
  if (::getcwd(buf, sizeof(buf)) == nullptr) return path;
  return absl::StrCat(buf, "/", path);
}

// One line from a terminal with echo off, so the token is not shown as it is typed or pasted.
std::string ReadHidden(std::istream& in, std::ostream& err, const std::string& prompt) {
  err << prompt << std::flush;
  termios old{};
  bool restore = ::tcgetattr(STDIN_FILENO, &old) == 0;
  if (restore) {
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    ::tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
  }
  std::string line;
  std::getline(in, line);
  if (restore) ::tcsetattr(STDIN_FILENO, TCSANOW, &old);
  err << "\n";
  return line;
}

}  // namespace

int RunLogin(const ConnectionFlags& flags, const LoginOptions& options, const EnvLookup& env,
             const std::string& state_dir, std::istream& in, bool in_tty, std::ostream& out,
             std::ostream& err) {
  if (!flags.server.has_value() || flags.server->empty()) {
    err << "evalctl: login needs the server: evalctl login --server ADDR (unix:///path.sock or "
           "host:port)\n";
    return kExitBadInput;
  }
  if (options.no_token && !options.token_file.empty()) {
    err << "evalctl: login: --no-token and --token-file exclude each other\n";
    return kExitBadInput;
  }
  ClientConfigFile settings;
  settings.server = *flags.server;
  settings.ca_file = AbsolutePath(flags.ca_file.value_or(""));
  settings.cert_file = AbsolutePath(flags.cert_file.value_or(""));
  settings.key_file = AbsolutePath(flags.key_file.value_or(""));
  settings.insecure = flags.insecure;
  ConnectionFlags check_flags = flags;
  check_flags.ca_file = settings.ca_file;
  check_flags.cert_file = settings.cert_file;
  check_flags.key_file = settings.key_file;

  std::string token;
  if (!options.no_token) {
    std::string raw, source;
    if (!options.token_file.empty()) {
      source = absl::StrCat("token file ", options.token_file);
      std::ifstream f(options.token_file);
      if (!f) {
        err << "evalctl: login: cannot read " << source << "\n";
        return kExitBadInput;
      }
      raw.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
    } else if (in_tty) {
      source = "the terminal";
      raw = ReadHidden(in, err, absl::StrCat("Token for ", settings.server, " (not shown): "));
    } else {
      source = "stdin";
      raw.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    absl::StatusOr<std::string> checked = CheckToken(raw, source);
    if (!checked.ok()) {
      err << "evalctl: login: " << checked.status().message()
          << " (--no-token saves the address alone, e.g. for a unix socket)\n";
      return kExitBadInput;
    }
    token = *checked;
  }

  // Only what login was given counts: not EVALD_* nor the config file being replaced.
  EnvLookup clean = [&env](const std::string& name) -> std::optional<std::string> {
    if (name == "EVALD_ADDR" || name == "EVALD_TOKEN" || name == "EVALD_CA_FILE") {
      return std::nullopt;
    }
    return env(name);
  };
  absl::StatusOr<Connection> connection =
      ResolveConnectionWith(check_flags, clean, state_dir, ClientConfigFile{});
  if (!connection.ok()) {
    err << "evalctl: login: " << connection.status().message() << "\n";
    return kExitBadInput;
  }
  connection->token = token;
  std::unique_ptr<EvalApi> api = NewGrpcEvalApi(*connection);
  v1::ServerInfo info;
  absl::Status s = api->GetServerInfo(false, &info);
  if (!s.ok()) {
    int code = ReportFailure(s, connection->address, err);
    err << "evalctl: login: nothing written\n";
    return code;
  }
  absl::StatusOr<LoginFiles> files = WriteLoginFiles(ClientConfigPath(env), settings, token);
  if (!files.ok()) {
    err << "evalctl: login: " << files.status().message() << "\n";
    return kExitFailed;
  }
  out << "evald " << info.version() << " answered at " << connection->address.target
      << (connection->tls ? " (TLS)" : "");
  // Who evald takes this token (or, on its socket, this uid) for.
  if (!info.caller_user().empty()) {
    out << " as " << info.caller_user();
    if (!info.caller_role().empty()) out << " (" << info.caller_role() << ")";
  }
  out << "\n";
  out << "wrote " << files->config_path << "\n";
  if (!files->token_path.empty()) out << "wrote " << files->token_path << " (mode 0600)\n";
  return kExitOk;
}

}  // namespace evald::cli
