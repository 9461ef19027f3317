// File: compare.h
//
// The statistics behind `evalctl compare` (the Compare RPC, docs/export.md "Comparing two runs"),
// free of gRPC and storage so a dashboard can reuse it: per-sample scores read from a job's
// artifacts/samples.jsonl, the paired tests on samples both runs scored (McNemar's exact test for
// 0/1 scores, the paired t-test otherwise) and the two-sample z test on reported stderrs when the
// samples cannot be paired. Called by ServerCore::Compare (server_core_compare.cc).
//
//   EVALD_ASSIGN_OR_RETURN(SampleScores a, ReadSampleScores(dir_a + "/samples.jsonl"));
//   TestResult t = PairedTest(a["exact_match"], b["exact_match"]);
//   bool worse = t.p_value < 0.05 && t.mean_diff < 0;
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace evald::daemon::compare {

inline constexpr double kDefaultAlpha = 0.05;

// Method names, as they appear in the RPC, `evalctl compare` and the docs.
inline constexpr char kMcNemarExact[] = "mcnemar_exact";
inline constexpr char kPairedT[] = "paired_t";
inline constexpr char kZStderr[] = "z_stderr";
inline constexpr char kNone[] = "none";

// score name -> sample index -> the score's mean over the sample's repeats.
using SampleScores = std::map<std::string, std::map<int64_t, double>>;

// Reads every line's `sample` and `scores` (errored samples included: they were scored 0).
// NotFound when the file is missing; InvalidArgument (file:line) on a line that is not JSON.
absl::StatusOr<SampleScores> ReadSampleScores(const std::string& path);

struct TestResult {
  std::string method;    // one of the names above
  int64_t paired = 0;    // samples in both runs (paired methods)
  double mean_diff = 0;  // b - a over the paired samples (paired methods)
  double p_value = 1;    // two-sided
  std::string note;      // why a test could not say more, "" otherwise
};

// Two-sided exact McNemar test: `b_only` pairs right only in b, `a_only` right only in a.
// p = min(1, 2 * P(X <= min(a_only, b_only))), X ~ Binomial(a_only + b_only, 1/2).
double McNemarExactP(int64_t a_only, int64_t b_only);
// Two-sided paired t-test on the differences (n - 1 degrees of freedom); 1 when n < 2 or all
// differences are 0, 0 when they are all the same non-zero value.
double PairedTP(const std::vector<double>& diffs);
// Two-sided z test on diff / sqrt(se_a^2 + se_b^2); with both stderrs 0: 1 if diff is 0, else 0.
double TwoSampleZP(double diff, double se_a, double se_b);
// Regularized incomplete beta I_x(a, b) (continued fraction), exposed for tests.
double RegularizedIncompleteBeta(double a, double b, double x);

// The paired test on the samples present in both maps: McNemar when every paired score is 0 or 1,
// the paired t-test otherwise. No common sample: method kNone with a note.
TestResult PairedTest(const std::map<int64_t, double>& a, const std::map<int64_t, double>& b);

}  // namespace evald::daemon::compare
