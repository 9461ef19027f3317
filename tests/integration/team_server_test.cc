// Team-server transport and access control (issue 12): TLS on TCP with certificates made here by
// the openssl CLI, bearer tokens, uid identification on the unix socket, and ownership checks,
// all against a real evald over real sockets.
#include <grp.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/security/credentials.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "executors/common/net.h"
#include "tests/integration/fixture.h"

namespace evald::testing {
namespace {

// A CA, a server certificate it signed for localhost/127.0.0.1, a client certificate it signed,
// and an unrelated second CA, all made by the openssl CLI in `dir`.
struct TestPki {
  explicit TestPki(const std::string& dir) : dir(dir) {
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
  return {"--listen",   "unix://" + state + "/evald.sock",
          "--listen",   tcp,
          "--tls-cert", pki.path("server.pem"),
          "--tls-key",  pki.path("server.key")};
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

}  // namespace
}  // namespace evald::testing
