// File: nltk_tokenize.h
//
// NLTK's English tokenizers as IFEval's checkers use them (lm-eval instructions_util.py):
// the Punkt sentence tokenizer (`nltk.tokenize.punkt.PunktSentenceTokenizer`, the algorithm of
// nltk 3.8's punkt.py: period contexts, first-pass annotation by abbreviation list, second pass
// with collocations, sentence starters and the orthographic heuristic, boundary realignment) and
// `nltk.word_tokenize` (Punkt sentences, then NLTKWordTokenizer's Treebank-style regex rules from
// destructive.py). The regexes run through PyRegex, so `\w`, `\d`, `\b` and `$` behave as in
// Python `re`.
//
// Punkt's behaviour depends on trained parameters (abbreviations, collocations, sentence
// starters, orthographic contexts). NLTK ships them as data (`punkt_tab/english/`), which Debian
// does not package; EnglishPunkt() loads them from a punkt_tab directory when one is found and
// otherwise uses a small built-in abbreviation list (an evalrun fallback, not NLTK's model).
// Used by the IFEval checkers (ifeval.cc) and the differential tests.
//
//   PunktSentenceTokenizer punkt(PunktParameters{});
//   punkt.Tokenize("Hello there. How are you?");   // {"Hello there.", "How are you?"}
//   NltkWordTokenize("I can't go.", punkt);        // {"I", "ca", "n't", "go", "."}
#pragma once

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace evald::runner {

// punkt.PunktParameters: what a trained Punkt model knows.
struct PunktParameters {
  std::set<std::string> abbrev_types;                          // lower-case, no final period
  std::set<std::pair<std::string, std::string>> collocations;  // (type, next type)
  std::set<std::string> sent_starters;
  std::map<std::string, int> ortho_context;  // type -> _ORTHO_* flags
};

// Reads NLTK's punkt_tab layout: `abbrev_types.txt`, `sent_starters.txt` (one type a line),
// `collocations.tab` (two tab-separated types a line) and `ortho_context.tab` (type TAB flags).
// A missing file is an empty set; NotFound when `dir` holds none of them.
absl::StatusOr<PunktParameters> LoadPunktParameters(const std::string& dir);

class PunktSentenceTokenizer {
 public:
  explicit PunktSentenceTokenizer(PunktParameters params) : params_(std::move(params)) {}

  // PunktSentenceTokenizer.tokenize(text) (realign_boundaries=True).
  std::vector<std::string> Tokenize(absl::string_view text) const;
  // (start, end) byte offsets of each sentence (span_tokenize).
  std::vector<std::pair<size_t, size_t>> Spans(absl::string_view text) const;

  const PunktParameters& params() const { return params_; }

 private:
  bool ContainsSentBreak(absl::string_view context) const;
  PunktParameters params_;
};

// NLTKWordTokenizer().tokenize(sentence): the Treebank-style rules on one sentence.
std::vector<std::string> NltkTreebankTokenize(absl::string_view sentence);
// nltk.word_tokenize(text): Punkt sentences, each through NltkTreebankTokenize.
std::vector<std::string> NltkWordTokenize(absl::string_view text,
                                          const PunktSentenceTokenizer& punkt);

// The English Punkt tokenizer evalrun scores with, built once per process: parameters from the
// punkt_tab directory named by $EVALD_PUNKT_DIR, else the first of `<d>/tokenizers/punkt_tab/
// english` for d in $NLTK_DATA, ~/nltk_data, /usr/share/nltk_data, /usr/local/share/nltk_data,
// /usr/lib/nltk_data, /usr/local/lib/nltk_data; else the built-in fallback abbreviations.
const PunktSentenceTokenizer& EnglishPunkt();
// Where EnglishPunkt()'s parameters came from: the directory, or "builtin-fallback".
const std::string& EnglishPunktSource();

}  // namespace evald::runner
