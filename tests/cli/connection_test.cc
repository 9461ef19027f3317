// evalctl's connection settings (cli/connection.h): precedence of flag, environment and config
// file, errors that name the file and key, token checks and what `login` writes.
#include "cli/connection.h"

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <map>
#include <string>

#include "absl/strings/match.h"

namespace evald::cli {
namespace {

constexpr char kToken[] = "tok-SECRET-0123456789abcdef";

std::string MakeTempDir() {
  char tmpl[] = "/tmp/evalctl-conn-XXXXXX";
  return mkdtemp(tmpl);
}

void Write(const std::string& path, const std::string& text, mode_t mode = 0600) {
  std::ofstream(path) << text;
  chmod(path.c_str(), mode);
}

int Mode(const std::string& path) {
  struct stat st {};
  REQUIRE(stat(path.c_str(), &st) == 0);
  return st.st_mode & 0777;
}

// A home with XDG_CONFIG_HOME=<home>/cfg; the config file is <home>/cfg/evalctl/config.yaml.
struct Home {
  Home() : dir(MakeTempDir()) {
    mkdir((dir + "/cfg").c_str(), 0700);
    mkdir((dir + "/cfg/evalctl").c_str(), 0700);
    env["XDG_CONFIG_HOME"] = dir + "/cfg";
    env["HOME"] = dir;
    Write(dir + "/ca.pem", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
  }
  ~Home() { std::system(("rm -rf '" + dir + "'").c_str()); }
  std::string config() const { return dir + "/cfg/evalctl/config.yaml"; }
  EnvLookup lookup() const {
    return [this](const std::string& n) -> std::optional<std::string> {
      auto it = env.find(n);
      if (it == env.end()) return std::nullopt;
      return it->second;
    };
  }
  absl::StatusOr<Connection> Resolve(const ConnectionFlags& flags = {}) const {
    return ResolveConnection(flags, lookup(), dir + "/state");
  }
  std::string dir;
  std::map<std::string, std::string> env;
};

TEST_CASE("config file path honours XDG_CONFIG_HOME, else HOME/.config") {
  std::map<std::string, std::string> env = {{"HOME", "/home/ana"}};
  auto lookup = [&](const std::string& n) -> std::optional<std::string> {
    if (env.count(n) == 0) return std::nullopt;
    return env[n];
  };
  CHECK(ClientConfigPath(lookup) == "/home/ana/.config/evalctl/config.yaml");
  env["XDG_CONFIG_HOME"] = "/x/cfg";
  CHECK(ClientConfigPath(lookup) == "/x/cfg/evalctl/config.yaml");
  env["XDG_CONFIG_HOME"] = "relative";  // the XDG spec says: ignore a relative one
  CHECK(ClientConfigPath(lookup) == "/home/ana/.config/evalctl/config.yaml");
}

TEST_CASE("server: flag beats EVALD_ADDR beats the config file beats the default socket") {
  Home h;
  absl::StatusOr<Connection> c = h.Resolve();
  REQUIRE(c.ok());
  CHECK(c->address.target == "unix://" + h.dir + "/state/evald.sock");
  CHECK(c->address.source == "default");

  Write(h.config(), "server: evald.example:7443\nca_file: ../../ca.pem\n");
  c = h.Resolve();
  REQUIRE(c.ok());
  CHECK(c->address.target == "evald.example:7443");
  CHECK(c->address.source == h.config());
  CHECK(c->tls);
  CHECK(absl::StartsWith(c->ca_pem, "-----BEGIN CERTIFICATE-----"));

  h.env["EVALD_ADDR"] = "/run/evald/evald.sock";
  c = h.Resolve();
  REQUIRE(c.ok());
  CHECK(c->address.target == "unix:///run/evald/evald.sock");
  CHECK(c->address.source == "EVALD_ADDR");
  CHECK_FALSE(c->tls);

  ConnectionFlags flags;
  flags.server = "other.example:7443";
  c = h.Resolve(flags);
  REQUIRE(c.ok());
  CHECK(c->address.target == "other.example:7443");
  CHECK(c->address.source == "--server");
  CHECK(c->tls);
  CHECK(c->ca_pem.empty());  // the file's CA is for its own server: system roots here
}

TEST_CASE("token: EVALD_TOKEN beats the file's token_file, which goes only to the file's server") {
  Home h;
  Write(h.dir + "/token", std::string(kToken) + "\n");
  Write(h.config(), "server: evald.example:7443\ntoken_file: " + h.dir + "/token\n");
  absl::StatusOr<Connection> c = h.Resolve();
  REQUIRE(c.ok());
  CHECK(c->token == kToken);  // trailing newline stripped
  CHECK(c->token_source == h.dir + "/token");
  CHECK(c->warnings.empty());

  // The same server by flag still gets it; another one does not.
  ConnectionFlags flags;
  flags.server = "evald.example:7443";
  CHECK(h.Resolve(flags)->token == kToken);
  flags.server = "elsewhere.example:7443";
  CHECK(h.Resolve(flags)->token.empty());

  h.env["EVALD_TOKEN"] = "env-token-value";
  c = h.Resolve();
  REQUIRE(c.ok());
  CHECK(c->token == "env-token-value");
  CHECK(c->token_source == "EVALD_TOKEN");
  // EVALD_TOKEN is the user's own choice: it goes to whatever server was asked for.
  CHECK(h.Resolve(flags)->token == "env-token-value");
}

TEST_CASE("a token file others can read is used with a warning naming the file, not the token") {
  Home h;
  Write(h.dir + "/token", kToken, 0644);
  Write(h.config(), "token_file: " + h.dir + "/token\n");
  absl::StatusOr<Connection> c = h.Resolve();
  REQUIRE(c.ok());
  REQUIRE(c->warnings.size() == 1);
  CHECK(absl::StrContains(c->warnings[0], "mode 0644"));
  CHECK(absl::StrContains(c->warnings[0], "chmod 600 " + h.dir + "/token"));
  CHECK_FALSE(absl::StrContains(c->warnings[0], kToken));
}

TEST_CASE("insecure: plain TCP only when asked, by flag or by the file") {
  Home h;
  ConnectionFlags flags;
  flags.server = "127.0.0.1:7070";
  CHECK(h.Resolve(flags)->tls);
  flags.insecure = true;
  CHECK_FALSE(h.Resolve(flags)->tls);
  Write(h.config(), "server: 127.0.0.1:7070\ninsecure: true\n");
  CHECK_FALSE(h.Resolve()->tls);
  CHECK_FALSE(h.Resolve()->address.tls);
}

TEST_CASE("bad config files: the error names the file, the key and what was expected") {
  Home h;
  struct Case {
    std::string text;
    std::string expected;
  };
  for (const Case& k : std::vector<Case>{
           {"insecure: maybe\n", "'insecure' must be true or false"},
           {"server: [a, b]\n", "'server' must be an address (unix:///path.sock or host:port)"},
           {"token_file: {a: 1}\n", "'token_file' must be a file path"},
           {"tokenfile: /x\n",
            "unknown key 'tokenfile' (known: server, token_file, ca_file, cert_file, key_file, "
            "insecure)"},
           {"- server\n", "expected a mapping of settings"},
           {"server: [unclosed\n", "not valid YAML (line "},
           {"cert_file: /c.pem\n", "'cert_file' and 'key_file' go together"},
       }) {
    Write(h.config(), k.text);
    absl::StatusOr<Connection> c = h.Resolve();
    INFO(k.text);
    REQUIRE_FALSE(c.ok());
    CHECK(c.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(absl::StartsWith(c.status().message(), h.config() + ": "));
    CHECK(absl::StrContains(c.status().message(), k.expected));
  }
  // An empty file is no settings, not an error.
  Write(h.config(), "");
  CHECK(h.Resolve().ok());
}

TEST_CASE("unreadable or bad files it points at are named, the token never") {
  Home h;
  Write(h.config(), "server: evald.example:7443\ntoken_file: missing-token\n");
  absl::StatusOr<Connection> c = h.Resolve();
  REQUIRE_FALSE(c.ok());
  CHECK(absl::StrContains(c.status().message(), "cannot read token file " + h.dir +
                                                    "/cfg/evalctl/missing-token (" + h.config() +
                                                    " key token_file)"));

  Write(h.dir + "/token", "two words " + std::string(kToken));
  Write(h.config(), "token_file: " + h.dir + "/token\n");
  c = h.Resolve();
  REQUIRE_FALSE(c.ok());
  CHECK(absl::StrContains(c.status().message(), "expected printable ASCII without spaces"));
  CHECK_FALSE(absl::StrContains(c.status().message(), kToken));
  Write(h.dir + "/token", "\n");
  CHECK(absl::StrContains(h.Resolve().status().message(), "is empty"));

  ConnectionFlags flags;
  flags.server = "evald.example:7443";
  flags.ca_file = h.dir + "/token";  // not a PEM
  Write(h.dir + "/token", kToken);
  c = h.Resolve(flags);
  REQUIRE_FALSE(c.ok());
  CHECK(c.status().message() == "CA file " + h.dir + "/token (--ca-file) holds no PEM certificate");
  flags.ca_file = h.dir + "/nope.pem";
  CHECK(absl::StartsWith(h.Resolve(flags).status().message(),
                         "cannot read CA file " + h.dir + "/nope.pem (--ca-file): "));

  h.env["EVALD_TOKEN"] = "bad\ttoken";
  flags = {};
  CHECK(h.Resolve(flags).status().message() ==
        "the token in EVALD_TOKEN has characters a token cannot have (expected printable ASCII "
        "without spaces)");
}

TEST_CASE("login files: token 0600, config 0600, directory 0700, config points at the token") {
  Home h;
  std::string cfg_dir = h.dir + "/fresh/evalctl";
  ClientConfigFile settings;
  settings.server = "evald.example:7443";
  settings.ca_file = h.dir + "/ca.pem";
  absl::StatusOr<LoginFiles> files = WriteLoginFiles(cfg_dir + "/config.yaml", settings, kToken);
  REQUIRE(files.ok());
  CHECK(files->token_path == cfg_dir + "/token");
  CHECK(Mode(cfg_dir) == 0700);
  CHECK(Mode(files->token_path) == 0600);
  CHECK(Mode(files->config_path) == 0600);
  absl::StatusOr<ClientConfigFile> back = LoadClientConfig(files->config_path);
  REQUIRE(back.ok());
  CHECK(back->server == "evald.example:7443");
  CHECK(back->token_file == files->token_path);
  CHECK(back->ca_file == h.dir + "/ca.pem");
  CHECK_FALSE(back->insecure);
  std::ifstream t(files->token_path);
  std::string line;
  std::getline(t, line);
  CHECK(line == kToken);

  // A second login over a wider directory and a token file someone loosened tightens both.
  chmod(cfg_dir.c_str(), 0755);
  chmod(files->token_path.c_str(), 0644);
  settings.insecure = true;
  REQUIRE(WriteLoginFiles(cfg_dir + "/config.yaml", settings, "new-token").ok());
  CHECK(Mode(cfg_dir) == 0700);
  CHECK(Mode(files->token_path) == 0600);
  CHECK(LoadClientConfig(files->config_path)->insecure);
}

}  // namespace
}  // namespace evald::cli
