// Store::Backup: an online copy taken while another thread keeps creating invocations holds
// every invocation created before the call, opens as an evald store of its own, is one file
// (no -wal) with mode 0600, and never replaces or half-writes a file it should not.
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "absl/strings/str_format.h"
#include "storage_test_util.h"

namespace evald::storage {
namespace {

namespace fs = std::filesystem;
using testing::CountRows;
using testing::CreateSimple;
using testing::OpenStore;
using testing::TempDir;

std::string Id(int n) { return absl::StrFormat("%08x", n); }

TEST_CASE("Backup copies a consistent snapshot while writers keep committing") {
  TempDir dir;
  auto store = OpenStore(dir);
  for (int i = 0; i < 200; ++i) CreateSimple(*store, Id(i), 1000 + i);

  std::atomic<bool> stop{false};
  std::atomic<int> created{200};
  std::thread writer([&] {
    for (int i = 200; !stop; ++i) {
      CreateSimple(*store, Id(i), 1000 + i);
      created = i + 1;
    }
  });
  while (created < 230) std::this_thread::yield();
  const int before = created;
  const std::string copy = dir / "copy.db";
  absl::StatusOr<Store::BackupInfo> info = store->Backup(copy, false);
  stop = true;
  writer.join();
  REQUIRE_OK(info);
  CHECK(info->invocations >= before);
  CHECK(info->invocations <= created);
  CHECK(info->bytes == static_cast<int64_t>(fs::file_size(copy)));
  CHECK(CountRows(copy, "invocations") == info->invocations);
  // Every job of every copied invocation came along: one snapshot, not a mix.
  CHECK(CountRows(copy, "jobs") == 2 * info->invocations);
  CHECK(!fs::exists(copy + "-wal"));
  struct stat st {};
  REQUIRE(stat(copy.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);

  // The copy is a database evald opens as it is (the restore path).
  fs::create_directories(dir / "restored");
  fs::copy_file(copy, dir / "restored/evald.db");
  absl::StatusOr<std::unique_ptr<Store>> restored =
      Store::Open({.db_path = dir / "restored/evald.db", .key_path = dir / "state/secrets.key"});
  REQUIRE_OK(restored);
  for (int i : {0, before - 1}) CHECK((*restored)->GetInvocation(Id(i)).ok());
  // Nothing but the copy was left in its folder.
  int files = 0;
  for (const auto& e : fs::directory_iterator(dir.path())) files += e.is_regular_file();
  CHECK(files == 1);
}

TEST_CASE("Backup refuses an existing file unless overwrite, and bad destinations") {
  TempDir dir;
  auto store = OpenStore(dir);
  CreateSimple(*store, Id(1), 1000);
  const std::string copy = dir / "copy.db";
  testing::WriteFileBytes(copy, "precious");
  absl::StatusOr<Store::BackupInfo> refused = store->Backup(copy, false);
  CHECK(refused.status().code() == absl::StatusCode::kAlreadyExists);
  CHECK(testing::ReadFileBytes(copy) == "precious");
  REQUIRE_OK(store->Backup(copy, true));
  CHECK(CountRows(copy, "invocations") == 1);

  CHECK(store->Backup("copy.db", false).status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(store->Backup(store->path(), true).status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(store->Backup(dir / "no/such/copy.db", false).status().code() ==
        absl::StatusCode::kFailedPrecondition);
  fs::create_symlink(dir / "elsewhere.db", dir / "link.db");
  CHECK(store->Backup(dir / "link.db", true).status().code() ==
        absl::StatusCode::kFailedPrecondition);
  CHECK(!fs::exists(dir / "elsewhere.db"));
}

}  // namespace
}  // namespace evald::storage
