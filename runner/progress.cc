#include "runner/progress.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"

namespace evald::runner {

absl::Status WriteFileAtomically(const std::string& path, absl::string_view content) {
  const std::string tmp = absl::StrCat(path, ".tmp.", ::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::DataLossError(absl::StrCat(path, ": cannot write: ", std::strerror(errno)));
  }
  size_t off = 0;
  while (off < content.size()) {
    ssize_t n = ::write(fd, content.data() + off, content.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return absl::DataLossError(absl::StrCat(path, ": cannot write: ", std::strerror(err)));
    }
    off += static_cast<size_t>(n);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return absl::DataLossError(
        absl::StrCat(path, ": cannot rename into place: ", std::strerror(err)));
  }
  return absl::OkStatus();
}

std::string UtcIsoTime(std::chrono::system_clock::time_point t) {
  std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

ProgressFiles::ProgressFiles(std::string dir, int64_t total, double min_interval_s)
    : dir_(std::move(dir)),
      total_(total),
      min_interval_s_(min_interval_s),
      start_(std::chrono::steady_clock::now()) {}

absl::Status ProgressFiles::Update(int64_t done, int64_t errors, bool force) {
  const auto now = std::chrono::steady_clock::now();
  if (first_done_ < 0) first_done_ = done;
  if (!force && std::chrono::duration<double>(now - last_write_).count() < min_interval_s_) {
    return absl::OkStatus();
  }
  last_write_ = now;
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  double rate = elapsed > 0 ? static_cast<double>(done - first_done_) / elapsed : 0.0;
  rate = std::round(rate * 10) / 10;
  nlohmann::json j = {{"done", done},
                      {"total", total_},
                      {"errors", errors},
                      {"rate", rate},
                      {"updated_at", UtcIsoTime(std::chrono::system_clock::now())}};
  absl::Status s = WriteFileAtomically((std::filesystem::path(dir_) / "progress.json").string(),
                                       j.dump() + "\n");
  absl::Status s2 = WriteFileAtomically((std::filesystem::path(dir_) / "progress").string(),
                                        absl::StrCat(done, "\n"));
  if (!force) return absl::OkStatus();
  return s.ok() ? s2 : s;
}

}  // namespace evald::runner
