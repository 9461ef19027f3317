// File: suggest.h
//
// Private to core/config: "did you mean" suggestions for unknown task names, group options and
// override keys, by edit distance.
//
//   std::vector<std::string> s = Suggest("gsm8kk", names);   // {"gsm8k"}
//   std::string hint = DidYouMean(s);                          // "; did you mean 'gsm8k'?"
#pragma once

#include <string>
#include <vector>

namespace evald::config::internal {

// Levenshtein distance (case-sensitive).
size_t EditDistance(const std::string& a, const std::string& b);

// Up to `max` candidates close to `query`, closest first: edit distance within about a third of
// the query's length, else candidates that contain the query (case-insensitive).
std::vector<std::string> Suggest(const std::string& query,
                                 const std::vector<std::string>& candidates, size_t max = 3);

// "; did you mean 'a'?" or "; did you mean one of 'a', 'b'?" (empty for no suggestions).
std::string DidYouMean(const std::vector<std::string>& suggestions);

}  // namespace evald::config::internal
