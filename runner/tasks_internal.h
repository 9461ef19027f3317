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
#include "runner/filters.h"
#include "runner/metrics.h"
#include "runner/prompt_template.h"
#include "runner/task.h"

namespace evald::runner {

// A reference score: one lm-eval filter pipeline whose output exact_match compares with the
// gold; the score is named after the pipeline (`strict-match`, `flexible-extract`, ...).
struct ReferenceScore {
  FilterPipeline filter;
  ExactMatchOptions exact_match;
};

// A task whose prompt is a `{{field}}` template over the row and whose answers are scored by
// reference filter pipelines (first) and/or one extractor plus one metric: the user-defined
// tasks and native_gsm8k.
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
    // Scored first, in order; the first decides `correct`.
    std::vector<ReferenceScore> reference;
    // Whether the extractor + metric score is reported (after the reference ones), and its name
    // ("" = the metric's name).
    bool extractor_score = true;
    std::string extractor_score_name;
    nlohmann::json scoring = nlohmann::json::object();  // for results.yml `scoring`
  };

  // Validates every row (template fields present). `golds` are the extractor score's gold
  // answers and `reference_golds` the reference scores' (exact_match normalises both sides), one
  // per row (either may be empty when its scores are off); `choices` the rows' answer choices
  // for multi_choice_regex (empty: none).
  static absl::StatusOr<std::unique_ptr<TemplateTask>> Create(
      Spec spec, Dataset dataset, std::vector<std::string> golds,
      std::vector<std::string> reference_golds = {},
      std::vector<std::vector<std::string>> choices = {});

  size_t size() const override { return rows_.size(); }
  EndpointType default_endpoint_type() const override { return spec_.default_type; }
  Prompt BuildPrompt(size_t index, EndpointType type) const override;
  Evaluation Score(size_t index, absl::string_view response) const override;
  Evaluation ScoreFailure(size_t index) const override;
  std::vector<std::string> ScoreNames() const override;
  std::string Describe() const override { return spec_.description; }
  nlohmann::json ScoringJson() const override { return spec_.scoring; }

 private:
  TemplateTask(Spec spec) : Task(spec.name), spec_(std::move(spec)) {}
  std::string ExtractorScoreName() const {
    return spec_.extractor_score_name.empty() ? MetricName(spec_.metric)
                                              : spec_.extractor_score_name;
  }
  Spec spec_;
  std::vector<nlohmann::json> rows_;
  std::vector<std::string> golds_;
  std::vector<std::string> reference_golds_;
  std::vector<std::vector<std::string>> choices_;
};

// results.yml's `scoring.filters`: each reference score's pipeline as {name, steps}.
nlohmann::json FiltersJson(const std::vector<ReferenceScore>& scores);

// The text lm-eval scores when the model arg think_end_token is set: what follows its last
// occurrence, left-stripped (the whole response when it does not occur). Unset: the response.
std::string ApplyThinkEndToken(absl::string_view response,
                               const std::optional<std::string>& think_end_token);
// lm-eval's postprocess_generated_text: ApplyThinkEndToken, then the text cut at the first
// occurrence of each stop string in turn.
std::string PostprocessResponse(absl::string_view response,
                                const std::optional<std::string>& think_end_token,
                                const std::vector<std::string>& stop_strings);

// Builds chat messages or a completions prompt from a system prompt, few-shot pairs and the
// final user text.
Prompt AssemblePrompt(EndpointType type, const std::optional<std::string>& system_prompt,
                      const std::vector<std::pair<std::string, std::string>>& few_shot,
                      const std::string& user_text);

}  // namespace evald::runner
