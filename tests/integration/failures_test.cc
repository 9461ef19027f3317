// Issue 8, items 5 and 6, through the real binaries: a submit retried with its idempotency key
// stores one invocation; a database that breaks under a running evald is reported as what it is
// (exit 6, never "cannot reach evald") and logged by evald at error level; watch and logs -f say
// the same when evald goes away (exit 3).
#include <signal.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include <grpcpp/grpcpp.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tests/integration/fixture.h"

namespace evald::testing {
namespace {

namespace fs = std::filesystem;

int64_t CountInvocations(const Evald& evald) {
  grpc::ClientContext ctx;
  v1::ServerInfo info;
  REQUIRE(evald.Stub()->GetServerInfo(&ctx, v1::GetServerInfoRequest(), &info).ok());
  return info.invocation_count();
}

TEST_CASE("submitting twice with one idempotency key stores one invocation") {
  TempDir dir;
  RefEndpoint model(dir, ArithModelFlags());
  Evald evald(dir);
  std::string cfg = WriteConfig(dir, "run.yaml", ArithConfig(dir, model, {.limit_samples = 2}));

  CommandResult first = evald.Ctl({"submit", cfg, "--json", "--idempotency-key", "ci-4711-2"});
  INFO(first.out << first.err);
  REQUIRE(first.exit_code == 0);
  const std::string inv = InvocationIdFromJson(first.out);
  CommandResult again = evald.Ctl({"submit", cfg, "--json", "--idempotency-key", "ci-4711-2"});
  INFO(again.out << again.err);
  REQUIRE(again.exit_code == 0);
  CHECK(InvocationIdFromJson(again.out) == inv);
  CHECK(CountInvocations(evald) == 1);

  // A CI job calling the API directly: a resent Submit with its key gets the first answer.
  v1::SubmitRequest req;
  req.set_config_yaml(Slurp(cfg));
  req.set_working_dir(dir.path());
  req.set_client("ci:pipeline-4711");
  req.set_idempotency_key("4711-3");
  std::string api_inv;
  for (int i = 0; i < 2; ++i) {
    v1::SubmitResponse resp;
    grpc::ClientContext ctx;
    grpc::Status s = evald.Stub()->Submit(&ctx, req, &resp);
    INFO(s.error_message());
    REQUIRE(s.ok());
    if (i == 0) api_inv = resp.invocation_id();
    CHECK(resp.invocation_id() == api_inv);
    CHECK(resp.jobs_size() == 1);
  }
  CHECK(api_inv != inv);
  CHECK(CountInvocations(evald) == 2);

  // The same key with another config is refused, naming the invocation it belongs to.
  std::string other = WriteConfig(dir, "other.yaml", ArithConfig(dir, model, {.limit_samples = 3}));
  CommandResult reuse = evald.Ctl({"submit", other, "--idempotency-key", "ci-4711-2"});
  INFO(reuse.out << reuse.err);
  CHECK(reuse.exit_code == 5);
  CHECK(absl::StrContains(reuse.err, "already used by invocation " + inv));
  CHECK(CountInvocations(evald) == 2);

  // Without a key each submit is its own invocation (evalctl draws a fresh key each time).
  CommandResult a = evald.Ctl({"submit", cfg, "--json"});
  CommandResult b = evald.Ctl({"submit", cfg, "--json"});
  REQUIRE(a.exit_code == 0);
  REQUIRE(b.exit_code == 0);
  CHECK(InvocationIdFromJson(a.out) != InvocationIdFromJson(b.out));
  CHECK(CountInvocations(evald) == 4);
  for (const std::string& id :
       {inv, api_inv, InvocationIdFromJson(a.out), InvocationIdFromJson(b.out)}) {
    CHECK(evald.WaitTerminal(id).state() == v1::JOB_STATE_SUCCEEDED);
  }
}

// Overwrites every page of the database file but the first (the header and schema) with garbage,
// after moving the WAL's content into the file, so the next read of a table page fails the way a
// disk that corrupted the file would. Works as root, needs no mount or file attribute.
void CorruptDatabase(const std::string& db) {
  CommandResult checkpoint = Run({"sqlite3", db, "PRAGMA wal_checkpoint(TRUNCATE);"});
  INFO(checkpoint.out << checkpoint.err);
  REQUIRE(checkpoint.exit_code == 0);
  const auto size = fs::file_size(db);
  REQUIRE(size > 4096 * 2);
  std::fstream f(db, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(4096);
  std::string garbage(size - 4096, '\0');
  for (size_t i = 0; i < garbage.size(); ++i) garbage[i] = static_cast<char>((i * 131 + 7) % 251);
  f.write(garbage.data(), static_cast<std::streamsize>(garbage.size()));
  f.flush();
  REQUIRE(f.good());
}

TEST_CASE("a database corrupted under a running evald is reported as DATA_LOSS and logged") {
  TempDir dir;
  RefEndpoint model(dir, ArithModelFlags());
  Evald evald(dir);
  std::string cfg = WriteConfig(dir, "run.yaml", ArithConfig(dir, model, {.limit_samples = 2}));
  CommandResult ok = evald.Ctl({"submit", cfg, "--json"});
  REQUIRE(ok.exit_code == 0);
  REQUIRE(evald.WaitTerminal(InvocationIdFromJson(ok.out)).state() == v1::JOB_STATE_SUCCEEDED);

  CorruptDatabase(evald.state_dir() + "/evald.db");
  CommandResult r = evald.Ctl({"submit", cfg});
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  CHECK(r.exit_code == 6);
  CHECK(absl::StrContains(r.err, "evalctl: evald failed: DATA_LOSS: "));
  CHECK(absl::StrContains(r.err, evald.state_dir() + "/evald.db"));
  CHECK_FALSE(absl::StrContains(r.err, "cannot reach"));
  CHECK_FALSE(absl::StrContains(r.err, "start it with"));
  // evald is still there, and said what happened at error level.
  CHECK(evald.process().Alive());
  std::string log = evald.process().Stderr();
  INFO("evald log:\n" << log);
  CHECK(absl::StrContains(log, " E Submit failed: DATA_LOSS: "));
}

TEST_CASE("a database made unwritable under a running evald is reported as evald's failure") {
  TempDir dir;
  RefEndpoint model(dir, ArithModelFlags());
  Evald evald(dir);
  std::string cfg = WriteConfig(dir, "run.yaml", ArithConfig(dir, model, {.limit_samples = 2}));
  CommandResult ok = evald.Ctl({"submit", cfg, "--json"});
  REQUIRE(ok.exit_code == 0);
  REQUIRE(evald.WaitTerminal(InvocationIdFromJson(ok.out)).state() == v1::JOB_STATE_SUCCEEDED);

  // Root writes through mode bits, but not into an immutable file, even through a descriptor
  // opened before: evald's next write to the database (its WAL) fails with EPERM.
  const std::string db = evald.state_dir() + "/evald.db";
  struct Immutable {
    std::vector<std::string> files;
    ~Immutable() {
      for (const std::string& f : files) Run({"chattr", "-i", f});
    }
  } immutable;
  for (const std::string& f : {db, db + "-wal"}) {
    if (Run({"chattr", "+i", f}).exit_code != 0) {
      WARN("chattr +i " << f << " failed (file system or permissions); case not exercised");
      return;
    }
    immutable.files.push_back(f);
  }
  CommandResult r = evald.Ctl({"submit", cfg});
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  CHECK(r.exit_code == 6);
  CHECK(absl::StrContains(r.err, "evalctl: evald failed: "));
  CHECK(absl::StrContains(r.err, db));
  CHECK_FALSE(absl::StrContains(r.err, "cannot reach"));
  CHECK_FALSE(absl::StrContains(r.err, "start it with"));
  CHECK(evald.process().Alive());
  std::string log = evald.process().Stderr();
  INFO("evald log:\n" << log);
  CHECK(absl::StrContains(log, " E Submit failed: "));
}

TEST_CASE("evald killed under watch and logs -f: both say it went away with exit 3") {
  TempDir dir;
  RefEndpoint model(dir, ArithModelFlags({"--latency-ms", "200"}));
  Evald evald(dir);
  std::string cfg = WriteConfig(dir, "run.yaml",
                                ArithConfig(dir, model, {.limit_samples = 40, .parallelism = 1}));
  CommandResult submitted = evald.Ctl({"submit", cfg, "--json"});
  REQUIRE(submitted.exit_code == 0);
  const std::string inv = InvocationIdFromJson(submitted.out);
  REQUIRE(evald.WaitWorking(inv).has_value());

  const std::map<std::string, std::string> env = {{"EVALD_ADDR", evald.address()}};
  Process watch({BinDir() + "/evalctl", "watch", inv}, env, dir.path() + "/watch");
  // evalrun logs to stderr from its start, so both streams are open once each printed a line.
  Process logs({BinDir() + "/evalctl", "logs", "-f", inv + ".0", "--source", "stderr"}, env,
               dir.path() + "/logs");
  REQUIRE(WaitFor([&] { return absl::StrContains(watch.Stdout(), "watching invocation"); }, 30));
  REQUIRE(WaitFor([&] { return !logs.Stdout().empty(); }, 30));
  evald.Kill9();

  CHECK(watch.Wait(30) == 3);
  CHECK(logs.Wait(30) == 3);
  INFO("watch stderr: " << watch.Stderr() << "\nlogs stderr: " << logs.Stderr());
  CHECK(absl::StrContains(watch.Stderr(), "evalctl: evald went away (connection lost"));
  CHECK(absl::StrContains(watch.Stderr(), "while watching " + inv));
  CHECK(absl::StrContains(logs.Stderr(), "evalctl: evald went away (connection lost"));
  CHECK(absl::StrContains(logs.Stderr(), "while streaming the logs of " + inv + ".0"));
  CHECK_FALSE(absl::StrContains(watch.Stderr() + logs.Stderr(), "cannot reach"));

  // The job kept running; a restarted evald finishes it.
  evald.Start();
  CHECK(evald.WaitTerminal(inv).state() == v1::JOB_STATE_SUCCEEDED);
}

}  // namespace
}  // namespace evald::testing
