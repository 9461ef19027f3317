// Store::Backup: an online copy of evald.db with SQLite's backup API (store.h). Kept apart from
// store.cc because it works on connections of its own, not on the Store's.
#include <SQLiteCpp/Backup.h>
#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "storage/sqlite_status.h"
#include "storage/store.h"

namespace evald::storage {
namespace {

namespace fs = std::filesystem;

// How long the backup's read waits for a lock (only a checkpoint's brief exclusive moments).
constexpr int kBackupBusyTimeoutMs = 5000;

absl::Status ErrnoStatus(const std::string& what, const std::string& path) {
  int err = errno;
  std::string message = absl::StrCat("cannot ", what, " ", path, ": ", std::strerror(err));
  if (err == ENOENT || err == EACCES || err == EPERM || err == EROFS || err == ENOTDIR) {
    return absl::FailedPreconditionError(message);
  }
  if (err == ENOSPC || err == EDQUOT) return absl::ResourceExhaustedError(message);
  return absl::InternalError(message);
}

void SyncPath(const std::string& path, int flags) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

// Removes the temporary file on every way out.
struct TempFile {
  std::string path;
  ~TempFile() {
    if (path.empty()) return;
    ::unlink(path.c_str());
    ::unlink((path + "-journal").c_str());
  }
};

}  // namespace

absl::StatusOr<Store::BackupInfo> Store::Backup(const std::string& dest_path, bool overwrite) {
  if (dest_path.empty() || dest_path[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("backup path must be absolute (evald writes it), got '", dest_path, "'"));
  }
  const fs::path dest = fs::path(dest_path).lexically_normal();
  if (dest.filename().empty()) {
    return absl::InvalidArgumentError(absl::StrCat("backup path '", dest_path, "' names a folder"));
  }
  std::error_code ec;
  if (fs::equivalent(dest, path_, ec) || dest == fs::path(path_).lexically_normal() ||
      dest.string() == path_ + "-wal" || dest.string() == path_ + "-shm") {
    return absl::InvalidArgumentError(
        absl::StrCat("backup path ", dest.string(), " is evald's own database"));
  }
  struct stat st {};
  if (::lstat(dest.c_str(), &st) == 0) {
    if (!overwrite) {
      return absl::AlreadyExistsError(
          absl::StrCat(dest.string(), " already exists; pick a new name or pass overwrite"));
    }
    if (!S_ISREG(st.st_mode)) {
      return absl::FailedPreconditionError(
          absl::StrCat(dest.string(), " exists and is not a regular file"));
    }
  }
  const std::string dir = dest.parent_path().string();
  std::random_device rd;
  TempFile tmp{
      absl::StrFormat("%s/.%s.tmp-%d-%08x", dir, dest.filename().string(), ::getpid(), rd())};
  // Created here, 0600 and exclusively, so SQLite only ever opens a file that is ours.
  int fd = ::open(tmp.path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    std::string path = tmp.path;
    tmp.path.clear();
    return ErrnoStatus("create the backup in", dir + " (as " + path + ")");
  }
  ::close(fd);

  BackupInfo info;
  absl::Status copied = GuardSqlite(path_, "back up the database", [&]() -> absl::Status {
    // A connection of its own: the copy reads one snapshot in a read transaction and never takes
    // the Store's mutex, so Submits and the Supervisor keep committing meanwhile.
    SQLite::Database source(path_, SQLite::OPEN_READONLY, kBackupBusyTimeoutMs);
    SQLite::Database copy(tmp.path, SQLite::OPEN_READWRITE);
    {
      SQLite::Backup backup(copy, source);
      // All pages in one step: one read transaction, hence one consistent snapshot.
      int rc = backup.executeStep(-1);
      if (rc != SQLITE_DONE) {
        return SqliteCodeToStatus(rc, "backup did not complete", path_, "back up the database");
      }
    }
    // The copy of a WAL database is a WAL database; make it one file that opens on its own.
    copy.exec("PRAGMA journal_mode=DELETE");
    SQLite::Statement count(copy, "SELECT count(*) FROM invocations");
    if (count.executeStep()) info.invocations = count.getColumn(0).getInt64();
    return absl::OkStatus();
  });
  if (!copied.ok()) return copied;
  SyncPath(tmp.path, O_RDONLY);
  if (::stat(tmp.path.c_str(), &st) == 0) info.bytes = st.st_size;

  if (overwrite) {
    if (::rename(tmp.path.c_str(), dest.c_str()) != 0) return ErrnoStatus("write", dest.string());
  } else {
    // link() fails if the name appeared meanwhile: an existing file is never replaced.
    if (::link(tmp.path.c_str(), dest.c_str()) != 0) {
      if (errno == EEXIST) {
        return absl::AlreadyExistsError(
            absl::StrCat(dest.string(), " already exists; pick a new name or pass overwrite"));
      }
      return ErrnoStatus("write", dest.string());
    }
    ::unlink(tmp.path.c_str());
  }
  tmp.path.clear();
  SyncPath(dir, O_RDONLY | O_DIRECTORY);
  return info;
}

}  // namespace evald::storage
