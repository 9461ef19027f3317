// File: test_util.h
//
// Helpers for the evald_config tests: paths of the source tree and fixtures, a fixed environment,
// temp dirs with files, and a value-by-value comparison of a composed config with the JSON goldens
// that tests/tools/compose_oracle.py writes.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/config/compose.h"
#include "nlohmann/json.hpp"
#include "yaml-cpp/yaml.h"

namespace evald::config::testing {

std::string SourcePath(const std::string& rel);  // <repo>/<rel>
std::string PackagedDir();                       // <repo>/configs
std::string PeerExamplesDir();                   // tests/fixtures/peer-examples
std::string ReadText(const std::string& path);
nlohmann::ordered_json ReadJson(const std::string& path);

// An env lookup over a fixed map (never the process environment).
EnvLookup FixedEnv(std::map<std::string, std::string> vars);
// The environment the goldens were generated with.
EnvLookup GoldenEnv();

// A fresh directory under /tmp, removed with everything in it when the object goes away.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  // Writes `text` to <dir>/<rel>, creating folders; returns the absolute path.
  std::string Write(const std::string& rel, const std::string& text) const;

 private:
  std::string path_;
};

// Every difference between `node` and `expected` ("execution.type: missing in composed"), empty
// when they hold the same values with the same types and key order.
std::vector<std::string> DiffAgainstJson(const YAML::Node& node,
                                         const nlohmann::ordered_json& expected);

// Composes `yaml` as the primary config text with the packaged configs.
absl::StatusOr<YAML::Node> ComposeText(const std::string& yaml,
                                       std::vector<std::string> overrides = {},
                                       EnvLookup env = nullptr);

// The value at a dotted path ("execution.output_dir", "evaluation.tasks.0.name"); undefined if
// absent.
YAML::Node At(const YAML::Node& root, const std::string& dotted);

}  // namespace evald::config::testing
