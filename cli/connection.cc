#include "cli/connection.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/paths.h"
#include "yaml-cpp/yaml.h"

namespace evald::cli {
namespace {

constexpr const char* kKnownKeys[] = {"server",    "token_file", "ca_file",
                                      "cert_file", "key_file",   "insecure"};

std::string DirOf(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

std::string Absolute(const std::string& path, const std::string& base_dir) {
  if (path.empty() || path[0] == '/') return path;
  if (absl::StartsWith(path, "~/")) {
    const char* home = std::getenv("HOME");
    if (home != nullptr) return absl::StrCat(home, path.substr(1));
  }
  return absl::StrCat(base_dir, "/", path);
}

// The address gRPC dials, with a bare absolute path taken as a unix socket.
std::string Normalize(const std::string& target) {
  return absl::StartsWith(target, "/") ? UnixAddress(target) : target;
}

// `what` names the file and where it was configured ("CA file /x (--ca-file)").
absl::StatusOr<std::string> ReadFile(const std::string& path, const std::string& what) {
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read ", what, ": ", std::strerror(errno)));
  }
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

absl::Status WriteFile0600(const std::string& path, const std::string& data) {
  std::string tmp = absl::StrCat(path, ".tmp.", ::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot write ", tmp, ": ", std::strerror(errno)));
  }
  // The mode of a pre-existing temporary file is not changed by open.
  bool ok = ::fchmod(fd, 0600) == 0;
  size_t done = 0;
  while (ok && done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) done += static_cast<size_t>(n);
  }
  ok = ok && ::fsync(fd) == 0;
  int saved = errno;
  ok = ::close(fd) == 0 && ok;
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    if (ok) saved = errno;
    ::unlink(tmp.c_str());
    return absl::InvalidArgumentError(
        absl::StrCat("cannot write ", path, ": ", std::strerror(saved)));
  }
  return absl::OkStatus();
}

absl::Status MakePrivateDir(const std::string& dir) {
  if (dir.empty() || dir == "/" || dir == ".") return absl::OkStatus();
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    absl::Status parent = MakePrivateDir(DirOf(dir));
    if (!parent.ok()) return parent;
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot create ", dir, ": ", std::strerror(errno)));
    }
    return absl::OkStatus();
  }
  if (!S_ISDIR(st.st_mode)) return absl::InvalidArgumentError(dir + " is not a directory");
  return absl::OkStatus();
}

}  // namespace

std::string ClientConfigPath(const EnvLookup& env) {
  std::optional<std::string> xdg = env("XDG_CONFIG_HOME");
  if (xdg.has_value() && !xdg->empty() && (*xdg)[0] == '/') {
    return absl::StrCat(*xdg, "/evalctl/config.yaml");
  }
  std::optional<std::string> home = env("HOME");
  if (!home.has_value() || home->empty()) return "";
  return absl::StrCat(*home, "/.config/evalctl/config.yaml");
}

absl::StatusOr<ClientConfigFile> LoadClientConfig(const std::string& path) {
  ClientConfigFile cfg;
  cfg.path = path;
  if (path.empty()) return cfg;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 && (errno == ENOENT || errno == ENOTDIR)) return cfg;
  absl::StatusOr<std::string> text = ReadFile(path, "config file " + path);
  if (!text.ok()) return text.status();
  cfg.found = true;
  YAML::Node root;
  try {
    root = YAML::Load(*text);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not valid YAML (line ", e.mark.line + 1, "): ", e.msg));
  }
  if (root.IsNull()) return cfg;
  if (!root.IsMap()) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": expected a mapping of settings (server: ADDR, token_file: PATH, ...)"));
  }
  const std::string dir = DirOf(path);
  for (const auto& kv : root) {
    const std::string key = kv.first.Scalar();
    const YAML::Node& v = kv.second;
    bool known = false;
    for (const char* k : kKnownKeys) known = known || key == k;
    if (!known) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": unknown key '", key, "' (known: ", absl::StrJoin(kKnownKeys, ", "), ")"));
    }
    if (key == "insecure") {
      bool b = false;
      if (!v.IsScalar() || !YAML::convert<bool>::decode(v, b)) {
        return absl::InvalidArgumentError(absl::StrCat(path, ": 'insecure' must be true or false"));
      }
      cfg.insecure = b;
      continue;
    }
    if (!v.IsScalar() || v.Scalar().empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": '", key, "' must be ",
          key == "server" ? "an address (unix:///path.sock or host:port)" : "a file path"));
    }
    if (key == "server") cfg.server = v.Scalar();
    if (key == "token_file") cfg.token_file = Absolute(v.Scalar(), dir);
    if (key == "ca_file") cfg.ca_file = Absolute(v.Scalar(), dir);
    if (key == "cert_file") cfg.cert_file = Absolute(v.Scalar(), dir);
    if (key == "key_file") cfg.key_file = Absolute(v.Scalar(), dir);
  }
  if (cfg.cert_file.empty() != cfg.key_file.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": 'cert_file' and 'key_file' go together (a client certificate and its key)"));
  }
  return cfg;
}

absl::StatusOr<std::string> CheckToken(const std::string& raw, const std::string& source) {
  std::string token(absl::StripAsciiWhitespace(raw));
  if (token.empty())
    return absl::InvalidArgumentError(absl::StrCat("the token in ", source, " is empty"));
  for (char c : token) {
    if (c < 0x21 || c > 0x7e) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the token in ", source,
          " has characters a token cannot have (expected printable ASCII without spaces)"));
    }
  }
  return token;
}

absl::StatusOr<Connection> ResolveConnection(const ConnectionFlags& flags, const EnvLookup& env,
                                             const std::string& state_dir) {
  absl::StatusOr<ClientConfigFile> file = LoadClientConfig(ClientConfigPath(env));
  if (!file.ok()) return file.status();
  return ResolveConnectionWith(flags, env, state_dir, *file);
}

absl::StatusOr<Connection> ResolveConnectionWith(const ConnectionFlags& flags, const EnvLookup& env,
                                                 const std::string& state_dir,
                                                 const ClientConfigFile& config) {
  const std::string& config_path = config.path;
  const ClientConfigFile* file = &config;

  std::optional<std::string> env_addr = env("EVALD_ADDR");
  if (env_addr.has_value() && env_addr->empty()) env_addr.reset();
  std::optional<std::string> server = flags.server;
  const char* env_addr_c = env_addr.has_value() ? env_addr->c_str() : nullptr;
  if (!server.has_value() && env_addr_c == nullptr && !file->server.empty()) {
    server = file->server;
  }
  absl::StatusOr<ServerAddress> address = ResolveAddress(server, env_addr_c, state_dir);
  if (!address.ok()) return address.status();
  Connection c;
  c.address = *address;
  if (!flags.server.has_value() && env_addr_c == nullptr && !file->server.empty()) {
    c.address.source = config_path;
  }
  // The file's credentials belong to its server: another address given by flag or environment
  // does not get them.
  const bool file_applies =
      file->found && (file->server.empty() || Normalize(file->server) == c.address.target);
  if (file_applies) c.config_path = config_path;
  const bool is_unix = !c.address.unix_path.empty();
  const bool insecure = flags.insecure || (file_applies && file->insecure);
  c.tls = !is_unix && !insecure;

  auto pick = [&](const std::optional<std::string>& flag, const char* flag_name,
                  const char* env_name, const std::string& from_file,
                  const char* key) -> std::pair<std::string, std::string> {
    if (flag.has_value() && !flag->empty()) return {*flag, flag_name};
    if (env_name != nullptr) {
      std::optional<std::string> e = env(env_name);
      if (e.has_value() && !e->empty()) return {*e, env_name};
    }
    if (file_applies && !from_file.empty()) {
      return {from_file, absl::StrCat(config_path, " key ", key)};
    }
    return {"", ""};
  };

  if (c.tls) {
    auto [ca, ca_from] =
        pick(flags.ca_file, "--ca-file", "EVALD_CA_FILE", file->ca_file, "ca_file");
    auto [cert, cert_from] =
        pick(flags.cert_file, "--cert-file", nullptr, file->cert_file, "cert_file");
    auto [key, key_from] = pick(flags.key_file, "--key-file", nullptr, file->key_file, "key_file");
    if (!ca.empty()) {
      absl::StatusOr<std::string> pem =
          ReadFile(ca, absl::StrCat("CA file ", ca, " (", ca_from, ")"));
      if (!pem.ok()) return pem.status();
      if (!absl::StrContains(*pem, "-----BEGIN CERTIFICATE-----")) {
        return absl::InvalidArgumentError(
            absl::StrCat("CA file ", ca, " (", ca_from, ") holds no PEM certificate"));
      }
      c.ca_pem = *pem;
    }
    if (cert.empty() != key.empty()) {
      return absl::InvalidArgumentError(
          "a client certificate needs its key: give both --cert-file and --key-file");
    }
    if (!cert.empty()) {
      absl::StatusOr<std::string> pem =
          ReadFile(cert, absl::StrCat("client certificate ", cert, " (", cert_from, ")"));
      if (!pem.ok()) return pem.status();
      c.cert_pem = *pem;
      pem = ReadFile(key, absl::StrCat("client key ", key, " (", key_from, ")"));
      if (!pem.ok()) return pem.status();
      c.key_pem = *pem;
    }
  }
  c.address.tls = c.tls;

  std::optional<std::string> env_token = env("EVALD_TOKEN");
  if (env_token.has_value() && !env_token->empty()) {
    absl::StatusOr<std::string> t = CheckToken(*env_token, "EVALD_TOKEN");
    if (!t.ok()) return t.status();
    c.token = *t;
    c.token_source = "EVALD_TOKEN";
  } else if (file_applies && !file->token_file.empty()) {
    const std::string& tf = file->token_file;
    const std::string what = absl::StrCat("token file ", tf, " (", config_path, " key token_file)");
    absl::StatusOr<std::string> raw = ReadFile(tf, what);
    if (!raw.ok()) return raw.status();
    absl::StatusOr<std::string> t = CheckToken(*raw, what);
    if (!t.ok()) return t.status();
    c.token = *t;
    c.token_source = tf;
    struct stat st {};
    if (::stat(tf.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
      c.warnings.push_back(
          absl::StrCat("token file ", tf, " can be read by others (mode 0",
                       absl::StrCat((st.st_mode >> 6) & 7, (st.st_mode >> 3) & 7, st.st_mode & 7),
                       "); run: chmod 600 ", tf));
    }
  }
  return c;
}

absl::StatusOr<LoginFiles> WriteLoginFiles(const std::string& config_path,
                                           const ClientConfigFile& settings,
                                           const std::string& token) {
  if (config_path.empty()) {
    return absl::InvalidArgumentError("no place for the config file: set HOME or XDG_CONFIG_HOME");
  }
  const std::string dir = DirOf(config_path);
  absl::Status s = MakePrivateDir(dir);
  if (!s.ok()) return s;
  // The token's directory is evalctl's own; tighten it even if it existed.
  if (::chmod(dir.c_str(), 0700) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot chmod 0700 ", dir, ": ", std::strerror(errno)));
  }
  LoginFiles out;
  out.config_path = config_path;
  YAML::Emitter y;
  y << YAML::BeginMap;
  y << YAML::Key << "server" << YAML::Value << settings.server;
  if (!token.empty()) {
    out.token_path = dir + "/token";
    s = WriteFile0600(out.token_path, token + "\n");
    if (!s.ok()) return s;
    y << YAML::Key << "token_file" << YAML::Value << out.token_path;
  }
  if (!settings.ca_file.empty()) y << YAML::Key << "ca_file" << YAML::Value << settings.ca_file;
  if (!settings.cert_file.empty()) {
    y << YAML::Key << "cert_file" << YAML::Value << settings.cert_file;
    y << YAML::Key << "key_file" << YAML::Value << settings.key_file;
  }
  if (settings.insecure) y << YAML::Key << "insecure" << YAML::Value << true;
  y << YAML::EndMap;
  s = WriteFile0600(config_path,
                    absl::StrCat("# written by evalctl login; see docs/cli.md\n", y.c_str(), "\n"));
  if (!s.ok()) return s;
  return out;
}

}  // namespace evald::cli
