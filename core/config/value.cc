#include "core/config/value.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace evald::config::internal {

std::string Mark::ToString() const {
  if (!source) return "";
  std::string out = *source;
  if (line > 0) absl::StrAppend(&out, ":", line, ":", column);
  return out;
}

Value Value::Null() { return Value(); }
Value Value::Bool(bool v) {
  Value out;
  out.kind = Kind::kBool;
  out.b = v;
  return out;
}
Value Value::Int(int64_t v) {
  Value out;
  out.kind = Kind::kInt;
  out.i = v;
  return out;
}
Value Value::Float(double v) {
  Value out;
  out.kind = Kind::kFloat;
  out.f = v;
  return out;
}
Value Value::String(std::string v) {
  Value out;
  out.kind = Kind::kString;
  out.s = std::move(v);
  return out;
}
Value Value::List() {
  Value out;
  out.kind = Kind::kList;
  return out;
}
Value Value::Map() {
  Value out;
  out.kind = Kind::kMap;
  return out;
}

bool Value::HasInterpolation() const {
  return kind == Kind::kString && s.find("${") != std::string::npos;
}

const Value* Value::Get(absl::string_view key) const {
  if (kind != Kind::kMap) return nullptr;
  for (const MapEntry& e : entries) {
    if (e.key == key) return &e.value;
  }
  return nullptr;
}

Value* Value::Get(absl::string_view key) {
  return const_cast<Value*>(static_cast<const Value*>(this)->Get(key));
}

Value& Value::Put(const std::string& key, Value v) {
  for (MapEntry& e : entries) {
    if (e.key == key) {
      e.value = std::move(v);
      return e.value;
    }
  }
  entries.push_back(MapEntry{key, std::move(v)});
  return entries.back().value;
}

bool Value::Erase(absl::string_view key) {
  for (auto it = entries.begin(); it != entries.end(); ++it) {
    if (it->key == key) {
      entries.erase(it);
      return true;
    }
  }
  return false;
}

namespace {

bool IsNumeric(const Value& v) {
  return v.kind == Value::Kind::kBool || v.kind == Value::Kind::kInt ||
         v.kind == Value::Kind::kFloat;
}

double AsDouble(const Value& v) {
  switch (v.kind) {
    case Value::Kind::kBool:
      return v.b ? 1 : 0;
    case Value::Kind::kInt:
      return static_cast<double>(v.i);
    default:
      return v.f;
  }
}

}  // namespace

bool Equal(const Value& a, const Value& b) {
  if (IsNumeric(a) && IsNumeric(b)) {
    if (a.kind != Value::Kind::kFloat && b.kind != Value::Kind::kFloat) {
      int64_t x = a.kind == Value::Kind::kBool ? a.b : a.i;
      int64_t y = b.kind == Value::Kind::kBool ? b.b : b.i;
      return x == y;
    }
    return AsDouble(a) == AsDouble(b);
  }
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case Value::Kind::kNull:
      return true;
    case Value::Kind::kString:
      return a.s == b.s;
    case Value::Kind::kList:
      if (a.items.size() != b.items.size()) return false;
      for (size_t k = 0; k < a.items.size(); ++k) {
        if (!Equal(a.items[k], b.items[k])) return false;
      }
      return true;
    case Value::Kind::kMap:
      if (a.entries.size() != b.entries.size()) return false;
      for (const MapEntry& e : a.entries) {
        const Value* other = b.Get(e.key);
        if (other == nullptr || !Equal(e.value, *other)) return false;
      }
      return true;
    default:
      return false;
  }
}

// ---------------------------------------------------------------------------------------------
// YAML 1.1 scalar typing (PyYAML SafeLoader resolvers, timestamps removed, OmegaConf's float rule
// added). Hand-written matchers rather than std::regex: libstdc++'s regex recurses per character
// and overflows the stack on long input.

namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Cursor over a string for the small grammars below.
class Scan {
 public:
  explicit Scan(absl::string_view s) : s_(s) {}
  bool done() const { return p_ >= s_.size(); }
  char peek() const { return done() ? '\0' : s_[p_]; }
  bool Eat(char c) {
    if (peek() != c || done()) return false;
    ++p_;
    return true;
  }
  bool EatAny(absl::string_view set) {
    if (done() || set.find(s_[p_]) == absl::string_view::npos) return false;
    ++p_;
    return true;
  }
  bool EatSign() { return EatAny("+-"); }
  // [chars]* ; returns how many were eaten.
  size_t EatWhile(bool (*pred)(char)) {
    size_t start = p_;
    while (!done() && pred(s_[p_])) ++p_;
    return p_ - start;
  }
  bool EatWord(absl::string_view w) {
    if (s_.substr(p_, w.size()) != w) return false;
    p_ += w.size();
    return true;
  }
  size_t pos() const { return p_; }
  void set_pos(size_t p) { p_ = p; }

 private:
  absl::string_view s_;
  size_t p_ = 0;
};

bool DigitOrUnderscore(char c) { return IsDigit(c) || c == '_'; }
bool BinOrUnderscore(char c) { return c == '0' || c == '1' || c == '_'; }
bool OctOrUnderscore(char c) { return (c >= '0' && c <= '7') || c == '_'; }
bool HexOrUnderscore(char c) {
  return absl::ascii_isxdigit(static_cast<unsigned char>(c)) || c == '_';
}

// (':' [0-5]?[0-9])+
bool EatSexagesimalTail(Scan& sc) {
  bool any = false;
  while (sc.peek() == ':') {
    size_t save = sc.pos();
    sc.Eat(':');
    size_t n = sc.EatWhile(IsDigit);
    if (n == 0 || n > 2) {
      sc.set_pos(save);
      return any;
    }
    any = true;
  }
  return any;
}

bool MatchesInt(absl::string_view s) {
  Scan sc(s);
  sc.EatSign();
  size_t body = sc.pos();
  // 0b[0-1_]+
  if (sc.EatWord("0b") && sc.EatWhile(BinOrUnderscore) > 0 && sc.done()) return true;
  sc.set_pos(body);
  // 0x[0-9a-fA-F_]+
  if (sc.EatWord("0x") && sc.EatWhile(HexOrUnderscore) > 0 && sc.done()) return true;
  sc.set_pos(body);
  // 0[0-7_]+
  if (sc.Eat('0') && sc.EatWhile(OctOrUnderscore) > 0 && sc.done()) return true;
  sc.set_pos(body);
  // 0
  if (sc.Eat('0') && sc.done()) return true;
  sc.set_pos(body);
  // [1-9][0-9_]* and [1-9][0-9_]*(:[0-5]?[0-9])+
  if (!sc.done() && sc.peek() >= '1' && sc.peek() <= '9') {
    sc.EatWhile(DigitOrUnderscore);
    if (sc.done()) return true;
    if (EatSexagesimalTail(sc) && sc.done()) {
      // Each sexagesimal part is [0-5]?[0-9].
      std::vector<absl::string_view> parts = absl::StrSplit(s, ':');
      for (size_t k = 1; k < parts.size(); ++k) {
        if (parts[k].size() == 2 && parts[k][0] > '5') return false;
      }
      return true;
    }
  }
  return false;
}

bool EatExponent(Scan& sc, bool sign_required) {
  size_t save = sc.pos();
  if (!sc.EatAny("eE")) return false;
  bool signed_exp = sc.EatSign();
  if ((sign_required && !signed_exp) || sc.EatWhile(IsDigit) == 0) {
    sc.set_pos(save);
    return false;
  }
  return true;
}

bool MatchesFloat(absl::string_view s) {
  Scan sc(s);
  // \.(nan|NaN|NAN)  and  \.[0-9_]+([eE][-+][0-9]+)?   (no sign)
  if (sc.Eat('.')) {
    if ((sc.EatWord("nan") || sc.EatWord("NaN") || sc.EatWord("NAN")) && sc.done()) return true;
    sc.set_pos(1);
    if ((sc.EatWord("inf") || sc.EatWord("Inf") || sc.EatWord("INF")) && sc.done()) return true;
    sc.set_pos(1);
    if (sc.EatWhile(DigitOrUnderscore) > 0) {
      EatExponent(sc, /*sign_required=*/true);
      if (sc.done()) return true;
    }
    return false;
  }
  sc.set_pos(0);
  sc.EatSign();
  size_t body = sc.pos();
  // [-+]?\.(inf|Inf|INF)
  if (sc.Eat('.') && (sc.EatWord("inf") || sc.EatWord("Inf") || sc.EatWord("INF")) && sc.done()) {
    return true;
  }
  sc.set_pos(body);
  if (!IsDigit(sc.peek())) return false;
  sc.EatWhile(DigitOrUnderscore);
  size_t after_int = sc.pos();
  // [0-9][0-9_]*\.[0-9_]*([eE][-+]?[0-9]+)?
  if (sc.Eat('.')) {
    sc.EatWhile(DigitOrUnderscore);
    EatExponent(sc, /*sign_required=*/false);
    if (sc.done()) return true;
  }
  sc.set_pos(after_int);
  // [0-9][0-9_]*[eE][-+]?[0-9]+
  if (EatExponent(sc, /*sign_required=*/false) && sc.done()) return true;
  sc.set_pos(after_int);
  // [0-9][0-9_]*(:[0-5]?[0-9])+\.[0-9_]*
  if (EatSexagesimalTail(sc) && sc.Eat('.')) {
    sc.EatWhile(DigitOrUnderscore);
    if (sc.done()) {
      std::vector<absl::string_view> parts = absl::StrSplit(s.substr(0, s.find('.')), ':');
      for (size_t k = 1; k < parts.size(); ++k) {
        if (parts[k].size() == 2 && parts[k][0] > '5') return false;
      }
      return true;
    }
  }
  return false;
}

bool AccumulateDigits(absl::string_view digits, int base, uint64_t* out) {
  uint64_t v = 0;
  const uint64_t limit = static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) + 1;
  for (char c : digits) {
    int d = IsDigit(c) ? c - '0' : absl::ascii_tolower(static_cast<unsigned char>(c)) - 'a' + 10;
    if (d < 0 || d >= base) return false;
    if (v > (limit - static_cast<uint64_t>(d)) / static_cast<uint64_t>(base)) return false;
    v = v * static_cast<uint64_t>(base) + static_cast<uint64_t>(d);
  }
  *out = v;
  return true;
}

// PyYAML construct_yaml_int. False when the value does not fit int64 (or is degenerate).
bool ConstructInt(absl::string_view text, int64_t* out) {
  std::string v;
  for (char c : text) {
    if (c != '_') v.push_back(c);
  }
  bool neg = false;
  if (!v.empty() && (v[0] == '-' || v[0] == '+')) {
    neg = v[0] == '-';
    v.erase(0, 1);
  }
  uint64_t mag = 0;
  bool ok;
  if (v == "0") {
    ok = true;
  } else if (absl::StartsWith(v, "0b")) {
    ok = v.size() > 2 && AccumulateDigits(absl::string_view(v).substr(2), 2, &mag);
  } else if (absl::StartsWith(v, "0x")) {
    ok = v.size() > 2 && AccumulateDigits(absl::string_view(v).substr(2), 16, &mag);
  } else if (!v.empty() && v[0] == '0') {
    ok = AccumulateDigits(absl::string_view(v).substr(1), 8, &mag);
  } else if (v.find(':') != std::string::npos) {
    ok = true;
    for (absl::string_view part : absl::StrSplit(v, ':')) {
      uint64_t p = 0;
      if (!AccumulateDigits(part, 10, &p) ||
          mag > (std::numeric_limits<uint64_t>::max() - p) / 60) {
        ok = false;
        break;
      }
      mag = mag * 60 + p;
    }
  } else {
    ok = !v.empty() && AccumulateDigits(v, 10, &mag);
  }
  const uint64_t max_pos = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  if (!ok || mag > max_pos + (neg ? 1 : 0)) return false;
  if (neg) {
    *out = mag == max_pos + 1 ? std::numeric_limits<int64_t>::min() : -static_cast<int64_t>(mag);
  } else {
    *out = static_cast<int64_t>(mag);
  }
  return true;
}

// PyYAML construct_yaml_float.
bool ConstructFloat(absl::string_view text, double* out) {
  std::string v;
  for (char c : text) {
    if (c != '_') v.push_back(absl::ascii_tolower(static_cast<unsigned char>(c)));
  }
  double sign = 1;
  if (!v.empty() && (v[0] == '-' || v[0] == '+')) {
    if (v[0] == '-') sign = -1;
    v.erase(0, 1);
  }
  if (v == ".inf") {
    *out = sign * std::numeric_limits<double>::infinity();
    return true;
  }
  if (v == ".nan") {
    *out = std::numeric_limits<double>::quiet_NaN();
    return true;
  }
  if (v.find(':') != std::string::npos) {
    std::vector<std::string> parts = absl::StrSplit(v, ':');
    double base = 1, total = 0;
    for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
      double d;
      if (!absl::SimpleAtod(*it, &d)) return false;
      total += d * base;
      base *= 60;
    }
    *out = sign * total;
    return true;
  }
  if (v.empty() || v == ".") return false;
  double d;
  if (!absl::SimpleAtod(v, &d)) return false;
  *out = sign * d;
  return true;
}

}  // namespace

Value TypePlainScalar(const std::string& text) {
  if (text.empty() || text == "~" || text == "null" || text == "Null" || text == "NULL") {
    return Value::Null();
  }
  static const char* const kTrue[] = {"yes",  "Yes", "YES", "true", "True",
                                      "TRUE", "on",  "On",  "ON"};
  static const char* const kFalse[] = {"no",    "No",  "NO",  "false", "False",
                                       "FALSE", "off", "Off", "OFF"};
  for (const char* w : kTrue) {
    if (text == w) return Value::Bool(true);
  }
  for (const char* w : kFalse) {
    if (text == w) return Value::Bool(false);
  }
  char c0 = text[0];
  if (IsDigit(c0) || c0 == '-' || c0 == '+' || c0 == '.') {
    // PyYAML tries its float rule, then int, then OmegaConf's float rule; the int and float
    // patterns never overlap, so the order does not matter here.
    int64_t iv;
    if (MatchesInt(text) && ConstructInt(text, &iv)) return Value::Int(iv);
    double fv;
    if (MatchesFloat(text) && ConstructFloat(text, &fv)) return Value::Float(fv);
  }
  return Value::String(text);
}

Value TypeYamlScalar(const YAML::Node& node) {
  const std::string& tag = node.Tag();
  if (tag == "!" || tag == "tag:yaml.org,2002:str") return Value::String(node.Scalar());
  Value typed = TypePlainScalar(node.Scalar());
  if (tag == "tag:yaml.org,2002:float" && typed.kind == Value::Kind::kInt) {
    return Value::Float(static_cast<double>(typed.i));
  }
  return typed;
}

namespace {

// YAML 1.2 core schema numbers that the 1.1 rule leaves as strings (0o17, -.5, .5e3, 1.e2 ...).
bool IsYaml12Number(absl::string_view s) {
  Scan sc(s);
  sc.EatSign();
  size_t body = sc.pos();
  if (sc.EatWord("0o") && sc.EatWhile([](char c) { return c >= '0' && c <= '7'; }) > 0 &&
      sc.done()) {
    return true;
  }
  sc.set_pos(body);
  if (sc.Eat('.')) {
    for (absl::string_view w : {"inf", "Inf", "INF", "nan", "NaN", "NAN"}) {
      if (s.substr(sc.pos()) == w) return true;
    }
    if (sc.EatWhile(IsDigit) == 0) return false;
  } else {
    if (sc.EatWhile(IsDigit) == 0) return false;
    if (sc.Eat('.')) sc.EatWhile(IsDigit);
  }
  if (sc.EatAny("eE")) {
    sc.EatSign();
    if (sc.EatWhile(IsDigit) == 0) return false;
  }
  return sc.done();
}

// PyYAML's timestamp resolver starts with YYYY-M; OmegaConf drops it, plain PyYAML does not.
bool LooksLikeTimestamp(absl::string_view s) {
  return s.size() >= 6 && IsDigit(s[0]) && IsDigit(s[1]) && IsDigit(s[2]) && IsDigit(s[3]) &&
         s[4] == '-' && IsDigit(s[5]);
}

}  // namespace

bool MustQuoteString(const std::string& text) {
  if (TypePlainScalar(text).kind != Value::Kind::kString) return true;
  // Matches a number pattern but did not construct (an int beyond int64): PyYAML still reads a
  // number.
  if (MatchesInt(text) || MatchesFloat(text)) return true;
  // YAML 1.1's other booleans (PyYAML leaves them out, other 1.1 readers and yaml-cpp do not), the
  // value and merge keys, timestamps.
  static const char* const kOther11[] = {"y", "Y", "n", "N", "=", "<<"};
  for (const char* w : kOther11) {
    if (text == w) return true;
  }
  return LooksLikeTimestamp(text) || IsYaml12Number(text);
}

std::string YamlFloat(double v) {
  if (std::isnan(v)) return ".nan";
  if (std::isinf(v)) return v < 0 ? "-.inf" : ".inf";
  // PyYAML's represent_float: YAML 1.1 floats need a '.', so a bare exponent gets ".0" before it.
  std::string s = PyFloatRepr(v);
  if (s.find('.') == std::string::npos) {
    size_t e = s.find('e');
    if (e != std::string::npos) s.insert(e, ".0");
  }
  return s;
}

std::string PyFloatRepr(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v < 0 ? "-inf" : "inf";
  if (v == 0) return std::signbit(v) ? "-0.0" : "0.0";
  char buf[64];
  int precision = 1;
  for (; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof(buf), "%.*e", precision - 1, v);
    double back;
    if (absl::SimpleAtod(buf, &back) && back == v) break;
  }
  // buf: [-]d[.ddd]e[+-]XX
  std::string s = buf;
  bool neg = s[0] == '-';
  if (neg) s.erase(0, 1);
  size_t e = s.find('e');
  std::string mant = s.substr(0, e);
  int exp10 = std::atoi(s.c_str() + e + 1);
  std::string digits;
  for (char c : mant) {
    if (c != '.') digits.push_back(c);
  }
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  int decpt = exp10 + 1;
  std::string out;
  if (decpt <= -4 || decpt > 16) {
    out = digits.substr(0, 1);
    if (digits.size() > 1) absl::StrAppend(&out, ".", digits.substr(1));
    char eb[16];
    std::snprintf(eb, sizeof(eb), "e%c%02d", exp10 < 0 ? '-' : '+', exp10 < 0 ? -exp10 : exp10);
    out += eb;
  } else if (decpt <= 0) {
    out = "0." + std::string(static_cast<size_t>(-decpt), '0') + digits;
  } else if (static_cast<size_t>(decpt) >= digits.size()) {
    out = digits + std::string(static_cast<size_t>(decpt) - digits.size(), '0') + ".0";
  } else {
    out = digits.substr(0, static_cast<size_t>(decpt)) + "." +
          digits.substr(static_cast<size_t>(decpt));
  }
  return neg ? "-" + out : out;
}

namespace {

std::string PyStringRepr(const std::string& s) {
  char quote = '\'';
  if (s.find('\'') != std::string::npos && s.find('"') == std::string::npos) quote = '"';
  std::string out(1, quote);
  for (unsigned char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == static_cast<unsigned char>(quote)) {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  out += quote;
  return out;
}

}  // namespace

std::string PyRepr(const Value& v) {
  switch (v.kind) {
    case Value::Kind::kNull:
      return "None";
    case Value::Kind::kBool:
      return v.b ? "True" : "False";
    case Value::Kind::kInt:
      return absl::StrCat(v.i);
    case Value::Kind::kFloat:
      return PyFloatRepr(v.f);
    case Value::Kind::kString:
      return PyStringRepr(v.s);
    case Value::Kind::kList: {
      std::vector<std::string> parts;
      for (const Value& item : v.items) parts.push_back(PyRepr(item));
      return absl::StrCat("[", absl::StrJoin(parts, ", "), "]");
    }
    case Value::Kind::kMap: {
      std::vector<std::string> parts;
      for (const MapEntry& e : v.entries) {
        parts.push_back(absl::StrCat(PyStringRepr(e.key), ": ", PyRepr(e.value)));
      }
      return absl::StrCat("{", absl::StrJoin(parts, ", "), "}");
    }
  }
  return "";
}

std::string PyStr(const Value& v) { return v.is_string() ? v.s : PyRepr(v); }

std::string KindName(const Value& v) {
  switch (v.kind) {
    case Value::Kind::kNull:
      return "null";
    case Value::Kind::kBool:
      return "a boolean";
    case Value::Kind::kInt:
      return "an integer";
    case Value::Kind::kFloat:
      return "a number";
    case Value::Kind::kString:
      return "a string";
    case Value::Kind::kList:
      return "a list";
    case Value::Kind::kMap:
      return "a mapping";
  }
  return "";
}

std::string CanonicalScalar(const Value& v) {
  switch (v.kind) {
    case Value::Kind::kNull:
      return "null";
    case Value::Kind::kBool:
      return v.b ? "true" : "false";
    case Value::Kind::kInt:
      return absl::StrCat(v.i);
    case Value::Kind::kFloat:
      return YamlFloat(v.f);
    default:
      return v.s;
  }
}

// ---------------------------------------------------------------------------------------------
// yaml-cpp conversions

namespace {

constexpr int kMaxDepth = 200;
// Alias expansion ("billion laughs") could otherwise turn a few hundred bytes into gigabytes.
constexpr size_t kMaxNodes = 1000000;

class FromYamlConverter {
 public:
  explicit FromYamlConverter(std::shared_ptr<const std::string> source)
      : source_(std::move(source)) {}

  absl::StatusOr<Value> Convert(const YAML::Node& node, int depth) {
    Mark mark = MarkOf(node);
    if (depth > kMaxDepth) {
      return Error(mark, absl::StrCat("nesting deeper than ", kMaxDepth, " levels"));
    }
    if (++nodes_ > kMaxNodes) {
      return Error(mark, absl::StrCat("more than ", kMaxNodes,
                                      " values after expanding aliases; refusing to continue"));
    }
    Value out;
    switch (node.Type()) {
      case YAML::NodeType::Undefined:
      case YAML::NodeType::Null:
        out = Value::Null();
        break;
      case YAML::NodeType::Scalar: {
        auto typed = TypeScalar(node, mark);
        if (!typed.ok()) return typed.status();
        out = std::move(*typed);
        break;
      }
      case YAML::NodeType::Sequence: {
        out = Value::List();
        for (const YAML::Node& item : node) {
          auto v = Convert(item, depth + 1);
          if (!v.ok()) return v.status();
          out.items.push_back(std::move(*v));
        }
        break;
      }
      case YAML::NodeType::Map: {
        auto v = ConvertMap(node, mark, depth);
        if (!v.ok()) return v.status();
        out = std::move(*v);
        break;
      }
    }
    out.mark = mark;
    return out;
  }

 private:
  Mark MarkOf(const YAML::Node& node) const {
    Mark m;
    m.source = source_;
    YAML::Mark ym = node.Mark();
    if (ym.line >= 0) {
      m.line = ym.line + 1;
      m.column = ym.column + 1;
    }
    return m;
  }

  absl::Status Error(const Mark& mark, const std::string& msg) const {
    std::string where = mark.ToString();
    return absl::InvalidArgumentError(where.empty() ? msg : absl::StrCat(where, ": ", msg));
  }

  absl::StatusOr<Value> TypeScalar(const YAML::Node& node, const Mark& mark) const {
    const std::string& tag = node.Tag();
    const std::string& text = node.Scalar();
    if (tag == "!" || tag == "tag:yaml.org,2002:str") return Value::String(text);
    if (tag.empty() || tag == "?") return TypePlainScalar(text);
    Value typed = TypePlainScalar(text);
    if (tag == "tag:yaml.org,2002:null") {
      if (typed.is_null()) return typed;
    } else if (tag == "tag:yaml.org,2002:bool") {
      if (typed.kind == Value::Kind::kBool) return typed;
    } else if (tag == "tag:yaml.org,2002:int") {
      if (typed.kind == Value::Kind::kInt) return typed;
    } else if (tag == "tag:yaml.org,2002:float") {
      if (typed.kind == Value::Kind::kInt) return Value::Float(static_cast<double>(typed.i));
      if (typed.kind == Value::Kind::kFloat) return typed;
    } else {
      return Error(mark, absl::StrCat("unsupported tag '", tag,
                                      "'; only !!str, !!int, !!float, !!bool and !!null are "
                                      "allowed"));
    }
    return Error(mark,
                 absl::StrCat("'", text, "' is not a valid ", tag.substr(tag.rfind(':') + 1)));
  }

  absl::StatusOr<Value> ConvertMap(const YAML::Node& node, const Mark& mark, int depth) {
    Value out = Value::Map();
    std::vector<Value> merges;
    for (auto it = node.begin(); it != node.end(); ++it) {
      const YAML::Node key = it->first;  // a copy: the iterator yields a temporary pair
      Mark key_mark = MarkOf(key);
      if (!key.IsScalar() && !key.IsNull()) {
        return Error(key_mark, "mapping keys must be scalars");
      }
      std::string key_text = key.IsNull() ? "null" : key.Scalar();
      if (key.IsScalar() && key.Tag() != "!" && key_text == "<<") {
        auto merged = Convert(it->second, depth + 1);
        if (!merged.ok()) return merged.status();
        if (merged->is_map()) {
          merges.push_back(std::move(*merged));
        } else if (merged->is_list() && std::all_of(merged->items.begin(), merged->items.end(),
                                                    [](const Value& v) { return v.is_map(); })) {
          // The first listed mapping wins, so apply them last to first.
          for (auto m = merged->items.rbegin(); m != merged->items.rend(); ++m) {
            merges.push_back(std::move(*m));
          }
        } else {
          return Error(key_mark, "a '<<' merge key needs a mapping or a list of mappings");
        }
        continue;
      }
      if (out.Get(key_text) != nullptr) {
        return Error(key_mark, absl::StrCat("duplicate key '", key_text, "'"));
      }
      auto v = Convert(it->second, depth + 1);
      if (!v.ok()) return v.status();
      out.entries.push_back(MapEntry{key_text, std::move(*v)});
    }
    if (merges.empty()) return out;
    Value result = Value::Map();
    for (Value& m : merges) {
      for (MapEntry& e : m.entries) result.Put(e.key, std::move(e.value));
    }
    for (MapEntry& e : out.entries) result.Put(e.key, std::move(e.value));
    result.mark = mark;
    return result;
  }

  std::shared_ptr<const std::string> source_;
  size_t nodes_ = 0;
};

}  // namespace

absl::StatusOr<Value> ValueFromYaml(const YAML::Node& node,
                                    const std::shared_ptr<const std::string>& source) {
  try {
    FromYamlConverter converter(source);
    return converter.Convert(node, 0);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(source ? *source : std::string("<yaml>"), ": ", e.what()));
  }
}

YAML::Node ValueToYaml(const Value& v) {
  switch (v.kind) {
    case Value::Kind::kNull:
      return YAML::Node(YAML::NodeType::Null);
    case Value::Kind::kString: {
      YAML::Node n(v.s);
      n.SetTag("!");
      return n;
    }
    case Value::Kind::kList: {
      YAML::Node n(YAML::NodeType::Sequence);
      for (const Value& item : v.items) n.push_back(ValueToYaml(item));
      return n;
    }
    case Value::Kind::kMap: {
      YAML::Node n(YAML::NodeType::Map);
      for (const MapEntry& e : v.entries) n.force_insert(e.key, ValueToYaml(e.value));
      return n;
    }
    default: {
      YAML::Node n(CanonicalScalar(v));
      n.SetTag("?");
      return n;
    }
  }
}

std::string FormatPath(const Path& path) {
  std::string out;
  for (const PathElem& e : path) {
    if (e.is_index()) {
      absl::StrAppend(&out, "[", e.index, "]");
    } else {
      if (!out.empty()) out += '.';
      out += e.key;
    }
  }
  return out;
}

bool IsValidUtf8(absl::string_view s, size_t* bad_offset) {
  size_t i = 0;
  auto fail = [&](size_t at) {
    if (bad_offset != nullptr) *bad_offset = at;
    return false;
  };
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return fail(i);
    }
    if (i + len > s.size()) return fail(i);
    for (size_t k = 1; k < len; ++k) {
      unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return fail(i);
      cp = (cp << 6) | (cc & 0x3F);
    }
    const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return fail(i);
    i += len;
  }
  return true;
}

absl::StatusOr<std::string> ReadSmallFile(const std::string& path, size_t max_bytes) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    int err = errno;
    if (err == ENOENT || err == ENOTDIR) {
      return absl::NotFoundError(absl::StrCat("'", path, "' does not exist"));
    }
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read '", path, "': ", std::strerror(err)));
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat("'", path, "' is not a regular file"));
  }
  if (static_cast<size_t>(st.st_size) > max_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", path, "' is larger than ", max_bytes, " bytes"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read '", path, "': ", std::strerror(errno)));
  }
  std::string text;
  char chunk[65536];
  while (in) {
    in.read(chunk, sizeof(chunk));
    text.append(chunk, static_cast<size_t>(in.gcount()));
    if (text.size() > max_bytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", path, "' is larger than ", max_bytes, " bytes"));
    }
  }
  if (in.bad()) {
    return absl::InvalidArgumentError(absl::StrCat("cannot read '", path, "'"));
  }
  return text;
}

}  // namespace evald::config::internal
