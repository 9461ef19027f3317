// File: value.h
//
// The typed config tree that composition, overrides, interpolation and validation work on, and
// the one YAML scalar rule shared by evald and evalrun (library evald_config_values). yaml-cpp
// keeps every scalar as text, so this layer types scalars the way the reference does (PyYAML's
// YAML 1.1 resolvers plus OmegaConf's float rule: `yes` is a bool, `0755` an octal int, `1e-5` a
// float, `01:00:00` a string), remembers where each value came from for error messages, and renders
// values as Python's str() does (the reference builds command lines with it). Conversions to and
// from YAML::Node live here too.
//
//   EVALD_ASSIGN_OR_RETURN(Value v, ValueFromYaml(node, "x.yaml"));
//   const Value* port = v.Get("deployment") ? v.Get("deployment")->Get("port") : nullptr;
//   YAML::Node out = ValueToYaml(v);
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "yaml-cpp/yaml.h"

namespace evald::config::internal {

// Where a value was written: "file:line:column" (1-based); empty for values made by code.
struct Mark {
  std::shared_ptr<const std::string> source;
  int line = 0;
  int column = 0;
  std::string ToString() const;
};

struct MapEntry;

struct Value {
  enum class Kind { kNull, kBool, kInt, kFloat, kString, kList, kMap };

  Kind kind = Kind::kNull;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;
  std::vector<Value> items;       // kList
  std::vector<MapEntry> entries;  // kMap, in insertion order
  Mark mark;

  static Value Null();
  static Value Bool(bool v);
  static Value Int(int64_t v);
  static Value Float(double v);
  static Value String(std::string v);
  static Value List();
  static Value Map();

  bool is_null() const { return kind == Kind::kNull; }
  bool is_string() const { return kind == Kind::kString; }
  bool is_map() const { return kind == Kind::kMap; }
  bool is_list() const { return kind == Kind::kList; }
  bool is_container() const { return is_map() || is_list(); }
  // The OmegaConf MISSING marker `???`.
  bool IsMissing() const { return kind == Kind::kString && s == "???"; }
  // A string holding an (unescaped or escaped) `${`.
  bool HasInterpolation() const;

  const Value* Get(absl::string_view key) const;
  Value* Get(absl::string_view key);
  // Replaces the value of `key` in place, or appends it.
  Value& Put(const std::string& key, Value v);
  bool Erase(absl::string_view key);
};

struct MapEntry {
  std::string key;
  Value value;
};

// Python-like equality (1 == 1.0 == True), deep for containers.
bool Equal(const Value& a, const Value& b);

// The one scalar typing rule of evald and evalrun (docs/configuration.md): types a plain
// (unquoted) YAML scalar as the reference's loader does.
Value TypePlainScalar(const std::string& text);

// A yaml-cpp scalar node typed by the same rule: quoted scalars (tag "!") and `!!str` are strings,
// `!!float 5` is a float, everything else is TypePlainScalar of its text.
Value TypeYamlScalar(const YAML::Node& node);

// True when the string `text` must be quoted to read back as a string: under the rule above, under
// any YAML 1.1 reader (PyYAML's timestamps, `y`/`n`, `=`, `<<`, ints beyond int64) and under a YAML
// 1.2 reader (`0o17`, `-.5`). Quoting more than needed is harmless; less is a type change.
bool MustQuoteString(const std::string& text);

// A float as PyYAML writes it, so every YAML 1.1 reader gets a float back: repr() with ".0" added
// before a bare exponent ("1.0e-05", "1.0e+16", "0.6"), ".inf", "-.inf", ".nan".
std::string YamlFloat(double v);

// Python's repr() of a float ("1e-05", "0.6", "3600.0", "inf").
std::string PyFloatRepr(double v);
// Python's str() and repr() of a value (None, True, 1e-05, ['a', 1], {'k': 'v'}).
std::string PyStr(const Value& v);
std::string PyRepr(const Value& v);
// The type name used in messages ("a string", "a mapping", ...).
std::string KindName(const Value& v);

// The scalar text written to YAML for a typed non-string value ("null", "true", "493", "1.0e-05",
// ".inf").
std::string CanonicalScalar(const Value& v);

// yaml-cpp node -> Value. Scalars quoted in the source (tag "!") are strings; plain ones are typed
// with TypePlainScalar; `!!str`, `!!int`, `!!float`, `!!bool`, `!!null` are honoured; `<<` merge
// keys are expanded. Duplicate keys and other tags are errors naming source:line:column.
absl::StatusOr<Value> ValueFromYaml(const YAML::Node& node,
                                    const std::shared_ptr<const std::string>& source);
// Value -> yaml-cpp node: typed scalars in canonical text with tag "?", strings with tag "!".
YAML::Node ValueToYaml(const Value& v);

// One step of a key path: a map key or a list index.
struct PathElem {
  std::string key;
  int64_t index = -1;  // >= 0 for a list index
  bool is_index() const { return index >= 0; }
};
using Path = std::vector<PathElem>;
// "a.b[2].c"
std::string FormatPath(const Path& path);

// Whether `s` is well-formed UTF-8; otherwise `*bad_offset` is the first bad byte. YAML text
// must be Unicode, and yaml-cpp would silently turn bad bytes into U+FFFD when printing.
bool IsValidUtf8(absl::string_view s, size_t* bad_offset = nullptr);

// Reads a whole regular file (at most `max_bytes`); errors name the path.
absl::StatusOr<std::string> ReadSmallFile(const std::string& path, size_t max_bytes = 16 << 20);

}  // namespace evald::config::internal
