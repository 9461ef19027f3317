// `evalctl admin backup` (issue 12, backups): an online copy of evald's database taken while
// clients keep submitting opens with the sqlite3 tool, is intact and self-contained, and holds
// every invocation whose Submit returned before the backup was asked for; an existing file is
// refused unless --overwrite; and the restore steps of docs/operations.md bring those back.
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tests/integration/fixture.h"

namespace evald::testing {
namespace {

namespace fs = std::filesystem;

TEST_CASE("a backup taken under submit load opens and has every invocation submitted before it") {
  TempDir dir;
  RefEndpoint model(dir, ArithModelFlags());
  // One job at a time: the load here is Submits (database writes), not evaluations.
  const std::string server_cfg = dir.path() + "/evald.yaml";
  Spit(server_cfg, "max_running_jobs: 1\n");
  Evald evald(dir, {"--config", server_cfg});
  const std::string config = ArithConfig(dir, model, {.limit_samples = 2});

  std::mutex mu;
  std::vector<std::string> submitted;  // in the order their Submit returned
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 4; ++c) {
    clients.emplace_back([&] {
      auto stub = evald.Stub();
      while (!stop) {
        v1::SubmitRequest req;
        req.set_config_yaml(config);
        req.set_working_dir(dir.path());
        v1::SubmitResponse resp;
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
        grpc::Status s = stub->Submit(&ctx, req, &resp);
        if (!s.ok()) {
          ++failures;
          UNSCOPED_INFO("Submit failed: " << s.error_message());
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
          continue;
        }
        std::lock_guard<std::mutex> lock(mu);
        submitted.push_back(resp.invocation_id());
      }
    });
  }
  REQUIRE(WaitFor(
      [&] {
        std::lock_guard<std::mutex> lock(mu);
        return submitted.size() >= 40;
      },
      60));
  std::vector<std::string> before;
  {
    std::lock_guard<std::mutex> lock(mu);
    before = submitted;
  }
  const std::string backup = dir.path() + "/backups/evald-backup.db";
  fs::create_directories(dir.path() + "/backups");
  // A relative FILE is resolved against evalctl's working directory.
  CommandResult r =
      evald.Ctl({"admin", "backup", "backups/evald-backup.db", "--json"}, {}, 120, dir.path());
  size_t during;
  {
    std::lock_guard<std::mutex> lock(mu);
    during = submitted.size() - before.size();
  }
  // Keep the load on a little after the copy, then stop it.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  stop = true;
  for (std::thread& t : clients) t.join();
  INFO("evalctl: exit " << r.exit_code << "\n" << r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(failures == 0);
  CHECK(absl::StrContains(r.out, "\"path\": \"" + backup + "\""));
  INFO(before.size() << " invocations submitted before the backup, " << during << " during it");

  // The copy is one self-contained file: no -wal beside it, journal mode delete, mode 0600.
  CHECK(fs::exists(backup));
  CHECK(!fs::exists(backup + "-wal"));
  CHECK((fs::status(backup).permissions() & fs::perms::all) ==
        (fs::perms::owner_read | fs::perms::owner_write));
  CommandResult check = Run({"sqlite3", "-readonly", backup, "PRAGMA integrity_check;",
                             "PRAGMA journal_mode;", "SELECT id FROM invocations;"});
  INFO("sqlite3: " << check.err);
  REQUIRE(check.exit_code == 0);
  std::vector<std::string> lines = absl::StrSplit(check.out, '\n', absl::SkipEmpty());
  REQUIRE(lines.size() >= 2);
  CHECK(lines[0] == "ok");
  CHECK(lines[1] == "delete");
  std::set<std::string> in_backup(lines.begin() + 2, lines.end());
  int missing = 0;
  for (const std::string& id : before) missing += in_backup.count(id) == 0;
  CHECK(missing == 0);
  CHECK(in_backup.size() >= before.size());

  // An existing file is refused, and left alone; --overwrite replaces it.
  auto size_before = fs::file_size(backup);
  CommandResult again = evald.Ctl({"admin", "backup", backup});
  CHECK(again.exit_code != 0);
  CHECK(absl::StrContains(again.err, "already exists"));
  CHECK(fs::file_size(backup) == size_before);
  CommandResult relative_server = evald.Ctl({"admin", "backup", backup + ".2", "--overwrite"});
  CHECK(relative_server.exit_code == 0);
  CHECK(absl::StrContains(relative_server.out, "Backup written to " + backup + ".2"));

  // Restore as docs/operations.md says: stop evald, copy the file to evald.db, remove -wal/-shm,
  // start. Every invocation of the copy is there again.
  REQUIRE(evald.Terminate() == 0);
  const std::string db = evald.state_dir() + "/evald.db";
  fs::copy_file(backup, db, fs::copy_options::overwrite_existing);
  fs::remove(db + "-wal");
  fs::remove(db + "-shm");
  evald.Start();
  for (const std::string& id : {before.front(), before.back()}) {
    v1::Invocation inv = evald.Get(id);
    CHECK(inv.invocation_id() == id);
  }
  v1::ServerInfo info;
  grpc::ClientContext ctx;
  REQUIRE(evald.Stub()->GetServerInfo(&ctx, v1::GetServerInfoRequest(), &info).ok());
  CHECK(info.invocation_count() == static_cast<int64_t>(in_backup.size()));
}

TEST_CASE("a backup path must be absolute on evald's side and never evald's own database") {
  TempDir dir;
  Evald evald(dir);
  auto stub = evald.Stub();
  for (const std::string& path : {std::string("relative.db"), evald.state_dir() + "/evald.db"}) {
    v1::BackupRequest req;
    req.set_path(path);
    req.set_overwrite(true);
    v1::BackupResponse resp;
    grpc::ClientContext ctx;
    grpc::Status s = stub->Backup(&ctx, req, &resp);
    INFO(path << ": " << s.error_message());
    CHECK(s.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  }
  // A folder that does not exist: FAILED_PRECONDITION naming it, nothing left behind.
  v1::BackupRequest req;
  req.set_path(dir.path() + "/no/such/dir/b.db");
  v1::BackupResponse resp;
  grpc::ClientContext ctx;
  grpc::Status s = stub->Backup(&ctx, req, &resp);
  CHECK(s.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  CHECK(absl::StrContains(s.error_message(), dir.path() + "/no/such/dir"));
}

}  // namespace
}  // namespace evald::testing
