// File: file_util.h
//
// File helpers of the local exporter: whole-file writes that are atomic (a temp file in the same
// folder, fsync, rename: a crash leaves the old file or the new one, never half of one), an
// exclusive flock(2) lock file that serializes read-modify-write of a shared summary across
// threads and processes, and file copies. Called by the exporters (local_exporter.cc,
// mlflow_exporter.cc) and metrics_extract.cc.
//
//   EVALD_ASSIGN_OR_RETURN(FileLock lock, FileLock::Acquire(summary + ".lock"));
//   EVALD_RETURN_IF_ERROR(WriteFileAtomic(summary, text));
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace evald::daemon::exporters {

// Creates missing parent folders. `durable`: fsync before the rename (summaries); files that an
// export can simply write again skip it (an fsync per copied file would dominate export time).
absl::Status WriteFileAtomic(const std::string& path, const std::string& content,
                             bool durable = true);

// NotFound when missing.
absl::StatusOr<std::string> ReadWholeFile(const std::string& path);

// Copies a regular file (content only, mode 0644 as the umask allows), creating parent folders;
// the copy is atomic like WriteFileAtomic.
absl::Status CopyFileAtomic(const std::string& from, const std::string& to);

// An exclusive flock(2) on `path` (created if missing) held until destruction. Blocks until the
// lock is free. flock locks belong to the open file, so two threads of one process exclude each
// other too.
class FileLock {
 public:
  static absl::StatusOr<FileLock> Acquire(const std::string& path);
  FileLock(FileLock&& other) noexcept;
  FileLock& operator=(FileLock&& other) noexcept;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  ~FileLock();

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace evald::daemon::exporters
