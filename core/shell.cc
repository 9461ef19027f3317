#include "core/shell.h"

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace evald {
namespace {

bool IsSafeShellChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
         absl::string_view("_-./:=@%+,").find(c) != absl::string_view::npos;
}

bool IsControl(char c) {
  const unsigned char u = static_cast<unsigned char>(c);
  return u < 0x20 || u == 0x7f;
}

// `NAME=...`: in command position bash takes it as an assignment, not as the word itself.
bool LooksLikeAssignment(absl::string_view word) {
  const size_t eq = word.find('=');
  return eq != absl::string_view::npos && eq > 0 && IsEnvName(word.substr(0, eq));
}

}  // namespace

std::string ShellQuote(absl::string_view word) {
  bool safe = !word.empty() && !LooksLikeAssignment(word);
  bool control = false;
  for (char c : word) {
    safe = safe && IsSafeShellChar(c);
    control = control || IsControl(c);
  }
  if (safe) return std::string(word);
  std::string out;
  if (!control) {
    out = "'";
    for (char c : word) {
      if (c == '\'') {
        out += "'\\''";
      } else {
        out += c;
      }
    }
    out += "'";
    return out;
  }
  // Bytes >= 0x80 are escaped too: in a multibyte locale a lead byte must not pair with the
  // backslash of a following \' and end the quote early.
  out = "$'";
  for (char c : word) {
    const unsigned char u = static_cast<unsigned char>(c);
    switch (c) {
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\'':
        out += "\\'";
        break;
      default:
        if (IsControl(c) || u >= 0x80) {
          absl::StrAppendFormat(&out, "\\x%02x", u);
        } else {
          out += c;
        }
    }
  }
  out += "'";
  return out;
}

absl::Status CheckShellValue(absl::string_view value, absl::string_view what) {
  if (value.find('\0') == absl::string_view::npos) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(what, " contains a NUL byte, which a shell script cannot carry"));
}

bool IsEnvName(absl::string_view name) {
  if (name.empty() || absl::ascii_isdigit(static_cast<unsigned char>(name[0]))) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  }
  return true;
}

absl::Status CheckEnvName(absl::string_view name, absl::string_view what) {
  if (IsEnvName(name)) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(what, ": '", absl::CHexEscape(name),
                   "' is not a valid environment variable name ([A-Za-z_][A-Za-z0-9_]*)"));
}

}  // namespace evald
