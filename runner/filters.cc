#include "runner/filters.h"

#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/status_macros.h"

namespace evald::runner {
namespace {

// Python's list indexing: negative counts from the end; nullopt when out of range.
std::optional<size_t> PyIndex(int index, size_t size) {
  const int64_t n = static_cast<int64_t>(size);
  const int64_t i = index < 0 ? n + index : index;
  if (i < 0 || i >= n) return std::nullopt;
  return static_cast<size_t>(i);
}

// RegexFilter's pick from re.findall: the whole match without groups, group 1 with one, the
// first non-empty group with several; then strip. nullopt: no usable hit.
std::optional<std::string> FindMatch(const PyRegex& re, absl::string_view text, int group_select) {
  std::vector<PyRegex::Match> hits = re.FindAll(text);
  std::optional<size_t> i = PyIndex(group_select, hits.size());
  if (!i) return std::nullopt;
  const PyRegex::Match& m = hits[*i];
  std::string picked;
  if (re.group_count() == 0) {
    picked = m.groups[0];
  } else if (re.group_count() == 1) {
    picked = m.groups[1];
  } else {
    bool found = false;
    for (int g = 1; g <= re.group_count() && !found; ++g) {
      if (!m.groups[g].empty()) {
        picked = m.groups[g];
        found = true;
      }
    }
    if (!found) return std::nullopt;
  }
  return PyStrip(picked);
}

const PyRegex& UnicodePunctuation() {
  static const PyRegex* re = new PyRegex(PyRegex::Compile(R"(\p{P})").value());
  return *re;
}

}  // namespace

absl::StatusOr<FilterStep> FilterStep::Regex(absl::string_view pattern, int group_select,
                                             std::string fallback) {
  EVALD_ASSIGN_OR_RETURN(PyRegex re, PyRegex::Compile(pattern));
  FilterStep f = OfKind(Kind::kRegex);
  f.regex_ = std::move(re);
  f.group_select_ = group_select;
  f.fallback_ = std::move(fallback);
  return f;
}

absl::StatusOr<FilterStep> FilterStep::MultiChoiceRegex(
    absl::string_view pattern, int group_select, std::string fallback, bool ignore_case,
    bool ignore_punctuation, const std::vector<std::string>& regexes_to_ignore) {
  EVALD_ASSIGN_OR_RETURN(FilterStep f, Regex(pattern, group_select, std::move(fallback)));
  f.kind_ = Kind::kMultiChoiceRegex;
  f.ignore_case_ = ignore_case;
  f.ignore_punctuation_ = ignore_punctuation;
  for (const auto& r : regexes_to_ignore) {
    EVALD_ASSIGN_OR_RETURN(PyRegex re, PyRegex::Compile(r));
    f.ignore_.push_back(std::move(re));
  }
  return f;
}

FilterStep FilterStep::OfKind(Kind kind) {
  FilterStep f;
  f.kind_ = kind;
  return f;
}

FilterStep FilterStep::TakeFirst() { return OfKind(Kind::kTakeFirst); }
FilterStep FilterStep::RemoveWhitespace() { return OfKind(Kind::kRemoveWhitespace); }
FilterStep FilterStep::Lowercase() { return OfKind(Kind::kLowercase); }
FilterStep FilterStep::Uppercase() { return OfKind(Kind::kUppercase); }

std::string FilterStep::Apply(const std::string& text, const FilterContext& ctx) const {
  switch (kind_) {
    case Kind::kTakeFirst:
      return text;
    case Kind::kRemoveWhitespace:
      return PyLStrip(text);
    case Kind::kLowercase:
      return PyLower(text);
    case Kind::kUppercase:
      return PyUpper(text);
    case Kind::kRegex:
      return FindMatch(*regex_, text, group_select_).value_or(fallback_);
    case Kind::kMultiChoiceRegex: {
      if (auto m = FindMatch(*regex_, text, group_select_); m && !m->empty()) return *m;
      if (ctx.choices == nullptr || ctx.choices->empty()) return fallback_;
      auto ignores = [&](std::string s) {
        for (const auto& re : ignore_) s = re.Sub(s, "");
        if (ignore_case_) s = PyLower(s);
        if (ignore_punctuation_) s = UnicodePunctuation().Sub(s, "");
        return s;
      };
      std::vector<std::string> alternatives, letters;
      std::map<std::string, std::string> choice_to_alpha;
      for (size_t i = 0; i < ctx.choices->size(); ++i) {
        std::string letter(1, static_cast<char>('A' + i));
        std::string norm = ignores(PyStrip((*ctx.choices)[i]));
        alternatives.push_back(PyRegex::Escape(norm));
        choice_to_alpha[norm] = absl::StrCat("(", letter, ")");
        letters.push_back(letter);
      }
      auto convert = [](const std::optional<std::string>& m,
                        const std::map<std::string, std::string>& dict) {
        std::optional<std::string> out = m;
        if (out && !out->empty()) {
          auto it = dict.find(*out);
          if (it != dict.end()) out = it->second;
        }
        return out;
      };
      auto choice_re = PyRegex::Compile(absl::StrJoin(alternatives, "|"));
      if (choice_re.ok()) {
        auto m = convert(FindMatch(*choice_re, ignores(text), group_select_), choice_to_alpha);
        if (m && !m->empty()) return *m;
      }
      std::map<std::string, std::string> letter_to_target;
      for (const auto& l : letters) letter_to_target[l] = absl::StrCat("(", l, ")");
      auto letter_re =
          PyRegex::Compile(absl::StrCat(R"(:[\s]*()", absl::StrJoin(letters, "|"), ")"));
      if (letter_re.ok()) {
        auto m = convert(FindMatch(*letter_re, text, group_select_), letter_to_target);
        if (m && !m->empty()) return *m;
      }
      return fallback_;
    }
  }
  return text;
}

std::string FilterStep::Describe() const {
  switch (kind_) {
    case Kind::kTakeFirst:
      return "take_first";
    case Kind::kRemoveWhitespace:
      return "remove_whitespace";
    case Kind::kLowercase:
      return "lowercase";
    case Kind::kUppercase:
      return "uppercase";
    case Kind::kRegex:
      return absl::StrCat("regex(", regex_->pattern(), ", group_select=", group_select_, ")");
    case Kind::kMultiChoiceRegex:
      return absl::StrCat("multi_choice_regex(", regex_->pattern(),
                          ", group_select=", group_select_, ")");
  }
  return "";
}

std::string FilterPipeline::Apply(absl::string_view response, const FilterContext& ctx) const {
  std::string s(response);
  for (const auto& step : steps) s = step.Apply(s, ctx);
  return s;
}

std::string NormalizeForExactMatch(absl::string_view s, const ExactMatchOptions& options) {
  std::string out(s);
  for (const auto& re : options.regexes_to_ignore) out = re.Sub(out, "");
  if (options.ignore_case) out = PyLower(out);
  // absl's ASCII punctuation is Python's string.punctuation.
  if (options.ignore_punctuation) std::erase_if(out, absl::ascii_ispunct);
  if (options.ignore_numbers) std::erase_if(out, absl::ascii_isdigit);
  return out;
}

bool ExactMatch(absl::string_view prediction, absl::string_view gold,
                const ExactMatchOptions& options) {
  return NormalizeForExactMatch(prediction, options) == NormalizeForExactMatch(gold, options);
}

ExactMatchOptions Gsm8kExactMatch() {
  ExactMatchOptions o;
  o.ignore_case = true;
  for (const char* r : {",", R"(\$)", "(?s).*#### ", R"(\.$)"}) {
    o.regexes_to_ignore.push_back(PyRegex::Compile(r).value());
  }
  return o;
}

FilterPipeline FlexibleExtract(const std::string& name) {
  return {name,
          {FilterStep::Regex(R"((-?[$0-9.,]{2,})|(-?[0-9]+))", -1, "[invalid]").value(),
           FilterStep::TakeFirst()}};
}

}  // namespace evald::runner
