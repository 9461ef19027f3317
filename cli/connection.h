// File: connection.h
//
// How evalctl reaches evald and who it says it is: the server address, TLS material and bearer
// token, from (highest first) the command line, the environment and evalctl's config file
// `${XDG_CONFIG_HOME:-$HOME/.config}/evalctl/config.yaml`, else the default unix socket. Also the
// writing side used by `evalctl login` (config file and a 0600 token file in a 0700 dir).
//
// The token is a secret: it is only ever placed in the `authorization` metadata of calls
// (cli/client.cc). No error message or output here contains it.
//
// Callers: cli/main.cc (ResolveConnection before creating the API), the login command.
//
//   absl::StatusOr<Connection> c = ResolveConnection(flags, ProcessEnvLookup(), DefaultStateDir());
//   if (!c.ok()) { std::cerr << "evalctl: " << c.status().message() << "\n"; return 2; }
//   std::unique_ptr<EvalApi> api = NewGrpcEvalApi(*c);
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cli/client.h"
#include "cli/secrets.h"

namespace evald::cli {

// The keys of config.yaml. Relative paths are relative to the file's directory.
struct ClientConfigFile {
  std::string path;  // the file looked at
  bool found = false;
  std::string server;      // server: ADDR
  std::string token_file;  // token_file: PATH (absolute once loaded)
  std::string ca_file;     // ca_file: PEM of the CA that signed evald's certificate
  std::string cert_file;   // cert_file + key_file: client certificate for mTLS
  std::string key_file;
  bool insecure = false;  // insecure: true — plain TCP, no TLS
};

// ${XDG_CONFIG_HOME:-$HOME/.config}/evalctl/config.yaml ("" when neither variable is set).
std::string ClientConfigPath(const EnvLookup& env);

// Reads config.yaml. A missing file is not an error (found = false). Anything else wrong is
// InvalidArgument naming the file, the key and what was expected, e.g.
//   "/home/ana/.config/evalctl/config.yaml: 'insecure' must be true or false"
absl::StatusOr<ClientConfigFile> LoadClientConfig(const std::string& path);

// Global command-line flags; nullopt / false when not given.
struct ConnectionFlags {
  std::optional<std::string> server;
  std::optional<std::string> ca_file;
  std::optional<std::string> cert_file;
  std::optional<std::string> key_file;
  bool insecure = false;
};

// Everything needed to open the channel. `token` is secret.
struct Connection {
  ServerAddress address;
  bool tls = false;    // host:port without insecure
  std::string ca_pem;  // empty: the system's root certificates
  std::string cert_pem;
  std::string key_pem;
  std::string token;         // "" = send no authorization metadata
  std::string token_source;  // "EVALD_TOKEN" or the token file's path (for messages)
  std::string config_path;   // the config file used, "" if none applied
  std::vector<std::string>
      warnings;  // printed on stderr by main (e.g. a token file others can read)
};

// Precedence per setting: flag > environment (EVALD_ADDR, EVALD_TOKEN, EVALD_CA_FILE) > config
// file > default socket. The file's token_file, ca_file, cert/key and insecure apply only when
// the address is the file's `server` (or the file names none), so its token is never sent to a
// server given on the command line for another. host:port uses TLS unless insecure is asked
// for; a unix socket never does. InvalidArgument (exit 2) for a bad file, an unreadable PEM or
// token file, an empty token, or a token with characters metadata cannot carry.
absl::StatusOr<Connection> ResolveConnection(const ConnectionFlags& flags, const EnvLookup& env,
                                             const std::string& state_dir);

// ResolveConnection with `config` as the file's contents (login: an empty one).
absl::StatusOr<Connection> ResolveConnectionWith(const ConnectionFlags& flags, const EnvLookup& env,
                                                 const std::string& state_dir,
                                                 const ClientConfigFile& config);

// A token as a bearer credential: surrounding whitespace stripped, then non-empty and printable
// ASCII without spaces. `source` names where it came from in the error (never the value).
absl::StatusOr<std::string> CheckToken(const std::string& raw, const std::string& source);

// What `evalctl login` writes.
struct LoginFiles {
  std::string config_path;
  std::string token_path;  // "" when no token was written
};

// Writes `token` (if not empty) to <config dir>/token with mode 0600 and config.yaml (0600) with
// `settings` (token_file pointing at that file), in a directory created or tightened to 0700.
// Each file is written to a temporary name and renamed, so a reader never sees half a file.
absl::StatusOr<LoginFiles> WriteLoginFiles(const std::string& config_path,
                                           const ClientConfigFile& settings,
                                           const std::string& token);

// The gRPC EvalApi over `connection`: TLS credentials (its CA, or the system roots; client
// certificate when given) for a TLS address, else an insecure channel; every call carries
// `authorization: Bearer <token>` when there is a token. Implemented in cli/client.cc.
std::unique_ptr<EvalApi> NewGrpcEvalApi(const Connection& connection);

}  // namespace evald::cli
