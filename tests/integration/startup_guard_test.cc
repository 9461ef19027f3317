// What evald refuses at start and while running, through the real binaries (issue 8, items 2, 3
// and 7): a TCP listener without --insecure-tcp, a second evald on a state dir whose evald.pid was
// deleted, job starts by an evald whose state dir was swapped out, and a lost database next to an
// earlier evald's files.
#include <grpcpp/grpcpp.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "executors/common/net.h"
#include "tests/integration/fixture.h"

namespace evald::testing {
namespace {

namespace fs = std::filesystem;

void ExpectRefused(const CommandResult& r, int code, const std::vector<std::string>& needles) {
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  CHECK(r.exit_code == code);
  for (const std::string& n : needles) CHECK(absl::StrContains(r.err, n));
}

TEST_CASE("a TCP listener needs --insecure-tcp, and evald warns about it at every start") {
  TempDir dir;
  absl::StatusOr<int> port = executors::PickFreePort();
  REQUIRE(port.ok());
  const std::string tcp = absl::StrCat("127.0.0.1:", *port);
  const std::string state = dir.path() + "/state";

  ExpectRefused(Run({BinDir() + "/evald", "--state-dir", state, "--listen", tcp}, {}, 20), 2,
                {"listen address '" + tcp + "' is not a unix socket and TLS is not configured",
                 "--insecure-tcp"});
  const std::string server_cfg = dir.path() + "/evald.yaml";
  Spit(server_cfg, "listen: [" + tcp + "]\n");
  ExpectRefused(Run({BinDir() + "/evald", "--state-dir", state, "--config", server_cfg}, {}, 20), 2,
                {"'" + tcp + "' is not a unix socket", "insecure: true"});

  Evald evald(dir,
              {"--listen", "unix://" + state + "/evald.sock", "--listen", tcp, "--insecure-tcp"});
  const std::string warning = "--insecure-tcp: listening on " + tcp +
                              " without TLS: bearer tokens cross it in clear text";
  CHECK(absl::StrContains(evald.process().Stderr(), warning));
  auto stub =
      v1::EvalService::NewStub(grpc::CreateChannel(tcp, grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  v1::ServerInfo info;
  // Plain TCP still needs a token: the caller is not identified by anything else.
  CHECK(stub->GetServerInfo(&ctx, v1::GetServerInfoRequest(), &info).error_code() ==
        grpc::StatusCode::UNAUTHENTICATED);

  evald.Restart();
  CHECK(absl::StrContains(evald.process().Stderr(), warning));
}

TEST_CASE("deleting evald.pid does not let a second evald onto the state dir") {
  TempDir dir;
  Evald evald(dir);
  fs::remove(evald.state_dir() + "/evald.pid");
  CommandResult second = Run({BinDir() + "/evald", "--state-dir", evald.state_dir(), "--listen",
                              "unix://" + dir.path() + "/other.sock"},
                             {}, 20);
  ExpectRefused(second, 3, {"another evald", evald.state_dir()});
  CHECK(evald.Ctl({"ls", "runs"}).exit_code == 0);
}

TEST_CASE("an evald whose state dir was swapped out starts no job until it is back") {
  TempDir dir;
  RefEndpoint model(dir, ArithModelFlags());
  Evald evald(dir);
  const std::string state = evald.state_dir();
  const std::string moved = dir.path() + "/moved";
  fs::rename(state, moved);
  fs::create_directories(state);  // a second evald could lock this one now
  const std::string socket = "unix://" + moved + "/evald.sock";
  std::string cfg = WriteConfig(dir, "run.yaml", ArithConfig(dir, model));
  CommandResult r = evald.Ctl({"submit", cfg, "--json"}, {{"EVALD_ADDR", socket}});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  std::string inv = InvocationIdFromJson(r.out);
  REQUIRE(inv.size() == 8);

  REQUIRE(WaitFor([&] { return absl::StrContains(evald.process().Stderr(), "nor any other job"); },
                  30));
  CHECK(absl::StrContains(evald.process().Stderr(),
                          "state dir " + state + " is no longer the directory this evald locked"));
  auto stub =
      v1::EvalService::NewStub(grpc::CreateChannel(socket, grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  v1::GetInvocationRequest req;
  req.set_id(inv);
  v1::Invocation seen;
  REQUIRE(stub->GetInvocation(&ctx, req, &seen).ok());
  REQUIRE(seen.jobs_size() == 1);
  CHECK(seen.jobs(0).state() == v1::JOB_STATE_PENDING);
  CHECK(seen.jobs(0).attempt() == 0);

  fs::remove_all(state);
  fs::rename(moved, state);
  v1::Invocation done = evald.WaitTerminal(inv);
  CHECK(done.state() == v1::JOB_STATE_SUCCEEDED);
  CHECK(done.jobs(0).attempt() == 1);
}

TEST_CASE("a lost database next to an earlier evald's files stops evald with exit 4") {
  TempDir dir;
  const std::string state = dir.path() + "/state";
  const std::string db = state + "/evald.db";
  {
    Evald first(dir);  // creates the database and secrets.key
  }
  for (const char* suffix : {"-wal", "-shm"}) fs::remove(db + suffix);
  fs::resize_file(db, 0);
  ExpectRefused(Run({BinDir() + "/evald", "--state-dir", state}, {}, 20), 4,
                {db + " is empty (0 bytes)", "(secrets.key)", "--initialize-db"});
  CHECK(fs::file_size(db) == 0);

  fs::remove(db);
  ExpectRefused(Run({BinDir() + "/evald", "--state-dir", state}, {}, 20), 4,
                {db + " is missing", "--initialize-db"});
  CHECK_FALSE(fs::exists(db));

  {
    Evald initialised(dir, {"--initialize-db"});
    CHECK(absl::StrContains(initialised.process().Stderr(), "--initialize-db: the database"));
    CHECK(initialised.Ctl({"ls", "runs"}).exit_code == 0);
  }
  Evald again(dir);  // the new database is the state now: no flag needed
  CHECK(again.Ctl({"ls", "runs"}).exit_code == 0);
}

}  // namespace
}  // namespace evald::testing
