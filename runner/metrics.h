// File: metrics.h
//
// Per-sample metrics (exact_match, numeric_match, choice_accuracy, contains, regex_match), the
// streaming statistics written under each score in results.yml (count, sum, sum_squared, min,
// max, mean, variance, stddev, stderr) and the unbiased pass@k estimator for repeated samples.
// Used by the tasks (per sample) and the result writer (aggregates).
//
//   EVALD_ASSIGN_OR_RETURN(MetricKind m, ParseMetric("numeric_match"));
//   bool ok = MetricMatches(m, "1,234", "1234");   // true
//   ScoreStats s;  s.Add(1.0);  s.Add(0.0);  s.mean();  // 0.5
#pragma once

#include <cstdint>
#include <limits>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace evald::runner {

enum class MetricKind { kExactMatch, kNumericMatch, kChoiceAccuracy, kContains, kRegexMatch };

// InvalidArgument listing the known names.
absl::StatusOr<MetricKind> ParseMetric(const std::string& name);
const char* MetricName(MetricKind kind);

// `predicted` is the extracted answer (or the whole response for `contains`), `gold` the row's
// answer. exact_match and contains compare trimmed text (case-insensitive with `ignore_case`);
// numeric_match compares numbers within 1e-6 (relative); choice_accuracy compares trimmed text;
// regex_match treats `gold` as an RE2 pattern that must match all of `predicted`.
bool MetricMatches(MetricKind kind, absl::string_view predicted, absl::string_view gold,
                   bool ignore_case = false);

// Statistics of a stream of per-sample values, as the reference writes them.
class ScoreStats {
 public:
  void Add(double v);
  int64_t count() const { return count_; }
  double sum() const { return sum_; }
  double mean() const { return count_ ? sum_ / count_ : 0.0; }
  double variance() const;  // sample variance (n - 1); 0 for fewer than 2 values
  double stddev() const;
  double standard_error() const;  // stddev / sqrt(count)
  // {count, sum, sum_squared, min, max, mean, variance, stddev, stderr}
  nlohmann::json ToJson() const;

 private:
  int64_t count_ = 0;
  double sum_ = 0;
  double sum_squared_ = 0;
  double min_ = std::numeric_limits<double>::infinity();
  double max_ = -std::numeric_limits<double>::infinity();
};

// Unbiased pass@k for one sample with `n` attempts of which `c` were correct (Chen et al. 2021):
// 1 - C(n-c, k) / C(n, k). Requires k <= n.
double PassAtK(int n, int c, int k);

}  // namespace evald::runner
