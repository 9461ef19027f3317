#include "daemon/log_tail.h"

#include <sys/stat.h>

#include <algorithm>
#include <fstream>

namespace evald::daemon {
namespace {

uint64_t FileSize(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

}  // namespace

void FileTailer::SkipToEnd() {
  offset_ = FileSize(path_);
  partial_.clear();
}

void FileTailer::StartAtLastLines(int n) {
  offset_ = 0;
  partial_.clear();
  if (n <= 0) return;
  std::ifstream in(path_, std::ios::binary);
  if (!in) return;
  uint64_t size = FileSize(path_);
  // Scan backwards in blocks for n+1 newlines (the last one may end the final line).
  const uint64_t kBlock = 64 * 1024;
  uint64_t pos = size;
  int newlines = 0;
  std::string block;
  while (pos > 0) {
    uint64_t len = std::min(kBlock, pos);
    pos -= len;
    block.resize(len);
    in.seekg(static_cast<std::streamoff>(pos));
    in.read(block.data(), static_cast<std::streamsize>(len));
    for (uint64_t i = len; i > 0; --i) {
      if (block[i - 1] != '\n') continue;
      if (pos + i == size) continue;  // the newline that ends the last line
      if (++newlines == n) {
        offset_ = pos + i;
        return;
      }
    }
  }
}

std::vector<std::string> FileTailer::ReadLines(size_t max_lines, bool flush_partial) {
  std::vector<std::string> lines;
  uint64_t size = FileSize(path_);
  if (size < offset_) {  // truncated or replaced
    offset_ = 0;
    partial_.clear();
  }
  if (size > offset_) {
    std::ifstream in(path_, std::ios::binary);
    if (in) {
      in.seekg(static_cast<std::streamoff>(offset_));
      const size_t kChunk = 256 * 1024;
      std::string buf(static_cast<size_t>(std::min<uint64_t>(size - offset_, kChunk)), '\0');
      in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
      buf.resize(static_cast<size_t>(in.gcount()));
      size_t start = 0;
      size_t consumed = 0;
      for (size_t i = 0; i < buf.size() && lines.size() < max_lines; ++i) {
        if (buf[i] != '\n') continue;
        partial_.append(buf, start, i - start);
        lines.push_back(std::move(partial_));
        partial_.clear();
        start = i + 1;
        consumed = i + 1;
      }
      if (lines.size() < max_lines) {
        partial_.append(buf, start, buf.size() - start);
        consumed = buf.size();
      }
      offset_ += consumed;
      return lines;
    }
  }
  if (flush_partial && !partial_.empty()) {
    lines.push_back(std::move(partial_));
    partial_.clear();
  }
  return lines;
}

std::vector<std::string> LastLines(const std::string& path, int n) {
  FileTailer t(path);
  t.StartAtLastLines(n);
  std::vector<std::string> out;
  while (true) {
    std::vector<std::string> more = t.ReadLines(10000, /*flush_partial=*/true);
    if (more.empty()) break;
    out.insert(out.end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
  }
  return out;
}

}  // namespace evald::daemon
