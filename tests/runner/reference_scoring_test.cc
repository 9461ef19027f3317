// The reference harnesses' scoring rules (lm-evaluation-harness @ 4e7e0d47, simple-evals @
// ee3b0318), one test per rule or quirk: the Python-`re` engine, lm-eval's filters and
// exact_match, the gsm8k / mmlu_pro / gpqa patterns, simple-evals' extraction, Python's random,
// think_end_token and a gsm8k filter_list pasted into a task file.
#include "runner/reference_scoring.h"

#include <catch2/catch.hpp>
#include <cstdlib>

#include "runner/filters.h"
#include "runner/plan.h"
#include "runner/py_regex.h"
#include "runner/task.h"
#include "tests/runner/test_util.h"

namespace evald::runner {
namespace {

using testing::DataDir;
using testing::TempDir;
using testing::WriteFile;

PyRegex Re(const std::string& p, bool icase = false) {
  auto re = PyRegex::Compile(p, icase);
  INFO(p);
  REQUIRE(re.ok());
  return *std::move(re);
}

std::vector<std::string> Hits(const PyRegex& re, const std::string& text, int group = 0) {
  std::vector<std::string> out;
  for (const auto& m : re.FindAll(text)) out.push_back(m.groups[group]);
  return out;
}

std::string Apply(const FilterPipeline& p, const std::string& response,
                  const std::vector<std::string>* choices = nullptr) {
  FilterContext ctx;
  ctx.choices = choices;
  return p.Apply(response, ctx);
}

FilterPipeline RegexPipeline(const std::string& pattern, int group_select,
                             const std::string& fallback = "[invalid]") {
  auto step = FilterStep::Regex(pattern, group_select, fallback);
  REQUIRE(step.ok());
  return {"p", {*std::move(step), FilterStep::TakeFirst()}};
}

// ---- the regex engine ---------------------------------------------------------------------

TEST_CASE("py_regex: Python re semantics") {
  // `$` without MULTILINE also matches just before a final newline; `\Z` only at the very end.
  CHECK(Re(R"(\.$)").Sub("42.\n", "") == "42\n");
  CHECK(Re(R"(\.$)").Sub("4.2.", "") == "4.2");
  CHECK_FALSE(Re(R"(\.$)").Search("42.\n\n"));
  CHECK_FALSE(Re(R"(1\Z)").Search("1\n"));
  CHECK(Re(R"(1\Z)").Search("x1"));
  // `.` stops at a newline unless (?s); (?i) folds Unicode case.
  CHECK(Re("(?s).*#### ").Sub("a\nb #### c #### 18", "") == "18");
  CHECK(Re(".*#### ").Sub("a\nb #### 18", "") == "a\n18");
  CHECK(Re("(?i)straße").Search("STRASSE") == std::nullopt);  // no full case folding in re
  CHECK(Re("(?i)émile").Search("ÉMILE"));
  // Look-behind and look-ahead (gpqa's strict pattern), Unicode \w and \d, {,n}.
  CHECK(Hits(Re(R"((?<=The answer is )(.*)(?=.))"), "The answer is (C).", 1) ==
        std::vector<std::string>{"(C)"});
  CHECK(Hits(Re(R"(\w+)"), "naïve café 中文 don't") ==
        std::vector<std::string>{"naïve", "café", "中文", "don", "t"});
  CHECK(Re(R"(^\d+$)").Search("١٢٣"));  // Arabic-Indic digits are \d in Python
  CHECK(Hits(Re("a{,2}"), "aaa") == std::vector<std::string>{"aa", "a", ""});
  // Empty matches as Python 3.7+ findall reports them.
  CHECK(Hits(Re("x*"), "axb") == std::vector<std::string>{"", "x", "", ""});
  CHECK(Re("x*").Sub("abc", "-") == "-a-b-c-");
  CHECK(Re(R"(\s?\*\*\*\s?)").Split("a *** b***c") == std::vector<std::string>{"a", "b", "c"});
  // Python's leading flags: (?u) is the default, (?a) makes \w and \d ASCII.
  CHECK(Hits(Re(R"((?u)\w+)"), "café") == std::vector<std::string>{"café"});
  CHECK(Hits(Re(R"((?a)\w+)"), "café") == std::vector<std::string>{"caf"});
  CHECK(Hits(Re(R"((?ai)[a-z]+)"), "ABC") == std::vector<std::string>{"ABC"});
  // Invalid UTF-8 in a response is matched around, never an error.
  CHECK(Hits(Re(R"(\d+)"), std::string("1\xff 2")) == std::vector<std::string>{"1", "2"});
}

TEST_CASE("py_regex: compile errors name the pattern and the offset") {
  auto bad = PyRegex::Compile("answer is (\\d+");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(bad.status().message()),
             Catch::Contains("regex 'answer is (\\d+' does not compile at offset 14"));
}

TEST_CASE("py_regex: a catastrophic pattern gives up instead of stalling") {
  PyRegex re = Re("(a+)+$");
  const std::string hostile = std::string(40, 'a') + "!";
  CHECK_FALSE(re.Search(hostile));  // the backtracking budget ends it
  CHECK(PyStrip("\u00a0 x \u3000\n") == "x");
  CHECK(PyLStrip("  x ") == "x ");
  CHECK(PyLower("ÀB Ｃ") == "àb ｃ");
}

// Differential check against CPython's `re` (python3 is a test dependency of scripts/setup):
// every reference pattern of the notes, on responses chosen to hit their corner cases, must give
// the same finditer hits (whole match and groups) and the same re.sub result.
TEST_CASE("py_regex: the reference patterns match as CPython's re does") {
  if (std::system("python3 -c 'import re' >/dev/null 2>&1") != 0) {
    WARN("python3 not found: differential check skipped");
    return;
  }
  const std::vector<std::string> patterns = {
      R"(#### (\-?[0-9\.\,]+))",
      R"((-?[$0-9.,]{2,})|(-?[0-9]+))",
      R"(The answer is (\-?[0-9\.\,]+).)",
      R"(The final answer is ((-?[$0-9.,]{2,})|(-?[0-9]+)))",
      R"(final answer is (\-?[0-9\.\,]+))",
      R"(The answer is (\-?[0-9\.\,]*[0-9]+))",
      R"(answer is \(?([ABCDEFGHIJ])\)?)",
      R"((?<=The answer is )(.*)(?=.))",
      R"((\([A-Z]\)))",
      R"(:[\s]*(A|B|C|D))",
      R"((?i)Answer[ \t]*:[ \t]*\$?([A-D])\$?)",
      "(?i)Answer\\s*:[ \\t]*([A-D]|[\u0623-\u062f]|[\u0985]|[\u09ac]|[\u09a1]|[\u09a2]|[\uff21]|"
      "[\uff22]|[\uff23]|[\uff24])",
      R"((?i)Answer\s*:\s*([^\n]+))",
      R"(\d+\.?\d*)",
      ",",
      R"(\$)",
      "(?s).*#### ",
      R"(\.$)",
      R"(\s?\*\*\*\s?)",
      R"(\*[^\n\*]*\*)",
      R"(\*\*[^\n\*]*\*\*)",
      R"((?m)^\s*\*[^\*].*$)",
      R"((?m)^\s*-.*$)",
      R"(\[.*?\])",
      R"((?m)\s*p\.\s?s\..*$)",
      R"(<<[^\n]+>>)",
      R"(\w+)",
      R"(\bcat\b)",
      // Unicode classes where PCRE2 and Python differ unless bridged: \s (U+001C..U+001F, NEL),
      // \w (combining marks, connector punctuation), `.` (only \n stops it).
      R"(\s+)",
      R"(\S+)",
      R"([\s,]+)",
      R"([^\s]+)",
      R"((?a)\s+)",
      R"(.+)",
      R"((?m)^\s*-.*$)",
  };
  const std::vector<std::string> texts = {
      "#### 18",
      "Natalia sold 48/2 = 24 clips.\n#### 72\n",
      "#### $18 and ####18 and #### -1,234.50.",
      "So the result is $\\boxed{350}$.",
      "It takes 30-45 minutes... then 1,000,000 $$ $.",
      "The answer is 18",
      "The answer is 1,080.\nThe answer is 7!",
      "The final answer is $1,234.\nThe final answer is 9",
      "so the final answer is 3, final answer is 4.",
      "the answer is (B). Answer is (C), the answer is Definitely",
      "The answer is (C) because x\nThe answer is C",
      "I choose (A) then (D): B",
      "**Answer:** C\nanswer:\t$b$\nAnswer: \uff23",
      "\u0627\u0644\u0625\u062c\u0627\u0628\u0629: \u0628",
      "Answer:\n\nC and Answer: 42 apples",
      "* one\n- two\n  * three\n**Bold** line\n---\n-5 degrees\n",
      "a ***bold italic*** b\n***\nc",
      "Dear [name], see [link](http://x) and [].",
      "Thanks!\nP.S. see you\np.s.   later",
      "<<Title>> and << >>\n<<a\nb>>",
      "naïve café 中文 don't e-mail 6.30 Cats cat concatenate",
      "",
      "line one\nline two\n",
      "e\u0301 \u0928\u092e\u0938\u094d\u0924\u0947 a\u203fb \u00bd \u00b2 \u0661\u0662",
      "a\x1c b\x1f"
      "c\u0085d\u00a0e\u180ef\u200bg\vh\u3000i\rj,k\u2028l",
      "\u3000- item\n\x1c- two\r\n\u0085-three",
  };
  nlohmann::json in = {{"patterns", patterns}, {"texts", texts}};
  TempDir dir;
  WriteFile(dir / "in.json", in.dump());
  WriteFile(dir / "check.py", R"py(
import json, re, sys
d = json.load(open(sys.argv[1], encoding="utf-8"))
out = []
for p in d["patterns"]:
    rx = re.compile(p)
    out.append([[[m.group(0)] + [g or "" for g in m.groups()] for m in rx.finditer(t)] +
                [rx.sub("", t)] for t in d["texts"]])
json.dump(out, open(sys.argv[2], "w", encoding="utf-8"))
)py");
  REQUIRE(std::system(
              ("python3 " + (dir / "check.py") + " " + (dir / "in.json") + " " + (dir / "out.json"))
                  .c_str()) == 0);
  nlohmann::json want = nlohmann::json::parse(testing::ReadFile(dir / "out.json"));
  for (size_t p = 0; p < patterns.size(); ++p) {
    PyRegex re = Re(patterns[p]);
    for (size_t t = 0; t < texts.size(); ++t) {
      nlohmann::json got = nlohmann::json::array();
      for (const auto& m : re.FindAll(texts[t])) got.push_back(m.groups);
      got.push_back(re.Sub(texts[t], ""));
      INFO("pattern " << patterns[p] << "\ntext " << nlohmann::json(texts[t]).dump());
      CHECK(got == want[p][t]);
    }
  }
}

// ---- lm-eval filters and exact_match ------------------------------------------------------

TEST_CASE("regex filter: group_select, tuples, strip and fallback") {
  const std::string text = "#### 1 then #### 2 and #### 3";
  CHECK(Apply(RegexPipeline(R"(#### (\d))", 0), text) == "1");  // default: the first hit
  CHECK(Apply(RegexPipeline(R"(#### (\d))", -1), text) == "3");
  CHECK(Apply(RegexPipeline(R"(#### (\d))", 1), text) == "2");
  CHECK(Apply(RegexPipeline(R"(#### (\d))", -2), text) == "2");
  CHECK(Apply(RegexPipeline(R"(#### (\d))", 5), text) == "[invalid]");  // out of range
  CHECK(Apply(RegexPipeline(R"(#### (\d))", 0, "none"), "no hit") == "none");
  // Without a group: the whole hit; with several: the first non-empty group; stripped.
  CHECK(Apply(RegexPipeline(R"(#### \d)", 0), text) == "#### 1");
  CHECK(Apply(RegexPipeline(R"((x)|(\d))", 0), "7") == "7");
  CHECK(Apply(RegexPipeline(R"((a*)|(b*))", 0), "c") == "[invalid]");  // all groups empty
  CHECK(Apply(RegexPipeline(R"(is(.*))", 0), "is  42 \n") == "42");
  // remove_whitespace drops leading whitespace only.
  FilterPipeline ws{"ws", {FilterStep::RemoveWhitespace()}};
  CHECK(Apply(ws, " \n A \n") == "A \n");
  FilterPipeline lower{"lower", {FilterStep::Lowercase()}};
  CHECK(Apply(lower, "The Answer (B)") == "the answer (b)");
  FilterPipeline upper{"upper", {FilterStep::Uppercase()}};
  CHECK(Apply(upper, "the answer (b)") == "THE ANSWER (B)");
  // Python's str.upper() is Unicode's full mapping, not ASCII's.
  CHECK(Apply(upper, "stra\u00dfe \u00e9t\u00e9 \uff43") == "STRASSE \u00c9T\u00c9 \uff23");
}

// Differential check against CPython: str.lower/upper/islower/isupper on the cases where Unicode's
// rules differ from ASCII's and from one-to-one mappings (SpecialCasing, Final_Sigma, titlecase
// letters, uncased scripts, ill-formed bytes passed through).
TEST_CASE("py case functions: lower, upper, islower and isupper agree with CPython") {
  CHECK(PyUpper("\u00df") == "SS");
  CHECK(PyLower("\u0130") == "i\u0307");
  CHECK(PyLower("\u039f\u0394\u039f\u03a3") == "\u03bf\u03b4\u03bf\u03c2");  // final sigma
  CHECK(PyUpper("a\xff b") == "A\xff B");
  CHECK_FALSE(PyIsUpper("\u01c5A"));  // titlecase Dz
  CHECK(PyIsUpper("I SAID \u00c9T\u00c9 123"));
  CHECK_FALSE(PyIsLower("123 \u4e2d\u6587"));
  if (std::system("python3 -c 'import json' >/dev/null 2>&1") != 0) {
    WARN("python3 not found: differential check skipped");
    return;
  }
  const std::vector<std::string> texts = {"",
                                          "abc",
                                          "ABC",
                                          "Abc",
                                          "123",
                                          "I",
                                          "U.S.",
                                          "stra\u00dfe",
                                          "\u1e9e",
                                          "\u0130stanbul",
                                          "\u039f\u0394\u039f\u03a3 \u03a3",
                                          "\u03c3\u03a3\u03a3\u03c3",
                                          "\ufb03 \ufb01",
                                          "\u0149",
                                          "\u01c5 \u01c4 \u01c6",
                                          "\u1f80 \u1f88",
                                          "\u00e9t\u00e9 \u00c9T\u00c9",
                                          "\uff41\uff22",
                                          "\u4e2d\u6587 abc",
                                          "\u4e2d\u6587",
                                          "\u2160 \u2170 \u24b6 \u24d0",
                                          "\u0587",
                                          "\U00010428\U00010400",
                                          "\u00aa \u00ba",
                                          "\u02b0",
                                          "ABC \u2167",
                                          "\u0345",
                                          "hello, WORLD! 42"};
  nlohmann::json in = texts;
  TempDir dir;
  WriteFile(dir / "in.json", in.dump());
  WriteFile(dir / "check.py", R"py(
import json, sys
texts = json.load(open(sys.argv[1], encoding="utf-8"))
json.dump([[t.lower(), t.upper(), t.islower(), t.isupper()] for t in texts],
          open(sys.argv[2], "w", encoding="utf-8"))
)py");
  const std::string cmd = "python3 '" + (dir / "check.py") + "' '" + (dir / "in.json") + "' '" +
                          (dir / "out.json") + "'";
  REQUIRE(std::system(cmd.c_str()) == 0);
  const nlohmann::json want = nlohmann::json::parse(testing::ReadFile(dir / "out.json"));
  REQUIRE(want.size() == texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    INFO("text " << i << ": " << texts[i]);
    CHECK(PyLower(texts[i]) == want[i][0].get<std::string>());
    CHECK(PyUpper(texts[i]) == want[i][1].get<std::string>());
    CHECK(PyIsLower(texts[i]) == want[i][2].get<bool>());
    CHECK(PyIsUpper(texts[i]) == want[i][3].get<bool>());
  }
}

TEST_CASE("exact_match: regexes, then case, then punctuation, both sides") {
  ExactMatchOptions o;
  o.regexes_to_ignore.push_back(Re("A"));
  o.ignore_case = true;
  // The regex runs before lower-casing: "A" is deleted, "a" is not.
  CHECK(NormalizeForExactMatch("Ab", o) == "b");
  CHECK(NormalizeForExactMatch("ab", o) == "ab");
  CHECK(ExactMatch("Ab", "B", o));
  CHECK_FALSE(ExactMatch("ab", "B", o));
  ExactMatchOptions p;
  p.ignore_punctuation = true;
  CHECK(NormalizeForExactMatch("(C).", p) == "C");
  CHECK(NormalizeForExactMatch("«C»", p) == "«C»");  // ASCII string.punctuation only
  ExactMatchOptions n;
  n.ignore_numbers = true;
  CHECK(NormalizeForExactMatch("a1b2", n) == "ab");
  CHECK_FALSE(ExactMatch(" 18", "18", ExactMatchOptions{}));  // no implicit strip
}

TEST_CASE("gsm8k: lm-eval's exact_match settings") {
  const ExactMatchOptions em = Gsm8kExactMatch();
  // `,` and `$` anywhere, one trailing `.`, everything up to the last "#### " of the gold.
  CHECK(NormalizeForExactMatch("$1,080.", em) == "1080");
  CHECK(NormalizeForExactMatch("42..", em) == "42.");
  CHECK(NormalizeForExactMatch("Step 1\nStep #### 2\n#### 18", em) == "18");
  CHECK_FALSE(ExactMatch("18.00", "18", em));
  CHECK_FALSE(ExactMatch("5.0", "5", em));
  CHECK_FALSE(ExactMatch("-45", "45", em));
  CHECK(ExactMatch("1,080", "He earns... #### 1080", em));
}

TEST_CASE("gsm8k: strict-match and flexible-extract of the default variant") {
  auto ref = Gsm8kReferenceFor("gsm8k");
  REQUIRE(ref.ok());
  REQUIRE(ref->scores.size() == 2);
  const FilterPipeline& strict = ref->scores[0].filter;
  const FilterPipeline& flexible = ref->scores[1].filter;
  CHECK(strict.name == "strict-match");
  CHECK(flexible.name == "flexible-extract");
  // Strict: the first "#### " (exactly one space), no "$", no missing space.
  CHECK(Apply(strict, "#### 18\n#### 20") == "18");
  CHECK(Apply(strict, "#### $18") == "[invalid]");
  CHECK(Apply(strict, "####18") == "[invalid]");
  CHECK(Apply(strict, "#### -1,234.5") == "-1,234.5");
  // Flexible: the last hit anywhere, the first non-empty alternative.
  CHECK(Apply(flexible, "3 apples and 18 pears") == "18");
  CHECK(Apply(flexible, "So the result is $\\boxed{350}$.") == "$.");
  CHECK(NormalizeForExactMatch("$.", Gsm8kExactMatch()).empty());
  CHECK(Apply(flexible, "between 30-45 minutes") == "-45");
  CHECK(Apply(flexible, "wait...") == "...");
  CHECK(Apply(flexible, "x = 7") == "7");  // the single-digit alternative
  CHECK(Apply(flexible, "no digits") == "[invalid]");
  CHECK(Gsm8kReferenceGold(*ref, "a\n#### 18") == "a\n#### 18");  // exact_match cuts it
}

TEST_CASE("gsm8k: the cot variant's strict pattern ends in an unescaped dot") {
  auto ref = Gsm8kReferenceFor("cot");
  REQUIRE(ref.ok());
  CHECK(ref->task == "gsm8k_cot_zeroshot");
  const FilterPipeline& strict = ref->scores[0].filter;
  CHECK(Apply(strict, "The answer is 18") == "1");  // the `.` eats the last digit
  CHECK(Apply(strict, "The answer is 18.") == "18");
  CHECK(Apply(strict, "The answer is 1,080.\n") == "1,080");
  CHECK(Apply(strict, "The answer is 18!") == "18");
  CHECK(Apply(strict, "the answer is 18.") == "[invalid]");           // case-sensitive
  CHECK(Apply(strict, "The answer is 7. The answer is 9.") == "7.");  // the first hit
  CHECK(Gsm8kReferenceGold(*ref, "work\n#### 1,080 ") == "1,080");
}

TEST_CASE("gsm8k: the llama variants take the last hit") {
  auto cot_llama = Gsm8kReferenceFor("llama");
  REQUIRE(cot_llama.ok());
  CHECK(cot_llama->task == "gsm8k_cot_llama");
  const FilterPipeline& strict = cot_llama->scores[0].filter;
  CHECK(strict.name == "strict-match");
  CHECK(Apply(strict, "The final answer is 5. Oops. The final answer is $18") == "$18");
  CHECK(Apply(strict, "The final answer is: 18") == "[invalid]");
  CHECK_THAT(cot_llama->prompt, Catch::Contains("The final answer is [answer]"));
  auto llama3 = Gsm8kReferenceFor("gsm8k_llama");
  REQUIRE(llama3.ok());
  CHECK(llama3->scores[0].filter.name == "strict_match");  // underscores in the llama3 file
  CHECK(llama3->scores[1].filter.name == "flexible_extract");
  CHECK(Apply(llama3->scores[0].filter, "final answer is 3, no: final answer is 4") == "4");
  auto bad = Gsm8kReferenceFor("gsm8k_fancy");
  REQUIRE_FALSE(bad.ok());
  CHECK_THAT(std::string(bad.status().message()), Catch::Contains("gsm8k_cot_llama"));
}

TEST_CASE("mmlu_pro: custom-extract is first-hit, case-sensitive, one space") {
  ReferenceScore r = MmluProReference();
  CHECK(r.filter.name == "custom-extract");
  CHECK(Apply(r.filter, "the answer is (B). Later: the answer is (C)") == "B");
  CHECK(Apply(r.filter, "The answer is C") == "C");
  CHECK(Apply(r.filter, "the answer is Definitely wrong") == "D");  // no word boundary
  CHECK(Apply(r.filter, "Answer is (B)") == "[invalid]");
  CHECK(Apply(r.filter, "the answer is (c)") == "[invalid]");
  CHECK(Apply(r.filter, "the answer is (\uff23)") == "[invalid]");  // full-width: no match
  CHECK(Apply(r.filter, "the answer is: C") == "[invalid]");
  CHECK(Apply(r.filter, "the answer is  (B)") == "[invalid]");
  CHECK(Apply(r.filter, "the answer is **(C)**") == "[invalid]");
  CHECK(Apply(r.filter, "the answer is \\boxed{C}") == "[invalid]");
  CHECK(ExactMatch("B", "B", r.exact_match));
  CHECK_FALSE(ExactMatch("[invalid]", "I", r.exact_match));  // "invalid" is never a letter
}

TEST_CASE("gpqa (lm-eval cot): look-around strict pattern and multi_choice_regex") {
  FilterPipeline strict = RegexPipeline(R"((?<=The answer is )(.*)(?=.))", 0);
  CHECK(Apply(strict, "The answer is (C).") == "(C)");
  CHECK(Apply(strict, "The answer is (C)") == "(C");
  CHECK(Apply(strict, "The answer is C") == "");  // empty, not the fallback
  CHECK(Apply(strict, "The answer is (C) because x") == "(C) because");
  auto mc = FilterStep::MultiChoiceRegex(R"((\([A-Z]\)))", -1, "[invalid]", true, true, {});
  REQUIRE(mc.ok());
  FilterPipeline flexible{"flexible-extract", {*std::move(mc), FilterStep::TakeFirst()}};
  const std::vector<std::string> choices = {"Mercury", "Venus's orbit", "Earth", "Mars"};
  CHECK(Apply(flexible, "(A) or maybe (D)", &choices) == "(D)");  // last (X)
  CHECK(Apply(flexible, "I pick venus’s orbit, not mars!", &choices) == "(D)");
  CHECK(Apply(flexible, "It is VENUS'S ORBIT.", &choices) == "(B)");  // Unicode P removed
  CHECK(Apply(flexible, "Final: C", &choices) == "(C)");
  CHECK(Apply(flexible, "no idea", &choices) == "[invalid]");
  ExactMatchOptions em;
  em.ignore_case = true;
  em.ignore_punctuation = true;
  CHECK(ExactMatch("(C", "(C)", em));
}

// ---- simple-evals -------------------------------------------------------------------------

TEST_CASE("simple-evals mmlu: normalisation, labels in list order, case-sensitive gold") {
  CHECK(SimpleEvalsMmluExtract("Answer: B") == "B");
  CHECK(SimpleEvalsMmluExtract("**Answer:** C") == "C");
  CHECK(SimpleEvalsMmluExtract("Answer: $A$") == "A");
  CHECK(SimpleEvalsMmluExtract("Answer: $\\boxed{D}$") == "D");
  CHECK(SimpleEvalsMmluExtract("Answer: \\textbf{B}") == "b");  // "bfB}" after clean-up
  CHECK(SimpleEvalsMmluExtract("answer: c") == "c");            // fails the gold compare
  CHECK(SimpleEvalsMmluExtract("Answer: (B)") == std::nullopt);
  CHECK(SimpleEvalsMmluExtract("Answer:\nC") == std::nullopt);  // [ \t]* stops at the newline
  CHECK(SimpleEvalsMmluExtract("Answer: Based on physics") == "B");
  CHECK(SimpleEvalsMmluExtract("Answer: Ｃ") == "C");  // full-width mapped
  CHECK(SimpleEvalsMmluExtract("الإجابة: ب") == "B");
  CHECK(SimpleEvalsMmluExtract("উত্তর: ড") == "C");
  CHECK(SimpleEvalsMmluExtract("答案：D") == "D");
  // The second label (six U+200B after the colon, which \s does not cover) and Bengali's
  // visarga form; an Arabic letter of the class that has no mapping is captured as it is.
  CHECK(SimpleEvalsMmluExtract("Answer:\u200b\u200b\u200b\u200b\u200b\u200b C") == "C");
  CHECK(SimpleEvalsMmluExtract("Answer:\u200b C") == std::nullopt);
  CHECK(SimpleEvalsMmluExtract("\u0989\u09a4\u09cd\u09a4\u09b0\u0983 \u0985") == "A");
  CHECK(SimpleEvalsMmluExtract("\u0627\u0644\u0625\u062c\u0627\u0628\u0629: \u062a") == "\u062a");
  // The first answer in the text wins, even inside reasoning; list order beats position.
  CHECK(SimpleEvalsMmluExtract("<think>Answer: A</think>\nAnswer: B") == "A");
  CHECK(SimpleEvalsMmluExtract("Respuesta: A\nAnswer: B") == "B");
  CHECK(SimpleEvalsMmluExtract("The final answer is D.") == std::nullopt);
}

TEST_CASE("simple-evals gpqa: raw text, no normalisation, first occurrence") {
  CHECK(SimpleEvalsGpqaExtract("Answer: B") == "B");
  CHECK(SimpleEvalsGpqaExtract("answer:\t$C$") == "C");
  CHECK(SimpleEvalsGpqaExtract("Answer: A\nAnswer: B") == "A");
  CHECK(SimpleEvalsGpqaExtract("**Answer:** C") == std::nullopt);
  CHECK(SimpleEvalsGpqaExtract("Answer: Ｃ") == std::nullopt);
  CHECK(SimpleEvalsGpqaExtract("\\boxed{A}") == std::nullopt);
  CHECK(SimpleEvalsGpqaExtract("Answer: (B)") == std::nullopt);
  CHECK(SimpleEvalsGpqaExtract("Answer:\nC") == std::nullopt);  // the 2024 pattern's \s* took it
  CHECK(SimpleEvalsGpqaExtract("answer: b") == "b");  // (?i): captured, then fails the compare
}

TEST_CASE("python random: Random(seed) as CPython draws it") {
  // Values printed by CPython 3.11: random.Random(0).sample(range(4), 4) five times, and
  // Random(7).getrandbits(32), getrandbits(5).
  PythonRandom r(0);
  std::vector<std::vector<int>> got;
  for (int i = 0; i < 5; ++i) got.push_back(r.SampleRange(4, 4));
  CHECK(got == std::vector<std::vector<int>>{
                   {3, 1, 0, 2}, {3, 1, 2, 0}, {2, 3, 0, 1}, {2, 0, 3, 1}, {1, 3, 0, 2}});
  PythonRandom s(7);
  CHECK(s.GetRandBits(32) == 1390851128u);
  CHECK(s.GetRandBits(5) == 30u);
}

Plan PlanFor(const std::string& task, const std::string& dataset) {
  Plan plan;
  plan.task = task;
  plan.params.dataset = dataset;
  return plan;
}

TEST_CASE("tasks: gpqa uses simple-evals' permutation and pattern") {
  auto task = CreateTask(PlanFor("native_gpqa_diamond", DataDir() + "/gpqa_tiny.jsonl"), {});
  REQUIRE(task.ok());
  CHECK((*task)->ScoreNames() == std::vector<std::string>{"score", "lenient_choice_accuracy"});
  // Row 0 draws [3, 1, 0, 2]: the correct option (first in the file) becomes C.
  Evaluation e = (*task)->Score(0, "Answer: C");
  CHECK(e.gold == "C");
  CHECK(e.correct);
  Evaluation boxed = (*task)->Score(0, "\\boxed{C}");
  CHECK_FALSE(boxed.correct);
  CHECK(boxed.scores[1].second == 1.0);  // the lenient score reads \boxed{}
  CHECK((*task)->ScoringJson()["permutation"] == "random.Random(0)");
  // simple-evals' examples * n_repeats (4): the second copy of row 0 (sample 4) draws the
  // fifth permutation, [1, 3, 0, 2], which puts the correct option at C again.
  CHECK((*task)->size() == 16);
  CHECK((*task)->Score(4, "").gold == "C");
  CHECK((*task)->Score(1, "").gold == "D");  // row 1: [3, 1, 2, 0]
  const std::string first = (*task)->BuildPrompt(0, EndpointType::kChat).messages[0].content;
  const std::string again = (*task)->BuildPrompt(4, EndpointType::kChat).messages[0].content;
  CHECK(first != again);  // same question, options in another order
  CHECK(first.substr(0, first.find("\n\nA) ")) == again.substr(0, again.find("\n\nA) ")));
  Plan once = PlanFor("native_gpqa_diamond", DataDir() + "/gpqa_tiny.jsonl");
  once.config = {{"params", {{"extra", {{"n_repeats", 1}}}}}};
  auto single = CreateTask(once, {});
  REQUIRE(single.ok());
  CHECK((*single)->size() == 4);
  Plan wrong = PlanFor("native_mmlu", DataDir() + "/mmlu_tiny.jsonl");
  wrong.config = {{"params", {{"extra", {{"n_repeats", 4}}}}}};
  auto refused = CreateTask(wrong, {});
  REQUIRE_FALSE(refused.ok());
  CHECK_THAT(std::string(refused.status().message()),
             Catch::Contains("only native_gpqa_diamond repeats"));
}

TEST_CASE("tasks: the variant and think_end_token come from config.params.extra") {
  Plan plan = PlanFor("native_gsm8k", DataDir() + "/gsm8k_tiny.jsonl");
  plan.config = {{"params", {{"extra", {{"variant", "llama"}, {"think_end_token", "</think>"}}}}}};
  auto task = CreateTask(plan, {});
  REQUIRE(task.ok());
  CHECK((*task)->think_end_token() == "</think>");
  CHECK((*task)->ScoringJson()["variant"] == "gsm8k_cot_llama");
  CHECK_THAT((*task)->BuildPrompt(0, EndpointType::kChat).messages[0].content,
             Catch::Contains("Problem: Mia has 12 apples."));
  CHECK((*task)->Score(0, "The final answer is 15").correct);
  CHECK((*task)->Score(0, "The final answer is $15").correct);  // `$` ignored by exact_match
  plan.config["params"]["extra"]["variant"] = 3;
  auto bad = CreateTask(plan, {});
  REQUIRE_FALSE(bad.ok());
  CHECK_THAT(std::string(bad.status().message()),
             Catch::Contains("config.params.extra.variant: expected a string"));
}

TEST_CASE("think_end_token: the text after its last occurrence, left-stripped") {
  const std::string r = "<think>#### 1</think> maybe </think>\n  #### 18";
  CHECK(ApplyThinkEndToken(r, std::nullopt) == r);  // lm-eval's default: scored as is
  CHECK(ApplyThinkEndToken(r, "</think>") == "#### 18");
  CHECK(ApplyThinkEndToken("no reasoning", "</think>") == "no reasoning");
}

TEST_CASE("until: the response is cut at the first stop string, after think_end_token") {
  auto ref = Gsm8kReferenceFor("gsm8k");
  REQUIRE(ref.ok());
  const std::string r =
      "<think>Question: what?</think>#### 5\n\nQuestion: another one\n#### 15<|im_end|>";
  // Without think_end_token the reasoning's "Question:" cuts everything after it.
  CHECK(PostprocessResponse(r, std::nullopt, ref->until) == "<think>");
  CHECK(PostprocessResponse(r, "</think>", ref->until) == "#### 5\n\n");
  CHECK(Apply(ref->scores[0].filter, PostprocessResponse(r, "</think>", ref->until)) == "5");
  auto cot = Gsm8kReferenceFor("cot");
  REQUIRE(cot.ok());
  CHECK(PostprocessResponse("The answer is 3.\nQ: next", std::nullopt, cot->until) ==
        "The answer is 3.\n");
  auto llama3 = Gsm8kReferenceFor("gsm8k_llama");
  REQUIRE(llama3.ok());
  CHECK(llama3->until.empty());  // until: []
  auto pro = CreateTask(PlanFor("native_mmlu_pro", DataDir() + "/mmlu_pro_tiny.jsonl"), {});
  REQUIRE(pro.ok());
  CHECK((*pro)->stop_strings() == std::vector<std::string>{"Question:"});
  auto mmlu = CreateTask(PlanFor("native_mmlu", DataDir() + "/mmlu_tiny.jsonl"), {});
  REQUIRE(mmlu.ok());
  CHECK((*mmlu)->stop_strings().empty());
}

// ---- task files with lm-eval's vocabulary -------------------------------------------------

// lm_eval/tasks/gsm8k/gsm8k.yaml's scoring sections, pasted as they are.
constexpr char kGsm8kYamlSections[] = R"y(
generation_kwargs:
  until:
    - "Question:"
    - "</s>"
    - "<|im_end|>"
  do_sample: false
  temperature: 0.0
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
    ignore_case: true
    ignore_punctuation: false
    regexes_to_ignore:
      - ","
      - "\\$"
      - "(?s).*#### "
      - "\\.$"
filter_list:
  - name: "strict-match"
    filter:
      - function: "regex"
        regex_pattern: "#### (\\-?[0-9\\.\\,]+)"
      - function: "take_first"
  - name: "flexible-extract"
    filter:
      - function: "regex"
        group_select: -1
        regex_pattern: "(-?[$0-9.,]{2,})|(-?[0-9]+)"
      - function: "take_first"
)y";

TEST_CASE("user task: a pasted lm-eval gsm8k filter_list extracts as lm-eval does") {
  TempDir dir;
  WriteFile(dir / "gsm.jsonl",
            "{\"question\": \"q1\", \"answer\": \"Work 1,000 + 80\\n#### 1080\"}\n");
  WriteFile(dir / "task.yaml", std::string("dataset: gsm.jsonl\nprompt: \"Question: "
                                           "{{question}}\\nAnswer:\"\nanswer_field: answer\n") +
                                   kGsm8kYamlSections);
  Plan plan;
  plan.task = "gsm_file";
  plan.task_file = dir / "task.yaml";
  auto user = CreateTask(plan, {});
  INFO((user.ok() ? "" : std::string(user.status().message())));
  REQUIRE(user.ok());
  auto builtin = CreateTask(PlanFor("native_gsm8k", dir / "gsm.jsonl"), {});
  REQUIRE(builtin.ok());
  CHECK((*user)->ScoreNames() == std::vector<std::string>{"strict-match", "flexible-extract"});
  // (response, strict-match, flexible-extract) as lm-eval's filters give them.
  const std::vector<std::tuple<std::string, std::string, std::string>> cases = {
      {"#### 1080", "1080", "1080"},
      {"#### 1,080.\n", "1,080.", "1,080."},
      {"#### $1080", "[invalid]", "$1080"},
      {"####1080", "[invalid]", "1080"},
      {"#### 1080 and #### 99", "1080", "99"},
      {"The answer is $\\boxed{1080}$.", "[invalid]", "$."},
      {"It took 30-45 minutes", "[invalid]", "-45"},
      {"no numbers", "[invalid]", "[invalid]"},
  };
  for (const auto& [response, strict, flexible] : cases) {
    INFO(response);
    Evaluation u = (*user)->Score(0, response);
    Evaluation b = (*builtin)->Score(0, response);
    CHECK(u.filtered["strict-match"] == strict);
    CHECK(u.filtered["flexible-extract"] == flexible);
    CHECK(b.filtered["strict-match"] == strict);
    CHECK(b.filtered["flexible-extract"] == flexible);
    CHECK(u.scores[0] == b.scores[0]);
    CHECK(u.scores[1] == b.scores[1]);
  }
  CHECK((*user)->Score(0, "#### 1,080.\n").correct);
  // The same stop strings cut the response before the filters, for both.
  CHECK((*user)->stop_strings() == std::vector<std::string>{"Question:", "</s>", "<|im_end|>"});
  CHECK((*builtin)->stop_strings() == (*user)->stop_strings());
  CHECK((*user)->ScoringJson()["exact_match"]["regexes_to_ignore"].size() == 4);
}

// lm_eval/tasks/gsm8k/gsm8k-cot-llama.yaml's scoring sections, pasted as they are (plain YAML
// scalars, group_select -1 on a three-group pattern, five stop strings).
constexpr char kGsm8kCotLlamaYamlSections[] = R"y(
filter_list:
- filter:
  - function: regex
    group_select: -1
    regex_pattern: The final answer is ((-?[$0-9.,]{2,})|(-?[0-9]+))
  - function: take_first
  name: strict-match
- filter:
  - function: regex
    group_select: -1
    regex_pattern: (-?[$0-9.,]{2,})|(-?[0-9]+)
  - function: take_first
  name: flexible-extract
generation_kwargs:
  do_sample: false
  until:
  - '<|eot_id|>'
  - '<|start_header_id|>user<|end_header_id|>'
  - 'Q:'
  - </s>
  - <|im_end|>
metric_list:
- aggregation: mean
  higher_is_better: true
  ignore_case: true
  ignore_punctuation: false
  metric: exact_match
  regexes_to_ignore:
  - ','
  - \$
  - '(?s).*#### '
  - \.$
)y";

// Differential check: CPython reads the same pasted sections with PyYAML and applies them as
// lm-eval does (the response cut at each `until` string, RegexFilter's findall / group_select /
// first non-empty group / strip / "[invalid]", exact_match's regexes, then lower-casing), and the
// task file must give the same extraction and score for every filter on every response.
TEST_CASE("user task: pasted lm-eval gsm8k YAML sections score as CPython applies them") {
  if (std::system("python3 -c 'import re, yaml' >/dev/null 2>&1") != 0) {
    WARN("python3 with PyYAML not found: differential check skipped");
    return;
  }
  const std::vector<std::string> responses = {
      "#### 1080",
      "#### 1,080.\n",
      "#### $1080 and ####1080",
      "The final answer is $1,080.",
      "The final answer is 1080.00",
      "The final answer is: 1080",
      "THE FINAL ANSWER IS 1080",
      "The final answer is 5. No wait. The final answer is 1080",
      "The final answer is 1080\nQ: next one, #### 7",
      "Question: #### 1080",
      "So it is 1080<|eot_id|>The final answer is 3",
      "between 30-45 minutes",
      "The answer is $\\boxed{1080}$.",
      "#### \u0661\u0660\u0668\u0660",
      "The final answer is 1080\\",
      "no digits at all",
      "",
  };
  struct Variant {
    std::string yaml;
    std::string answer_field;
  };
  const std::vector<Variant> variants = {{kGsm8kYamlSections, "answer"},
                                         {kGsm8kCotLlamaYamlSections, "target"}};
  TempDir dir;
  WriteFile(dir / "gsm.jsonl",
            "{\"question\": \"q1\", \"answer\": \"Work 1,000 + 80\\n#### 1080\", \"target\": "
            "\"1080\"}\n");
  nlohmann::json in = {{"responses", responses}, {"cases", nlohmann::json::array()}};
  for (const auto& v : variants) {
    in["cases"].push_back(
        {{"yaml", v.yaml},
         {"gold", v.answer_field == "answer" ? "Work 1,000 + 80\n#### 1080" : "1080"}});
  }
  WriteFile(dir / "in.json", in.dump());
  WriteFile(dir / "lm_eval_rules.py", R"py(
import json, re, string, sys, yaml
d = json.load(open(sys.argv[1], encoding="utf-8"))
out = []
for case in d["cases"]:
    cfg = yaml.safe_load(case["yaml"])
    until = (cfg.get("generation_kwargs") or {}).get("until") or []
    em = cfg["metric_list"][0]
    def norm(s):
        for rx in em.get("regexes_to_ignore") or []:
            s = re.sub(rx, "", s)
        if em.get("ignore_case"):
            s = s.lower()
        if em.get("ignore_punctuation"):
            s = s.translate(str.maketrans("", "", string.punctuation))
        return s
    rows = []
    for text in d["responses"]:
        for stop in until:
            text = text.split(stop)[0]
        filtered, scores = {}, {}
        for f in cfg["filter_list"]:
            v = text
            for step in f["filter"]:
                if step["function"] != "regex":
                    continue  # take_first: one response per document
                hits = re.findall(step["regex_pattern"], v)
                fallback = step.get("fallback", "[invalid]")
                if not hits:
                    v = fallback
                    continue
                hit = hits[step.get("group_select", 0)]
                if isinstance(hit, tuple):
                    hit = next((g for g in hit if g), None)
                v = fallback if hit is None else hit.strip()
            filtered[f["name"]] = v
            scores[f["name"]] = 1.0 if norm(v) == norm(case["gold"]) else 0.0
        rows.append({"filtered": filtered, "scores": scores})
    out.append(rows)
json.dump(out, open(sys.argv[2], "w", encoding="utf-8"))
)py");
  const std::string cmd = "python3 '" + (dir / "lm_eval_rules.py") + "' '" + (dir / "in.json") +
                          "' '" + (dir / "out.json") + "'";
  REQUIRE(std::system(cmd.c_str()) == 0);
  const nlohmann::json want = nlohmann::json::parse(testing::ReadFile(dir / "out.json"));
  REQUIRE(want.size() == variants.size());
  for (size_t v = 0; v < variants.size(); ++v) {
    REQUIRE(want[v].size() == responses.size());
    WriteFile(dir / "task.yaml", "dataset: gsm.jsonl\nprompt: \"{{question}}\"\nanswer_field: " +
                                     variants[v].answer_field + "\n" + variants[v].yaml);
    Plan plan;
    plan.task = "pasted";
    plan.task_file = dir / "task.yaml";
    auto task = CreateTask(plan, {});
    INFO("variant " << v << ": " << (task.ok() ? "" : std::string(task.status().message())));
    REQUIRE(task.ok());
    CHECK((*task)->ScoreNames() == std::vector<std::string>{"strict-match", "flexible-extract"});
    for (size_t r = 0; r < responses.size(); ++r) {
      const std::string scored =
          PostprocessResponse(responses[r], (*task)->think_end_token(), (*task)->stop_strings());
      Evaluation e = (*task)->Score(0, scored);
      INFO("response " << nlohmann::json(responses[r]).dump());
      for (const auto& [name, value] : e.scores) {
        CHECK(e.filtered[name] == want[v][r]["filtered"][name]);
        CHECK(value == want[v][r]["scores"][name].get<double>());
      }
    }
  }
}

TEST_CASE("user task: lm-eval's gpqa cot scoring with multi_choice_regex over choices_field") {
  TempDir dir;
  WriteFile(dir / "g.jsonl",
            "{\"question\": \"Which?\", \"answer\": \"(B)\", \"choices\": [\"Helium atom\", "
            "\"Neon's shell\", \"Argon\", \"Xenon\"]}\n");
  WriteFile(dir / "t.yaml", R"y(dataset: g.jsonl
prompt: "{{question}}"
answer_field: answer            # "(A)" .. "(D)", as the reference's process_docs writes it
choices_field: choices
filter_list:
  - name: "strict-match"
    filter:
      - function: "regex"
        regex_pattern: "(?<=The answer is )(.*)(?=.)"
      - function: "take_first"
  - name: "flexible-extract"
    filter:
      - function: "multi_choice_regex"
        group_select: -1
        ignore_case: true
        ignore_punctuation: true
        regex_pattern: "(\\([A-Z]\\))"
      - function: "take_first"
metric_list:
  - metric: exact_match
    ignore_case: true
    ignore_punctuation: true
)y");
  Plan plan;
  plan.task = "gpqa_cot";
  plan.task_file = dir / "t.yaml";
  auto task = CreateTask(plan, {});
  INFO((task.ok() ? "" : std::string(task.status().message())));
  REQUIRE(task.ok());
  Evaluation a = (*task)->Score(0, "The answer is (B).");
  CHECK(a.filtered["strict-match"] == "(B)");
  CHECK(a.filtered["flexible-extract"] == "(B)");
  CHECK(a.scores[0].second == 1.0);
  Evaluation b = (*task)->Score(0, "The answer is (B)");  // "(B" still normalises to "b"
  CHECK(b.filtered["strict-match"] == "(B");
  CHECK(b.scores[0].second == 1.0);
  Evaluation c = (*task)->Score(0, "It must be NEON'S SHELL.");
  CHECK(c.filtered["strict-match"] == "[invalid]");
  CHECK(c.filtered["flexible-extract"] == "(B)");
  CHECK(c.scores[1].second == 1.0);
}

TEST_CASE("user task: filter_list errors name the file, the line and the key") {
  TempDir dir;
  WriteFile(dir / "d.jsonl", "{\"q\": \"x\", \"a\": \"1\", \"opts\": [\"one\", \"two\"]}\n");
  auto load = [&](const std::string& body) {
    WriteFile(dir / "t.yaml", "dataset: d.jsonl\nprompt: \"{{q}}\"\nanswer_field: a\n" + body);
    Plan plan;
    plan.task = "t";
    plan.task_file = dir / "t.yaml";
    return CreateTask(plan, {});
  };
  auto bad_regex = load(
      "filter_list:\n  - name: s\n    filter:\n      - function: regex\n"
      "        regex_pattern: \"(unclosed\"\n");
  REQUIRE_FALSE(bad_regex.ok());
  CHECK_THAT(std::string(bad_regex.status().message()),
             Catch::Contains("t.yaml:8: filter_list[0].filter[0].regex_pattern: regex "
                             "'(unclosed' does not compile at offset"));
  auto bad_fn = load("filter_list:\n  - name: s\n    filter:\n      - function: majority\n");
  REQUIRE_FALSE(bad_fn.ok());
  CHECK_THAT(std::string(bad_fn.status().message()), Catch::Contains("unknown filter 'majority'"));
  auto bad_metric = load("metric_list:\n  - metric: bleu\n");
  REQUIRE_FALSE(bad_metric.ok());
  CHECK_THAT(std::string(bad_metric.status().message()),
             Catch::Contains("only exact_match is supported"));
  // metric_list alone scores the whole response ("none"); multi_choice_regex reads choices.
  auto whole = load("metric_list:\n  - metric: exact_match\n    ignore_punctuation: true\n");
  REQUIRE(whole.ok());
  CHECK((*whole)->ScoreNames() == std::vector<std::string>{"none"});
  CHECK((*whole)->Score(0, "1.").correct);
  auto mc = load(
      "answer_choices: x\n"
      "filter_list:\n  - name: mc\n    filter:\n      - function: multi_choice_regex\n"
      "        regex_pattern: \"(\\\\([A-Z]\\\\))\"\n        ignore_case: true\n"
      "choices_field: opts\nthink_end_token: \"</think>\"\n");
  REQUIRE_FALSE(mc.ok());  // answer_choices is not a key
  auto mc2 = load(
      "filter_list:\n  - name: mc\n    filter:\n      - function: multi_choice_regex\n"
      "        regex_pattern: \"(\\\\([A-Z]\\\\))\"\n        ignore_case: true\n"
      "choices_field: opts\nthink_end_token: \"</think>\"\n");
  INFO((mc2.ok() ? "" : std::string(mc2.status().message())));
  REQUIRE(mc2.ok());
  CHECK((*mc2)->think_end_token() == "</think>");
  CHECK((*mc2)->Score(0, "it is TWO").filtered["mc"] == "(B)");
}

}  // namespace
}  // namespace evald::runner
