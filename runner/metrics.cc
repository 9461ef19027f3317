#include "runner/metrics.h"

#include <re2/re2.h>

#include <algorithm>
#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "runner/extractors.h"

namespace evald::runner {

absl::StatusOr<MetricKind> ParseMetric(const std::string& name) {
  if (name == "exact_match") return MetricKind::kExactMatch;
  if (name == "numeric_match") return MetricKind::kNumericMatch;
  if (name == "choice_accuracy") return MetricKind::kChoiceAccuracy;
  if (name == "contains") return MetricKind::kContains;
  if (name == "regex_match") return MetricKind::kRegexMatch;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown metric '", name,
                   "'; expected exact_match, numeric_match, choice_accuracy, contains or "
                   "regex_match"));
}

const char* MetricName(MetricKind kind) {
  switch (kind) {
    case MetricKind::kExactMatch:
      return "exact_match";
    case MetricKind::kNumericMatch:
      return "numeric_match";
    case MetricKind::kChoiceAccuracy:
      return "choice_accuracy";
    case MetricKind::kContains:
      return "contains";
    case MetricKind::kRegexMatch:
      return "regex_match";
  }
  return "";
}

bool MetricMatches(MetricKind kind, absl::string_view predicted, absl::string_view gold,
                   bool ignore_case) {
  absl::string_view p = absl::StripAsciiWhitespace(predicted);
  absl::string_view g = absl::StripAsciiWhitespace(gold);
  switch (kind) {
    case MetricKind::kExactMatch:
      return ignore_case ? absl::EqualsIgnoreCase(p, g) : p == g;
    case MetricKind::kChoiceAccuracy:
      return !p.empty() && p == g;
    case MetricKind::kNumericMatch: {
      auto a = ParseNumber(p);
      auto b = ParseNumber(g);
      if (!a || !b) return false;
      return std::fabs(*a - *b) <= 1e-6 * std::max(1.0, std::fabs(*b));
    }
    case MetricKind::kContains:
      if (g.empty()) return false;
      if (!ignore_case) return absl::StrContains(p, g);
      return absl::StrContains(absl::AsciiStrToLower(p), absl::AsciiStrToLower(g));
    case MetricKind::kRegexMatch: {
      re2::RE2::Options opts;
      opts.set_log_errors(false);
      opts.set_case_sensitive(!ignore_case);
      re2::RE2 re(re2::StringPiece(g.data(), g.size()), opts);
      if (!re.ok()) return false;
      return re2::RE2::FullMatch(re2::StringPiece(p.data(), p.size()), re);
    }
  }
  return false;
}

void ScoreStats::Add(double v) {
  ++count_;
  sum_ += v;
  sum_squared_ += v * v;
  min_ = std::min(min_, v);
  max_ = std::max(max_, v);
}

double ScoreStats::variance() const {
  if (count_ < 2) return 0.0;
  double m = mean();
  double var = (sum_squared_ - count_ * m * m) / (count_ - 1);
  return var > 0 ? var : 0.0;
}

double ScoreStats::stddev() const { return std::sqrt(variance()); }

double ScoreStats::standard_error() const {
  return count_ > 0 ? stddev() / std::sqrt(static_cast<double>(count_)) : 0.0;
}

nlohmann::json ScoreStats::ToJson() const {
  nlohmann::json j;
  j["count"] = count_;
  j["sum"] = sum_;
  j["sum_squared"] = sum_squared_;
  j["min"] = count_ ? min_ : 0.0;
  j["max"] = count_ ? max_ : 0.0;
  j["mean"] = mean();
  j["variance"] = variance();
  j["stddev"] = stddev();
  j["stderr"] = standard_error();
  return j;
}

double PassAtK(int n, int c, int k) {
  if (k <= 0 || k > n) return 0.0;
  if (n - c < k) return 1.0;
  // 1 - prod_{i = n-c+1}^{n} (1 - k / i), numerically stable.
  double prod = 1.0;
  for (int i = n - c + 1; i <= n; ++i) prod *= 1.0 - static_cast<double>(k) / i;
  return 1.0 - prod;
}

}  // namespace evald::runner
