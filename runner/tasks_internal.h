// File: tasks_internal.h
//
// The task classes behind CreateTask(), shared by tasks.cc (built-in tasks) and user_task.cc
// (tasks from a YAML file). Only runner/ code includes this header.
//
//   TemplateTask::Spec spec;  spec.prompt = ...;  spec.extractor = Extractor::Numeric();
//   auto task = TemplateTask::Create(std::move(spec), dataset);
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "runner/extractors.h"
#include "runner/metrics.h"
#include "runner/prompt_template.h"
#include "runner/task.h"

namespace evald::runner {

// A task whose prompt is a `{{field}}` template over the row and whose answer is one extractor
// plus one metric: the user-defined tasks and native_gsm8k.
class TemplateTask : public Task {
 public:
  struct Spec {
    std::string name;
    std::string description;  // for Describe()
    PromptTemplate prompt;
    std::optional<std::string> system_prompt;
    // Rendered few-shot examples: (user text, assistant text).
    std::vector<std::pair<std::string, std::string>> few_shot;
    Extractor extractor = Extractor::Full();
    MetricKind metric = MetricKind::kExactMatch;
    bool ignore_case = false;
    EndpointType default_type = EndpointType::kChat;
  };

  // Validates every row (template fields present); `golds` are the gold answers, one per row.
  static absl::StatusOr<std::unique_ptr<TemplateTask>> Create(Spec spec, Dataset dataset,
                                                              std::vector<std::string> golds);

  size_t size() const override { return rows_.size(); }
  EndpointType default_endpoint_type() const override { return spec_.default_type; }
  Prompt BuildPrompt(size_t index, EndpointType type) const override;
  Evaluation Score(size_t index, absl::string_view response) const override;
  Evaluation ScoreFailure(size_t index) const override;
  std::vector<std::string> ScoreNames() const override { return {MetricName(spec_.metric)}; }
  std::string Describe() const override { return spec_.description; }

 private:
  TemplateTask(Spec spec) : Task(spec.name), spec_(std::move(spec)) {}
  Spec spec_;
  std::vector<nlohmann::json> rows_;
  std::vector<std::string> golds_;
};

// Builds chat messages or a completions prompt from a system prompt, few-shot pairs and the
// final user text.
Prompt AssemblePrompt(EndpointType type, const std::optional<std::string>& system_prompt,
                      const std::vector<std::pair<std::string, std::string>>& few_shot,
                      const std::string& user_text);

}  // namespace evald::runner
