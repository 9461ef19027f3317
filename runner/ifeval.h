// File: ifeval.h
//
// IFEval instruction checkers (Zhou et al. 2023, google-research/instruction_following_eval):
// each verifiable instruction id (`punctuation:no_comma`, `keywords:existence`, ...) with its
// kwargs becomes a checker that says whether a response follows it, strictly and "loosely" (the
// reference's loose mode also accepts the response without its first and/or last line and/or
// without '*' characters). All 25 instruction types of the original release are supported.
// Sentences are counted with the Punkt port and capital words taken from the word_tokenize port
// (nltk_tokenize.h); the language checks use the langdetect port (langdetect.h, seed 0) when
// langdetect's profiles are installed, else a script + stop-word heuristic. Used by the
// native_ifeval task.
//
//   EVALD_ASSIGN_OR_RETURN(IfevalChecker c,
//                          IfevalChecker::Create("keywords:existence", {{"keywords", {"cat"}}},
//                          prompt));
//   c.Check("A cat sat.");       // true (strict)
//   c.CheckLoose("**A cat**");   // true
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace evald::runner {

class IfevalChecker {
 public:
  // InvalidArgument for an unknown instruction id or a missing/ill-typed kwarg (naming it).
  // Null-valued kwargs are ignored (the Hugging Face copy of the dataset carries every key).
  // `prompt` is the row's prompt (combination:repeat_prompt needs it when kwargs omit it).
  static absl::StatusOr<IfevalChecker> Create(const std::string& id, const nlohmann::json& kwargs,
                                              const std::string& prompt);

  bool Check(absl::string_view response) const;
  bool CheckLoose(absl::string_view response) const;
  const std::string& id() const { return id_; }

 private:
  std::string id_;
  std::function<bool(absl::string_view)> check_;
};

// The instruction ids Create() accepts.
const std::vector<std::string>& IfevalInstructionIds();

// Helpers with the reference's semantics, exposed for tests.
int64_t IfevalCountWords(absl::string_view text);         // \w+ tokens
int64_t IfevalCountSentences(absl::string_view text);     // EnglishPunkt() sentences
int64_t IfevalCountCapitalWords(absl::string_view text);  // word_tokenize tokens with isupper()
// langdetect.detect(text) with seed 0: the language code, "" where langdetect raises (no
// features, e.g. no letters), nullopt when no langdetect profiles are installed.
std::optional<std::string> IfevalDetectLanguage(absl::string_view text);
// The fallback without langdetect profiles:
// True when `text` looks written in `language` (ISO 639-1 code): its dominant script must be the
// language's script and, for Latin-script languages evalrun has stop words for, that language's
// stop words must be the most frequent.
bool IfevalLooksLikeLanguage(absl::string_view text, const std::string& language);

}  // namespace evald::runner
