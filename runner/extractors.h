// File: extractors.h
//
// Answer extractors: they turn a model's free-text answer into the value the metric compares
// with the gold answer. Numeric (GSM8K style: "#### 42", "\boxed{42}", "the answer is 42", else
// the last number), choice letters (multiple choice: "Answer: B", "(B)", "\boxed{B}", a lone "B"
// line, ...), a user regex with one capture group (Python `re` syntax through PyRegex; its last
// match wins), or the whole trimmed response. The built-in patterns are RE2 (linear time).
// These are evalrun's lenient extractors; the reference harnesses' rules are filters.h and
// reference_scoring.h. Used by the tasks.
//
//   EVALD_ASSIGN_OR_RETURN(Extractor ex, Extractor::Choices({"A", "B", "C", "D"}));
//   std::optional<std::string> letter = ex.Extract("Let me think... Answer: C");  // "C"
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "runner/py_regex.h"

namespace re2 {
class RE2;
}

namespace evald::runner {

class Extractor {
 public:
  enum class Kind { kNumeric, kChoices, kRegex, kFull };

  static Extractor Numeric();
  static Extractor Full();
  // `choices` are the accepted answers (usually single letters); InvalidArgument when empty or
  // a choice is not a word of letters/digits.
  static absl::StatusOr<Extractor> Choices(std::vector<std::string> choices);
  // InvalidArgument when the pattern does not compile or has other than one capture group.
  static absl::StatusOr<Extractor> Regex(const std::string& pattern);

  // nullopt when nothing in the response looks like an answer.
  std::optional<std::string> Extract(absl::string_view response) const;

  Kind kind() const { return kind_; }
  const std::vector<std::string>& choices() const { return choices_; }
  std::string Describe() const;

 private:
  Extractor() = default;
  Kind kind_ = Kind::kFull;
  std::vector<std::string> choices_;
  std::string pattern_;
  std::shared_ptr<const PyRegex> py_regex_;                       // user regex (kRegex)
  std::vector<std::shared_ptr<const re2::RE2>> choice_patterns_;  // by priority (kChoices)
};

// GSM8K-style numeric extraction (see Extractor::Numeric); returns the number as written, with
// thousands separators and a leading '$' removed ("1,234" -> "1234").
std::optional<std::string> ExtractFinalNumber(absl::string_view response);
// The gold number of an openai/grade-school-math answer: the text after the last "####".
std::optional<std::string> Gsm8kGold(absl::string_view answer);
// "1,234.50", "$12", "50%", "-3", "3/4" -> the number; nullopt when the text is not a number.
std::optional<double> ParseNumber(absl::string_view text);

}  // namespace evald::runner
