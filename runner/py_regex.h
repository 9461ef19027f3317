// File: py_regex.h
//
// PyRegex: a regular expression with Python `re` semantics, for the patterns users paste from
// lm-evaluation-harness YAML files and for the reference harnesses' own patterns (look-behind,
// inline flags such as (?i) and (?s), Unicode \w \d \s and case folding, `$` that also matches
// before a final newline). Backed by PCRE2 in UTF + UCP mode, the nearest engine to `re`; the
// few differences that matter are bridged here (Python's `\Z` is PCRE2's `\z`, `{,n}` is
// {0,n}, a leading `(?u)` is dropped and `(?a)` turns Unicode classes off). Matching has a
// backtracking budget, so a hostile response cannot stall a run: a search that exceeds it counts
// as no match. Used by the answer filters, the exact_match normalisation and the built-in tasks.
//
//   EVALD_ASSIGN_OR_RETURN(PyRegex re, PyRegex::Compile(R"(#### (\-?[0-9\.\,]+))"));
//   std::vector<PyRegex::Match> hits = re.FindAll("#### 18 and #### 20");  // re.finditer
//   hits[0].groups[1];                                                      // "18"
//   std::string s = re.Sub("x #### 18", "");                               // re.sub
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace evald::runner {

class PyRegex {
 public:
  // One match: groups[0] is the whole match, groups[i] capture group i ("" when the group did
  // not take part, as re.findall reports it; `matched[i]` says whether it did).
  struct Match {
    size_t start = 0;
    size_t end = 0;
    std::vector<std::string> groups;
    std::vector<bool> matched;
  };

  // InvalidArgument "regex '<pattern>' does not compile at offset N: <reason>".
  // `ignore_case` is re.IGNORECASE (as `(?i)`).
  static absl::StatusOr<PyRegex> Compile(absl::string_view pattern, bool ignore_case = false);
  // re.escape: `text` as a pattern that matches it literally.
  static std::string Escape(absl::string_view text);

  // re.search: the first match, or nullopt.
  std::optional<Match> Search(absl::string_view text) const;
  // re.finditer: every non-overlapping match, left to right, with Python 3.7+ handling of empty
  // matches (an empty match may follow a non-empty one; no two matches start at the same
  // position with the second empty).
  std::vector<Match> FindAll(absl::string_view text) const;
  // re.sub with a literal replacement (no group references).
  std::string Sub(absl::string_view text, absl::string_view replacement) const;
  // re.split (capture groups are not returned).
  std::vector<std::string> Split(absl::string_view text) const;

  int group_count() const { return groups_; }
  const std::string& pattern() const { return pattern_; }

 private:
  struct Code;
  PyRegex() = default;
  std::string pattern_;
  int groups_ = 0;
  std::shared_ptr<const Code> code_;
};

// Python's str.strip() / lstrip(): Unicode whitespace (str.isspace) removed from both ends / the
// start.
std::string PyStrip(absl::string_view s);
std::string PyLStrip(absl::string_view s);
// Python's str.lower() / str.upper(): Unicode's full case mappings (ICU, root locale).
std::string PyLower(absl::string_view s);
std::string PyUpper(absl::string_view s);
// Python's str.islower() / str.isupper(): at least one cased letter, all of that case.
bool PyIsLower(absl::string_view s);
bool PyIsUpper(absl::string_view s);

}  // namespace evald::runner
