#include "core/config/suggest.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace evald::config::internal {

size_t EditDistance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::vector<std::string> Suggest(const std::string& query,
                                 const std::vector<std::string>& candidates, size_t max) {
  // Long inputs (fuzzing, pasted garbage) get no suggestions rather than a quadratic scan.
  if (query.empty() || query.size() > 200) return {};
  const size_t limit = std::max<size_t>(1, std::min<size_t>(4, (query.size() + 2) / 3));
  std::vector<std::pair<size_t, std::string>> close;
  for (const std::string& c : candidates) {
    if (c == query || c.size() > 200) continue;
    size_t d = EditDistance(query, c);
    // "slurmm" should find "slurm/default": compare with each part of a path-like name too.
    for (absl::string_view part : absl::StrSplit(c, absl::ByAnyChar("/."), absl::SkipEmpty())) {
      if (part.size() < c.size()) d = std::min(d, EditDistance(query, std::string(part)) + 1);
    }
    if (d <= limit) close.emplace_back(d, c);
  }
  if (close.empty() && query.size() >= 3) {
    std::string lower = absl::AsciiStrToLower(query);
    for (const std::string& c : candidates) {
      if (c != query && absl::StrContains(absl::AsciiStrToLower(c), lower)) {
        close.emplace_back(c.size(), c);
      }
    }
  }
  std::sort(close.begin(), close.end());
  close.erase(std::unique(close.begin(), close.end()), close.end());
  std::vector<std::string> out;
  for (auto& [d, c] : close) {
    if (out.size() >= max) break;
    if (std::find(out.begin(), out.end(), c) == out.end()) out.push_back(c);
  }
  return out;
}

std::string DidYouMean(const std::vector<std::string>& suggestions) {
  if (suggestions.empty()) return "";
  if (suggestions.size() == 1) return absl::StrCat("; did you mean '", suggestions[0], "'?");
  return absl::StrCat("; did you mean one of '", absl::StrJoin(suggestions, "', '"), "'?");
}

}  // namespace evald::config::internal
