#include "core/config/yaml_io.h"

#include <algorithm>
#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/config/value.h"
#include "core/yaml_budget.h"

namespace evald::config {

using internal::Value;

namespace {

// "name:line:column: <what> (byte 0x..)" for the byte at `offset` of `text`.
absl::Status ByteError(const std::string& text, size_t offset, const std::string& source_name,
                       const std::string& what) {
  size_t line = 1 + static_cast<size_t>(std::count(text.begin(), text.begin() + offset, '\n'));
  size_t line_start = offset == 0 ? std::string::npos : text.rfind('\n', offset - 1);
  size_t column = line_start == std::string::npos ? offset + 1 : offset - line_start;
  char byte[8];
  std::snprintf(byte, sizeof(byte), "0x%02x", static_cast<unsigned char>(text[offset]));
  return absl::InvalidArgumentError(
      absl::StrCat(source_name, ":", line, ":", column, ": ", what, " (byte ", byte, ")"));
}

}  // namespace

absl::StatusOr<YAML::Node> ParseYaml(const std::string& text, const std::string& source_name) {
  size_t bad = 0;
  if (!internal::IsValidUtf8(text, &bad)) {
    return ByteError(text, bad, source_name, "invalid UTF-8");
  }
  // YAML allows no C0 control character but tab, LF and CR. yaml-cpp does not enforce that: a
  // NUL makes it guess a UTF-16/32 encoding and return bytes that are not UTF-8. (DEL stays
  // allowed: yaml-cpp's emitter writes it unescaped, so refusing it would break read-back.)
  for (size_t i = 0; i < text.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 || c == '\t' || c == '\n' || c == '\r') continue;
    return ByteError(text, i, source_name,
                     "control character not allowed in YAML (write it as an escape in a "
                     "double-quoted string)");
  }
  // yaml-cpp builds an alias as a shared node; the expansion happens later, in whoever walks the
  // tree, so the expanded size is bounded here, before anything is built.
  absl::Status within = CheckYamlLimits(text, source_name);
  if (!within.ok()) return within;
  YAML::Node node;
  try {
    node = YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    if (e.mark.line >= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(source_name, ":", e.mark.line + 1, ":", e.mark.column + 1, ": ", e.msg));
    }
    return absl::InvalidArgumentError(absl::StrCat(source_name, ": ", e.msg));
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(source_name, ": ", e.what()));
  }
  // Duplicate keys, unknown tags and runaway aliases are errors here, not surprises later.
  auto checked = internal::ValueFromYaml(node, std::make_shared<const std::string>(source_name));
  if (!checked.ok()) return checked.status();
  return node;
}

namespace {

constexpr int kMaxEmitDepth = 200;

bool HasControlChar(const std::string& s) {
  for (unsigned char c : s) {
    if ((c < 0x20 && c != '\n') || c == 0x7f) return true;
  }
  return false;
}

// A literal block (`|`) reads back exactly only for text ending in one newline whose first
// non-empty line does not start with a space (the parser takes the indentation from it).
bool LiteralSafe(const std::string& s) {
  if (s.size() < 2 || s.back() != '\n' || s[s.size() - 2] == '\n') return false;
  for (unsigned char c : s) {
    if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f) return false;
  }
  size_t first = s.find_first_not_of('\n');
  if (first == std::string::npos) return false;
  return s[first] != ' ' && s[first] != '\t';
}

void EmitString(YAML::Emitter& out, const std::string& s, bool is_key) {
  if (s.find('\n') != std::string::npos) {
    if (!is_key && LiteralSafe(s)) {
      out << YAML::Literal << s;
    } else {
      out << YAML::DoubleQuoted << s;
    }
    return;
  }
  if (s.empty() || internal::MustQuoteString(s) || HasControlChar(s)) {
    out << YAML::DoubleQuoted << s;
    return;
  }
  // yaml-cpp quotes on its own what is not a valid plain scalar (": ", leading "- ", ...).
  out << s;
}

void Emit(YAML::Emitter& out, const YAML::Node& node, int depth) {
  if (depth > kMaxEmitDepth) {
    out << YAML::Null;
    return;
  }
  switch (node.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      out << YAML::Null;
      return;
    case YAML::NodeType::Scalar: {
      Value v = internal::TypeYamlScalar(node);
      if (v.is_string()) {
        EmitString(out, v.s, /*is_key=*/false);
      } else {
        out << internal::CanonicalScalar(v);
      }
      return;
    }
    case YAML::NodeType::Sequence:
      out << YAML::BeginSeq;
      for (const YAML::Node& item : node) Emit(out, item, depth + 1);
      out << YAML::EndSeq;
      return;
    case YAML::NodeType::Map:
      out << YAML::BeginMap;
      for (auto it = node.begin(); it != node.end(); ++it) {
        std::string key = it->first.IsScalar() ? it->first.Scalar() : "null";
        // YAML limits implicit keys to 1024 characters (escapes included); longer ones need the
        // explicit "? key" form or they do not read back.
        if (key.size() > 200) out << YAML::LongKey;
        out << YAML::Key;
        EmitString(out, key, /*is_key=*/true);
        out << YAML::Value;
        Emit(out, it->second, depth + 1);
      }
      out << YAML::EndMap;
      return;
  }
}

}  // namespace

std::string ToYaml(const YAML::Node& node) {
  YAML::Emitter out;
  out.SetIndent(2);
  out.SetNullFormat(YAML::LowerNull);
  out.SetMapFormat(YAML::Block);
  out.SetSeqFormat(YAML::Block);
  Emit(out, node, 0);
  std::string text = out.c_str();
  if (text.empty() || text.back() != '\n') text += '\n';
  return text;
}

}  // namespace evald::config
