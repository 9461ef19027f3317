// Local export benchmark (issue 13): builds N finished jobs (results.yml with a few scores,
// eval_factory_metrics.json, a log) in a temp dir and times LocalExporter exporting them all as
// one invocation, per summary format, to a fresh output dir. Prints one line per format with the
// target (< 2 s for 1,000 jobs). Run through bench/export/run.
#include <stdlib.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "daemon/export/local_exporter.h"

namespace fs = std::filesystem;
using evald::daemon::exporters::InvocationExportResult;
using evald::daemon::exporters::JobExportInput;
using evald::daemon::exporters::LocalExporter;

int main(int argc, char** argv) {
  CLI::App app("local export benchmark");
  int jobs_n = 1000;
  std::string dir;
  app.add_option("--jobs", jobs_n, "jobs to export");
  app.add_option("--dir", dir, "work dir (default: a new one under $TMPDIR, removed at the end)");
  CLI11_PARSE(app, argc, argv);
  bool remove = dir.empty();
  if (dir.empty()) {
    std::string tmpl = (fs::temp_directory_path() / "evald_export_bench_XXXXXX").string();
    dir = ::mkdtemp(tmpl.data());
  }
  const std::string inv = "be0c4a11";
  std::vector<JobExportInput> jobs;
  for (int i = 0; i < jobs_n; ++i) {
    JobExportInput j;
    j.invocation_id = inv;
    j.job_index = i;
    j.job_id = inv + "." + std::to_string(i);
    j.task_name = "lm-evaluation-harness.task" + std::to_string(i);
    j.harness = "lm-evaluation-harness";
    j.container = "nvcr.io/nvidia/eval-factory/lm-evaluation-harness:25.08";
    j.executor = "local";
    j.model_name = "meta/llama-3.1-8b-instruct";
    j.timestamp = "2026-12-06T10:00:00Z";
    const fs::path task_dir = fs::path(dir) / "runs" / ("task" + std::to_string(i));
    fs::create_directories(task_dir / "artifacts");
    fs::create_directories(task_dir / "logs");
    j.artifacts_dir = (task_dir / "artifacts").string();
    j.logs_dir = (task_dir / "logs").string();
    std::ofstream(task_dir / "artifacts" / "results.yml")
        << "results:\n  tasks:\n    task" << i << ":\n      metrics:\n        exact_match:\n"
        << "          scores:\n            strict-match: {value: " << (i % 100) / 100.0
        << ", stats: {count: 100, stderr: 0.01}}\n            flexible-extract: {value: 0.5}\n"
        << "        accuracy: {value: 0.25}\n        latency: {value: 3.0}\n";
    std::ofstream(task_dir / "artifacts" / "eval_factory_metrics.json")
        << R"({"evaluation": {"runtime_seconds": 12.5, "token_usage": {"total_tokens": 1000}}})";
    std::ofstream(task_dir / "logs" / "stdout.log") << "done\n";
    jobs.push_back(std::move(j));
  }
  std::printf("machine: %u cores\n", std::thread::hardware_concurrency());
  int rc = 0;
  for (const char* format : {"json", "csv"}) {
    const fs::path out = fs::path(dir) / (std::string("out-") + format);
    LocalExporter local({.output_dir = out.string(), .format = format});
    auto start = std::chrono::steady_clock::now();
    InvocationExportResult r = local.Export(jobs, /*consolidated=*/false);
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    size_t ok = 0;
    for (const auto& j : r.jobs) ok += j.success ? 1 : 0;
    std::printf("export %d jobs to local (format %s): %.3f s, %zu ok (target < 2 s)%s\n", jobs_n,
                format, s, ok, s < 2.0 && r.success ? "" : "  MISSED");
    if (!r.success) rc = 1;
  }
  if (remove) fs::remove_all(dir);
  return rc;
}
