#include "runner/yaml_util.h"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/yaml_budget.h"

namespace evald::runner {
namespace {

bool IsQuoted(const YAML::Node& node) { return node.Tag() == "!"; }

bool IsNullScalar(const std::string& s) {
  return s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL";
}

std::optional<bool> ParseBool(const std::string& s) {
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  return std::nullopt;
}

std::string Describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Null:
      return "null";
    case YAML::NodeType::Scalar:
      return absl::StrCat("'", node.Scalar(), "'");
    default:
      return "nothing";
  }
}

// Shortest decimal text that reads back as exactly `v`.
std::string FormatDouble(double v) {
  if (std::isnan(v)) return ".nan";
  if (std::isinf(v)) return v > 0 ? ".inf" : "-.inf";
  char buf[40];
  for (int precision = 6; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof(buf), "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  std::string out = buf;
  // Keep it a float on read-back ("1" would become an int).
  if (out.find_first_of(".eEn") == std::string::npos) out += ".0";
  return out;
}

// True when a plain (unquoted) scalar with this text would not read back as the same string.
bool NeedsQuotes(const std::string& s) {
  if (IsNullScalar(s) || ParseBool(s).has_value()) return true;
  static const char* kYaml11Words[] = {"yes", "no",  "on",  "off", "y",  "n",   "Yes", "No",
                                       "On",  "Off", "YES", "NO",  "ON", "OFF", "Y",   "N"};
  for (const char* w : kYaml11Words) {
    if (s == w) return true;
  }
  YAML::Node probe(s);
  int64_t i;
  double d;
  if (YAML::convert<int64_t>::decode(probe, i) || YAML::convert<double>::decode(probe, d)) {
    return true;
  }
  if (s.front() == ' ' || s.back() == ' ') return true;
  return false;
}

void EmitJson(YAML::Emitter& out, const nlohmann::json& v) {
  switch (v.type()) {
    case nlohmann::json::value_t::object:
      out << YAML::BeginMap;
      for (const auto& [key, value] : v.items()) {
        out << YAML::Key;
        if (NeedsQuotes(key)) {
          out << YAML::DoubleQuoted << key;
        } else {
          out << key;
        }
        out << YAML::Value;
        EmitJson(out, value);
      }
      out << YAML::EndMap;
      break;
    case nlohmann::json::value_t::array:
      out << YAML::BeginSeq;
      for (const auto& item : v) EmitJson(out, item);
      out << YAML::EndSeq;
      break;
    case nlohmann::json::value_t::string: {
      const auto& s = v.get_ref<const std::string&>();
      if (NeedsQuotes(s)) {
        out << YAML::DoubleQuoted << s;
      } else {
        out << s;
      }
      break;
    }
    case nlohmann::json::value_t::boolean:
      out << (v.get<bool>() ? "true" : "false");
      break;
    case nlohmann::json::value_t::number_integer:
      out << v.get<int64_t>();
      break;
    case nlohmann::json::value_t::number_unsigned:
      out << v.get<uint64_t>();
      break;
    case nlohmann::json::value_t::number_float:
      out << FormatDouble(v.get<double>());
      break;
    default:
      out << YAML::Null;
      break;
  }
}

}  // namespace

absl::StatusOr<YamlDoc> YamlDoc::Load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open the file"));
  std::stringstream buf;
  buf << in.rdbuf();
  return Parse(buf.str(), path);
}

absl::StatusOr<YamlDoc> YamlDoc::Parse(const std::string& text, const std::string& name) {
  // Aliases expand when the tree is walked (YamlToJson); bound that before building it.
  absl::Status within = CheckYamlLimits(text, name);
  if (!within.ok()) return within;
  try {
    YAML::Node root = YAML::Load(text);
    return YamlDoc(root, name);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(name, ":", e.mark.line + 1, ":",
                                                   e.mark.column + 1, ": invalid YAML: ", e.msg));
  }
}

std::string YamlDoc::Where(const YAML::Node& node, const std::string& path) const {
  if (node.IsDefined() && node.Mark().line >= 0) {
    return absl::StrCat(name_, ":", node.Mark().line + 1, ": ", path);
  }
  return absl::StrCat(name_, ": ", path);
}

absl::Status YamlDoc::Error(const YAML::Node& node, const std::string& path,
                            const std::string& message) const {
  return absl::InvalidArgumentError(absl::StrCat(Where(node, path), ": ", message));
}

YAML::Node YamlDoc::Child(const YAML::Node& node, const std::string& dotted) {
  YAML::Node cur = node;
  for (absl::string_view part : absl::StrSplit(dotted, '.')) {
    if (!cur.IsMap()) return YAML::Node(YAML::NodeType::Undefined);
    const YAML::Node& const_cur = cur;  // const access never inserts a key
    YAML::Node next = const_cur[std::string(part)];
    if (!next.IsDefined()) return YAML::Node(YAML::NodeType::Undefined);
    cur.reset(next);
  }
  return cur;
}

absl::StatusOr<std::optional<std::string>> YamlDoc::OptString(const YAML::Node& node,
                                                              const std::string& path) const {
  if (!node.IsDefined() || node.IsNull()) return std::nullopt;
  if (!node.IsScalar()) return Error(node, path, "expected a string, got " + Describe(node));
  return node.Scalar();
}

absl::StatusOr<std::optional<int64_t>> YamlDoc::OptInt(const YAML::Node& node,
                                                       const std::string& path) const {
  if (!node.IsDefined() || node.IsNull()) return std::nullopt;
  int64_t v = 0;
  if (!node.IsScalar() || IsQuoted(node) || !YAML::convert<int64_t>::decode(node, v)) {
    return Error(node, path, "expected an integer, got " + Describe(node));
  }
  return v;
}

absl::StatusOr<std::optional<double>> YamlDoc::OptDouble(const YAML::Node& node,
                                                         const std::string& path) const {
  if (!node.IsDefined() || node.IsNull()) return std::nullopt;
  double v = 0;
  if (!node.IsScalar() || IsQuoted(node) || !YAML::convert<double>::decode(node, v) ||
      !std::isfinite(v)) {
    return Error(node, path, "expected a number, got " + Describe(node));
  }
  return v;
}

absl::StatusOr<std::optional<bool>> YamlDoc::OptBool(const YAML::Node& node,
                                                     const std::string& path) const {
  if (!node.IsDefined() || node.IsNull()) return std::nullopt;
  std::optional<bool> v;
  if (node.IsScalar() && !IsQuoted(node)) v = ParseBool(node.Scalar());
  if (!v) return Error(node, path, "expected true or false, got " + Describe(node));
  return v;
}

absl::StatusOr<std::vector<std::string>> YamlDoc::StringList(const YAML::Node& node,
                                                             const std::string& path) const {
  std::vector<std::string> out;
  if (!node.IsDefined() || node.IsNull()) return out;
  if (!node.IsSequence()) return Error(node, path, "expected a list, got " + Describe(node));
  for (size_t i = 0; i < node.size(); ++i) {
    const YAML::Node item = node[i];
    if (!item.IsScalar()) {
      return Error(item, absl::StrCat(path, "[", i, "]"),
                   "expected a string, got " + Describe(item));
    }
    out.push_back(item.Scalar());
  }
  return out;
}

absl::Status YamlDoc::ExpectMap(const YAML::Node& node, const std::string& path) const {
  if (!node.IsDefined() || node.IsNull() || node.IsMap()) return absl::OkStatus();
  return Error(node, path, "expected a map, got " + Describe(node));
}

nlohmann::json YamlToJson(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: {
      nlohmann::json obj = nlohmann::json::object();
      for (const auto& kv : node) obj[kv.first.Scalar()] = YamlToJson(kv.second);
      return obj;
    }
    case YAML::NodeType::Sequence: {
      nlohmann::json arr = nlohmann::json::array();
      for (const auto& item : node) arr.push_back(YamlToJson(item));
      return arr;
    }
    case YAML::NodeType::Scalar: {
      const std::string& s = node.Scalar();
      if (IsQuoted(node)) return s;
      if (IsNullScalar(s)) return nullptr;
      if (auto b = ParseBool(s)) return *b;
      int64_t i;
      if (YAML::convert<int64_t>::decode(node, i)) return i;
      double d;
      if (YAML::convert<double>::decode(node, d)) return d;
      return s;
    }
    default:
      return nullptr;
  }
}

absl::Status ApplyOverride(YAML::Node& root, const std::string& assignment) {
  size_t eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("override '", assignment, "': expected key.path=value"));
  }
  std::string key = assignment.substr(0, eq);
  YAML::Node value;
  try {
    value = YAML::Load(assignment.substr(eq + 1));
  } catch (const YAML::Exception&) {
    value = YAML::Node(assignment.substr(eq + 1));
  }
  if (!root.IsDefined() || root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
  std::vector<std::string> parts = absl::StrSplit(key, '.');
  YAML::Node cur = root;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    if (parts[i].empty()) {
      return absl::InvalidArgumentError(absl::StrCat("override '", key, "': empty key part"));
    }
    YAML::Node next = cur[parts[i]];
    if (!next.IsDefined() || next.IsNull()) {
      cur[parts[i]] = YAML::Node(YAML::NodeType::Map);
    } else if (!next.IsMap()) {
      return absl::InvalidArgumentError(
          absl::StrCat("override '", key, "': '", parts[i], "' is not a map"));
    }
    YAML::Node child = cur[parts[i]];
    cur.reset(child);
  }
  cur[parts.back()] = value;
  return absl::OkStatus();
}

std::string EmitYaml(const nlohmann::json& value) {
  YAML::Emitter out;
  out.SetIndent(2);
  EmitJson(out, value);
  std::string text = out.c_str();
  text += "\n";
  return text;
}

}  // namespace evald::runner
