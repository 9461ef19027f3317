// File: reference_scoring.h
//
// The reference harnesses' scoring rules that the built-in tasks reproduce, one function per
// rule, as read from lm-evaluation-harness @ 4e7e0d47 and simple-evals @ ee3b0318 (the facts are
// in docs/tasks.md): lm-eval's gsm8k variants (strict-match / flexible-extract and their
// exact_match settings) and mmlu_pro (custom-extract), simple-evals' mmlu extraction (LaTeX
// clean-up, the 42 multilingual answer labels in list order) and gpqa extraction and choice
// permutation (Python's random.Random(seed).sample). Used by tasks.cc and the tests.
//
//   EVALD_ASSIGN_OR_RETURN(Gsm8kReference ref, Gsm8kReferenceFor("gsm8k"));
//   ref.scores[0].filter.name;                                  // "strict-match"
//   SimpleEvalsMmluExtract("**Answer:** C");                    // "C"
//   SimpleEvalsGpqaExtract("Answer: $B$");                      // "B"
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "runner/tasks_internal.h"

namespace evald::runner {

// The commits the rules were read from (for results.yml and docs).
inline constexpr char kLmEvalCommit[] = "4e7e0d47f33bc71070c1d38394bafbb52b117163";
inline constexpr char kSimpleEvalsCommit[] = "ee3b0318d8d1d9d72755a4120879be65f7c07e9e";

// One lm-eval gsm8k variant: its task name and file, the filter pipelines in report order and
// how the gold is taken from the dataset's answer.
struct Gsm8kReference {
  std::string task;  // gsm8k | gsm8k_cot_zeroshot | gsm8k_cot_llama | gsm8k_llama
  std::string file;  // the YAML it comes from
  std::vector<ReferenceScore> scores;
  bool gold_is_last_part = false;  // cot variants: answer.split('####')[-1].strip()
  std::vector<std::string> until;  // generation_kwargs.until: the response is cut there
  std::string prompt;              // evalrun's zero-shot prompt asking for the variant's form
};
// `variant`: one of the task names above, or the shorthands `cot` and `llama`; InvalidArgument
// naming the accepted values otherwise.
absl::StatusOr<Gsm8kReference> Gsm8kReferenceFor(const std::string& variant);
// The gold text lm-eval compares: the whole answer (gsm8k; its `(?s).*#### ` ignore-regex
// leaves the number) or the part after the last '####', stripped (cot variants).
std::string Gsm8kReferenceGold(const Gsm8kReference& ref, absl::string_view answer);

// lm-eval mmlu_pro: custom-extract (regex `answer is \(?([ABCDEFGHIJ])\)?`, first hit,
// take_first) and its exact_match (ignore_case, ignore_punctuation).
ReferenceScore MmluProReference();

// simple-evals mmlu_eval.py: normalize_response, the multilingual answer labels in list order,
// normalize_extracted_answer. nullopt: no label matched.
std::optional<std::string> SimpleEvalsMmluExtract(absl::string_view response);
// simple-evals gpqa_eval.py: the first `(?i)Answer[ \t]*:[ \t]*\$?([A-D])\$?` in the raw text.
std::optional<std::string> SimpleEvalsGpqaExtract(absl::string_view response);

// CPython's random.Random (MT19937 seeded by init_by_array), enough for Random(seed).sample.
class PythonRandom {
 public:
  explicit PythonRandom(uint64_t seed);
  uint32_t GetRandBits(int k);  // k in 1..32
  uint64_t RandBelow(uint64_t n);
  // random.sample(range(n), k) for small populations (the pool algorithm; n <= 21).
  std::vector<int> SampleRange(int n, int k);

 private:
  uint32_t Next();
  uint32_t mt_[624];
  int index_ = 624;
};

}  // namespace evald::runner
