// File: log_tail.h
//
// Reads a growing log file line by line from where it last stopped (tail -F semantics: a file that
// does not exist yet is empty, a truncated file starts over). Used by Watch and StreamLogs, one
// tailer per file per stream.
//
//   FileTailer t(job_dir + "/logs/stdout.log");
//   t.SkipToEnd();                        // only new lines
//   for (const std::string& line : t.ReadLines()) ...
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace evald::daemon {

class FileTailer {
 public:
  explicit FileTailer(std::string path) : path_(std::move(path)) {}

  void SkipToEnd();
  // Positions so that the next ReadLines returns at most the last `n` complete lines.
  void StartAtLastLines(int n);
  // Complete lines appended since the last call (at most `max_lines`; call again for more). A
  // final line without '\n' is returned once the file has not grown for a call (`flush_partial`).
  std::vector<std::string> ReadLines(size_t max_lines = 1000, bool flush_partial = false);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  uint64_t offset_ = 0;
  std::string partial_;
};

// The last `n` lines of a file (all when n <= 0).
std::vector<std::string> LastLines(const std::string& path, int n);

}  // namespace evald::daemon
