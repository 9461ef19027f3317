#include "runner/py_regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <unicode/locid.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>
#include <unicode/utf8.h>

#include <algorithm>
#include <cctype>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace evald::runner {
namespace {

// Backtracking budget per search: far above what any sane pattern needs on a long response, far
// below what would stall a run (catastrophic patterns fail fast instead of running for minutes).
constexpr uint32_t kMatchLimit = 5'000'000;
constexpr uint32_t kDepthLimit = 100'000;

// Python's Unicode `\s` is exactly the code points str.isspace() accepts. PCRE2's UCP `\s` is
// not (it lacks U+001C..U+001F and NEL U+0085 and has U+180E), so every `\s`, and an `\S` outside
// a class, is spelled out as this list (an `\S` inside a class is left to PCRE2). Written with
// ALT_BSUX escapes.
constexpr char kPySpaces[] =
    "\\t-\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";

// Python-only syntax rewritten into PCRE2's: `\Z` (absolute end: PCRE2 `\z`), `{,n}` (PCRE2
// 10.42 reads it as literal text; Python as {0,n}), Unicode `\s` (above) and the global flags
// Python allows at the start that PCRE2 lacks: `u` (Unicode, already on) is dropped and `a`
// (ASCII classes) turns UCP off (`*ascii`).
std::string Translate(absl::string_view p, bool* ascii) {
  std::string out;
  // Leading global flag groups such as (?a), (?iu), (?s)(?m).
  while (p.size() >= 4 && p[0] == '(' && p[1] == '?') {
    size_t close = p.find(')');
    if (close == absl::string_view::npos) break;
    absl::string_view letters = p.substr(2, close - 2);
    if (letters.empty() || letters.find_first_not_of("aiLmsux") != absl::string_view::npos) break;
    std::string kept;
    for (char c : letters) {
      if (c == 'a') {
        *ascii = true;
      } else if (c != 'u') {
        kept += c;
      }
    }
    if (!kept.empty()) absl::StrAppend(&out, "(?", kept, ")");
    p.remove_prefix(close + 1);
  }
  out.reserve(p.size() + 4);
  bool in_class = false;
  for (size_t i = 0; i < p.size(); ++i) {
    char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      char n = p[i + 1];
      ++i;
      if (!*ascii && n == 's') {
        out += in_class ? std::string(kPySpaces) : absl::StrCat("[", kPySpaces, "]");
        continue;
      }
      if (!*ascii && n == 'S' && !in_class) {
        absl::StrAppend(&out, "[^", kPySpaces, "]");
        continue;
      }
      out += '\\';
      out += (n == 'Z' && !in_class) ? 'z' : n;
      continue;
    }
    if (in_class) {
      if (c == ']') in_class = false;
      out += c;
      continue;
    }
    if (c == '[') {
      in_class = true;
      out += c;
      // A ']' first in a class (after an optional '^') is literal.
      if (i + 1 < p.size() && p[i + 1] == '^') out += p[++i];
      if (i + 1 < p.size() && p[i + 1] == ']') out += p[++i];
      continue;
    }
    if (c == '{' && i + 1 < p.size() && p[i + 1] == ',') {
      size_t j = i + 2;
      while (j < p.size() && p[j] >= '0' && p[j] <= '9') ++j;
      if (j > i + 2 && j < p.size() && p[j] == '}') {
        out += "{0";
        continue;
      }
    }
    out += c;
  }
  return out;
}

struct CodeFree {
  void operator()(pcre2_code* c) const { pcre2_code_free(c); }
};
struct ContextFree {
  void operator()(pcre2_match_context* c) const { pcre2_match_context_free(c); }
};

}  // namespace

struct PyRegex::Code {
  std::unique_ptr<pcre2_code, CodeFree> code;
  std::unique_ptr<pcre2_match_context, ContextFree> context;
  bool jit = false;
};

absl::StatusOr<PyRegex> PyRegex::Compile(absl::string_view pattern, bool ignore_case) {
  bool ascii = false;
  const std::string translated = Translate(pattern, &ascii);
  uint32_t options = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | PCRE2_ALT_BSUX;
  if (!ascii) options |= PCRE2_UCP;
  if (ignore_case) options |= PCRE2_CASELESS;
  int error = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()),
                                   translated.size(), options, &error, &offset, nullptr);
  if (code == nullptr) {
    PCRE2_UCHAR buf[256];
    pcre2_get_error_message(error, buf, sizeof(buf));
    return absl::InvalidArgumentError(absl::StrCat("regex '", pattern,
                                                   "' does not compile at offset ", offset, ": ",
                                                   reinterpret_cast<const char*>(buf)));
  }
  auto c = std::make_shared<Code>();
  c->code.reset(code);
  c->jit = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
  c->context.reset(pcre2_match_context_create(nullptr));
  pcre2_set_match_limit(c->context.get(), kMatchLimit);
  pcre2_set_depth_limit(c->context.get(), kDepthLimit);
  uint32_t groups = 0;
  pcre2_pattern_info(code, PCRE2_INFO_CAPTURECOUNT, &groups);
  PyRegex re;
  re.pattern_ = std::string(pattern);
  re.groups_ = static_cast<int>(groups);
  re.code_ = std::move(c);
  return re;
}

std::string PyRegex::Escape(absl::string_view text) {
  // re.escape escapes every character that is special in a pattern; escaping every ASCII
  // non-alphanumeric is equivalent and also valid for PCRE2.
  std::string out;
  for (char c : text) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x80 && !std::isalnum(u) && c != '_') {
      if (c == '\n') {
        out += "\\n";
        continue;
      }
      if (c == '\0') {
        out += "\\x00";
        continue;
      }
      out += '\\';
    }
    out += c;
  }
  return out;
}

namespace {

using MatchData = std::unique_ptr<pcre2_match_data, void (*)(pcre2_match_data*)>;

// Scratch for one Search/FindAll call (FindAll reuses it for every match).
MatchData NewMatchData(const pcre2_code* code) {
  return MatchData(pcre2_match_data_create_from_pattern(code, nullptr), pcre2_match_data_free);
}

// One pcre2_match at `pos` with `options`; fills `m` on success. False on no match or on an
// exhausted budget (which counts as no match).
bool MatchAt(const pcre2_code* code, pcre2_match_context* ctx, bool jit, pcre2_match_data* md,
             absl::string_view text, size_t pos, uint32_t options, int groups, PyRegex::Match* m) {
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  int rc = pcre2_match(code, subject, text.size(), pos, options, md, ctx);
  if (rc == PCRE2_ERROR_JIT_STACKLIMIT && jit) {
    rc = pcre2_match(code, subject, text.size(), pos, options | PCRE2_NO_JIT, md, ctx);
  }
  if (rc < 0) return false;
  const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
  m->start = ov[0];
  m->end = ov[1];
  m->groups.assign(groups + 1, "");
  m->matched.assign(groups + 1, false);
  for (int g = 0; g <= groups && g < rc; ++g) {
    if (ov[2 * g] == PCRE2_UNSET) continue;
    m->groups[g] = std::string(text.substr(ov[2 * g], ov[2 * g + 1] - ov[2 * g]));
    m->matched[g] = true;
  }
  return true;
}

size_t NextChar(absl::string_view text, size_t pos) {
  ++pos;
  while (pos < text.size() && (static_cast<unsigned char>(text[pos]) & 0xC0) == 0x80) ++pos;
  return pos;
}

}  // namespace

std::optional<PyRegex::Match> PyRegex::Search(absl::string_view text) const {
  Match m;
  MatchData md = NewMatchData(code_->code.get());
  if (!MatchAt(code_->code.get(), code_->context.get(), code_->jit, md.get(), text, 0, 0, groups_,
               &m)) {
    return std::nullopt;
  }
  return m;
}

std::vector<PyRegex::Match> PyRegex::FindAll(absl::string_view text) const {
  std::vector<Match> out;
  MatchData md = NewMatchData(code_->code.get());
  size_t pos = 0;
  bool after_empty = false;
  while (pos <= text.size()) {
    Match m;
    if (after_empty) {
      // Python: after an empty match the next one must not be empty at the same position.
      if (MatchAt(code_->code.get(), code_->context.get(), code_->jit, md.get(), text, pos,
                  PCRE2_NOTEMPTY_ATSTART | PCRE2_ANCHORED, groups_, &m)) {
        after_empty = false;
        pos = m.end;
        out.push_back(std::move(m));
        continue;
      }
      if (pos >= text.size()) break;
      pos = NextChar(text, pos);
      after_empty = false;
    }
    if (!MatchAt(code_->code.get(), code_->context.get(), code_->jit, md.get(), text, pos, 0,
                 groups_, &m)) {
      break;
    }
    after_empty = m.end == m.start;
    pos = m.end;
    out.push_back(std::move(m));
  }
  return out;
}

std::string PyRegex::Sub(absl::string_view text, absl::string_view replacement) const {
  std::string out;
  size_t last = 0;
  for (const Match& m : FindAll(text)) {
    absl::StrAppend(&out, text.substr(last, m.start - last), replacement);
    last = m.end;
  }
  absl::StrAppend(&out, text.substr(last));
  return out;
}

std::vector<std::string> PyRegex::Split(absl::string_view text) const {
  std::vector<std::string> out;
  size_t last = 0;
  for (const Match& m : FindAll(text)) {
    out.emplace_back(text.substr(last, m.start - last));
    last = m.end;
  }
  out.emplace_back(text.substr(last));
  return out;
}

namespace {

// Decodes one UTF-8 code point at `i`; invalid bytes come back as -1 with length 1.
int32_t Decode(absl::string_view s, size_t i, size_t* len) {
  const unsigned char c = static_cast<unsigned char>(s[i]);
  int n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
  if (n == 0 || i + n > s.size()) {
    *len = 1;
    return -1;
  }
  int32_t cp = n == 1 ? c : n == 2 ? (c & 0x1F) : n == 3 ? (c & 0x0F) : (c & 0x07);
  for (int k = 1; k < n; ++k) {
    const unsigned char cc = static_cast<unsigned char>(s[i + k]);
    if ((cc & 0xC0) != 0x80) {
      *len = 1;
      return -1;
    }
    cp = (cp << 6) | (cc & 0x3F);
  }
  *len = n;
  return cp;
}

// Python's str.isspace().
bool IsPySpace(int32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 ||
         cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
         cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

}  // namespace

std::string PyLStrip(absl::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    size_t len = 1;
    int32_t cp = Decode(s, i, &len);
    if (cp < 0 || !IsPySpace(cp)) break;
    i += len;
  }
  return std::string(s.substr(i));
}

std::string PyStrip(absl::string_view s) {
  std::string left = PyLStrip(s);
  // Find the end of the last non-space code point.
  size_t end = 0;
  for (size_t i = 0; i < left.size();) {
    size_t len = 1;
    int32_t cp = Decode(left, i, &len);
    i += len;
    if (cp < 0 || !IsPySpace(cp)) end = i;
  }
  left.resize(end);
  return left;
}

namespace {

// Python's str.lower()/upper() are Unicode's full case mappings with no locale: SpecialCasing's
// unconditional rules (`ß` -> `SS`, `İ` -> `i̇`) and Final_Sigma, which is what ICU's root locale
// applies. Each run of well-formed UTF-8 is mapped; ill-formed bytes (which a Python str cannot
// hold) pass through unchanged. ASCII runs take a fast path.
std::string MapCase(absl::string_view s, bool upper) {
  std::string out;
  out.reserve(s.size());
  auto map_run = [&](absl::string_view run) {
    if (run.empty()) return;
    bool ascii = true;
    for (char c : run) ascii = ascii && static_cast<unsigned char>(c) < 0x80;
    if (ascii) {
      out += upper ? absl::AsciiStrToUpper(run) : absl::AsciiStrToLower(run);
      return;
    }
    icu::UnicodeString text = icu::UnicodeString::fromUTF8(
        icu::StringPiece(run.data(), static_cast<int32_t>(run.size())));
    if (upper) {
      text.toUpper(icu::Locale::getRoot());
    } else {
      text.toLower(icu::Locale::getRoot());
    }
    text.toUTF8String(out);
  };
  // ICU indexes with int32_t; a larger text is mapped in pieces cut at code point boundaries.
  constexpr size_t kPiece = size_t{1} << 30;
  size_t run_start = 0;
  size_t i = 0;
  while (i < s.size()) {
    const size_t start = i;
    const int32_t n = static_cast<int32_t>(std::min(s.size() - i, size_t{4}));
    int32_t k = 0;
    UChar32 c;
    U8_NEXT(reinterpret_cast<const uint8_t*>(s.data() + i), k, n, c);
    i += static_cast<size_t>(k);
    if (c < 0) {
      map_run(s.substr(run_start, start - run_start));
      out.append(s.data() + start, i - start);
      run_start = i;
    } else if (i - run_start >= kPiece) {
      map_run(s.substr(run_start, i - run_start));
      run_start = i;
    }
  }
  map_run(s.substr(run_start));
  return out;
}

// Python's str.islower()/isupper(): false on any titlecase letter or any letter of the other case
// (Unicode's Lowercase/Uppercase properties), and true only with at least one of the asked case.
bool CaseCheck(absl::string_view s, UProperty want, UProperty other) {
  bool seen = false;
  size_t i = 0;
  while (i < s.size()) {
    const int32_t n = static_cast<int32_t>(std::min(s.size() - i, size_t{4}));
    int32_t k = 0;
    UChar32 c;
    U8_NEXT(reinterpret_cast<const uint8_t*>(s.data() + i), k, n, c);
    i += static_cast<size_t>(k);
    if (c < 0) continue;
    if (u_hasBinaryProperty(c, other) || u_charType(c) == U_TITLECASE_LETTER) return false;
    seen = seen || u_hasBinaryProperty(c, want);
  }
  return seen;
}

}  // namespace

std::string PyLower(absl::string_view s) { return MapCase(s, /*upper=*/false); }
std::string PyUpper(absl::string_view s) { return MapCase(s, /*upper=*/true); }
bool PyIsLower(absl::string_view s) { return CaseCheck(s, UCHAR_LOWERCASE, UCHAR_UPPERCASE); }
bool PyIsUpper(absl::string_view s) { return CaseCheck(s, UCHAR_UPPERCASE, UCHAR_LOWERCASE); }

}  // namespace evald::runner
