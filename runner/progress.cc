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
      start_(std::chrono::steady_clock::now()),
      thread_([this] { Run(); }) {}

ProgressFiles::~ProgressFiles() {
  {
    std::lock_guard<std::mutex> lock(stop_mu_);
    stop_ = true;
  }
  stop_cv_.notify_all();
  thread_.join();
}

void ProgressFiles::Run() {
  const auto interval = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(min_interval_s_));
  std::unique_lock<std::mutex> lock(stop_mu_);
  while (!stop_cv_.wait_for(lock, interval, [this] { return stop_; })) {
    lock.unlock();
    {
      std::lock_guard<std::mutex> write_lock(write_mu_);
      const int64_t done = done_.load();
      const int64_t errors = errors_.load();
      // Best effort: a failed write is retried at the next tick and reported by the final one.
      if (first_done_.load() >= 0 && (done != written_done_ || errors != written_errors_)) {
        (void)Write(done, errors);
      }
    }
    lock.lock();
  }
}

absl::Status ProgressFiles::Update(int64_t done, int64_t errors, bool force) {
  int64_t unset = -1;
  first_done_.compare_exchange_strong(unset, done);
  done_.store(done);
  errors_.store(errors);
  if (!force) return absl::OkStatus();
  std::lock_guard<std::mutex> lock(write_mu_);
  return Write(done, errors);
}

absl::Status ProgressFiles::Write(int64_t done, int64_t errors) {
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  double rate = elapsed > 0 ? static_cast<double>(done - first_done_.load()) / elapsed : 0.0;
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
  if (s.ok() && s2.ok()) {
    written_done_ = done;
    written_errors_ = errors;
  }
  return s.ok() ? s2 : s;
}

}  // namespace evald::runner
