#include "daemon/log_tail.h"

#include <filesystem>
#include <fstream>

#include <catch2/catch.hpp>

#include "tests/executors/local/test_util.h"

namespace evald::daemon {
namespace {

using evald::testing::TempDir;

void Append(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::app) << text;
}

TEST_CASE("a tailer returns appended complete lines and holds back a partial one") {
  TempDir dir;
  std::string path = dir.path() + "/out.log";
  FileTailer t(path);
  CHECK(t.ReadLines().empty());  // no file yet
  Append(path, "one\ntwo\nthr");
  CHECK(t.ReadLines() == std::vector<std::string>{"one", "two"});
  Append(path, "ee\n");
  CHECK(t.ReadLines() == std::vector<std::string>{"three"});
  Append(path, "tail-without-newline");
  CHECK(t.ReadLines().empty());
  CHECK(t.ReadLines(1000, /*flush_partial=*/true) ==
        std::vector<std::string>{"tail-without-newline"});
}

TEST_CASE("a tailer limits each read and starts over on truncation") {
  TempDir dir;
  std::string path = dir.path() + "/out.log";
  Append(path, "a\nb\nc\n");
  FileTailer t(path);
  CHECK(t.ReadLines(2) == std::vector<std::string>{"a", "b"});
  CHECK(t.ReadLines(2) == std::vector<std::string>{"c"});
  std::ofstream(path, std::ios::trunc) << "x\n";
  CHECK(t.ReadLines() == std::vector<std::string>{"x"});
}

TEST_CASE("last lines and skip to end") {
  TempDir dir;
  std::string path = dir.path() + "/out.log";
  std::string text;
  for (int i = 0; i < 100000; ++i) text += "line " + std::to_string(i) + "\n";
  Append(path, text);
  CHECK(LastLines(path, 2) == std::vector<std::string>{"line 99998", "line 99999"});
  CHECK(LastLines(path, 0).size() == 100000);
  CHECK(LastLines(dir.path() + "/missing.log", 5).empty());
  FileTailer t(path);
  t.SkipToEnd();
  CHECK(t.ReadLines().empty());
  Append(path, "new\n");
  CHECK(t.ReadLines() == std::vector<std::string>{"new"});
}

}  // namespace
}  // namespace evald::daemon
