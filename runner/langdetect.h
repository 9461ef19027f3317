// File: langdetect.h
//
// LangDetector: a C++ port of the Python `langdetect` package (1.0.9, itself a port of
// Shuyo Nakatani's language-detection), which IFEval's `language:response_language` and the
// English checks of `change_case:english_*` call. It is a naive Bayes over character 1-3-grams:
// the text is cleaned (URLs and e-mail addresses dropped, Vietnamese diacritics composed, Latin
// letters dropped from mostly non-Latin text), characters are normalised per Unicode block, and
// seven trials each multiply the language probabilities by randomly drawn n-grams' profile
// frequencies until one language passes 0.99999. The profiles and the normalisation tables are
// the package's own files, read at runtime (`profiles/*` and `utils/messages.properties` under
// the package directory), so the results follow whatever langdetect is installed.
//
// langdetect draws the n-grams with Python's `random.Random`, seeded from
// `DetectorFactory.seed` (unset in lm-eval, so every call differs). Detect() reproduces
// Python's Mersenne Twister, `random.seed(int)`, `gauss` and `choice` exactly, so with the same
// seed it returns what Python returns; evalrun uses seed 0. Used by ifeval.cc and the
// differential tests.
//
//   EVALD_ASSIGN_OR_RETURN(LangDetector d, LangDetector::Load(kDefaultLangdetectDir));
//   absl::StatusOr<std::string> lang = d.Detect("Bonjour tout le monde");  // "fr"
//   // FailedPrecondition "No features in text." when there is nothing to detect (no letters).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace evald::runner {

// Debian's python3-langdetect.
inline constexpr char kDefaultLangdetectDir[] = "/usr/lib/python3/dist-packages/langdetect";

class LangDetector {
 public:
  // Reads `<dir>/profiles/*` (in directory order, as os.listdir does, which fixes tie order) and
  // `<dir>/utils/messages.properties`. NotFound / InvalidArgument naming the file otherwise.
  static absl::StatusOr<LangDetector> Load(const std::string& dir);

  // langdetect.detect(text) with DetectorFactory.seed = `seed`: the most probable language code,
  // "unknown" when none passes 0.1; FailedPrecondition "No features in text." where langdetect
  // raises LangDetectException.
  absl::StatusOr<std::string> Detect(absl::string_view text, uint64_t seed = 0) const;
  // detect_langs: (language, probability) above 0.1, most probable first.
  absl::StatusOr<std::vector<std::pair<std::string, double>>> Probabilities(
      absl::string_view text, uint64_t seed = 0) const;

  const std::vector<std::string>& languages() const { return langs_->names; }

 private:
  struct Tables;
  struct Langs {
    std::vector<std::string> names;
    // n-gram (code points) -> row of per-language probabilities in `probs`.
    std::unordered_map<std::u32string, size_t> rows;
    std::vector<double> probs;
  };
  LangDetector() = default;
  std::u32string Prepare(absl::string_view text) const;

  std::shared_ptr<const Langs> langs_;
  std::shared_ptr<const Tables> tables_;
};

// The detector evalrun scores with, loaded once per process from $EVALD_LANGDETECT_DIR or
// kDefaultLangdetectDir; nullptr when neither holds langdetect's files.
const LangDetector* DefaultLangDetector();
// "langdetect:<dir>" or "heuristic" (no profiles found), for results and sample details.
std::string LangDetectorSource();

}  // namespace evald::runner
