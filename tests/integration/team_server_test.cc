// Team-server transport and access control (issue 12): TLS on TCP with certificates made here by
// the openssl CLI, bearer tokens, uid identification on the unix socket, and ownership checks,
// all against a real evald over real sockets.
#include <grp.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/security/credentials.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "executors/common/net.h"
#include "tests/integration/fixture.h"

namespace evald::testing {
namespace {

namespace fs = std::filesystem;

// A CA, a server certificate it signed for localhost/127.0.0.1, a client certificate it signed,
// and an unrelated second CA, all made by the openssl CLI in `dir`.
struct TestPki {
  explicit TestPki(const std::string& dir) : dir(dir) {
    fs::create_directories(dir);
    const std::string script = absl::StrCat(
        "set -e; cd '", dir, "'\n",
        "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=evald-test-ca -keyout ca.key "
        "-out ca.pem\n",
        "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=other-ca -keyout other.key "
        "-out other.pem\n",
        "openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout server.key -out "
        "server.csr\n",
        "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > san.ext\n",
        "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 "
        "-extfile san.ext -out server.pem\n",
        "openssl req -newkey rsa:2048 -nodes -subj /CN=ci-client -keyout client.key -out "
        "client.csr\n",
        "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 "
        "-out client.pem\n");
    CommandResult r = Run({"bash", "-c", script}, {}, 60);
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
  }
  std::string path(const std::string& name) const { return dir + "/" + name; }
  std::string dir;
};

std::string TcpAddress() {
  absl::StatusOr<int> port = executors::PickFreePort();
  REQUIRE(port.ok());
  return absl::StrCat("127.0.0.1:", *port);
}

std::unique_ptr<v1::EvalService::Stub> TlsStub(const std::string& addr, const TestPki& pki,
                                               const std::string& ca, bool client_cert = false) {
  grpc::SslCredentialsOptions o;
  o.pem_root_certs = Slurp(pki.path(ca));
  if (client_cert) {
    o.pem_private_key = Slurp(pki.path("client.key"));
    o.pem_cert_chain = Slurp(pki.path("client.pem"));
  }
  // Certificates name localhost; connect by IP and check that name.
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride("localhost");
  return v1::EvalService::NewStub(grpc::CreateCustomChannel(addr, grpc::SslCredentials(o), args));
}

grpc::Status Info(v1::EvalService::Stub& stub, const std::string& token = "",
                  v1::ServerInfo* out = nullptr) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
  v1::ServerInfo info;
  return stub.GetServerInfo(&ctx, v1::GetServerInfoRequest(), out ? out : &info);
}

std::vector<std::string> TlsFlags(const TestPki& pki, const std::string& tcp,
                                  const std::string& state) {
  // Token users may write only under allowed roots: the runs go to the test dir's out/.
  return {"--listen",      "unix://" + state + "/evald.sock",
          "--listen",      tcp,
          "--tls-cert",    pki.path("server.pem"),
          "--tls-key",     pki.path("server.key"),
          "--output-root", std::filesystem::path(state).parent_path().string() + "/out"};
}

TEST_CASE("TCP with TLS: the right CA connects, a wrong CA or no TLS is refused") {
  TempDir dir;
  TestPki pki(dir.path());
  const std::string tcp = TcpAddress();
  Evald evald(dir, TlsFlags(pki, tcp, dir.path() + "/state"));

  auto right = TlsStub(tcp, pki, "ca.pem");
  grpc::Status s = Info(*right);
  // Reaching the RPC layer at all (any code but UNAVAILABLE) means the handshake succeeded.
  INFO(s.error_message());
  CHECK(s.error_code() != grpc::StatusCode::UNAVAILABLE);

  auto wrong = TlsStub(tcp, pki, "other.pem");
  grpc::Status refused = Info(*wrong);
  CHECK(refused.error_code() == grpc::StatusCode::UNAVAILABLE);

  auto plain =
      v1::EvalService::NewStub(grpc::CreateChannel(tcp, grpc::InsecureChannelCredentials()));
  CHECK(Info(*plain).error_code() == grpc::StatusCode::UNAVAILABLE);
}

TEST_CASE("mTLS: with tls.client_ca a client needs a certificate that CA signed") {
  TempDir dir;
  TestPki pki(dir.path());
  const std::string tcp = TcpAddress();
  std::vector<std::string> flags = TlsFlags(pki, tcp, dir.path() + "/state");
  flags.insert(flags.end(), {"--tls-client-ca", pki.path("ca.pem")});
  Evald evald(dir, flags);

  CHECK(Info(*TlsStub(tcp, pki, "ca.pem")).error_code() == grpc::StatusCode::UNAVAILABLE);
  grpc::Status s = Info(*TlsStub(tcp, pki, "ca.pem", /*client_cert=*/true));
  INFO(s.error_message());
  CHECK(s.error_code() != grpc::StatusCode::UNAVAILABLE);
}

std::string MakeToken(const Evald& evald, const std::string& user, const std::string& role,
                      int64_t expires_in_seconds = 0, std::string* id = nullptr);

TEST_CASE("a renewed certificate is served without a restart (tls.refresh_seconds)") {
  TempDir dir;
  TestPki first(dir.path() + "/first");
  TestPki second(dir.path() + "/second");
  const std::string tcp = TcpAddress();
  fs::create_directories(dir.path() + "/live");
  const std::string cert = dir.path() + "/live/server.pem";
  const std::string key = dir.path() + "/live/server.key";
  fs::copy_file(first.path("server.pem"), cert);
  fs::copy_file(first.path("server.key"), key);
  Spit(dir.path() + "/evald.yaml",
       absl::StrCat("tls: {cert: ", cert, ", key: ", key, ", refresh_seconds: 1}\n"));
  Evald evald(dir, {"--config", dir.path() + "/evald.yaml", "--listen",
                    "unix://" + dir.path() + "/state/evald.sock", "--listen", tcp});
  const std::string token = MakeToken(evald, "alice", "viewer");
  CHECK(Info(*TlsStub(tcp, first, "ca.pem"), token).ok());
  CHECK(Info(*TlsStub(tcp, second, "ca.pem"), token).error_code() == grpc::StatusCode::UNAVAILABLE);

  // Renewal as a cert manager does it: both files replaced, evald not told.
  fs::copy_file(second.path("server.pem"), cert, fs::copy_options::overwrite_existing);
  fs::copy_file(second.path("server.key"), key, fs::copy_options::overwrite_existing);
  CHECK(WaitFor([&] { return Info(*TlsStub(tcp, second, "ca.pem"), token).ok(); }, 15));
  CHECK(Info(*TlsStub(tcp, first, "ca.pem"), token).error_code() == grpc::StatusCode::UNAVAILABLE);
  CHECK(evald.process().Alive());
}

TEST_CASE("SIGHUP, an operator's reload, leaves evald running and serving TLS") {
  TempDir dir;
  TestPki pki(dir.path());
  const std::string tcp = TcpAddress();
  Evald evald(dir, TlsFlags(pki, tcp, dir.path() + "/state"));
  const std::string token = MakeToken(evald, "alice", "viewer");
  REQUIRE(kill(evald.process().pid(), SIGHUP) == 0);
  CHECK(WaitFor(
      [&] { return absl::StrContains(evald.process().Stderr(), "received SIGHUP: the TLS"); }, 10));
  INFO(evald.process().Stderr());
  CHECK(evald.process().Alive());
  CHECK(Info(*TlsStub(tcp, pki, "ca.pem"), token).ok());
  CHECK(evald.Terminate() == 0);  // SIGTERM still stops it cleanly
}

TEST_CASE("a TLS key that does not match its certificate stops evald with a clear message") {
  TempDir dir;
  TestPki pki(dir.path());
  const std::string tcp = TcpAddress();
  CommandResult r = Run({BinDir() + "/evald", "--state-dir", dir.path() + "/state", "--listen", tcp,
                         "--tls-cert", pki.path("server.pem"), "--tls-key", pki.path("client.key")},
                        {}, 20);
  CHECK(r.exit_code == 2);
  CHECK(absl::StrContains(r.err, "tls.key (--tls-key) " + pki.path("client.key") +
                                     ": is not the key of the certificate"));
}

TEST_CASE("the unix socket is 0600 by default, and socket_mode and socket_group change it") {
  TempDir dir;
  {
    Evald evald(dir);
    struct stat st {};
    REQUIRE(stat((evald.state_dir() + "/evald.sock").c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
  }
  struct group* g = getgrgid(getegid());
  REQUIRE(g != nullptr);
  Spit(dir.path() + "/evald.yaml",
       absl::StrCat("socket_mode: \"0660\"\nsocket_group: ", g->gr_name, "\n"));
  Evald evald(dir, {"--config", dir.path() + "/evald.yaml"});
  struct stat st {};
  REQUIRE(stat((evald.state_dir() + "/evald.sock").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0660);
  CHECK(st.st_gid == g->gr_gid);
}

// A token made by the test itself as an admin (its uid is evald's) over the unix socket.
std::string MakeToken(const Evald& evald, const std::string& user, const std::string& role,
                      int64_t expires_in_seconds, std::string* id) {
  grpc::ClientContext ctx;
  v1::CreateTokenRequest req;
  req.set_user(user);
  req.set_role(role);
  req.set_expires_in_seconds(expires_in_seconds);
  v1::CreateTokenResponse resp;
  grpc::Status s = evald.Stub()->CreateToken(&ctx, req, &resp);
  INFO(s.error_message());
  REQUIRE(s.ok());
  if (id != nullptr) *id = resp.info().id();
  return resp.token();
}

grpc::Status Submit(v1::EvalService::Stub& stub, const std::string& token,
                    const std::string& config, std::string* id) {
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer " + token);
  v1::SubmitRequest req;
  req.set_config_yaml(config);
  req.set_client("team_server_test");
  v1::SubmitResponse resp;
  grpc::Status s = stub.Submit(&ctx, req, &resp);
  if (id != nullptr) *id = resp.invocation_id();
  return s;
}

grpc::Status Kill(v1::EvalService::Stub& stub, const std::string& token, const std::string& id) {
  grpc::ClientContext ctx;
  if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
  v1::KillRequest req;
  req.set_id(id);
  v1::KillResponse resp;
  return stub.Kill(&ctx, req, &resp);
}

std::vector<std::string> ListMine(v1::EvalService::Stub& stub, const std::string& token) {
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer " + token);
  v1::ListInvocationsRequest req;
  req.set_mine(true);
  v1::ListInvocationsResponse resp;
  grpc::Status s = stub.ListInvocations(&ctx, req, &resp);
  INFO(s.error_message());
  REQUIRE(s.ok());
  std::vector<std::string> ids;
  for (const v1::Invocation& inv : resp.invocations()) ids.push_back(inv.invocation_id());
  return ids;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST_CASE("over TCP a call needs a valid token: none, unknown, revoked or expired is refused") {
  TempDir dir;
  TestPki pki(dir.path());
  const std::string tcp = TcpAddress();
  Evald evald(dir, TlsFlags(pki, tcp, dir.path() + "/state"));
  auto stub = TlsStub(tcp, pki, "ca.pem");

  std::string alice_id;
  const std::string alice = MakeToken(evald, "alice", "user", 0, &alice_id);
  CHECK(absl::StartsWith(alice, "evt_"));
  CHECK(alice.size() >= 4 + 43);  // 32 random bytes, base64url
  v1::ServerInfo info;
  grpc::Status ok = Info(*stub, alice, &info);
  INFO(ok.error_message());
  REQUIRE(ok.ok());
  CHECK(info.caller_user() == "alice");
  CHECK(info.caller_role() == "user");

  // On the unix socket a token is not needed, but one that is sent is checked and names the caller.
  v1::ServerInfo local;
  REQUIRE(Info(*evald.Stub(), "", &local).ok());
  CHECK(local.caller_role() == "admin");
  REQUIRE(Info(*evald.Stub(), alice, &local).ok());
  CHECK(local.caller_user() == "alice");
  CHECK(local.caller_role() == "user");
  CHECK(Info(*evald.Stub(), alice + "x").error_code() == grpc::StatusCode::UNAUTHENTICATED);

  grpc::Status none = Info(*stub);
  CHECK(none.error_code() == grpc::StatusCode::UNAUTHENTICATED);
  CHECK(absl::StrContains(none.error_message(), "no token"));
  grpc::Status bad = Info(*stub, alice + "x");
  CHECK(bad.error_code() == grpc::StatusCode::UNAUTHENTICATED);
  CHECK(absl::StrContains(bad.error_message(), "unknown token"));
  CHECK_FALSE(absl::StrContains(bad.error_message(), alice));

  // Revoked: the next call is refused.
  {
    grpc::ClientContext ctx;
    v1::RevokeTokenRequest req;
    req.set_id(alice_id);
    v1::RevokeTokenResponse resp;
    REQUIRE(evald.Stub()->RevokeToken(&ctx, req, &resp).ok());
    CHECK(resp.revoked_size() == 1);
  }
  grpc::Status revoked = Info(*stub, alice);
  CHECK(revoked.error_code() == grpc::StatusCode::UNAUTHENTICATED);
  CHECK(absl::StrContains(revoked.error_message(), "was revoked"));

  const std::string brief = MakeToken(evald, "ci-nightly", "user", /*expires_in_seconds=*/1);
  CHECK(Info(*stub, brief).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  grpc::Status expired = Info(*stub, brief);
  CHECK(expired.error_code() == grpc::StatusCode::UNAUTHENTICATED);
  CHECK(absl::StrContains(expired.error_message(), "expired"));

  // Only admins administer tokens; a user's token cannot make another.
  const std::string bob = MakeToken(evald, "bob", "user");
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer " + bob);
  v1::CreateTokenRequest req;
  req.set_user("bob");
  req.set_role("admin");
  v1::CreateTokenResponse resp;
  grpc::Status denied = stub->CreateToken(&ctx, req, &resp);
  CHECK(denied.error_code() == grpc::StatusCode::PERMISSION_DENIED);
  CHECK(resp.token().empty());

  // ListTokens shows last use (at most once a minute) and never a value or hash.
  grpc::ClientContext lctx;
  v1::ListTokensResponse list;
  REQUIRE(evald.Stub()->ListTokens(&lctx, v1::ListTokensRequest(), &list).ok());
  REQUIRE(list.tokens_size() == 3);
  CHECK(list.tokens(0).user() == "alice");
  CHECK(list.tokens(0).revoked_ms() > 0);
  CHECK(list.tokens(0).last_used_ms() > 0);
  CHECK(list.tokens(2).user() == "bob");
  CHECK(list.tokens(2).last_used_ms() > 0);
}

TEST_CASE(
    "a user cannot kill another user's run (nothing changes), a viewer nothing, an admin any") {
  TempDir dir;
  TestPki pki(dir.path());
  RefEndpoint model(dir, ArithModelFlags({"--latency-ms", "300"}));
  const std::string tcp = TcpAddress();
  Evald evald(dir, TlsFlags(pki, tcp, dir.path() + "/state"));
  auto stub = TlsStub(tcp, pki, "ca.pem");
  const std::string alice = MakeToken(evald, "alice", "user");
  const std::string bob = MakeToken(evald, "bob", "user");
  const std::string viewer = MakeToken(evald, "vera", "viewer");
  const std::string admin = MakeToken(evald, "ops", "admin");
  const std::string config = ArithConfig(dir, model, {.limit_samples = 20, .parallelism = 1});

  std::string inv;
  grpc::Status s = Submit(*stub, alice, config, &inv);
  INFO(s.error_message());
  REQUIRE(s.ok());
  CHECK(evald.Get(inv).owner() == "alice");
  CHECK(Submit(*stub, viewer, config, nullptr).error_code() == grpc::StatusCode::PERMISSION_DENIED);
  REQUIRE(evald.WaitWorking(inv).has_value());
  const v1::Invocation before = evald.Get(inv);

  grpc::Status by_bob = Kill(*stub, bob, inv);
  CHECK(by_bob.error_code() == grpc::StatusCode::PERMISSION_DENIED);
  CHECK(absl::StrContains(by_bob.error_message(), "bob (user, token "));
  CHECK(absl::StrContains(by_bob.error_message(), "it belongs to alice"));
  CHECK(Kill(*stub, viewer, inv).error_code() == grpc::StatusCode::PERMISSION_DENIED);
  CHECK(Kill(*stub, "", inv).error_code() == grpc::StatusCode::UNAUTHENTICATED);
  const v1::Invocation after = evald.Get(inv);
  CHECK(after.desired() == before.desired());
  CHECK(after.desired() == v1::DESIRED_STATE_RUN);
  CHECK(after.jobs(0).desired() == v1::DESIRED_STATE_RUN);

  // Bob's list of his own runs is empty; alice's has hers.
  CHECK(ListMine(*stub, bob).empty());
  CHECK(ListMine(*stub, alice) == std::vector<std::string>{inv});

  grpc::Status by_admin = Kill(*stub, admin, inv);
  INFO(by_admin.error_message());
  REQUIRE(by_admin.ok());
  CHECK(evald.WaitTerminal(inv, 30).state() == v1::JOB_STATE_KILLED);

  // Resuming is the owner's or an admin's too: bob's and the viewer's attempts change nothing.
  for (const std::string& token : {bob, viewer}) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + token);
    v1::ResumeRequest req;
    req.set_invocation_id(inv);
    v1::ResumeResponse resp;
    grpc::Status resumed = stub->Resume(&ctx, req, &resp);
    INFO(resumed.error_message());
    CHECK(resumed.error_code() == grpc::StatusCode::PERMISSION_DENIED);
  }
  const v1::Invocation killed = evald.Get(inv);
  CHECK(killed.state() == v1::JOB_STATE_KILLED);
  CHECK(killed.jobs(0).state() == v1::JOB_STATE_KILLED);
  CHECK(killed.jobs(0).desired() != v1::DESIRED_STATE_RUN);

  // The events say who did what (read from the database: Watch of an ended run sends no history).
  CommandResult rows =
      Run({"sqlite3", evald.state_dir() + "/evald.db",
           "SELECT kind || '=' || actor FROM events WHERE invocation_id = '" + inv +
               "' AND kind IN ('invocation.submitted', 'invocation.kill_requested') ORDER BY seq"});
  INFO(rows.err);
  CHECK(rows.out == "invocation.submitted=alice\ninvocation.kill_requested=ops\n");
}

TEST_CASE("on the unix socket the caller is its uid: another local user is a user, not an admin") {
  if (geteuid() != 0) {
    WARN("SKIPPED: identifying another uid needs a child that can setuid (run as root)");
    return;
  }
  passwd* nobody = getpwnam("nobody");
  REQUIRE(nobody != nullptr);
  TempDir dir;
  RefEndpoint model(dir, ArithModelFlags({"--latency-ms", "300"}));
  Evald evald(dir, {"--socket-mode", "0666"});
  // The socket's folder must let the other uid reach the socket.
  chmod(dir.path().c_str(), 0755);
  chmod(evald.state_dir().c_str(), 0755);
  v1::ServerInfo info;
  REQUIRE(Info(*evald.Stub(), "", &info).ok());
  CHECK(info.caller_role() == "admin");  // evald's own uid (root here)

  // An invocation of root's for the other user to try to kill.
  std::string inv;
  {
    grpc::ClientContext ctx;
    v1::SubmitRequest req;
    req.set_config_yaml(ArithConfig(dir, model, {.limit_samples = 20, .parallelism = 1}));
    v1::SubmitResponse resp;
    REQUIRE(evald.Stub()->Submit(&ctx, req, &resp).ok());
    inv = resp.invocation_id();
  }
  int pipe_fds[2];
  REQUIRE(pipe(pipe_fds) == 0);
  pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // Only async-signal-safe-ish work until the gRPC calls: a fresh channel in the child.
    close(pipe_fds[0]);
    if (setgid(nobody->pw_gid) != 0 || setuid(nobody->pw_uid) != 0) _exit(10);
    auto stub = v1::EvalService::NewStub(
        grpc::CreateChannel(evald.address(), grpc::InsecureChannelCredentials()));
    v1::ServerInfo child_info;
    grpc::Status s = Info(*stub, "", &child_info);
    grpc::Status k = Kill(*stub, "", inv);
    std::string out =
        absl::StrCat(s.ok() ? "ok" : s.error_message(), "|", child_info.caller_user(), "|",
                     child_info.caller_role(), "|", k.error_code(), "|", k.error_message());
    ssize_t n = write(pipe_fds[1], out.data(), out.size());
    _exit(n < 0 ? 11 : 0);
  }
  close(pipe_fds[1]);
  std::string got;
  char buf[4096];
  ssize_t n;
  while ((n = read(pipe_fds[0], buf, sizeof(buf))) > 0) got.append(buf, static_cast<size_t>(n));
  close(pipe_fds[0]);
  int status = 0;
  waitpid(child, &status, 0);
  INFO("child said: " << got);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(absl::StartsWith(got,
                         absl::StrCat("ok|", nobody->pw_name, "|user|",
                                      static_cast<int>(grpc::StatusCode::PERMISSION_DENIED), "|")));
  CHECK(absl::StrContains(got, "it belongs to root"));
  CHECK(evald.Get(inv).desired() == v1::DESIRED_STATE_RUN);
  grpc::ClientContext ctx;
  v1::KillRequest kreq;
  kreq.set_id(inv);
  v1::KillResponse kresp;
  CHECK(evald.Stub()->Kill(&ctx, kreq, &kresp).ok());
  evald.WaitTerminal(inv, 30);
}

TEST_CASE("a token user's output_dir, command deployments and limits follow the server config") {
  TempDir dir;
  TestPki pki(dir.path());
  RefEndpoint model(dir, ArithModelFlags({"--latency-ms", "2000"}));
  const std::string tcp = TcpAddress();
  Spit(dir.path() + "/evald.yaml", "limits:\n  submits_per_minute: 3\n  active_jobs: 2\n");
  std::vector<std::string> flags = TlsFlags(pki, tcp, dir.path() + "/state");
  flags.insert(flags.end(), {"--config", dir.path() + "/evald.yaml"});
  Evald evald(dir, flags);
  auto stub = TlsStub(tcp, pki, "ca.pem");
  const std::string alice = MakeToken(evald, "alice", "user");
  const std::string bob = MakeToken(evald, "bob", "user");
  const std::string config = ArithConfig(dir, model, {.limit_samples = 20, .parallelism = 1});
  std::string id;

  std::string outside = config;
  const std::string out = "output_dir: " + dir.path() + "/out";
  outside.replace(outside.find(out), out.size(), "output_dir: " + dir.path() + "/out/../elsewhere");
  grpc::Status s = Submit(*stub, alice, outside, &id);
  CHECK(s.error_code() == grpc::StatusCode::PERMISSION_DENIED);
  CHECK(absl::StrContains(s.error_message(), "(resolved: '" + dir.path() + "/elsewhere')"));
  CHECK_FALSE(std::filesystem::exists(dir.path() + "/elsewhere"));

  // A command deployment runs its command as evald's user: admins only by default.
  const std::string command = absl::StrCat(
      "defaults:\n  - execution: local\n  - deployment: command\n  - _self_\n"
      "execution:\n  output_dir: ",
      dir.path(), "/out\n", "deployment:\n  command: touch ", dir.path(), "/pwned\n  port: 8000\n",
      "  served_model_name: m\n",
      "evaluation:\n  tasks:\n    - name: arith\n      task_file: ", DataDir(),
      "/arith_task.yaml\n");
  s = Submit(*stub, alice, command, &id);
  INFO(s.error_message());
  CHECK(s.error_code() == grpc::StatusCode::PERMISSION_DENIED);
  CHECK(absl::StrContains(s.error_message(), "only admins"));
  CHECK(ListMine(*stub, alice).empty());
  CHECK_FALSE(std::filesystem::exists(dir.path() + "/pwned"));

  s = Submit(*stub, alice, config, &id);  // 1 job
  INFO(s.error_message());
  REQUIRE(s.ok());
  s = Submit(*stub, alice, config, &id);
  REQUIRE(s.ok());
  s = Submit(*stub, alice, config, &id);  // a third unfinished job: over active_jobs 2
  CHECK(s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
  CHECK(absl::StrContains(s.error_message(), "alice has 2 job(s) not finished"));
  s = Submit(*stub, bob, config, &id);  // bob is not held up by alice
  CHECK(s.ok());
  CHECK(ListMine(*stub, alice).size() == 2);
}

TEST_CASE("several users with their own tokens submit at once over TLS, each run is theirs") {
  TempDir dir;
  TestPki pki(dir.path());
  RefEndpoint model(dir, ArithModelFlags());
  const std::string tcp = TcpAddress();
  Evald evald(dir, TlsFlags(pki, tcp, dir.path() + "/state"));
  constexpr int kUsers = 4;
  constexpr int kSubmits = 3;
  std::vector<std::string> tokens;
  for (int u = 0; u < kUsers; ++u)
    tokens.push_back(MakeToken(evald, absl::StrCat("user", u), "user"));
  const std::string config = ArithConfig(dir, model, {.limit_samples = 2, .parallelism = 2});
  // A canary: a bearer value that must not show up anywhere either.
  const std::string canary = "evt_CANARYcanaryCANARYcanaryCANARYcanary0123456";
  std::vector<std::vector<std::string>> ids(kUsers);
  std::vector<std::string> errors(kUsers);
  std::vector<std::thread> threads;
  for (int u = 0; u < kUsers; ++u) {
    threads.emplace_back([&, u] {
      auto stub = TlsStub(tcp, pki, "ca.pem");
      Info(*stub, canary);
      for (int i = 0; i < kSubmits; ++i) {
        std::string id;
        grpc::Status s = Submit(*stub, tokens[u], config, &id);
        if (!s.ok()) errors[u] += s.error_message() + "; ";
        ids[u].push_back(id);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (int u = 0; u < kUsers; ++u) {
    INFO("user" << u << ": " << errors[u]);
    CHECK(errors[u].empty());
    auto stub = TlsStub(tcp, pki, "ca.pem");
    std::vector<std::string> mine = ListMine(*stub, tokens[u]);
    std::sort(mine.begin(), mine.end());
    std::vector<std::string> submitted = ids[u];
    std::sort(submitted.begin(), submitted.end());
    CHECK(mine == submitted);
    for (const std::string& id : ids[u]) {
      CHECK(evald.WaitTerminal(id, 120).state() == v1::JOB_STATE_SUCCEEDED);
    }
  }

  // No token value in the logs, the events or the database (its file and WAL).
  evald.Terminate();
  std::vector<std::string> haystacks = {evald.process().Stderr(), evald.process().Stdout(),
                                        ReadAll(evald.state_dir() + "/evald.db"),
                                        ReadAll(evald.state_dir() + "/evald.db-wal")};
  for (const std::string& needle : tokens) {
    for (const std::string& h : haystacks) CHECK_FALSE(absl::StrContains(h, needle));
  }
  for (const std::string& h : haystacks) CHECK_FALSE(absl::StrContains(h, canary));
  CHECK(absl::StrContains(haystacks[0], "submitted by user0 (token "));
}

TEST_CASE(
    "evalctl admin tokens create, ls and revoke over the socket, the token then works on TLS") {
  TempDir dir;
  TestPki pki(dir.path());
  const std::string tcp = TcpAddress();
  Evald evald(dir, TlsFlags(pki, tcp, dir.path() + "/state"));
  CommandResult created =
      evald.Ctl({"admin", "tokens", "create", "--user", "ci-nightly", "--role", "viewer"});
  INFO(created.out << created.err);
  REQUIRE(created.exit_code == 0);
  const std::string token(absl::StripAsciiWhitespace(created.out));
  CHECK(absl::StartsWith(token, "evt_"));
  CHECK(Info(*TlsStub(tcp, pki, "ca.pem"), token).ok());

  CommandResult listed = evald.Ctl({"admin", "tokens", "ls"});
  INFO(listed.out << listed.err);
  REQUIRE(listed.exit_code == 0);
  CHECK(absl::StrContains(listed.out, "ci-nightly"));
  CHECK(absl::StrContains(listed.out, "viewer"));
  CHECK_FALSE(absl::StrContains(listed.out, token));  // the value is shown once, at create

  CommandResult revoked = evald.Ctl({"admin", "tokens", "revoke", "--user", "ci-nightly"});
  INFO(revoked.out << revoked.err);
  REQUIRE(revoked.exit_code == 0);
  CHECK(Info(*TlsStub(tcp, pki, "ca.pem"), token).error_code() ==
        grpc::StatusCode::UNAUTHENTICATED);
}

TEST_CASE("20 users x 20 submits at once over TLS: per-user limits hold and nothing is lost") {
  TempDir dir;
  TestPki pki(dir.path());
  RefEndpoint model(dir, ArithModelFlags());
  const std::string tcp = TcpAddress();
  // Jobs queue behind one running job: the test is about the API, not about running 300 jobs.
  Spit(dir.path() + "/evald.yaml", "max_running_jobs: 1\nlimits:\n  submits_per_minute: 15\n");
  std::vector<std::string> flags = TlsFlags(pki, tcp, dir.path() + "/state");
  flags.insert(flags.end(), {"--config", dir.path() + "/evald.yaml"});
  Evald evald(dir, flags);
  constexpr int kUsers = 20;
  constexpr int kSubmits = 20;
  constexpr int kLimit = 15;
  std::vector<std::string> tokens;
  for (int u = 0; u < kUsers; ++u) {
    tokens.push_back(MakeToken(evald, absl::StrCat("member", u), "user"));
  }
  const std::string config = ArithConfig(dir, model, {.limit_samples = 1, .parallelism = 1});
  std::vector<std::vector<std::string>> accepted(kUsers);
  std::vector<int> limited(kUsers, 0);
  std::vector<std::string> other_errors(kUsers);
  std::vector<std::thread> threads;
  for (int u = 0; u < kUsers; ++u) {
    threads.emplace_back([&, u] {
      auto stub = TlsStub(tcp, pki, "ca.pem");
      for (int i = 0; i < kSubmits; ++i) {
        std::string id;
        grpc::Status s = Submit(*stub, tokens[u], config, &id);
        if (s.ok()) {
          accepted[u].push_back(id);
        } else if (s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED &&
                   absl::StrContains(s.error_message(), "limit per user is 15")) {
          ++limited[u];
        } else {
          other_errors[u] += s.error_message() + "; ";
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  auto stub = TlsStub(tcp, pki, "ca.pem");
  for (int u = 0; u < kUsers; ++u) {
    INFO("member" << u << ": " << other_errors[u]);
    CHECK(other_errors[u].empty());
    CHECK(accepted[u].size() == kLimit);  // the limit, no more and no fewer
    CHECK(limited[u] == kSubmits - kLimit);
    std::vector<std::string> mine = ListMine(*stub, tokens[u]);
    std::sort(mine.begin(), mine.end());
    std::sort(accepted[u].begin(), accepted[u].end());
    CHECK(mine == accepted[u]);  // every accepted submit stored, under its submitter
  }
}

}  // namespace
}  // namespace evald::testing
