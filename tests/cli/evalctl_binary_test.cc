// The evalctl binary itself: command-line parsing, the address precedence, exit codes and what
// reaches the server, against the in-process fake EvalService.
#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "cli/format.h"
#include "fake_service.h"

extern char** environ;

namespace evald::cli {
namespace {

using testing::Server;

struct Result {
  int code = -1;
  std::string out;
  std::string err;
};

std::string Slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Runs evalctl with `args`; the environment is ours without EVALD_ADDR, EVALD_TOKEN,
// EVALD_CA_FILE and XDG_CONFIG_HOME (an empty config dir instead), plus `env`.
// `stdin_text`: what evalctl reads on stdin (default: /dev/null).
Result Evalctl(const std::vector<std::string>& args,
               const std::map<std::string, std::string>& env = {},
               const std::string& stdin_text = "") {
  static int counter = 0;
  std::string prefix =
      "/tmp/evalctl-bin-" + std::to_string(getpid()) + "-" + std::to_string(++counter);
  std::vector<std::string> argv_s = {EVALCTL_PATH};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_s;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string kv = *e;
    std::string key = kv.substr(0, kv.find('='));
    // Nor a connection setting of the user running the tests.
    if (key != "EVALD_ADDR" && key != "EVALD_TOKEN" && key != "EVALD_CA_FILE" &&
        key != "XDG_CONFIG_HOME" && env.count(key) == 0) {
      env_s.push_back(kv);
    }
  }
  if (env.count("XDG_CONFIG_HOME") == 0) env_s.push_back("XDG_CONFIG_HOME=/nonexistent/config");
  for (const auto& [k, v] : env) env_s.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (std::string& e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);

  std::ofstream(prefix + ".in") << stdin_text;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, (prefix + ".in").c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, (prefix + ".out").c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  posix_spawn_file_actions_addopen(&fa, 2, (prefix + ".err").c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  pid_t pid = 0;
  Result r;
  int rc = posix_spawn(&pid, EVALCTL_PATH, &fa, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  REQUIRE(rc == 0);
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = Slurp(prefix + ".out");
  r.err = Slurp(prefix + ".err");
  unlink((prefix + ".out").c_str());
  unlink((prefix + ".err").c_str());
  unlink((prefix + ".in").c_str());
  return r;
}

int Lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

struct ConfigDir {
  ConfigDir() {
    char tmpl[] = "/tmp/evalctl-cfg-XXXXXX";
    dir = mkdtemp(tmpl);
    std::ofstream(dir + "/eval.yaml") << "execution:\n  type: local\n  output_dir: " << dir
                                      << "/out\n"
                                         "target:\n  api_endpoint:\n"
                                         "    url: http://127.0.0.1:9/v1/chat/completions\n"
                                         "    model_id: m\n    api_key_name: EVALCTL_TEST_KEY\n"
                                         "evaluation:\n  tasks:\n    - name: native_gsm8k\n"
                                         "      env_vars:\n        HF_TOKEN: EVALCTL_TEST_HF\n";
    std::ofstream(dir + "/broken.yaml") << "execution: [unclosed\n";
  }
  ~ConfigDir() {
    unlink((dir + "/eval.yaml").c_str());
    unlink((dir + "/broken.yaml").c_str());
    rmdir(dir.c_str());
  }
  std::string dir;
};

const std::map<std::string, std::string> kSecrets = {{"EVALCTL_TEST_KEY", "key-value-1234567"},
                                                     {"EVALCTL_TEST_HF", "hf-value-7654321"}};

TEST_CASE("evalctl: help, version and usage errors") {
  Result r = Evalctl({});
  CHECK(r.code == 0);
  CHECK(absl::StrContains(r.out, "Exit codes:"));
  r = Evalctl({"--help"});
  CHECK(r.code == 0);
  CHECK(absl::StrContains(r.out, "130  interrupted"));
  r = Evalctl({"--version"});
  CHECK(r.code == 0);
  CHECK(absl::StartsWith(r.out, "evalctl "));
  CHECK(Evalctl({"status", "--bogus"}).code == 2);
  CHECK(Evalctl({"watch"}).code == 2);
  CHECK(Evalctl({"frobnicate"}).code == 2);
  CHECK(Evalctl({"results", "x", "--json", "--csv"}).code == 2);
  r = Evalctl({"ls", "runs", "--since", "last week"});
  CHECK(r.code == 2);
  CHECK(r.err ==
        "Invalid --since value: last week. Use YYYY-MM-DD, YYYY-MM-DDTHH:MM:SS, Nd or "
        "Nh\n");
}

TEST_CASE("evalctl: an unreachable daemon is one line on stderr and exit 3") {
  char tmpl[] = "/tmp/evalctl-none-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  std::string addr = "unix://" + dir + "/evald.sock";
  for (const auto& r :
       {Evalctl({"--server", addr, "status"}), Evalctl({"status", "--server", addr}),
        Evalctl({"status", "1a2b3c4d"}, {{"EVALD_ADDR", addr}}),
        Evalctl({"ls", "runs"}, {{"EVALD_ADDR", addr}})}) {
    CHECK(r.code == 3);
    CHECK(r.err == "evalctl: cannot reach evald at " + addr +
                       " (no such socket); start it with: evald --state-dir " + dir + "\n");
    CHECK(r.out.empty());
  }
  // The default socket lives in the state dir.
  Result r = Evalctl({"status"}, {{"XDG_STATE_HOME", dir}});
  CHECK(r.code == 3);
  CHECK(absl::StrContains(r.err, "unix://" + dir + "/evald/evald.sock (no such socket)"));
  // version still works.
  r = Evalctl({"version"}, {{"EVALD_ADDR", addr}});
  CHECK(r.code == 0);
  CHECK(absl::StrContains(r.out, "evald: not reachable"));
  rmdir(dir.c_str());
}

TEST_CASE("evalctl: --server beats EVALD_ADDR, both reach the daemon") {
  Server s;
  Result r = Evalctl({"status", "1a2b3c4d", "--json"}, {{"EVALD_ADDR", s.address}});
  REQUIRE(r.code == 0);
  CHECK(Json::parse(r.out)["invocation_id"] == "1a2b3c4d");
  r = Evalctl({"--server", s.address, "status", "1a2b3c4d", "--json"},
              {{"EVALD_ADDR", "unix:///nonexistent/evald.sock"}});
  REQUIRE(r.code == 0);
  CHECK(Json::parse(r.out)["jobs"][0]["job_id"] == "1a2b3c4d.0");
  r = Evalctl({"--server", s.address, "version"});
  CHECK(absl::StrContains(r.out, "evald 9.9.9 (api evald.v1) at " + s.address));
}

TEST_CASE("evalctl: exit codes from the daemon's answers") {
  Server s;
  Result r = Evalctl({"--server", s.address, "status", "ffffffff"});
  CHECK(r.code == 4);
  CHECK(r.err == "evalctl: no invocation or job with id ffffffff\n");
  r = Evalctl({"--server", s.address, "kill", "1a2b3c4d"});
  CHECK(r.code == 5);
  CHECK(Lines(r.err) == 1);
  r = Evalctl({"--server", s.address, "watch", "1a2b3c4d"});
  CHECK(r.code == 0);
}

TEST_CASE("evalctl submit: composes here, sends secrets only in the secrets map") {
  Server s;
  ConfigDir c;
  Result r = Evalctl({"--server", s.address, "submit", "-o", "execution.output_dir=/tmp/o2", "-t",
                      "native_gsm8k", c.dir + "/eval.yaml", "--json"},
                     kSecrets);
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  Json j = Json::parse(r.out);
  CHECK(j["invocation_id"] == "1a2b3c4d");
  CHECK(j["jobs"][0]["task"] == "gsm8k");
  v1::SubmitRequest req = s.service.LastSubmit();
  CHECK(req.secrets().size() == 2);
  CHECK(req.secrets().at("EVALCTL_TEST_KEY") == "key-value-1234567");
  CHECK(req.secrets().at("EVALCTL_TEST_HF") == "hf-value-7654321");
  CHECK(req.tasks_size() == 1);
  CHECK(absl::StrContains(req.config_yaml(), "/tmp/o2"));
  CHECK_FALSE(absl::StrContains(req.config_yaml(), "value-"));
  CHECK(absl::StartsWith(req.client(), "evalctl/"));
  CHECK_FALSE(absl::StrContains(r.out + r.err, "value-"));
}

TEST_CASE("evalctl submit: unset variable or bad config is exit 2 and nothing is sent") {
  Server s;
  ConfigDir c;
  Result r = Evalctl({"--server", s.address, "submit", c.dir + "/eval.yaml"},
                     {{"EVALCTL_TEST_KEY", "key-value-1234567"}});
  CHECK(r.code == 2);
  CHECK(r.err ==
        "evalctl: Trying to pass an unset environment variable EVALCTL_TEST_HF (needed "
        "by evaluation.tasks[0].env_vars.HF_TOKEN)\n");
  CHECK_FALSE(absl::StrContains(r.err, "key-value"));
  r = Evalctl({"--server", s.address, "submit", c.dir + "/broken.yaml"}, kSecrets);
  CHECK(r.code == 2);
  CHECK(absl::StrContains(r.err, "broken.yaml"));
  r = Evalctl({"--server", s.address, "submit", c.dir + "/missing.yaml"}, kSecrets);
  CHECK(r.code == 2);
  CHECK(absl::StrContains(r.err, "missing.yaml"));
  CHECK(s.service.submit_count == 0);
}

TEST_CASE("evalctl run -d DIR -c NAME -n: the reference's spelling of a dry run") {
  Server s;
  ConfigDir c;
  Result r = Evalctl({"--server", s.address, "run", "-d", c.dir, "-c", "eval", "-n", "-o",
                      "execution.output_dir=/tmp/o3"},
                     kSecrets);
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK(s.service.LastSubmit().dry_run());
  CHECK(absl::StrContains(r.out, "# Resolved config"));
  CHECK(absl::StrContains(r.out, "echo evaluating"));
  CHECK(absl::StrContains(r.out, "/tmp/o3"));
  CHECK_FALSE(absl::StrContains(r.out + r.err, "value-"));
}

constexpr char kToken[] = "evt_SECRET_0123456789abcdef";

struct TempConfigHome {
  TempConfigHome() {
    char tmpl[] = "/tmp/evalctl-home-XXXXXX";
    dir = mkdtemp(tmpl);
  }
  ~TempConfigHome() { std::system(("rm -rf '" + dir + "'").c_str()); }
  std::string config() const { return dir + "/evalctl/config.yaml"; }
  std::string dir;
};

int FileMode(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return -1;
  return st.st_mode & 0777;
}

TEST_CASE("evalctl: the token goes in authorization metadata and is never printed") {
  Server s;
  TempConfigHome home;
  std::map<std::string, std::string> env = {{"XDG_CONFIG_HOME", home.dir}};
  Result r = Evalctl({"--server", s.address, "status", "1a2b3c4d"}, env);
  REQUIRE(r.code == 0);
  CHECK(s.service.LastAuthorization().empty());

  env["EVALD_TOKEN"] = kToken;
  r = Evalctl({"--server", s.address, "status", "1a2b3c4d"}, env);
  REQUIRE(r.code == 0);
  CHECK(s.service.LastAuthorization() == std::string("Bearer ") + kToken);
  CHECK_FALSE(absl::StrContains(r.out + r.err, kToken));

  // Nor is it in what submit sends as data (secrets, config) or prints, dry run included.
  ConfigDir cfg;
  std::map<std::string, std::string> submit_env = env;
  submit_env.insert(kSecrets.begin(), kSecrets.end());
  for (const char* flag : {"--json", "--dry-run"}) {
    r = Evalctl({"--server", s.address, "submit", cfg.dir + "/eval.yaml", flag}, submit_env);
    INFO(r.err);
    REQUIRE(r.code == 0);
    CHECK_FALSE(absl::StrContains(r.out + r.err, kToken));
    v1::SubmitRequest req = s.service.LastSubmit();
    CHECK_FALSE(absl::StrContains(req.DebugString(), kToken));
  }

  // From the config file's token_file, when the file's server is the one used.
  env.erase("EVALD_TOKEN");
  mkdir((home.dir + "/evalctl").c_str(), 0700);
  std::ofstream(home.dir + "/evalctl/token") << "file-" << kToken << "\n";
  chmod((home.dir + "/evalctl/token").c_str(), 0600);
  std::ofstream(home.config()) << "server: " << s.address << "\ntoken_file: token\n";
  r = Evalctl({"status", "1a2b3c4d", "--json"}, env);
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(s.service.LastAuthorization() == std::string("Bearer file-") + kToken);
  CHECK_FALSE(absl::StrContains(r.out + r.err, kToken));
  r = Evalctl({"--server", s.address, "version"}, env);
  CHECK(absl::StrContains(r.out, "evald 9.9.9"));
  CHECK_FALSE(absl::StrContains(r.out + r.err, kToken));

  // A bad token is refused before anything is sent, naming where it came from only.
  env["EVALD_TOKEN"] = std::string("bad ") + kToken;
  r = Evalctl({"status", "1a2b3c4d"}, env);
  CHECK(r.code == 2);
  CHECK(absl::StrContains(r.err, "the token in EVALD_TOKEN has characters"));
  CHECK_FALSE(absl::StrContains(r.out + r.err, kToken));
}

TEST_CASE("evalctl: a bad config file is exit 2 with the file and key") {
  TempConfigHome home;
  mkdir((home.dir + "/evalctl").c_str(), 0700);
  std::ofstream(home.config()) << "server: /x.sock\ninsecure: sometimes\n";
  Result r = Evalctl({"status"}, {{"XDG_CONFIG_HOME", home.dir}});
  CHECK(r.code == 2);
  CHECK(r.err == "evalctl: " + home.config() + ": 'insecure' must be true or false\n");
}

TEST_CASE("evalctl login: checks evald, writes config and a 0600 token, prints no token") {
  Server s;
  TempConfigHome home;
  std::map<std::string, std::string> env = {{"XDG_CONFIG_HOME", home.dir}};
  Result r = Evalctl({"login", "--server", s.address}, env, std::string(kToken) + "\n");
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out == "evald 9.9.9 answered at " + s.address + " as ci-bot (user)\nwrote " +
                     home.config() + "\nwrote " + home.dir + "/evalctl/token (mode 0600)\n");
  CHECK(s.service.LastAuthorization() == std::string("Bearer ") + kToken);
  CHECK_FALSE(absl::StrContains(r.out + r.err, kToken));
  CHECK(FileMode(home.dir + "/evalctl") == 0700);
  CHECK(FileMode(home.dir + "/evalctl/token") == 0600);
  CHECK(FileMode(home.config()) == 0600);
  CHECK_FALSE(absl::StrContains(Slurp(home.config()), kToken));

  // Later commands need no flags: the saved server and token are used.
  r = Evalctl({"status", "1a2b3c4d", "--json"}, env);
  REQUIRE(r.code == 0);
  CHECK(s.service.LastAuthorization() == std::string("Bearer ") + kToken);

  // No server, an empty token, or an evald that is not there: nothing (new) is written.
  CHECK(Evalctl({"login"}, env, kToken).code == 2);
  r = Evalctl({"login", "--server", s.address}, env, "\n");
  CHECK(r.code == 2);
  CHECK(absl::StrContains(r.err, "the token in stdin is empty"));
  std::string before = Slurp(home.config());
  r = Evalctl({"login", "--server", "unix:///nonexistent/evald.sock"}, env, "other-token");
  CHECK(r.code == 3);
  CHECK(absl::StrContains(r.err, "login: nothing written"));
  CHECK(Slurp(home.config()) == before);
  CHECK(Slurp(home.dir + "/evalctl/token") == std::string(kToken) + "\n");

  // --token-file and --no-token.
  std::ofstream(home.dir + "/given") << "given-" << kToken;
  r = Evalctl({"login", "--server", s.address, "--token-file", home.dir + "/given"}, env);
  REQUIRE(r.code == 0);
  CHECK(s.service.LastAuthorization() == std::string("Bearer given-") + kToken);
  r = Evalctl({"login", "--server", s.address, "--no-token"}, env);
  REQUIRE(r.code == 0);
  CHECK(r.out == "evald 9.9.9 answered at " + s.address + "\nwrote " + home.config() + "\n");
  CHECK(s.service.LastAuthorization().empty());
  CHECK_FALSE(absl::StrContains(Slurp(home.config()), "token_file"));
}

// The fake service over TLS on 127.0.0.1 with a certificate from a CA made here by openssl (and a
// second CA that did not sign it).
struct TlsServer {
  TlsServer() {
    char tmpl[] = "/tmp/evalctl-tls-XXXXXX";
    dir = mkdtemp(tmpl);
    const std::string ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    const std::string script =
        "set -e; cd '" + dir + "'; exec >openssl.log 2>&1\n" + "openssl req -x509 " + ec +
        " -keyout ca.key -out ca.pem -days 2 -subj /CN=test-ca\n" + "openssl req -x509 " + ec +
        " -keyout other.key -out other-ca.pem -days 2 -subj /CN=other\n" + "openssl req " + ec +
        " -keyout server.key -out server.csr -subj /CN=localhost\n" +
        "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > ext.cnf\n" +
        "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 "
        "-extfile ext.cnf -out server.pem\n";
    REQUIRE(std::system(("bash -c \"" + script + "\"").c_str()) == 0);
    grpc::SslServerCredentialsOptions ssl;
    ssl.pem_key_cert_pairs.push_back({Slurp(dir + "/server.key"), Slurp(dir + "/server.pem")});
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:0", grpc::SslServerCredentials(ssl), &port);
    b.RegisterService(&service);
    server = b.BuildAndStart();
    REQUIRE(server != nullptr);
    REQUIRE(port > 0);
    address = "127.0.0.1:" + std::to_string(port);
  }
  ~TlsServer() {
    server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
    std::system(("rm -rf '" + dir + "'").c_str());
  }
  std::string dir;
  std::string address;
  int port = 0;
  testing::FakeService service;
  std::unique_ptr<grpc::Server> server;
};

TEST_CASE("evalctl over TLS: its CA is trusted, another CA and plain TCP are refused") {
  TlsServer s;
  TempConfigHome home;
  std::map<std::string, std::string> env = {{"XDG_CONFIG_HOME", home.dir}, {"EVALD_TOKEN", kToken}};
  Result r =
      Evalctl({"--server", s.address, "--ca-file", s.dir + "/ca.pem", "status", "1a2b3c4d"}, env);
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK(s.service.LastAuthorization() == std::string("Bearer ") + kToken);

  // Another CA: the handshake fails, nothing reaches the service, and the error says why.
  s.service.RecordAuthorizationForTest("");
  env["EVALD_CA_FILE"] = s.dir + "/other-ca.pem";
  r = Evalctl({"--server", s.address, "status", "1a2b3c4d"}, env);
  INFO("wrong CA: " << r.err);
  CHECK(r.code == 3);
  CHECK(absl::StartsWith(r.err, "evalctl: cannot reach evald at " + s.address + " over TLS ("));
  CHECK(absl::StrContains(r.err, "check the CA file"));
  CHECK(Lines(r.err) == 1);
  CHECK_FALSE(absl::StrContains(r.out + r.err, kToken));
  CHECK(s.service.LastAuthorization().empty());

  // Plain TCP to a TLS port fails too (and sends nothing the service sees).
  r = Evalctl({"--server", s.address, "--insecure", "status", "1a2b3c4d"}, env);
  CHECK(r.code == 3);
  CHECK(s.service.LastAuthorization().empty());

  // login over TLS saves the CA file, and later commands use it.
  env.erase("EVALD_CA_FILE");
  env.erase("EVALD_TOKEN");
  r = Evalctl({"login", "--server", s.address, "--ca-file", s.dir + "/ca.pem"}, env, kToken);
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK(absl::StrContains(r.out, "answered at " + s.address + " (TLS) as ci-bot (user)"));
  CHECK(absl::StrContains(Slurp(home.config()), "ca_file: " + s.dir + "/ca.pem"));
  s.service.RecordAuthorizationForTest("");
  r = Evalctl({"status", "1a2b3c4d"}, env);
  REQUIRE(r.code == 0);
  CHECK(s.service.LastAuthorization() == std::string("Bearer ") + kToken);
}

}  // namespace
}  // namespace evald::cli
