#include "runner/ifeval.h"

#include <catch2/catch.hpp>

#include "runner/langdetect.h"

namespace evald::runner {
namespace {

IfevalChecker Make(const std::string& id, const nlohmann::json& kwargs = nlohmann::json::object(),
                   const std::string& prompt = "") {
  auto c = IfevalChecker::Create(id, kwargs, prompt);
  INFO(id);
  REQUIRE(c.ok());
  return *std::move(c);
}

TEST_CASE("ifeval: punctuation and case") {
  auto no_comma = Make("punctuation:no_comma");
  CHECK(no_comma.Check("No commas here."));
  CHECK_FALSE(no_comma.Check("One, two."));
  auto lower = Make("change_case:english_lowercase");
  CHECK(lower.Check("all lower case, 123."));
  CHECK_FALSE(lower.Check("Not lower"));
  auto upper = Make("change_case:english_capital");
  CHECK(upper.Check("HELLO, HOW ARE YOU TODAY? I AM FINE."));
  CHECK_FALSE(upper.Check("ALL CAPs"));
  // isupper() (a circled capital), and langdetect finds no features in it and raises: accepted.
  CHECK(upper.Check("\u24b6 123"));
  auto capitals = Make("change_case:capital_word_frequency",
                       {{"capital_frequency", 2}, {"capital_relation", "at least"}});
  CHECK(capitals.Check("The NASA and ESA budgets"));
  CHECK_FALSE(capitals.Check("The NASA budget"));
  auto few_caps = Make("change_case:capital_word_frequency",
                       {{"capital_frequency", 2}, {"capital_relation", "less than"}});
  CHECK(few_caps.Check("The NASA budget"));
}

TEST_CASE("ifeval: keywords") {
  auto exist = Make("keywords:existence", {{"keywords", {"beacon", "coast"}}});
  CHECK(exist.Check("The BEACON on the coast."));
  CHECK_FALSE(exist.Check("The beacon at sea."));
  auto forbidden = Make("keywords:forbidden_words", {{"forbidden_words", {"very", "really"}}});
  CHECK(forbidden.Check("It is every bit as good."));  // word boundaries: "every" is fine
  CHECK_FALSE(forbidden.Check("It is Very good."));
  auto freq =
      Make("keywords:frequency", {{"keyword", "wave"}, {"frequency", 2}, {"relation", "at least"}});
  CHECK(freq.Check("A wave, another Wave."));
  CHECK_FALSE(freq.Check("A wave."));
  auto letters = Make("keywords:letter_frequency",
                      {{"letter", "z"}, {"let_frequency", 3}, {"let_relation", "less than"}});
  CHECK(letters.Check("Zebra zoo"));
  CHECK_FALSE(letters.Check("Zebra zoo zone"));
}

TEST_CASE("ifeval: length constraints") {
  auto words =
      Make("length_constraints:number_words", {{"num_words", 5}, {"relation", "less than"}});
  CHECK(words.Check("one two three four"));
  CHECK_FALSE(words.Check("one two three four five"));
  CHECK(IfevalCountWords("Hello, world! It's 2024.") == 5);
  auto sentences =
      Make("length_constraints:number_sentences", {{"num_sentences", 3}, {"relation", "at least"}});
  CHECK(sentences.Check("One. Two! Three?"));
  CHECK_FALSE(sentences.Check("One. Dr. Smith stayed."));
  CHECK(IfevalCountSentences("Pi is 3.14 exactly. Mr. Jones agrees.") == 2);
  auto paragraphs = Make("length_constraints:number_paragraphs", {{"num_paragraphs", 2}});
  CHECK(paragraphs.Check("First part.\n***\nSecond part."));
  CHECK_FALSE(paragraphs.Check("First.\n***\n***\nSecond."));  // empty paragraph in the middle
  CHECK_FALSE(paragraphs.Check("Only one."));
  auto nth = Make("length_constraints:nth_paragraph_first_word",
                  {{"num_paragraphs", 2}, {"nth_paragraph", 2}, {"first_word", "Then"}});
  CHECK(nth.Check("First we wait.\n\n\"Then, we go."));
  CHECK_FALSE(nth.Check("First we wait.\n\nAfter that we go."));
}

TEST_CASE("ifeval: detectable format") {
  auto title = Make("detectable_format:title");
  CHECK(title.Check("<<Rain>>\ntext"));
  CHECK_FALSE(title.Check("<<>> text"));
  auto bullets = Make("detectable_format:number_bullet_lists", {{"num_bullets", 2}});
  CHECK(bullets.Check("* one\n- two"));
  CHECK_FALSE(bullets.Check("* one\n* two\n* three"));
  auto highlights = Make("detectable_format:number_highlighted_sections", {{"num_highlights", 2}});
  CHECK(highlights.Check("Use *this* and **that**."));
  CHECK_FALSE(highlights.Check("Use *this* only."));
  auto json = Make("detectable_format:json_format");
  CHECK(json.Check("```json\n{\"a\": 1}\n```"));
  CHECK(json.Check("[1, 2]"));
  CHECK_FALSE(json.Check("{a: 1}"));
  auto constrained = Make("detectable_format:constrained_response");
  CHECK(constrained.Check("My answer is maybe."));
  CHECK_FALSE(constrained.Check("Maybe."));
  auto sections = Make("detectable_format:multiple_sections",
                       {{"section_spliter", "Section"}, {"num_sections", 2}});
  CHECK(sections.Check("Section 1\nintro\nSection 2\nbody"));
  CHECK_FALSE(sections.Check("Section 1\nintro"));
}

TEST_CASE("ifeval: content, combination and start/end") {
  auto ps = Make("detectable_content:postscript", {{"postscript_marker", "P.S."}});
  CHECK(ps.Check("Hi.\nP.S. bring cake"));
  CHECK_FALSE(ps.Check("Hi."));
  auto pps = Make("detectable_content:postscript", {{"postscript_marker", "P.P.S"}});
  CHECK(pps.Check("Hi.\nP.P.S see you"));
  auto placeholders = Make("detectable_content:number_placeholders", {{"num_placeholders", 2}});
  CHECK(placeholders.Check("Dear [name], at [address]."));
  CHECK_FALSE(placeholders.Check("Dear [name]."));
  auto repeat = Make("combination:repeat_prompt", {{"prompt_to_repeat", "Say hi."}});
  CHECK(repeat.Check("say hi. Hi!"));
  CHECK_FALSE(repeat.Check("Hi!"));
  auto repeat_from_row = Make("combination:repeat_prompt", nlohmann::json::object(), "Echo me.");
  CHECK(repeat_from_row.Check("Echo me. Done."));
  auto two = Make("combination:two_responses");
  CHECK(two.Check("First answer.\n******\nSecond answer."));
  CHECK_FALSE(two.Check("Same.\n******\nSame."));
  CHECK_FALSE(two.Check("Only one."));
  auto end = Make("startend:end_checker", {{"end_phrase", "Any other questions?"}});
  CHECK(end.Check("Done. Any other questions?\""));
  CHECK_FALSE(end.Check("Any other questions? Done."));
  auto quote = Make("startend:quotation");
  CHECK(quote.Check("  \"quoted\"  "));
  CHECK_FALSE(quote.Check("\"half"));
}

TEST_CASE("ifeval: language detection (langdetect, else the heuristic)") {
  auto lang = [](const std::string& code) {
    return Make("language:response_language", {{"language", code}});
  };
  CHECK(lang("en").Check("The weather is nice and the sun is out today."));
  CHECK_FALSE(lang("de").Check("The weather is nice and the sun is out today."));
  CHECK(lang("de").Check("Das Wetter ist schön und die Sonne scheint heute."));
  CHECK(lang("fr").Check("Le temps est beau et le soleil brille aujourd'hui."));
  CHECK(lang("ru").Check("Сегодня хорошая погода."));
  CHECK_FALSE(lang("ru").Check("Today the weather is fine."));
  CHECK(lang("hi").Check("आज मौसम अच्छा है।"));
  CHECK(lang("ja").Check("今日はいい天気です。"));
  CHECK(lang("zh-cn").Check("今天天气很好。"));
  CHECK_FALSE(lang("zh-cn").Check("今日はいい天気です。"));
  CHECK(lang("en").Check("123 ... !!!"));  // no letters: langdetect raises, followed
  if (DefaultLangDetector() != nullptr) {
    // langdetect never answers "zh", so the reference rejects that code even for Chinese.
    CHECK_FALSE(lang("zh").Check("今天天气很好。"));
  }
  // The heuristic used without langdetect's profiles.
  CHECK(IfevalLooksLikeLanguage("今天天气很好。", "zh"));
  CHECK(IfevalLooksLikeLanguage("Das Wetter ist schön und die Sonne scheint heute.", "de"));
  CHECK_FALSE(IfevalLooksLikeLanguage("Today the weather is fine.", "ru"));
  CHECK(lang("ko").Check("오늘 날씨가 좋아요."));
}

TEST_CASE("ifeval: loose mode forgives a first or last line and asterisks") {
  auto lower = Make("change_case:english_lowercase");
  const std::string response = "Sure! Here it is:\nall lower case text";
  CHECK_FALSE(lower.Check(response));
  CHECK(lower.CheckLoose(response));
  auto no_title_stars = Make("startend:quotation");
  CHECK(no_title_stars.CheckLoose("**\"quoted\"**"));
  CHECK_FALSE(Make("punctuation:no_comma").Check("   "));  // empty responses never pass
}

TEST_CASE("ifeval: each checker's rules and quirks, as lm-eval's copy has them") {
  // keywords:existence: a case-insensitive pattern, no word boundary.
  CHECK(Make("keywords:existence", {{"keywords", {"cat"}}}).Check("Concatenate them."));
  CHECK(Make("keywords:existence", {{"keywords", {"colou?r"}}}).Check("the color"));  // a regex
  // keywords:frequency: stripped keyword, substring matches, `<` or `>=`.
  auto freq = Make("keywords:frequency",
                   {{"keyword", " cat "}, {"frequency", 2}, {"relation", "less than"}});
  CHECK(freq.Check("one cat"));
  CHECK_FALSE(freq.Check("CAT and concatenate"));
  // keywords:forbidden_words: \bword\b, case-insensitive.
  auto forbidden = Make("keywords:forbidden_words", {{"forbidden_words", {"cat"}}});
  CHECK(forbidden.Check("Cats sleep."));
  CHECK_FALSE(forbidden.Check("A CAT sleeps."));
  // keywords:letter_frequency: lower-cased letter in lower-cased text, `>=` unless less than.
  auto letters = Make("keywords:letter_frequency",
                      {{"letter", "A"}, {"let_frequency", 3}, {"let_relation", "at least"}});
  CHECK(letters.Check("Aa a"));
  CHECK_FALSE(letters.Check("Aa"));
  // language:response_language: no letters -> langdetect raises -> followed.
  auto lang = Make("language:response_language", {{"language", "ja"}});
  CHECK(lang.Check("12345 !!! 3.14"));
  CHECK_FALSE(lang.Check("Plain English words here."));
  // length_constraints:number_paragraphs: any *** splits, also inside ***bold italic***.
  auto paragraphs = Make("length_constraints:number_paragraphs", {{"num_paragraphs", 3}});
  CHECK(paragraphs.Check("a ***bold italic*** b"));
  CHECK(paragraphs.Check("***\na\n***\nb\n***\nc\n***"));  // empty first/last not counted
  // length_constraints:number_words: \w+ tokens.
  CHECK(IfevalCountWords("don't 6.30 e-mail") == 6);
  // length_constraints:nth_paragraph_first_word: empty pieces keep their position.
  auto nth = Make("length_constraints:nth_paragraph_first_word",
                  {{"num_paragraphs", 2}, {"nth_paragraph", 2}, {"first_word", "then"}});
  CHECK_FALSE(nth.Check("First.\n\n\n\nThen go."));  // piece 2 is blank
  CHECK(nth.Check("First.\n\n'\"Then, go."));        // lstrip "'" then '"'
  CHECK_FALSE(nth.Check("First.\n\n\"'Then, go."));  // the "'" is then a stop character
  // detectable_content:number_placeholders: [] and markdown links count.
  auto ph = Make("detectable_content:number_placeholders", {{"num_placeholders", 2}});
  CHECK(ph.Check("[] and [link](http://x)"));
  // detectable_content:postscript: anywhere in the text, not only at a line start.
  auto ps = Make("detectable_content:postscript", {{"postscript_marker", "P.S."}});
  CHECK(ps.Check("Thanks! p.s. see you"));
  // detectable_format:number_bullet_lists: `---` and `-5` lines count, **Bold** does not.
  auto bullets = Make("detectable_format:number_bullet_lists", {{"num_bullets", 3}});
  CHECK(bullets.Check("* one\n---\n-5 degrees\n**Bold** line"));
  // detectable_format:constrained_response: case-sensitive.
  CHECK_FALSE(Make("detectable_format:constrained_response").Check("my answer is yes."));
  // detectable_format:number_highlighted_sections: *a* = 1, **a** = 1, empty ones do not count.
  auto hl = Make("detectable_format:number_highlighted_sections", {{"num_highlights", 2}});
  CHECK(hl.Check("*a* and **b**"));
  CHECK_FALSE(hl.Check("** ** and *a*"));
  // detectable_format:multiple_sections: case-sensitive splitter.
  auto sections = Make("detectable_format:multiple_sections",
                       {{"section_spliter", "SECTION"}, {"num_sections", 1}});
  CHECK_FALSE(sections.Check("Section 1 text"));
  CHECK(sections.Check("SECTION 1 text"));
  // detectable_format:json_format: chained prefix removal, a bare number is JSON.
  auto json = Make("detectable_format:json_format");
  CHECK(json.Check("42"));
  CHECK(json.Check("```JSON\n{\"a\": [1]}\n```"));
  // json.loads also takes NaN, Infinity and -Infinity, but only as whole values.
  CHECK(json.Check("{\"a\": NaN, \"b\": [Infinity, -Infinity]}"));
  CHECK(json.Check("\"NaN -Infinity \\\" NaN\""));  // inside a string: plain text
  CHECK_FALSE(json.Check("[1NaN]"));
  CHECK_FALSE(json.Check("[-NaN]"));
  CHECK_FALSE(json.Check("{NaN: 1}"));
  CHECK_FALSE(json.Check("[1-Infinity]"));
  CHECK(json.Check("[1e400, -0.5E-3, 123456789012345678901234567890]"));  // any size
  CHECK_FALSE(json.Check("01"));
  CHECK_FALSE(json.Check("[1.]"));
  CHECK_FALSE(json.Check("[.5]"));
  CHECK_FALSE(json.Check("[1e]"));
  // detectable_format:title: non-blank content between << >>.
  CHECK_FALSE(Make("detectable_format:title").Check("<< >>"));
  // combination:two_responses: exactly two different non-blank pieces.
  CHECK_FALSE(Make("combination:two_responses").Check("a\n******\n\n******\nb"));
  // combination:repeat_prompt: case-insensitive prefix.
  CHECK(Make("combination:repeat_prompt", {{"prompt_to_repeat", "Write ÉCOLE"}})
            .Check("write école now"));
  // startend:end_checker: quotes stripped from both ends, case-insensitive.
  CHECK(Make("startend:end_checker", {{"end_phrase", "Is there anything else?"}})
            .Check("\"Done. IS THERE ANYTHING ELSE?\"  "));
  // startend:quotation: length > 1.
  CHECK_FALSE(Make("startend:quotation").Check("\""));
  // change_case:*: cased letters only of one case.
  CHECK(Make("change_case:english_capital").Check("HELLO, HOW ARE YOU TODAY? I AM FINE."));
  if (DefaultLangDetector() != nullptr) {
    // ... and langdetect must say English: with seed 0 it reads "HELLO 123" as Vietnamese.
    CHECK_FALSE(Make("change_case:english_capital").Check("HELLO 123"));
    CHECK_FALSE(Make("change_case:english_lowercase").Check("das ist ein deutscher satz."));
  }
  CHECK_FALSE(Make("change_case:english_lowercase").Check("123"));
  // capital_word_frequency: all-caps tokens, the pronoun I included.
  CHECK(Make("change_case:capital_word_frequency",
             {{"capital_frequency", 2}, {"capital_relation", "at least"}})
            .Check("I like NASA."));
  // isupper() tokens: the pronoun I and U.S. count, a digit-only token does not.
  CHECK(IfevalCountCapitalWords("I met U.S. staff in 2024.") == 2);
  // punctuation:no_comma: 1,000 fails.
  CHECK_FALSE(Make("punctuation:no_comma").Check("1,000"));
  // strict needs a non-blank response (Unicode whitespace too); loose tries the variants.
  CHECK_FALSE(Make("punctuation:no_comma").Check("\u00a0\u3000"));
  CHECK(Make("startend:quotation").CheckLoose("Here:\n\"quoted\"\nBye"));
}

// The checkers see the response as the reference's Python does: Unicode \s and \w in its
// patterns, str.split() and str.lower() on Unicode text, lstrip/rstrip in the reference's order.
TEST_CASE("ifeval: Unicode text and strip order as the reference's Python sees them") {
  // number_bullet_lists: `^\s*` also skips an ideographic space or a vertical tab.
  CHECK(Make("detectable_format:number_bullet_lists", {{"num_bullets", 2}})
            .Check("\u3000* item\n\v- two"));
  // number_words: \w excludes combining marks, so a decomposed é and Devanagari vowel signs
  // split words (re.findall(r"\w+", "e\u0301 नमस्ते") has 3 hits).
  CHECK(IfevalCountWords("e\u0301 \u0928\u092e\u0938\u094d\u0924\u0947") == 3);
  // keywords:letter_frequency counts in value.lower(): 'İ' lower-cases to "i" + U+0307 and the
  // Kelvin sign to 'k'.
  CHECK(Make("keywords:letter_frequency",
             {{"letter", "i"}, {"let_frequency", 2}, {"let_relation", "at least"}})
            .Check("\u0130\u0130"));
  CHECK(Make("keywords:letter_frequency",
             {{"letter", "k"}, {"let_frequency", 1}, {"let_relation", "at least"}})
            .Check("3 \u212a"));
  CHECK_FALSE(IfevalChecker::Create(
                  "keywords:letter_frequency",
                  {{"letter", "1"}, {"let_frequency", 1}, {"let_relation", "at least"}}, "")
                  .ok());
  // nth_paragraph_first_word: paragraph.split() cuts at any Unicode space; the word is
  // lower-cased one character at a time, so a final capital sigma becomes σ, not ς: the word in
  // capitals never equals first_word.lower(), which ends in ς; the lower-case word does.
  auto nth = Make("length_constraints:nth_paragraph_first_word",
                  {{"num_paragraphs", 2}, {"nth_paragraph", 2}, {"first_word", "then"}});
  CHECK(nth.Check("First.\n\nThen\u3000we go."));
  auto sigma = Make(
      "length_constraints:nth_paragraph_first_word",
      {{"num_paragraphs", 1}, {"nth_paragraph", 1}, {"first_word", "\u039f\u0394\u039f\u03a3"}});
  CHECK_FALSE(sigma.Check("\u039f\u0394\u039f\u03a3 \u03b5\u03af\u03bd\u03b1\u03b9"));
  CHECK(sigma.Check("\u03bf\u03b4\u03bf\u03c2 \u03b5\u03af\u03bd\u03b1\u03b9"));  // already ς
  // detectable_format:title: lstrip("<") then rstrip(">"), so "<<> >>" keeps its ">".
  CHECK(Make("detectable_format:title").Check("<<> >>"));
  CHECK_FALSE(Make("detectable_format:title").Check("<<<>>>"));
  // detectable_content:postscript: the marker is stripped, and any other marker goes into the
  // pattern unescaped ("." matches any character).
  CHECK(Make("detectable_content:postscript", {{"postscript_marker", " P.S. "}})
            .Check("Bye.\nP.S. more"));
  auto nb = Make("detectable_content:postscript", {{"postscript_marker", "N.B"}});
  CHECK(nb.Check("Thanks.\nN.B. see above"));
  CHECK(nb.Check("a nob"));  // `n.b` matches "nob"
  CHECK_FALSE(nb.Check("nothing here"));
}

TEST_CASE("ifeval: bad instructions are clear errors") {
  auto unknown = IfevalChecker::Create("format:haiku", nlohmann::json::object(), "");
  REQUIRE_FALSE(unknown.ok());
  CHECK_THAT(std::string(unknown.status().message()),
             Catch::Contains("unknown IFEval instruction"));
  auto missing = IfevalChecker::Create("length_constraints:number_words", {{"num_words", 5}}, "");
  REQUIRE_FALSE(missing.ok());
  CHECK_THAT(std::string(missing.status().message()), Catch::Contains("'relation'"));
  auto bad_rel = IfevalChecker::Create(
      "keywords:frequency", {{"keyword", "x"}, {"frequency", 1}, {"relation", "about"}}, "");
  REQUIRE_FALSE(bad_rel.ok());
  // Null kwargs (the Hugging Face copy has every key) are ignored.
  auto with_nulls = IfevalChecker::Create("punctuation:no_comma", {{"num_words", nullptr}}, "");
  CHECK(with_nulls.ok());
  CHECK(IfevalInstructionIds().size() == 25);
  for (const auto& id : IfevalInstructionIds()) INFO(id);
}

}  // namespace
}  // namespace evald::runner
