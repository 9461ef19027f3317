#include "runner/yaml_util.h"

#include <cmath>
#include <fstream>
#include <limits>
#include <memory>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/config/dotted_override.h"
#include "core/config/value.h"
#include "core/config/yaml_io.h"
#include "core/yaml_budget.h"

namespace evald::runner {
namespace {

using config::internal::Value;

// Every scalar is typed by core's one rule (config::internal::TypeYamlScalar), as the daemon
// types the config it wrote the plan from.
Value Typed(const YAML::Node& node) { return config::internal::TypeYamlScalar(node); }

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

Value JsonToValue(const nlohmann::json& v) {
  switch (v.type()) {
    case nlohmann::json::value_t::object: {
      Value out = Value::Map();  // nlohmann's object keeps its keys sorted and unique
      for (const auto& [key, value] : v.items()) {
        out.entries.push_back(config::internal::MapEntry{key, JsonToValue(value)});
      }
      return out;
    }
    case nlohmann::json::value_t::array: {
      Value out = Value::List();
      for (const auto& item : v) out.items.push_back(JsonToValue(item));
      return out;
    }
    case nlohmann::json::value_t::string:
      return Value::String(v.get<std::string>());
    case nlohmann::json::value_t::boolean:
      return Value::Bool(v.get<bool>());
    case nlohmann::json::value_t::number_integer:
      return Value::Int(v.get<int64_t>());
    case nlohmann::json::value_t::number_unsigned: {
      uint64_t u = v.get<uint64_t>();
      if (u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return Value::Int(static_cast<int64_t>(u));
      }
      return Value::Float(static_cast<double>(u));
    }
    case nlohmann::json::value_t::number_float:
      return Value::Float(v.get<double>());
    default:
      return Value::Null();
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
  if (!node.IsScalar()) return Error(node, path, "expected an integer, got " + Describe(node));
  Value v = Typed(node);
  if (v.kind != Value::Kind::kInt) {
    return Error(node, path, "expected an integer, got " + Describe(node));
  }
  return v.i;
}

absl::StatusOr<std::optional<double>> YamlDoc::OptDouble(const YAML::Node& node,
                                                         const std::string& path) const {
  if (!node.IsDefined() || node.IsNull()) return std::nullopt;
  if (!node.IsScalar()) return Error(node, path, "expected a number, got " + Describe(node));
  Value v = Typed(node);
  double d = v.kind == Value::Kind::kInt ? static_cast<double>(v.i) : v.f;
  if ((v.kind != Value::Kind::kInt && v.kind != Value::Kind::kFloat) || !std::isfinite(d)) {
    return Error(node, path, "expected a number, got " + Describe(node));
  }
  return d;
}

absl::StatusOr<std::optional<bool>> YamlDoc::OptBool(const YAML::Node& node,
                                                     const std::string& path) const {
  if (!node.IsDefined() || node.IsNull()) return std::nullopt;
  if (node.IsScalar()) {
    Value v = Typed(node);
    if (v.kind == Value::Kind::kBool) return v.b;
  }
  return Error(node, path, "expected true or false, got " + Describe(node));
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
      Value v = Typed(node);
      switch (v.kind) {
        case Value::Kind::kNull:
          return nullptr;
        case Value::Kind::kBool:
          return v.b;
        case Value::Kind::kInt:
          return v.i;
        case Value::Kind::kFloat:
          return v.f;
        default:
          return v.s;
      }
    }
    default:
      return nullptr;
  }
}

absl::Status ApplyOverrides(YamlDoc& doc, const std::vector<std::string>& assignments) {
  if (assignments.empty()) return absl::OkStatus();
  YAML::Node& root = doc.mutable_root();
  Value tree = Value::Map();
  if (root.IsDefined() && !root.IsNull()) {
    auto converted =
        config::internal::ValueFromYaml(root, std::make_shared<std::string>(doc.name()));
    if (!converted.ok()) return converted.status();
    tree = std::move(*converted);
  }
  for (const std::string& a : assignments) {
    absl::Status st = config::ApplyDottedAssignment(tree, a);
    if (!st.ok()) return st;
  }
  root = config::internal::ValueToYaml(tree);
  return absl::OkStatus();
}

std::string EmitYaml(const nlohmann::json& value) {
  return config::ToYaml(config::internal::ValueToYaml(JsonToValue(value)));
}

}  // namespace evald::runner
