// File: filters.h
//
// lm-evaluation-harness's answer filters and its exact_match metric, as the reference runs them
// (docs/tasks.md; the rules are in the reference's lm_eval/filters/extraction.py and
// lm_eval/api/metrics.py). A FilterPipeline is one entry of a task's `filter_list`: named steps
// (`regex` with group_select and fallback, `take_first`, `remove_whitespace`,
// `multi_choice_regex`, `lowercase`, `uppercase`) applied to a response; each pipeline's output
// is compared with the gold by ExactMatch, whose options are `regexes_to_ignore` (deleted in list
// order), `ignore_case`, `ignore_punctuation` (ASCII string.punctuation) and `ignore_numbers`,
// applied to both sides. All regexes are Python `re` (PyRegex). Used by the user-defined tasks
// (filter_list / metric_list in a task file) and the built-in tasks.
//
//   FilterPipeline strict{"strict-match", {FilterStep::Regex(R"(#### (\-?[0-9\.\,]+))", 0,
//   "[invalid]").value(), FilterStep::TakeFirst()}};
//   std::string got = strict.Apply("... #### 18", {});                   // "18"
//   ExactMatchOptions em = Gsm8kExactMatch();
//   bool ok = ExactMatch(got, "Natalia ... #### 18", em);                // true
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "runner/py_regex.h"

namespace evald::runner {

// What a filter may look at besides the response: the row's answer choices (multi_choice_regex).
struct FilterContext {
  const std::vector<std::string>* choices = nullptr;
};

class FilterStep {
 public:
  enum class Kind {
    kRegex,
    kTakeFirst,
    kRemoveWhitespace,
    kMultiChoiceRegex,
    kLowercase,
    kUppercase
  };

  // RegexFilter: re.findall; no hit -> fallback; hit number `group_select` (negative counts from
  // the end; out of range -> fallback); a multi-group hit gives its first non-empty group (none ->
  // fallback); the result is stripped.
  static absl::StatusOr<FilterStep> Regex(absl::string_view pattern, int group_select,
                                          std::string fallback);
  // MultiChoiceRegexFilter: the regex first; else the row's choice texts (normalised with the
  // options below and Unicode-punctuation removal, escaped, OR-ed) in the normalised response,
  // mapped to "(A)".."; else ":\s*(A|B|...)" on the response, mapped to "(X)"; else fallback.
  static absl::StatusOr<FilterStep> MultiChoiceRegex(
      absl::string_view pattern, int group_select, std::string fallback, bool ignore_case,
      bool ignore_punctuation, const std::vector<std::string>& regexes_to_ignore);
  // The first of the sampled responses: each evalrun evaluation holds one, so it keeps it.
  static FilterStep TakeFirst();
  // WhitespaceFilter: the response without its leading whitespace.
  static FilterStep RemoveWhitespace();
  static FilterStep Lowercase();
  static FilterStep Uppercase();

  std::string Apply(const std::string& text, const FilterContext& ctx) const;
  Kind kind() const { return kind_; }
  std::string Describe() const;

 private:
  FilterStep() = default;
  static FilterStep OfKind(Kind kind);
  Kind kind_ = Kind::kTakeFirst;
  std::optional<PyRegex> regex_;
  int group_select_ = 0;
  std::string fallback_ = "[invalid]";
  bool ignore_case_ = false;
  bool ignore_punctuation_ = false;
  std::vector<PyRegex> ignore_;
};

// One named entry of `filter_list`.
struct FilterPipeline {
  std::string name;
  std::vector<FilterStep> steps;
  std::string Apply(absl::string_view response, const FilterContext& ctx) const;
};

// exact_match's options (exact_match_hf_evaluate).
struct ExactMatchOptions {
  std::vector<PyRegex> regexes_to_ignore;
  bool ignore_case = false;
  bool ignore_punctuation = false;
  bool ignore_numbers = false;
};

// The text exact_match compares: regexes deleted in order, then lower-cased, then ASCII
// punctuation deleted, then ASCII digits deleted (each when asked).
std::string NormalizeForExactMatch(absl::string_view s, const ExactMatchOptions& options);
bool ExactMatch(absl::string_view prediction, absl::string_view gold,
                const ExactMatchOptions& options);

// The reference's literal filter settings, shared by the built-in tasks and the tests.
// gsm8k's exact_match: ignore_case, regexes_to_ignore `,` `\$` `(?s).*#### ` `\.$`.
ExactMatchOptions Gsm8kExactMatch();
// lm-eval's flexible-extract: regex `(-?[$0-9.,]{2,})|(-?[0-9]+)`, last hit, then take_first.
FilterPipeline FlexibleExtract(const std::string& name = "flexible-extract");

}  // namespace evald::runner
