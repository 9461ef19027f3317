#include "runner/extractors.h"

#include <re2/re2.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"

namespace evald::runner {
namespace {

using re2::RE2;

re2::StringPiece Piece(absl::string_view s) { return re2::StringPiece(s.data(), s.size()); }

// Group 1 of the last (non-overlapping) match of `re` in `text`; each match is offered to
// `accept`, which can reject it (e.g. a letter outside the allowed choices).
template <typename Accept>
std::optional<std::string> LastMatch(const RE2& re, absl::string_view text, Accept accept) {
  const re2::StringPiece sp = Piece(text);
  re2::StringPiece m[2];
  std::optional<std::string> last;
  size_t pos = 0;
  while (pos <= text.size() && re.Match(sp, pos, text.size(), RE2::UNANCHORED, m, 2)) {
    if (m[1].data() != nullptr) {
      std::string g(m[1].data(), m[1].size());
      if (accept(g)) last = std::move(g);
    }
    size_t end = static_cast<size_t>(m[0].data() - sp.data()) + m[0].size();
    pos = end > pos ? end : pos + 1;
  }
  return last;
}

std::optional<std::string> LastMatch(const RE2& re, absl::string_view text) {
  return LastMatch(re, text, [](const std::string&) { return true; });
}

std::string CleanNumber(std::string s) {
  s.erase(std::remove(s.begin(), s.end(), ','), s.end());
  if (!s.empty() && s.front() == '$') s.erase(0, 1);
  while (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

const RE2& NumberRe() {
  static const RE2 re(R"((-?\$?\d[\d,]*(?:\.\d+)?|-?\.\d+))");
  return re;
}

bool IsWordChoice(const std::string& c) {
  if (c.empty()) return false;
  for (char ch : c) {
    if (!std::isalnum(static_cast<unsigned char>(ch))) return false;
  }
  return true;
}

}  // namespace

std::optional<double> ParseNumber(absl::string_view text) {
  std::string s(absl::StripAsciiWhitespace(text));
  if (s.empty()) return std::nullopt;
  s.erase(std::remove(s.begin(), s.end(), ','), s.end());
  if (!s.empty() && s.front() == '$') s.erase(0, 1);
  if (s.size() > 1 && s[0] == '-' && s[1] == '$') s.erase(1, 1);
  if (!s.empty() && s.back() == '%') s.pop_back();
  while (!s.empty() && s.back() == '.') s.pop_back();
  if (s.empty()) return std::nullopt;
  size_t slash = s.find('/');
  if (slash != std::string::npos) {
    auto num = ParseNumber(s.substr(0, slash));
    auto den = ParseNumber(s.substr(slash + 1));
    if (!num || !den || *den == 0) return std::nullopt;
    return *num / *den;
  }
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size() || !std::isfinite(v)) return std::nullopt;
  // strtod accepts hex and "inf"/"nan"; answers written that way are not numbers here.
  for (char c : s) {
    if (!(std::isdigit(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '+' ||
          c == 'e' || c == 'E')) {
      return std::nullopt;
    }
  }
  return v;
}

std::optional<std::string> Gsm8kGold(absl::string_view answer) {
  size_t pos = answer.rfind("####");
  if (pos == absl::string_view::npos) return std::nullopt;
  std::string gold = CleanNumber(std::string(absl::StripAsciiWhitespace(answer.substr(pos + 4))));
  if (!ParseNumber(gold)) return std::nullopt;
  return gold;
}

std::optional<std::string> ExtractFinalNumber(absl::string_view response) {
  static const RE2 hash_re(R"(####\s*(-?\$?\s*\d[\d,]*(?:\.\d+)?))");
  static const RE2 boxed_re(R"(\\boxed\{([^{}]*)\})");
  static const RE2 answer_re(
      R"((?i:final answer|answer)\s*(?:is|:|=)?\s*[:\s]*\**\s*\$?\s*(-?\d[\d,]*(?:\.\d+)?))");
  if (auto v = LastMatch(hash_re, response)) {
    std::string s = *v;
    s.erase(std::remove(s.begin(), s.end(), ' '), s.end());
    return CleanNumber(s);
  }
  if (auto boxed = LastMatch(boxed_re, response)) {
    if (auto v = LastMatch(NumberRe(), *boxed)) return CleanNumber(*v);
  }
  if (auto v = LastMatch(answer_re, response)) return CleanNumber(*v);
  if (auto v = LastMatch(NumberRe(), response)) return CleanNumber(*v);
  return std::nullopt;
}

Extractor Extractor::Numeric() {
  Extractor e;
  e.kind_ = Kind::kNumeric;
  return e;
}

Extractor Extractor::Full() {
  Extractor e;
  e.kind_ = Kind::kFull;
  return e;
}

absl::StatusOr<Extractor> Extractor::Choices(std::vector<std::string> choices) {
  if (choices.empty()) return absl::InvalidArgumentError("choices: expected at least one choice");
  std::vector<std::string> quoted;
  for (const auto& c : choices) {
    if (!IsWordChoice(c)) {
      return absl::InvalidArgumentError(
          absl::StrCat("choices: '", c, "' is not a letter or word (letters and digits only)"));
    }
    quoted.push_back(RE2::QuoteMeta(Piece(c)));
  }
  const std::string alt = absl::StrCat("(", absl::StrJoin(quoted, "|"), ")");
  // Most explicit first; within one pattern the last match wins (answers often restate).
  const std::vector<std::string> patterns = {
      absl::StrCat(R"((?i:answer)\s*(?:(?i:is)\s*)?(?:[:=]|(?i:option|choice))?\s*\**\s*\(?)", alt,
                   R"(\)?(?:\b|$))"),
      absl::StrCat(R"(\\boxed\{\s*(?:\\text\{\s*)?)", alt, R"(\s*\}?\})"),
      absl::StrCat(R"((?m)^\s*\**\(?)", alt, R"(\)?[.):]?\**\s*$)"),
      absl::StrCat(R"(\()", alt, R"(\))"),
      absl::StrCat(R"(^\s*)", alt, R"((?:[.):]|$))"),
  };
  Extractor e;
  e.kind_ = Kind::kChoices;
  e.choices_ = std::move(choices);
  for (const auto& p : patterns) {
    auto re = std::make_shared<RE2>(p);
    if (!re->ok()) {
      return absl::InternalError(absl::StrCat("choice pattern failed to compile: ", re->error()));
    }
    e.choice_patterns_.push_back(std::move(re));
  }
  return e;
}

absl::StatusOr<Extractor> Extractor::Regex(const std::string& pattern) {
  auto re = PyRegex::Compile(pattern);
  if (!re.ok()) return re.status();
  if (re->group_count() != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("regex '", pattern, "' must have exactly one capture group, it has ",
                     re->group_count(), " (use (?:...) for the others)"));
  }
  Extractor e;
  e.kind_ = Kind::kRegex;
  e.pattern_ = pattern;
  e.py_regex_ = std::make_shared<const PyRegex>(*std::move(re));
  return e;
}

std::optional<std::string> Extractor::Extract(absl::string_view response) const {
  switch (kind_) {
    case Kind::kNumeric:
      return ExtractFinalNumber(response);
    case Kind::kFull:
      return std::string(absl::StripAsciiWhitespace(response));
    case Kind::kRegex: {
      // The last match whose group took part (the lm-eval-style first match is filter_list's).
      std::optional<std::string> v;
      for (const auto& m : py_regex_->FindAll(response)) {
        if (m.matched[1]) v = m.groups[1];
      }
      if (!v) return std::nullopt;
      return std::string(absl::StripAsciiWhitespace(*v));
    }
    case Kind::kChoices:
      for (const auto& re : choice_patterns_) {
        if (auto v = LastMatch(*re, response)) return v;
      }
      return std::nullopt;
  }
  return std::nullopt;
}

std::string Extractor::Describe() const {
  switch (kind_) {
    case Kind::kNumeric:
      return "numeric";
    case Kind::kFull:
      return "full";
    case Kind::kRegex:
      return "regex:" + pattern_;
    case Kind::kChoices:
      return "choices:" + absl::StrJoin(choices_, ",");
  }
  return "";
}

}  // namespace evald::runner
