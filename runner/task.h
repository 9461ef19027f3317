// File: task.h
//
// A native evaluation task: a dataset, a prompt per sample, an answer extractor and a metric.
// CreateTask() builds the built-in tasks (native_gsm8k, native_mmlu, native_mmlu_pro,
// native_gpqa_diamond, native_ifeval) or a user-defined task from `config.task_file`, loads the
// dataset (first `limit_samples` rows) and validates every row up front, so a bad row fails the
// run before any request is sent. The runner then asks for prompts and scores by sample index;
// both are cheap and never fail for a validated row.
//
//   EVALD_ASSIGN_OR_RETURN(std::unique_ptr<Task> task, CreateTask(plan, dataset_options));
//   Prompt p = task->BuildPrompt(0, EndpointType::kChat);
//   Evaluation e = task->Score(0, "... The final answer is 42");
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"
#include "runner/dataset.h"
#include "runner/plan.h"

namespace evald::runner {

struct ChatMessage {
  std::string role;  // system | user | assistant
  std::string content;
};

// What one request asks: chat messages (chat endpoints) or a prompt (completions endpoints).
struct Prompt {
  std::vector<ChatMessage> messages;
  std::string text;
};

// The outcome of scoring one response.
struct Evaluation {
  std::optional<std::string> extracted;  // nullopt: no answer found (the first score's answer)
  nlohmann::json gold;
  // Each score's extraction (filter name -> text, null when nothing was found), for
  // samples.jsonl; null when the task has none.
  nlohmann::json filtered;
  bool correct = false;
  // (score name, value) observations; a name may repeat (IFEval's instruction-level scores).
  std::vector<std::pair<std::string, double>> scores;
  nlohmann::json details;  // task-specific, written to samples.jsonl (null: nothing)
};

class Task {
 public:
  virtual ~Task() = default;

  const std::string& name() const { return name_; }
  // Samples after limit_samples.
  virtual size_t size() const = 0;
  // The endpoint type the task was written for (used when the plan does not say).
  virtual EndpointType default_endpoint_type() const { return EndpointType::kChat; }
  // REQUIRES: index < size().
  virtual Prompt BuildPrompt(size_t index, EndpointType type) const = 0;
  virtual Evaluation Score(size_t index, absl::string_view response) const = 0;
  // The evaluation of a sample whose request failed for good: every score 0.
  virtual Evaluation ScoreFailure(size_t index) const = 0;
  // Score names in results order; the first decides `correct`.
  virtual std::vector<std::string> ScoreNames() const = 0;
  // One line for the logs: dataset, extractor, metric.
  virtual std::string Describe() const = 0;
  // How the task scores, for results.yml's `scoring.<task>`: the reference task and commit it
  // reproduces, its filters, think_end_token, ... (null: nothing to say).
  virtual nlohmann::json ScoringJson() const { return nullptr; }
  // lm-eval's think_end_token: when set, only the text after its last occurrence is scored
  // (ApplyThinkEndToken). Unset by default, as in lm-eval.
  const std::optional<std::string>& think_end_token() const { return think_end_token_; }
  void set_think_end_token(std::optional<std::string> token) {
    think_end_token_ = std::move(token);
  }
  // lm-eval's `until` stop strings: the scored text is cut at the first occurrence of any
  // (after think_end_token), as the reference post-processes a generation.
  const std::vector<std::string>& stop_strings() const { return stop_strings_; }
  void set_stop_strings(std::vector<std::string> stops) { stop_strings_ = std::move(stops); }

 protected:
  explicit Task(std::string name) : name_(std::move(name)) {}

 private:
  std::string name_;
  std::optional<std::string> think_end_token_;
  std::vector<std::string> stop_strings_;
};

// Built-in task names, for --help and error messages.
const std::vector<std::string>& BuiltinTaskNames();

// Default dataset URL of a built-in task ("" when the data is not published as JSONL).
std::string DefaultDatasetUrl(const std::string& task);

// Builds the task the plan names. Errors: InvalidArgument/NotFound (exit code 2) naming the task
// file and key, or the dataset file and line.
absl::StatusOr<std::unique_ptr<Task>> CreateTask(const Plan& plan,
                                                 const DatasetOptions& dataset_options);

// A user-defined task from its YAML file (docs/tasks.md); `name` is the config's task name.
absl::StatusOr<std::unique_ptr<Task>> LoadUserTask(const std::string& task_file,
                                                   const std::string& name, const Params& params,
                                                   const DatasetOptions& dataset_options);

}  // namespace evald::runner
