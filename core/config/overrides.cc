#include "core/config/overrides.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "core/config/dotted_override.h"
#include "core/config/suggest.h"
#include "core/config/yaml_io.h"

namespace evald::config::internal {

namespace {

constexpr int kMaxValueDepth = 64;

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// INT_UNSIGNED: '0' | [1-9] ('_'? DIGIT)*  -- returns the length matched at `p` (0 if none).
size_t MatchIntUnsigned(absl::string_view s, size_t p) {
  if (p >= s.size() || !IsDigit(s[p])) return 0;
  if (s[p] == '0') return 1;
  size_t q = p + 1;
  while (q < s.size()) {
    if (IsDigit(s[q])) {
      ++q;
    } else if (s[q] == '_' && q + 1 < s.size() && IsDigit(s[q + 1])) {
      q += 2;
    } else {
      break;
    }
  }
  return q - p;
}

// DIGIT ('_'? DIGIT)*
size_t MatchDigits(absl::string_view s, size_t p) {
  if (p >= s.size() || !IsDigit(s[p])) return 0;
  size_t q = p + 1;
  while (q < s.size()) {
    if (IsDigit(s[q])) {
      ++q;
    } else if (s[q] == '_' && q + 1 < s.size() && IsDigit(s[q + 1])) {
      q += 2;
    } else {
      break;
    }
  }
  return q - p;
}

bool IsHydraInt(absl::string_view s) {
  size_t p = (!s.empty() && (s[0] == '+' || s[0] == '-')) ? 1 : 0;
  size_t n = MatchIntUnsigned(s, p);
  return n > 0 && p + n == s.size();
}

// POINT_FLOAT: INT_UNSIGNED '.' | INT_UNSIGNED? '.' DIGIT ('_'? DIGIT)*; returns length or 0.
size_t MatchPointFloat(absl::string_view s, size_t p) {
  size_t n = MatchIntUnsigned(s, p);
  size_t q = p + n;
  if (q >= s.size() || s[q] != '.') return 0;
  ++q;
  size_t d = MatchDigits(s, q);
  if (d == 0 && n == 0) return 0;
  return q + d - p;
}

bool IsHydraFloat(absl::string_view s) {
  size_t p = (!s.empty() && (s[0] == '+' || s[0] == '-')) ? 1 : 0;
  absl::string_view body = s.substr(p);
  if (absl::EqualsIgnoreCase(body, "inf") || absl::EqualsIgnoreCase(body, "nan")) return true;
  size_t mant = MatchPointFloat(s, p);
  if (mant == 0) mant = MatchIntUnsigned(s, p);
  if (mant == 0) return false;
  size_t q = p + mant;
  if (q == s.size()) return MatchPointFloat(s, p) == mant;  // a plain int is not a float
  if (s[q] != 'e' && s[q] != 'E') return false;
  ++q;
  if (q < s.size() && (s[q] == '+' || s[q] == '-')) ++q;
  size_t e = MatchIntUnsigned(s, q);
  return e > 0 && q + e == s.size();
}

std::string WithoutUnderscores(absl::string_view s) {
  std::string out;
  for (char c : s) {
    if (c != '_') out.push_back(c);
  }
  return out;
}

class ValueParser {
 public:
  explicit ValueParser(absl::string_view s) : s_(s) {}

  absl::StatusOr<Value> ParseTop() {
    SkipWs();
    if (p_ >= s_.size()) return Value::String("");
    auto v = ParseElement(/*in_container=*/false, 0);
    if (!v.ok()) return v.status();
    SkipWs();
    if (p_ < s_.size()) {
      if (s_[p_] == ',') {
        return Error(
            "a top-level ',' makes this a sweep; use [a,b] for a list or quote the value "
            "('a,b') for a string");
      }
      return Error(absl::StrCat("unexpected '", std::string(1, s_[p_]), "' at position ", p_ + 1));
    }
    return v;
  }

 private:
  absl::Status Error(const std::string& msg) const { return absl::InvalidArgumentError(msg); }

  void SkipWs() {
    while (p_ < s_.size() && (s_[p_] == ' ' || s_[p_] == '\t')) ++p_;
  }

  absl::StatusOr<Value> ParseElement(bool in_container, int depth) {
    if (depth > kMaxValueDepth) return Error("value nested too deeply");
    SkipWs();
    if (p_ >= s_.size()) return Value::String("");
    char c = s_[p_];
    if (c == '[') return ParseList(depth);
    if (c == '{') return ParseDict(depth);
    if (c == '\'' || c == '"') {
      auto q = ParseQuoted();
      if (!q.ok()) return q.status();
      SkipWs();
      if (p_ < s_.size() && !IsTerminator(s_[p_], in_container)) {
        return Error("text after a quoted string; quote the whole value");
      }
      return Value::String(std::move(*q));
    }
    return ParsePrimitive(in_container);
  }

  static bool IsTerminator(char c, bool in_container) {
    return c == ',' || (in_container && (c == ']' || c == '}'));
  }

  absl::StatusOr<std::string> ParseQuoted() {
    char quote = s_[p_++];
    std::string out;
    while (p_ < s_.size()) {
      char c = s_[p_];
      if (c == '\\' && p_ + 1 < s_.size() && (s_[p_ + 1] == quote || s_[p_ + 1] == '\\')) {
        out.push_back(s_[p_ + 1]);
        p_ += 2;
        continue;
      }
      if (c == quote) {
        ++p_;
        return out;
      }
      out.push_back(c);
      ++p_;
    }
    return Error(
        absl::StrCat("unterminated ", quote == '"' ? "double" : "single", "-quoted string"));
  }

  // Unquoted text up to a terminator; `${...}` spans are copied whole (they may hold commas).
  absl::StatusOr<Value> ParsePrimitive(bool in_container) {
    std::string raw;
    bool escaped_any = false;
    size_t last_significant = 0;  // length of `raw` up to its last char that is not plain blank
    while (p_ < s_.size()) {
      char c = s_[p_];
      if (IsTerminator(c, in_container)) break;
      if (c == '$' && p_ + 1 < s_.size() && s_[p_ + 1] == '{') {
        int depth = 0;
        size_t q = p_;
        for (; q < s_.size(); ++q) {
          if (s_[q] == '{') ++depth;
          if (s_[q] == '}' && --depth == 0) break;
        }
        if (q >= s_.size()) return Error("unterminated '${' in value");
        raw.append(s_.data() + p_, q - p_ + 1);
        p_ = q + 1;
        last_significant = raw.size();
        continue;
      }
      if (c == '\\' && p_ + 1 < s_.size() &&
          (s_[p_ + 1] == '\\' || s_[p_ + 1] == ',' || s_[p_ + 1] == ' ' || s_[p_ + 1] == '\t')) {
        raw.push_back(s_[p_ + 1]);
        p_ += 2;
        escaped_any = true;
        last_significant = raw.size();
        continue;
      }
      raw.push_back(c);
      ++p_;
      if (c != ' ' && c != '\t') last_significant = raw.size();
    }
    raw.resize(last_significant);
    if (escaped_any) return Value::String(raw);
    return TypeHydraPrimitive(raw);
  }

  absl::StatusOr<Value> ParseList(int depth) {
    ++p_;  // '['
    Value out = Value::List();
    SkipWs();
    if (p_ < s_.size() && s_[p_] == ']') {
      ++p_;
      return out;
    }
    while (true) {
      auto v = ParseElement(/*in_container=*/true, depth + 1);
      if (!v.ok()) return v.status();
      out.items.push_back(std::move(*v));
      SkipWs();
      if (p_ >= s_.size()) return Error("unterminated list: missing ']'");
      if (s_[p_] == ',') {
        ++p_;
        continue;
      }
      if (s_[p_] == ']') {
        ++p_;
        return out;
      }
      return Error(absl::StrCat("unexpected '", std::string(1, s_[p_]), "' in a list"));
    }
  }

  absl::StatusOr<Value> ParseDict(int depth) {
    ++p_;  // '{'
    Value out = Value::Map();
    SkipWs();
    if (p_ < s_.size() && s_[p_] == '}') {
      ++p_;
      return out;
    }
    while (true) {
      SkipWs();
      std::string key;
      if (p_ < s_.size() && (s_[p_] == '\'' || s_[p_] == '"')) {
        auto q = ParseQuoted();
        if (!q.ok()) return q.status();
        key = std::move(*q);
      } else {
        size_t start = p_;
        while (p_ < s_.size() && s_[p_] != ':' && s_[p_] != ',' && s_[p_] != '}') ++p_;
        key = std::string(absl::StripAsciiWhitespace(s_.substr(start, p_ - start)));
      }
      SkipWs();
      if (key.empty() || p_ >= s_.size() || s_[p_] != ':') {
        return Error("a dict entry must look like key: value");
      }
      ++p_;
      if (out.Get(key) != nullptr)
        return Error(absl::StrCat("duplicate key '", key, "' in a dict"));
      auto v = ParseElement(/*in_container=*/true, depth + 1);
      if (!v.ok()) return v.status();
      out.entries.push_back(MapEntry{key, std::move(*v)});
      SkipWs();
      if (p_ >= s_.size()) return Error("unterminated dict: missing '}'");
      if (s_[p_] == ',') {
        ++p_;
        continue;
      }
      if (s_[p_] == '}') {
        ++p_;
        return out;
      }
      return Error(absl::StrCat("unexpected '", std::string(1, s_[p_]), "' in a dict"));
    }
  }

  absl::string_view s_;
  size_t p_ = 0;
};

}  // namespace

Value TypeHydraPrimitive(const std::string& text) {
  if (absl::EqualsIgnoreCase(text, "null")) return Value::Null();
  if (absl::EqualsIgnoreCase(text, "true")) return Value::Bool(true);
  if (absl::EqualsIgnoreCase(text, "false")) return Value::Bool(false);
  if (IsHydraInt(text)) {
    int64_t v;
    if (absl::SimpleAtoi(WithoutUnderscores(text), &v)) return Value::Int(v);
    return Value::String(text);
  }
  if (IsHydraFloat(text)) {
    std::string t = absl::AsciiStrToLower(WithoutUnderscores(text));
    double v;
    if (absl::SimpleAtod(t, &v)) return Value::Float(v);
  }
  return Value::String(text);
}

absl::StatusOr<Value> ParseOverrideValue(absl::string_view text) {
  return ValueParser(text).ParseTop();
}

absl::StatusOr<Path> ParseKeyPath(absl::string_view key) {
  Path path;
  size_t p = 0;
  auto bad = [&](const std::string& why) {
    return absl::InvalidArgumentError(absl::StrCat("invalid key '", key, "': ", why));
  };
  if (key.empty()) return bad("it is empty");
  while (p < key.size()) {
    size_t start = p;
    while (p < key.size() && key[p] != '.' && key[p] != '[') ++p;
    if (p == start) {
      if (!(p < key.size() && key[p] == '[' && !path.empty())) return bad("empty part");
    } else {
      PathElem e;
      e.key = std::string(key.substr(start, p - start));
      int64_t idx;
      if (std::all_of(e.key.begin(), e.key.end(), IsDigit) && absl::SimpleAtoi(e.key, &idx)) {
        e.index = idx;
      }
      path.push_back(std::move(e));
    }
    while (p < key.size() && key[p] == '[') {
      size_t close = key.find(']', p);
      if (close == absl::string_view::npos) return bad("missing ']'");
      std::string idx_text(key.substr(p + 1, close - p - 1));
      int64_t idx;
      if (idx_text.empty() || !std::all_of(idx_text.begin(), idx_text.end(), IsDigit) ||
          !absl::SimpleAtoi(idx_text, &idx)) {
        return bad(absl::StrCat("'[", idx_text, "]' is not a list index"));
      }
      PathElem e;
      e.key = idx_text;
      e.index = idx;
      path.push_back(std::move(e));
      p = close + 1;
    }
    if (p < key.size()) {
      if (key[p] != '.') return bad(absl::StrCat("unexpected '", std::string(1, key[p]), "'"));
      ++p;
      if (p == key.size()) return bad("it ends with '.'");
    }
  }
  return path;
}

absl::StatusOr<Override> ParseOverride(const std::string& text) {
  if (!IsValidUtf8(text)) {
    return absl::InvalidArgumentError("invalid override: it is not valid UTF-8");
  }
  Override o;
  o.text = text;
  absl::string_view rest = text;
  if (absl::ConsumePrefix(&rest, "~")) {
    o.op = Override::Op::kDelete;
  } else if (absl::ConsumePrefix(&rest, "++")) {
    o.op = Override::Op::kForceAdd;
  } else if (absl::ConsumePrefix(&rest, "+")) {
    o.op = Override::Op::kAdd;
  }
  size_t eq = rest.find('=');
  absl::string_view key = absl::StripAsciiWhitespace(rest.substr(0, eq));
  if (eq == absl::string_view::npos && o.op != Override::Op::kDelete) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid override '", text, "': expected key=value (or ~key to delete a key)"));
  }
  o.key = std::string(key);
  auto path = ParseKeyPath(key);
  if (!path.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid override '", text, "': ", path.status().message()));
  }
  o.path = std::move(*path);
  if (eq != absl::string_view::npos) {
    o.has_value = true;
    auto v = ParseOverrideValue(rest.substr(eq + 1));
    if (!v.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("invalid value in override '", text, "': ", v.status().message()));
    }
    o.value = std::move(*v);
  }
  return o;
}

absl::Status MergeValue(Value& dst, const Value& src, Path& path) {
  if (src.is_map() && dst.is_map()) {
    for (const MapEntry& e : src.entries) {
      Value* existing = dst.Get(e.key);
      if (existing == nullptr) {
        dst.entries.push_back(e);
        continue;
      }
      path.push_back(PathElem{e.key, -1});
      absl::Status st = MergeValue(*existing, e.value, path);
      path.pop_back();
      if (!st.ok()) return st;
    }
    return absl::OkStatus();
  }
  if ((src.is_map() && dst.is_list()) || (src.is_list() && dst.is_map())) {
    std::string where = src.mark.ToString();
    return absl::InvalidArgumentError(absl::StrCat(
        where.empty() ? "" : where + ": ", "cannot merge ", KindName(src), " into ", KindName(dst),
        " at '", path.empty() ? std::string("<root>") : FormatPath(path), "'"));
  }
  // OmegaConf: merging MISSING never erases a value that is already there.
  if (src.IsMissing() && !dst.is_null()) return absl::OkStatus();
  dst = src;
  return absl::OkStatus();
}

namespace {

std::string PathText(const Path& path) {
  return path.empty() ? std::string("the config") : absl::StrCat("'", FormatPath(path), "'");
}

std::vector<std::string> KeysOf(const Value& map) {
  std::vector<std::string> keys;
  for (const MapEntry& e : map.entries) keys.push_back(e.key);
  return keys;
}

// evaluation.overrides and evaluation.tasks[i].overrides hold flat dotted keys
// (`config.params.temperature`), so the rest of an override's path is one key there.
bool IsFlatOverridesMap(const Path& walked) {
  if (walked.size() == 2) {
    return walked[0].key == "evaluation" && walked[1].key == "overrides";
  }
  if (walked.size() == 4) {
    return walked[0].key == "evaluation" && walked[1].key == "tasks" && walked[2].is_index() &&
           walked[3].key == "overrides";
  }
  return false;
}

std::string JoinKeys(const Path& path, size_t from) {
  std::vector<std::string> parts;
  for (size_t k = from; k < path.size(); ++k) parts.push_back(path[k].key);
  return absl::StrJoin(parts, ".");
}

std::string AddHint(const Override& o) {
  absl::string_view body = o.text;
  absl::ConsumePrefix(&body, "++") || absl::ConsumePrefix(&body, "+") ||
      absl::ConsumePrefix(&body, "~");
  return absl::StrCat("+", body);
}

absl::Status SetOrMerge(Value& dst, const Value& v) {
  if (dst.is_map() && v.is_map()) {
    Path p;
    return MergeValue(dst, v, p);
  }
  dst = v;
  return absl::OkStatus();
}

}  // namespace

absl::Status ApplyOverride(const Override& o, Value& root) {
  using Op = Override::Op;
  const bool adding = o.op == Op::kAdd || o.op == Op::kForceAdd;
  Value* cur = &root;
  Path walked;
  size_t k = 0;
  while (k < o.path.size()) {
    const PathElem& elem = o.path[k];
    if (cur->is_null() && adding) *cur = Value::Map();
    Value* child = nullptr;
    PathElem step;
    size_t consumed = 1;
    if (cur->is_map()) {
      if (IsFlatOverridesMap(walked)) {
        step.key = JoinKeys(o.path, k);
        consumed = o.path.size() - k;
      } else {
        step.key = elem.key;
        // A key that itself holds dots ("config.params.temperature") matches the longest run.
        if (cur->Get(step.key) == nullptr) {
          for (size_t j = o.path.size(); j > k + 1; --j) {
            std::vector<std::string> parts;
            for (size_t m = k; m < j; ++m) parts.push_back(o.path[m].key);
            std::string candidate = absl::StrJoin(parts, ".");
            if (cur->Get(candidate) != nullptr) {
              step.key = candidate;
              consumed = j - k;
              break;
            }
          }
        }
      }
      child = cur->Get(step.key);
    } else if (cur->is_list()) {
      if (!elem.is_index()) {
        return absl::InvalidArgumentError(
            absl::StrCat("unknown key path '", o.key, "' in override '", o.text,
                         "': ", PathText(walked), " is a list; address its items by index (",
                         FormatPath(walked), "[0] or ", FormatPath(walked), ".0)"));
      }
      step.key = elem.key;
      step.index = elem.index;
      if (static_cast<size_t>(elem.index) >= cur->items.size()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "unknown key path '", o.key, "' in override '", o.text, "': index ", elem.index,
            " is out of range for ", PathText(walked), " (", cur->items.size(), " items)"));
      }
      child = &cur->items[static_cast<size_t>(elem.index)];
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("override '", o.text, "': key path '", o.key, "' goes through ",
                       PathText(walked), ", which is ", KindName(*cur), ", not a mapping"));
    }
    const bool last = k + consumed == o.path.size();

    if (child == nullptr) {  // a missing map key
      if (!adding) {
        std::string hint = DidYouMean(Suggest(step.key, KeysOf(*cur)));
        if (o.op == Op::kDelete) {
          return absl::InvalidArgumentError(
              absl::StrCat("cannot delete '", o.key, "' in override '", o.text, "': key '",
                           step.key, "' is not in ", PathText(walked), hint));
        }
        return absl::InvalidArgumentError(absl::StrCat(
            "unknown key path '", o.key, "' in override '", o.text, "': key '", step.key,
            "' is not in ", PathText(walked), hint, "; use ", AddHint(o), " to add it"));
      }
      if (last) {
        cur->entries.push_back(MapEntry{step.key, o.value});
        return absl::OkStatus();
      }
      cur->entries.push_back(MapEntry{step.key, Value::Map()});
      child = &cur->entries.back().value;
    } else if (last) {
      walked.push_back(step);
      switch (o.op) {
        case Op::kDelete:
          if (o.has_value && !Equal(*child, o.value)) {
            return absl::InvalidArgumentError(
                absl::StrCat("cannot delete '", o.key, "' in override '", o.text,
                             "': its value is ", PyRepr(*child), ", not ", PyRepr(o.value)));
          }
          if (cur->is_list()) {
            cur->items.erase(cur->items.begin() + step.index);
          } else {
            cur->Erase(step.key);
          }
          return absl::OkStatus();
        case Op::kAdd:
          if (!child->is_null() && !o.value.is_container()) {
            absl::string_view body = o.text;
            absl::ConsumePrefix(&body, "+");
            return absl::InvalidArgumentError(
                absl::StrCat("cannot add '", o.key, "' in override '", o.text,
                             "': it already exists (", PyRepr(*child), "); use ", body,
                             " to change it or +", o.text, " to set it either way"));
          }
          return SetOrMerge(*child, o.value);
        case Op::kSet:
        case Op::kForceAdd:
          return SetOrMerge(*child, o.value);
      }
    }
    walked.push_back(step);
    cur = child;
    k += consumed;
  }
  // An empty path cannot be parsed, so the loop always returns.
  return absl::InternalError(absl::StrCat("override '", o.text, "' has an empty key"));
}

}  // namespace evald::config::internal

namespace evald::config {

namespace {

absl::Status ApplyDotted(internal::Value& root, const std::string& key, internal::Value value,
                         std::string text) {
  auto path = internal::ParseKeyPath(key);
  if (!path.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid override '", text, "': ", path.status().message()));
  }
  internal::Override o;
  o.text = std::move(text);
  o.op = internal::Override::Op::kForceAdd;
  o.key = key;
  o.path = std::move(*path);
  o.has_value = true;
  o.value = std::move(value);
  return internal::ApplyOverride(o, root);
}

}  // namespace

absl::Status ApplyDottedOverride(internal::Value& root, const std::string& key,
                                 internal::Value value) {
  std::string text = absl::StrCat(key, "=", internal::PyStr(value));
  return ApplyDotted(root, key, std::move(value), std::move(text));
}

internal::Value ParseYamlOverrideValue(const std::string& text) {
  auto node = ParseYaml(text, "override value");
  if (node.ok()) {
    auto v = internal::ValueFromYaml(*node, nullptr);
    if (v.ok()) return std::move(*v);
  }
  return internal::Value::String(text);
}

absl::Status ApplyDottedAssignment(internal::Value& root, const std::string& assignment) {
  size_t eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid override '", assignment, "': expected key.path=value"));
  }
  return ApplyDotted(root, assignment.substr(0, eq),
                     ParseYamlOverrideValue(assignment.substr(eq + 1)), assignment);
}

}  // namespace evald::config
