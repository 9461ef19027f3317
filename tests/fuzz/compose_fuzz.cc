// libFuzzer target for config composition: everything a user can hand to `evalctl submit` (a
// config text plus -o overrides) goes through Compose, the printed YAML must read back to the same
// text, and valid configs go on through validation and job planning. Bad input must come back as
// a Status, never as a crash. Uses a fixed environment and the source tree's packaged configs;
// touches no real environment variable and writes no file.
//
// Input: optional leading lines "-o <override>" (one override each), then the YAML text.
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/config/compose.h"
#include "core/config/job_plan.h"
#include "core/config/run_config.h"
#include "core/config/task_catalog.h"

namespace {

using evald::config::TaskCatalog;

const TaskCatalog* Catalog() {
  static const TaskCatalog* catalog = [] {
    auto c = TaskCatalog::LoadDir(std::string(EVALD_FUZZ_CONFIGS_DIR) + "/tasks");
    if (!c.ok()) __builtin_trap();  // the packaged catalog must load
    return new TaskCatalog(std::move(*c));
  }();
  return catalog;
}

std::optional<std::string> FixedEnv(const std::string& name) {
  static const std::map<std::string, std::string> kEnv = {{"USER", "fuzz"},
                                                          {"HOME", "/home/fuzz"},
                                                          {"AWS_ACCESS_KEY_ID", "k"},
                                                          {"NV_CSS_S3_TOKEN", "t"}};
  auto it = kEnv.find(name);
  if (it == kEnv.end()) return std::nullopt;
  return it->second;
}

// Task files would be read from wherever the input points; the fuzzer must not read arbitrary
// files, so user tasks are dropped before validation.
void DropTaskFiles(YAML::Node& root) {
  if (!root.IsMap()) return;
  YAML::Node evaluation = root["evaluation"];
  if (!evaluation.IsMap()) return;
  YAML::Node tasks = evaluation["tasks"];
  if (!tasks.IsSequence()) return;
  for (YAML::Node task : tasks) {
    if (task.IsMap()) task.remove("task_file");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string input(reinterpret_cast<const char*>(data), size);
  evald::config::ComposeRequest req;
  size_t pos = 0;
  while (input.compare(pos, 3, "-o ") == 0 && req.overrides.size() < 16) {
    size_t end = input.find('\n', pos);
    if (end == std::string::npos) end = input.size();
    req.overrides.push_back(input.substr(pos + 3, end - pos - 3));
    pos = end < input.size() ? end + 1 : end;
  }
  req.primary_yaml = input.substr(pos);
  req.primary_name = "fuzz.yaml";
  req.packaged_dir = EVALD_FUZZ_CONFIGS_DIR;
  req.env = FixedEnv;
  req.working_dir = "/fuzz/work";
  req.allow_missing = (size % 2) == 1;
  auto composed = evald::config::Compose(req);
  if (!composed.ok()) return 0;

  // What evalctl prints and evald stores must read back unchanged.
  std::string text = evald::config::ToYaml(*composed);
  auto reread = evald::config::ParseYaml(text, "printed");
  if (!reread.ok() || evald::config::ToYaml(*reread) != text) __builtin_trap();

  evald::config::SecretNamesOf(*composed);
  DropTaskFiles(*composed);
  auto rc = evald::config::ParseRunConfig(*composed, *Catalog(), {});
  if (!rc.ok()) return 0;
  for (const evald::config::TaskSpec& task : rc->tasks) {
    auto endpoint = evald::config::EndpointForTask(*rc, task);
    if (!endpoint.ok()) continue;
    if (task.def.native()) {
      auto plan = evald::config::BuildNativePlan(*rc, task, *endpoint, "/fuzz/artifacts");
      if (plan.ok()) evald::config::ToYaml(*plan);
    } else {
      evald::config::BuildEvalFactoryCommand(task, *endpoint);
    }
  }
  return 0;
}
