#include "daemon/state_dir_check.h"

#include <ctime>
#include <filesystem>
#include <system_error>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "spdlog/spdlog.h"

namespace evald::daemon {
namespace {

namespace fs = std::filesystem;

// Files that exist only once an evald has opened its database here. evald.pid and evald.sock
// are not among them: both are written before or without the database (a first start that
// failed early leaves them), and neither holds anything that would be lost.
constexpr const char* kEarlierFiles[] = {"secrets.key", "evald.db-wal", "evald.db-shm"};

}  // namespace

absl::Status CheckDatabaseNotLost(const std::string& state_dir, bool initialize_db) {
  const std::string db = state_dir + "/evald.db";
  std::error_code ec;
  const fs::file_status st = fs::symlink_status(db, ec);
  std::string what;
  if (!fs::exists(st)) {
    what = "missing";
  } else if (fs::is_regular_file(st) && fs::file_size(db, ec) == 0 && !ec) {
    what = "empty (0 bytes)";
  } else {
    return absl::OkStatus();  // anything else is for Database::Open to judge
  }
  std::vector<std::string> found;
  for (const char* name : kEarlierFiles) {
    if (fs::exists(fs::symlink_status(state_dir + "/" + name, ec))) found.push_back(name);
  }
  if (found.empty()) return absl::OkStatus();  // a new state dir
  if (!initialize_db) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the database ", db, " is ", what, " but state dir ", state_dir,
        " holds files of an earlier evald (", absl::StrJoin(found, ", "),
        "): starting would begin a new, empty history and hide the old one. Restore evald.db "
        "from a backup, or start evald with --initialize-db to begin a new database"));
  }
  const std::string suffix = absl::StrCat(".stale-", std::time(nullptr));
  for (const char* name : {"evald.db-wal", "evald.db-shm"}) {
    const std::string path = state_dir + "/" + name;
    if (!fs::exists(fs::symlink_status(path, ec))) continue;
    fs::rename(path, path + suffix, ec);
    if (ec) {
      return absl::FailedPreconditionError(absl::StrCat(
          "cannot move ", path, " aside before initialising ", db, ": ", ec.message()));
    }
  }
  spdlog::warn(
      "--initialize-db: the database {} was {} although the state dir holds {}; starting a new, "
      "empty database (a leftover -wal/-shm was renamed to *{})",
      db, what, absl::StrJoin(found, ", "), suffix);
  return absl::OkStatus();
}

}  // namespace evald::daemon
