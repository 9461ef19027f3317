// File: results_writer.h
//
// The artifacts of a run, in the reference's formats: results.yml
// (`results.tasks.<task>.metrics.<metric>.scores.<score>.{value, stats}` plus command, config,
// git_hash and target), eval_factory_metrics.json (merged with what an earlier run wrote),
// run_config.yml and the streamed samples.jsonl. Also the score aggregation (ScoreBook) the
// runner feeds per sample. Called by the runner only.
//
//   ScoreBook book({"numeric_match"}, /*samples=*/100, /*repeats=*/1);
//   book.Add(/*sample=*/0, evaluation);
//   nlohmann::json results = BuildResults("native_gsm8k", book, plan, "evalrun --plan p.yaml");
//   EVALD_RETURN_IF_ERROR(WriteFileAtomically(out + "/results.yml", EmitYaml(results)));
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "nlohmann/json.hpp"
#include "runner/metrics.h"
#include "runner/plan.h"
#include "runner/task.h"

namespace evald::runner {

// Per-score statistics over all finished sample x repeat evaluations, and pass@k over samples
// whose repeats all finished.
class ScoreBook {
 public:
  ScoreBook(std::vector<std::string> score_names, size_t samples, int repeats);
  void Add(size_t sample, const Evaluation& e);
  // {"accuracy": {"scores": {...}}, "pass@k": {...} (repeats > 1)}
  nlohmann::json MetricsJson() const;
  int64_t evaluations() const { return evaluations_; }
  int64_t correct() const { return correct_; }

 private:
  std::vector<std::string> names_;
  std::map<std::string, ScoreStats> stats_;
  int repeats_;
  std::vector<uint16_t> finished_;  // per sample
  std::vector<uint16_t> correct_per_sample_;
  int64_t evaluations_ = 0;
  int64_t correct_ = 0;
};

// The whole results.yml document.
nlohmann::json BuildResults(const std::string& task, const ScoreBook& book, const Plan& plan,
                            const std::string& command);

// run_config.yml: the plan as evalrun ran it (command, framework_name, pkg_name, config, target).
nlohmann::json BuildRunConfig(const Plan& plan, const std::string& command);

// Replaces the given top-level keys of eval_factory_metrics.json, keeping any others an earlier
// run (or another tool) wrote there.
absl::Status WriteMetricsJson(const std::string& path, const nlohmann::json& updates);

// JSON dump that never throws: invalid UTF-8 becomes U+FFFD.
std::string DumpJson(const nlohmann::json& j, int indent = -1);

// samples.jsonl, one JSON object per finished sample x repeat, buffered and flushed with the
// cache so the two stay close after a crash.
class SamplesWriter {
 public:
  SamplesWriter() = default;
  ~SamplesWriter();
  SamplesWriter(const SamplesWriter&) = delete;
  SamplesWriter& operator=(const SamplesWriter&) = delete;
  absl::Status Open(const std::string& path);
  void Write(const nlohmann::json& sample);
  // `line` is one JSON object (no newline).
  void WriteLine(const std::string& line);
  absl::Status Flush();
  absl::Status Close();

 private:
  std::string path_;
  FILE* file_ = nullptr;
  bool failed_ = false;
};

}  // namespace evald::runner
