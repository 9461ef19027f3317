#include "executors/stage_files.h"

#include <cstdint>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "nlohmann/json.hpp"

namespace evald::executors {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return "";
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

std::optional<int> ReadStageExit(const std::string& task_dir) {
  std::string text(absl::StripAsciiWhitespace(ReadFile(task_dir + "/logs/stage.exit")));
  if (text.empty()) return std::nullopt;
  size_t space = text.rfind(' ');
  int code = 0;
  if (space == std::string::npos || !absl::SimpleAtoi(text.substr(space + 1), &code)) return 1;
  return code;
}

void ReadProgress(const std::string& task_dir, Observation& obs) {
  const std::string text = ReadFile(task_dir + "/artifacts/progress.json");
  if (text.empty()) return;
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return;
  obs.has_progress = true;
  obs.progress_done = j.value("done", int64_t{0});
  obs.progress_total = j.value("total", int64_t{0});
  obs.progress_errors = j.value("errors", int64_t{0});
  obs.progress_rate = j.value("rate", 0.0);
}

}  // namespace evald::executors
