// File: progress.h
//
// The job contract's progress files in the artifacts folder: `progress.json`
// ({"done", "total", "errors", "rate", "updated_at"}) and `progress` (done as a bare integer,
// for tools written against the reference). Both are replaced atomically (temp file + rename),
// at most every `min_interval_s`, by a writer thread of their own: a rename over an existing file
// can take milliseconds (ext4 flushes the new data first), and the runner's event loop must not
// stall on it. evald's supervisor reads them while the job runs. Also: WriteFileAtomically, used
// for every artifact evalrun writes.
//
//   ProgressFiles progress(artifacts_dir, /*total=*/500);
//   progress.Update(/*done=*/120, /*errors=*/2, /*force=*/false);  // cheap: the thread writes
//   progress.Update(500, 2, /*force=*/true);                        // written before returning
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

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
  ~ProgressFiles();  // stops the writer thread (a last forced Update() is the caller's job)
  ProgressFiles(const ProgressFiles&) = delete;
  ProgressFiles& operator=(const ProgressFiles&) = delete;

  // `done` counts finished samples x repeats, cached ones included. Unforced: records the values
  // for the writer thread. Forced: writes now, on the calling thread, and returns the error.
  absl::Status Update(int64_t done, int64_t errors, bool force);

 private:
  void Run();
  absl::Status Write(int64_t done, int64_t errors);  // REQUIRES: write_mu_ held

  const std::string dir_;
  const int64_t total_;
  const double min_interval_s_;
  const std::chrono::steady_clock::time_point start_;
  std::atomic<int64_t> done_{0};
  std::atomic<int64_t> errors_{0};
  std::atomic<int64_t> first_done_{-1};  // `done` at the first update: the rate is this run's
  std::mutex write_mu_;                  // one writer at a time (thread or forced update)
  int64_t written_done_ = -1;            // what the files say now (write_mu_)
  int64_t written_errors_ = -1;
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stop_ = false;  // stop_mu_
  std::thread thread_;
};

}  // namespace evald::runner
