#include "runner/ifeval.h"

#include <catch2/catch.hpp>

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
  CHECK(upper.Check("ALL CAPS 42!"));
  CHECK_FALSE(upper.Check("ALL CAPs"));
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

TEST_CASE("ifeval: language heuristic") {
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
  CHECK(lang("zh").Check("今天天气很好。"));
  CHECK_FALSE(lang("zh").Check("今日はいい天気です。"));
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
