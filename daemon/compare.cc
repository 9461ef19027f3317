#include "daemon/compare.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace evald::daemon::compare {

absl::StatusOr<SampleScores> ReadSampleScores(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("no ", path));
  // Sums and counts first: a sample's repeats are averaged into one paired value.
  std::map<std::string, std::map<int64_t, std::pair<double, int>>> sums;
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty()) continue;
    nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ":", line_no, ": not a JSON object"));
    }
    auto sample = j.find("sample");
    auto scores = j.find("scores");
    if (sample == j.end() || !sample->is_number_integer() || scores == j.end() ||
        !scores->is_object()) {
      continue;  // a line of an older runner without per-sample scores
    }
    for (auto it = scores->begin(); it != scores->end(); ++it) {
      if (!it.value().is_number()) continue;
      auto& [sum, n] = sums[it.key()][sample->get<int64_t>()];
      sum += it.value().get<double>();
      ++n;
    }
  }
  SampleScores out;
  for (const auto& [score, by_sample] : sums) {
    for (const auto& [sample, sn] : by_sample) out[score][sample] = sn.first / sn.second;
  }
  return out;
}

namespace {

// log C(n, k)
double LogChoose(int64_t n, int64_t k) {
  return std::lgamma(static_cast<double>(n) + 1) - std::lgamma(static_cast<double>(k) + 1) -
         std::lgamma(static_cast<double>(n - k) + 1);
}

// Continued fraction of the incomplete beta (modified Lentz), valid for x < (a+1)/(a+b+2).
double BetaContinuedFraction(double a, double b, double x) {
  constexpr double kTiny = 1e-300;
  constexpr double kEps = 1e-15;
  double c = 1, d = 1 - (a + b) * x / (a + 1);
  if (std::fabs(d) < kTiny) d = kTiny;
  d = 1 / d;
  double h = d;
  for (int m = 1; m <= 10000; ++m) {
    const double m2 = 2.0 * m;
    double aa = m * (b - m) * x / ((a + m2 - 1) * (a + m2));
    d = 1 + aa * d;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = 1 + aa / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1 / d;
    h *= d * c;
    aa = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1));
    d = 1 + aa * d;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = 1 + aa / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1 / d;
    const double del = d * c;
    h *= del;
    if (std::fabs(del - 1) < kEps) break;
  }
  return h;
}

bool IsZeroOne(double v) { return v == 0.0 || v == 1.0; }

}  // namespace

double RegularizedIncompleteBeta(double a, double b, double x) {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const double front = std::exp(std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) +
                                a * std::log(x) + b * std::log1p(-x));
  if (x < (a + 1) / (a + b + 2)) return front * BetaContinuedFraction(a, b, x) / a;
  return 1 - front * BetaContinuedFraction(b, a, 1 - x) / b;
}

double McNemarExactP(int64_t a_only, int64_t b_only) {
  const int64_t n = a_only + b_only;
  if (n == 0) return 1;
  const int64_t k = std::min(a_only, b_only);
  double tail = 0;
  for (int64_t i = 0; i <= k; ++i) {
    tail += std::exp(LogChoose(n, i) - static_cast<double>(n) * std::log(2.0));
  }
  return std::min(1.0, 2 * tail);
}

double PairedTP(const std::vector<double>& diffs) {
  const size_t n = diffs.size();
  if (n < 2) return 1;
  double mean = 0;
  for (double d : diffs) mean += d;
  mean /= static_cast<double>(n);
  double ss = 0;
  for (double d : diffs) ss += (d - mean) * (d - mean);
  const double sd = std::sqrt(ss / static_cast<double>(n - 1));
  if (sd == 0) return mean == 0 ? 1 : 0;
  const double t = mean / (sd / std::sqrt(static_cast<double>(n)));
  const double df = static_cast<double>(n - 1);
  // P(|T| >= |t|) for Student's t with df degrees of freedom.
  return RegularizedIncompleteBeta(df / 2, 0.5, df / (df + t * t));
}

double TwoSampleZP(double diff, double se_a, double se_b) {
  const double se = std::sqrt(se_a * se_a + se_b * se_b);
  if (se == 0) return diff == 0 ? 1 : 0;
  return std::erfc(std::fabs(diff / se) / std::sqrt(2.0));
}

TestResult PairedTest(const std::map<int64_t, double>& a, const std::map<int64_t, double>& b) {
  TestResult r;
  std::vector<double> diffs;
  bool zero_one = true;
  int64_t a_only = 0, b_only = 0;
  for (const auto& [sample, va] : a) {
    auto it = b.find(sample);
    if (it == b.end()) continue;
    const double vb = it->second;
    diffs.push_back(vb - va);
    zero_one = zero_one && IsZeroOne(va) && IsZeroOne(vb);
    a_only += va > vb;
    b_only += vb > va;
  }
  r.paired = static_cast<int64_t>(diffs.size());
  if (diffs.empty()) {
    r.method = kNone;
    r.note = "no sample scored in both runs";
    return r;
  }
  double sum = 0;
  for (double d : diffs) sum += d;
  r.mean_diff = sum / static_cast<double>(diffs.size());
  if (zero_one) {
    r.method = kMcNemarExact;
    r.p_value = McNemarExactP(a_only, b_only);
  } else {
    r.method = kPairedT;
    r.p_value = PairedTP(diffs);
    if (diffs.size() < 2) r.note = "one paired sample: no test";
  }
  return r;
}

}  // namespace evald::daemon::compare
