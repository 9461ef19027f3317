// File: export_test_util.h
//
// Helpers of the exporter tests: a temp dir removed at the end and a job dir in the layout of
// docs/design/job-contract.md (artifacts/ with results.yml and eval_factory_metrics.json, logs/).
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "daemon/export/export_types.h"

namespace evald::daemon::exporters::testing {

inline std::string DataFile(const std::string& name) {
  std::ifstream in(std::string(EVALD_SOURCE_DIR) + "/tests/daemon/export/data/" + name);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void WriteText(const std::filesystem::path& path, const std::string& text) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

inline std::string ReadText(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "evald_export_XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// A finished job of invocation `inv` whose artifacts hold `results_yml`.
inline JobExportInput MakeJob(const std::filesystem::path& root, const std::string& inv, int index,
                              const std::string& task, const std::string& results_yml) {
  JobExportInput job;
  job.invocation_id = inv;
  job.job_index = index;
  job.job_id = inv + "." + std::to_string(index);
  job.task_name = task;
  job.harness = "lm-evaluation-harness";
  job.container = "nvcr.io/nvidia/eval-factory/lm-evaluation-harness:25.08";
  job.executor = "local";
  job.model_name = "my/model";
  job.timestamp = "2026-12-06T10:00:00Z";
  const std::filesystem::path task_dir = root / "runs" / inv / (task + std::to_string(index));
  job.artifacts_dir = (task_dir / "artifacts").string();
  job.logs_dir = (task_dir / "logs").string();
  WriteText(task_dir / "artifacts" / "results.yml", results_yml);
  WriteText(task_dir / "artifacts" / "eval_factory_metrics.json",
            R"({"evaluation": {"runtime_seconds": 1.5}})");
  WriteText(task_dir / "artifacts" / "cache" / "responses" / "x.bin", "cached");
  WriteText(task_dir / "logs" / "stdout.log", "stdout line\n");
  return job;
}

inline std::string SimpleResults(const std::string& task, double accuracy) {
  std::ostringstream s;
  s << "results:\n  tasks:\n    " << task << ":\n      metrics:\n        accuracy:\n"
    << "          value: " << accuracy << "\n";
  return s.str();
}

}  // namespace evald::daemon::exporters::testing
