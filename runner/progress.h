// File: progress.h
//
// The job contract's progress files in the artifacts folder: `progress.json`
// ({"done", "total", "errors", "rate", "updated_at"}) and `progress` (done as a bare integer,
// for tools written against the reference). Both are replaced atomically (temp file + rename),
// at most every `min_interval_s` unless forced. evald's supervisor reads them while the job
// runs. Also: WriteFileAtomically, used for every artifact evalrun writes.
//
//   ProgressFiles progress(artifacts_dir, /*total=*/500);
//   progress.Update(/*done=*/120, /*errors=*/2, /*force=*/false);
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace evald::runner {

// Writes `content` to `path` via a temp file in the same folder and rename().
absl::Status WriteFileAtomically(const std::string& path, absl::string_view content);

// "2026-11-23T10:00:00Z"
std::string UtcIsoTime(std::chrono::system_clock::time_point t);

class ProgressFiles {
 public:
  ProgressFiles(std::string dir, int64_t total, double min_interval_s = 0.25);
  // `done` counts finished samples x repeats, cached ones included. Returns the write error of a
  // forced update (throttled updates are best effort).
  absl::Status Update(int64_t done, int64_t errors, bool force);

 private:
  std::string dir_;
  int64_t total_;
  double min_interval_s_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_write_{};
  int64_t first_done_ = -1;  // `done` at the first update, so the rate is this run's own
};

}  // namespace evald::runner
