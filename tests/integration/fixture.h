// File: fixture.h
//
// The standard integration set-up: a reference model that knows the answers of
// tests/integration/data/arith.jsonl, an evald on a private state dir, and a config writer for
// the arith task (a user-defined native task run by the real evalrun).
#pragma once

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/integration/harness.h"

namespace evald::testing {

inline std::string DataDir() { return SourceDir() + "/tests/integration/data"; }

struct ArithOptions {
  int tasks = 1;
  int limit_samples = 10;
  int parallelism = 4;
  std::string api_key_name;  // empty = null
  std::string mode = "parallel";
  std::string extra_yaml;    // appended at the top level
};

// A complete config (defaults list and all) for `tasks` copies of the arith task.
inline std::string ArithConfig(const TempDir& dir, const RefEndpoint& model,
                               const ArithOptions& o = {}) {
  std::string yaml = absl::StrCat(
      "defaults:\n  - execution: local\n  - deployment: none\n  - _self_\n"
      "execution:\n  output_dir: ", dir.path(), "/out\n  mode: ", o.mode, "\n",
      "target:\n  api_endpoint:\n    url: ", model.chat_url(), "\n    model_id: ref-model\n",
      "    api_key_name: ", o.api_key_name.empty() ? "null" : o.api_key_name, "\n",
      "evaluation:\n  overrides:\n    config.params.limit_samples: ", o.limit_samples, "\n",
      "    config.params.parallelism: ", o.parallelism, "\n  tasks:\n");
  for (int i = 0; i < o.tasks; ++i) {
    absl::StrAppend(&yaml, "    - name: arith\n      task_file: ", DataDir(), "/arith_task.yaml\n");
  }
  absl::StrAppend(&yaml, o.extra_yaml);
  return yaml;
}

inline std::vector<std::string> ArithModelFlags(std::vector<std::string> extra = {}) {
  std::vector<std::string> flags = {"--keys", DataDir() + "/arith_keys.jsonl", "--model-id",
                                    "ref-model"};
  flags.insert(flags.end(), extra.begin(), extra.end());
  return flags;
}

// The invocation id printed by `evalctl submit --json`.
std::string InvocationIdFromJson(const std::string& json_text);

}  // namespace evald::testing
