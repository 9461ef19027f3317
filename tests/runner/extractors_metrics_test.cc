#include <catch2/catch.hpp>

#include "runner/extractors.h"
#include "runner/metrics.h"
#include "runner/prompt_template.h"

namespace evald::runner {
namespace {

std::string Num(const std::string& response) {
  auto v = ExtractFinalNumber(response);
  return v ? *v : "<none>";
}

TEST_CASE("extractor numeric: the common final-answer forms") {
  CHECK(Num("12 - 5 = 7\n#### 7") == "7");
  CHECK(Num("so #### 1,250") == "1250");
  CHECK(Num("The final answer is: 42") == "42");
  CHECK(Num("The answer is $18.50.") == "18.50");
  CHECK(Num("**Answer:** -5") == "-5");
  CHECK(Num("Thus $\\boxed{3000}$ books.") == "3000");
  CHECK(Num("First 3 + 4 = 7, then 7 * 2 = 14.") == "14");  // last number
  CHECK(Num("Answer: 15. Check: 15 - 3 = 12") == "15");     // explicit answer beats last number
  CHECK(Num("no digits here") == "<none>");
  CHECK(Num("It ends with a sentence 99.") == "99");
}

TEST_CASE("extractor numeric: gold of the openai/grade-school-math layout") {
  CHECK(*Gsm8kGold("4 + 4 = 8\n#### 8") == "8");
  CHECK(*Gsm8kGold("#### 1,000") == "1000");
  CHECK_FALSE(Gsm8kGold("no final answer").has_value());
  CHECK_FALSE(Gsm8kGold("#### abc").has_value());
}

TEST_CASE("extractor numeric: number parsing") {
  CHECK(*ParseNumber("1,234.5") == Approx(1234.5));
  CHECK(*ParseNumber("$12") == Approx(12));
  CHECK(*ParseNumber("-$3") == Approx(-3));
  CHECK(*ParseNumber("50%") == Approx(50));
  CHECK(*ParseNumber("3/4") == Approx(0.75));
  CHECK(*ParseNumber(" 7. ") == Approx(7));
  CHECK_FALSE(ParseNumber("0x10").has_value());
  CHECK_FALSE(ParseNumber("nan").has_value());
  CHECK_FALSE(ParseNumber("1/0").has_value());
  CHECK_FALSE(ParseNumber("").has_value());
}

std::string Letter(const std::string& response, int n = 4) {
  std::vector<std::string> letters;
  for (int i = 0; i < n; ++i) letters.emplace_back(1, static_cast<char>('A' + i));
  auto ex = Extractor::Choices(letters);
  REQUIRE(ex.ok());
  auto v = ex->Extract(response);
  return v ? *v : "<none>";
}

TEST_CASE("extractor choices: the common answer patterns") {
  CHECK(Letter("Let me think.\nAnswer: B") == "B");
  CHECK(Letter("The correct answer is (C).") == "C");
  CHECK(Letter("**Answer: D**") == "D");
  CHECK(Letter("**Answer:** A") == "A");
  CHECK(Letter("So the answer is $\\boxed{C}$") == "C");
  CHECK(Letter("\\boxed{\\text{B}}") == "B");
  CHECK(Letter("Reasoning about the options...\n\nD") == "D");
  CHECK(Letter("A. Paris is the capital") == "A");
  CHECK(Letter("Option (B) looks plausible but (C) is right") == "C");
  CHECK(Letter("Answer: A ... wait, Answer: C") == "C");  // the last explicit answer wins
  CHECK(Letter("A bit of thought gives nothing") == "<none>");
  CHECK(Letter("The answer is Both") == "<none>");
  CHECK(Letter("Answer: E") == "<none>");  // outside A-D
  CHECK(Letter("Answer: E", 10) == "E");   // MMLU-Pro range
  CHECK(Letter("Answer: J", 10) == "J");
}

TEST_CASE("extractor choices: rejects bad choice lists") {
  CHECK_FALSE(Extractor::Choices({}).ok());
  CHECK_FALSE(Extractor::Choices({"A", "B)"}).ok());
  auto words = Extractor::Choices({"yes", "no"});
  REQUIRE(words.ok());
  CHECK(*words->Extract("Answer: yes") == "yes");
}

TEST_CASE("extractor regex: one capture group, last match wins") {
  auto ex = Extractor::Regex(R"(Answer:\s*([A-Za-z ]+))");
  REQUIRE(ex.ok());
  CHECK(*ex->Extract("Answer: Paris") == "Paris");
  CHECK(*ex->Extract("Answer: Lyon\nAnswer: Paris  ") == "Paris");
  CHECK_FALSE(ex->Extract("no answer").has_value());
  auto zero = Extractor::Regex("Answer: .*");
  REQUIRE_FALSE(zero.ok());
  CHECK_THAT(std::string(zero.status().message()), Catch::Contains("exactly one capture group"));
  CHECK_FALSE(Extractor::Regex("(a)(b)").ok());
  CHECK_FALSE(Extractor::Regex("(unclosed").ok());
  // An empty-matching pattern still terminates and finds the last match.
  auto empty = Extractor::Regex(R"((\d*))");
  REQUIRE(empty.ok());
  CHECK(empty->Extract("a1b22c").has_value());
}

TEST_CASE("extractor full: the trimmed response") {
  CHECK(*Extractor::Full().Extract("  Paris \n") == "Paris");
}

TEST_CASE("metrics: each metric") {
  CHECK(MetricMatches(MetricKind::kExactMatch, " Paris ", "Paris"));
  CHECK_FALSE(MetricMatches(MetricKind::kExactMatch, "paris", "Paris"));
  CHECK(MetricMatches(MetricKind::kExactMatch, "paris", "Paris", /*ignore_case=*/true));
  CHECK(MetricMatches(MetricKind::kNumericMatch, "1,234", "1234"));
  CHECK(MetricMatches(MetricKind::kNumericMatch, "18.50", "18.5"));
  CHECK(MetricMatches(MetricKind::kNumericMatch, "$45", "45"));
  CHECK_FALSE(MetricMatches(MetricKind::kNumericMatch, "45.01", "45"));
  CHECK_FALSE(MetricMatches(MetricKind::kNumericMatch, "abc", "45"));
  CHECK(MetricMatches(MetricKind::kChoiceAccuracy, "B", "B"));
  CHECK_FALSE(MetricMatches(MetricKind::kChoiceAccuracy, "C", "B"));
  CHECK_FALSE(MetricMatches(MetricKind::kChoiceAccuracy, "", ""));
  CHECK(MetricMatches(MetricKind::kContains, "the capital is Paris.", "Paris"));
  CHECK(MetricMatches(MetricKind::kContains, "the capital is PARIS.", "paris", true));
  CHECK_FALSE(MetricMatches(MetricKind::kContains, "Lyon", "Paris"));
  CHECK_FALSE(MetricMatches(MetricKind::kContains, "anything", ""));
  CHECK(MetricMatches(MetricKind::kRegexMatch, "colour", "colou?r"));
  CHECK_FALSE(MetricMatches(MetricKind::kRegexMatch, "colours", "colou?r"));  // full match
  CHECK_FALSE(MetricMatches(MetricKind::kRegexMatch, "x", "(bad"));
  CHECK(ParseMetric("contains").ok());
  auto bad = ParseMetric("f1");
  REQUIRE_FALSE(bad.ok());
  CHECK_THAT(std::string(bad.status().message()), Catch::Contains("exact_match"));
}

TEST_CASE("metrics: ScoreStats matches the textbook formulas") {
  ScoreStats s;
  for (double v : {1.0, 0.0, 1.0, 1.0}) s.Add(v);
  CHECK(s.count() == 4);
  CHECK(s.mean() == Approx(0.75));
  CHECK(s.variance() == Approx(0.25));  // sample variance: sum((x-m)^2)/(n-1) = 0.75/3
  CHECK(s.stddev() == Approx(0.5));
  CHECK(s.standard_error() == Approx(0.25));
  nlohmann::json j = s.ToJson();
  CHECK(j["sum"] == 3.0);
  CHECK(j["sum_squared"] == 3.0);
  CHECK(j["min"] == 0.0);
  CHECK(j["max"] == 1.0);
  ScoreStats empty;
  CHECK(empty.ToJson()["count"] == 0);
  CHECK(empty.ToJson()["mean"] == 0.0);
}

TEST_CASE("metrics: unbiased pass@k") {
  CHECK(PassAtK(4, 0, 1) == Approx(0.0));
  CHECK(PassAtK(4, 4, 1) == Approx(1.0));
  CHECK(PassAtK(4, 1, 1) == Approx(0.25));
  CHECK(PassAtK(4, 1, 4) == Approx(1.0));
  CHECK(PassAtK(4, 2, 2) == Approx(1.0 - 1.0 / 6.0));  // 1 - C(2,2)/C(4,2)
  CHECK(PassAtK(10, 3, 5) == Approx(1.0 - 21.0 / 252.0));
}

TEST_CASE("template: placeholders, lists and errors") {
  auto t = PromptTemplate::Parse("Q: {{ question }}\n{{options}}\nSubject: {{meta.subject}}");
  REQUIRE(t.ok());
  nlohmann::json row = {
      {"question", "Why?"}, {"options", {"yes", "no"}}, {"meta", {{"subject", "logic"}}}};
  CHECK(*t->Render(row) == "Q: Why?\nA. yes\nB. no\nSubject: logic");
  CHECK(t->Fields() == std::vector<std::string>{"question", "options", "meta.subject"});
  auto missing = t->Render({{"question", "x"}});
  REQUIRE_FALSE(missing.ok());
  CHECK_THAT(std::string(missing.status().message()),
             Catch::Contains("'options'") && Catch::Contains("the row has: question"));
  CHECK(*PromptTemplate::Parse("n={{n}}")->Render({{"n", 3}}) == "n=3");
  CHECK(*PromptTemplate::Parse("no fields")->Render(nlohmann::json::object()) == "no fields");
  CHECK_FALSE(PromptTemplate::Parse("{{unclosed").ok());
  CHECK_FALSE(PromptTemplate::Parse("{{}}").ok());
}

}  // namespace
}  // namespace evald::runner
