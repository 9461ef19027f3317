#include "runner/prompt_template.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace evald::runner {

char OptionLetter(size_t index) { return static_cast<char>('A' + index); }

std::string RenderValue(const nlohmann::json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_null()) return "";
  if (value.is_array()) {
    std::string out;
    for (size_t i = 0; i < value.size(); ++i) {
      if (i > 0) out += "\n";
      if (i < 26) {
        out += OptionLetter(i);
        out += ". ";
      }
      out += RenderValue(value[i]);
    }
    return out;
  }
  return value.dump();
}

absl::StatusOr<PromptTemplate> PromptTemplate::Parse(const std::string& text) {
  PromptTemplate t;
  t.text_ = text;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t open = text.find("{{", pos);
    if (open == std::string::npos) {
      t.parts_.push_back({false, text.substr(pos)});
      break;
    }
    if (open > pos) t.parts_.push_back({false, text.substr(pos, open - pos)});
    size_t close = text.find("}}", open + 2);
    if (close == std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("unclosed '{{' at character ", open + 1, " of the template"));
    }
    std::string field(absl::StripAsciiWhitespace(text.substr(open + 2, close - open - 2)));
    if (field.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("empty placeholder '{{}}' at character ", open + 1, " of the template"));
    }
    if (field.find_first_of("{}") != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("malformed placeholder at character ", open + 1, " of the template"));
    }
    t.parts_.push_back({true, field});
    pos = close + 2;
  }
  return t;
}

absl::StatusOr<std::string> PromptTemplate::Render(const nlohmann::json& row) const {
  std::string out;
  out.reserve(text_.size() + 256);
  for (const Part& p : parts_) {
    if (!p.is_field) {
      out += p.text;
      continue;
    }
    const nlohmann::json* cur = &row;
    for (absl::string_view key : absl::StrSplit(p.text, '.')) {
      if (!cur->is_object()) {
        cur = nullptr;
        break;
      }
      auto it = cur->find(std::string(key));
      if (it == cur->end()) {
        cur = nullptr;
        break;
      }
      cur = &*it;
    }
    if (cur == nullptr) {
      std::vector<std::string> keys;
      if (row.is_object()) {
        for (const auto& item : row.items()) keys.push_back(item.key());
      }
      return absl::NotFoundError(
          absl::StrCat("template field '", p.text,
                       "' is not in the row; the row has: ", absl::StrJoin(keys, ", ")));
    }
    out += RenderValue(*cur);
  }
  return out;
}

std::vector<std::string> PromptTemplate::Fields() const {
  std::vector<std::string> out;
  for (const Part& p : parts_) {
    if (!p.is_field) continue;
    bool seen = false;
    for (const auto& f : out) seen = seen || f == p.text;
    if (!seen) out.push_back(p.text);
  }
  return out;
}

}  // namespace evald::runner
