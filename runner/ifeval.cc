#include "runner/ifeval.h"

#include <re2/re2.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <optional>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/status_macros.h"
#include "runner/langdetect.h"
#include "runner/nltk_tokenize.h"
#include "runner/py_regex.h"

namespace evald::runner {
namespace {

using re2::RE2;
using CheckFn = std::function<bool(absl::string_view)>;

re2::StringPiece Piece(absl::string_view s) { return re2::StringPiece(s.data(), s.size()); }

std::vector<std::string> AllMatches(const RE2& re, absl::string_view text) {
  const re2::StringPiece sp = Piece(text);
  re2::StringPiece m;
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= text.size() && re.Match(sp, pos, text.size(), RE2::UNANCHORED, &m, 1)) {
    out.emplace_back(m.data(), m.size());
    size_t end = static_cast<size_t>(m.data() - sp.data()) + m.size();
    pos = end > pos ? end : pos + 1;
  }
  return out;
}

std::string Lower(absl::string_view s) { return absl::AsciiStrToLower(s); }

// A pattern the reference builds from a kwarg without escaping it, with Python `re` semantics;
// when the kwarg is not a valid pattern (the reference would raise), its escaped form.
std::shared_ptr<PyRegex> UserRegex(const std::string& pattern, const std::string& escaped,
                                   bool ignore_case) {
  auto re = PyRegex::Compile(pattern, ignore_case);
  if (!re.ok()) re = PyRegex::Compile(escaped, ignore_case);
  return std::make_shared<PyRegex>(*std::move(re));
}

std::string StripChars(absl::string_view s, absl::string_view chars) {
  size_t b = s.find_first_not_of(chars);
  if (b == absl::string_view::npos) return "";
  size_t e = s.find_last_not_of(chars);
  return std::string(s.substr(b, e - b + 1));
}

// Python str.strip(): Unicode whitespace.
std::string Strip(absl::string_view s) { return PyStrip(s); }

// Python's str.split() without arguments: runs of Unicode whitespace separate, none are kept.
std::vector<std::string> PySplit(absl::string_view s) {
  std::vector<std::string> out;
  static const PyRegex* const kNonSpace = new PyRegex(PyRegex::Compile(R"(\S+)").value());
  for (const auto& m : kNonSpace->FindAll(s)) out.push_back(m.groups[0]);
  return out;
}

// The end of the JSON number starting at `i` (Python json's NUMBER_RE,
// -?(0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?), or `i` when none starts there.
size_t JsonNumberEnd(absl::string_view t, size_t i) {
  auto digit = [&](size_t k) { return k < t.size() && absl::ascii_isdigit(t[k]); };
  size_t j = i;
  if (j < t.size() && t[j] == '-') ++j;
  if (!digit(j)) return i;
  if (t[j] == '0') {
    ++j;
  } else {
    while (digit(j)) ++j;
  }
  if (j < t.size() && t[j] == '.' && digit(j + 1)) {
    j += 2;
    while (digit(j)) ++j;
  }
  if (j < t.size() && (t[j] == 'e' || t[j] == 'E')) {
    size_t k = j + 1;
    if (k < t.size() && (t[k] == '+' || t[k] == '-')) ++k;
    if (digit(k)) {
      while (digit(k)) ++k;
      j = k;
    }
  }
  return j;
}

// Whether Python's json.loads accepts `text`. Its grammar is JSON's, plus NaN, Infinity and
// -Infinity as values, and any number is accepted however large (1e400 is inf). Outside strings
// every number and constant is swapped for a space-padded 0 (the padding keeps "1NaN" and "01"
// invalid, as Python has them), so nlohmann checks the syntax without refusing big numbers.
bool PyJsonLoads(absl::string_view text) {
  std::string v;
  v.reserve(text.size());
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      v += c;
      if (c == '\\' && i + 1 < text.size()) {
        v += text[++i];
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') in_string = true;
    const absl::string_view rest = text.substr(i);
    size_t skip = 0;
    if (absl::StartsWith(rest, "-Infinity")) {
      skip = 9;
    } else if (absl::StartsWith(rest, "Infinity")) {
      skip = 8;
    } else if (absl::StartsWith(rest, "NaN")) {
      skip = 3;
    } else {
      skip = JsonNumberEnd(text, i) - i;
    }
    if (skip == 0) {
      v += c;
    } else {
      v += " 0 ";
      i += skip - 1;
    }
  }
  return !nlohmann::json::parse(v, nullptr, false).is_discarded();
}

enum class Relation { kLessThan, kAtLeast };

bool Compare(int64_t value, Relation rel, int64_t n) {
  return rel == Relation::kLessThan ? value < n : value >= n;
}

// Typed access to one instruction's kwargs; errors name the instruction and the kwarg.
class Kwargs {
 public:
  Kwargs(const std::string& id, const nlohmann::json& kw) : id_(id), kw_(kw) {}

  const nlohmann::json* Find(const char* name) const {
    if (!kw_.is_object()) return nullptr;
    auto it = kw_.find(name);
    if (it == kw_.end() || it->is_null()) return nullptr;
    return &*it;
  }
  absl::Status Missing(const char* name, const char* what) const {
    return absl::InvalidArgumentError(
        absl::StrCat("instruction '", id_, "': kwarg '", name, "' must be ", what));
  }
  absl::StatusOr<int64_t> Int(const char* name) const {
    const nlohmann::json* v = Find(name);
    if (v != nullptr && v->is_number_integer()) return v->get<int64_t>();
    if (v != nullptr && v->is_number_float() && std::floor(v->get<double>()) == v->get<double>()) {
      return static_cast<int64_t>(v->get<double>());
    }
    return Missing(name, "an integer");
  }
  absl::StatusOr<std::string> Str(const char* name) const {
    const nlohmann::json* v = Find(name);
    if (v != nullptr && v->is_string()) return v->get<std::string>();
    return Missing(name, "a string");
  }
  absl::StatusOr<std::vector<std::string>> StrList(const char* name) const {
    const nlohmann::json* v = Find(name);
    if (v == nullptr || !v->is_array()) return Missing(name, "a list of strings");
    std::vector<std::string> out;
    for (const auto& item : *v) {
      if (!item.is_string()) return Missing(name, "a list of strings");
      out.push_back(item.get<std::string>());
    }
    return out;
  }
  absl::StatusOr<Relation> Rel(const char* name) const {
    EVALD_ASSIGN_OR_RETURN(std::string r, Str(name));
    if (r == "less than") return Relation::kLessThan;
    if (r == "at least") return Relation::kAtLeast;
    return Missing(name, "'less than' or 'at least'");
  }

 private:
  const std::string& id_;
  const nlohmann::json& kw_;
};

// ---- language heuristic -------------------------------------------------------------------

enum class Script {
  kOther,
  kLatin,
  kGreek,
  kCyrillic,
  kArmenian,
  kHebrew,
  kArabic,
  kDevanagari,
  kBengali,
  kGurmukhi,
  kGujarati,
  kOriya,
  kTamil,
  kTelugu,
  kKannada,
  kMalayalam,
  kSinhala,
  kThai,
  kGeorgian,
  kHangul,
  kKana,
  kHan,
  kEthiopic
};

Script ScriptOf(uint32_t cp) {
  if ((cp >= 'A' && cp <= 'Z') || (cp >= 'a' && cp <= 'z') ||
      (cp >= 0xC0 && cp <= 0x24F && cp != 0xD7 && cp != 0xF7) || (cp >= 0x1E00 && cp <= 0x1EFF)) {
    return Script::kLatin;
  }
  struct Range {
    uint32_t lo, hi;
    Script s;
  };
  static const Range kRanges[] = {
      {0x370, 0x3FF, Script::kGreek},      {0x400, 0x52F, Script::kCyrillic},
      {0x530, 0x58F, Script::kArmenian},   {0x590, 0x5FF, Script::kHebrew},
      {0x600, 0x6FF, Script::kArabic},     {0x750, 0x77F, Script::kArabic},
      {0x900, 0x97F, Script::kDevanagari}, {0x980, 0x9FF, Script::kBengali},
      {0xA00, 0xA7F, Script::kGurmukhi},   {0xA80, 0xAFF, Script::kGujarati},
      {0xB00, 0xB7F, Script::kOriya},      {0xB80, 0xBFF, Script::kTamil},
      {0xC00, 0xC7F, Script::kTelugu},     {0xC80, 0xCFF, Script::kKannada},
      {0xD00, 0xD7F, Script::kMalayalam},  {0xD80, 0xDFF, Script::kSinhala},
      {0xE00, 0xE7F, Script::kThai},       {0x10A0, 0x10FF, Script::kGeorgian},
      {0x1100, 0x11FF, Script::kHangul},   {0x1200, 0x137F, Script::kEthiopic},
      {0x3040, 0x30FF, Script::kKana},     {0x3130, 0x318F, Script::kHangul},
      {0x3400, 0x4DBF, Script::kHan},      {0x4E00, 0x9FFF, Script::kHan},
      {0xAC00, 0xD7AF, Script::kHangul},   {0xFB50, 0xFDFF, Script::kArabic},
      {0xFE70, 0xFEFF, Script::kArabic},
  };
  for (const Range& r : kRanges) {
    if (cp >= r.lo && cp <= r.hi) return r.s;
  }
  return Script::kOther;
}

// Decodes UTF-8, skipping invalid bytes.
std::vector<uint32_t> CodePoints(absl::string_view s) {
  std::vector<uint32_t> out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || i + len > s.size()) {
      ++i;
      continue;
    }
    uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
    bool ok = true;
    for (int k = 1; k < len; ++k) {
      unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc >> 6) != 2) {
        ok = false;
        break;
      }
      cp = (cp << 6) | (cc & 0x3F);
    }
    if (ok) out.push_back(cp);
    i += ok ? len : 1;
  }
  return out;
}

const std::map<std::string, Script>& LanguageScripts() {
  static const auto* m = new std::map<std::string, Script>{
      {"ru", Script::kCyrillic},   {"uk", Script::kCyrillic},   {"bg", Script::kCyrillic},
      {"sr", Script::kCyrillic},   {"mk", Script::kCyrillic},   {"kk", Script::kCyrillic},
      {"be", Script::kCyrillic},   {"mn", Script::kCyrillic},   {"el", Script::kGreek},
      {"hy", Script::kArmenian},   {"he", Script::kHebrew},     {"iw", Script::kHebrew},
      {"ar", Script::kArabic},     {"fa", Script::kArabic},     {"ur", Script::kArabic},
      {"ps", Script::kArabic},     {"hi", Script::kDevanagari}, {"mr", Script::kDevanagari},
      {"ne", Script::kDevanagari}, {"sa", Script::kDevanagari}, {"bn", Script::kBengali},
      {"pa", Script::kGurmukhi},   {"gu", Script::kGujarati},   {"or", Script::kOriya},
      {"ta", Script::kTamil},      {"te", Script::kTelugu},     {"kn", Script::kKannada},
      {"ml", Script::kMalayalam},  {"si", Script::kSinhala},    {"th", Script::kThai},
      {"ka", Script::kGeorgian},   {"ko", Script::kHangul},     {"ja", Script::kKana},
      {"zh", Script::kHan},        {"zh-cn", Script::kHan},     {"zh-tw", Script::kHan},
      {"am", Script::kEthiopic},
  };
  return *m;
}

const std::map<std::string, std::set<std::string>>& LatinStopWords() {
  static const auto* m = new std::map<std::string, std::set<std::string>>{
      {"en", {"the", "and",  "is", "of", "to",  "in",   "that", "it",  "you", "for", "with",
              "are", "this", "be", "on", "not", "have", "as",   "was", "i",   "a",   "an"}},
      {"de", {"der", "die", "und", "das", "ist", "nicht", "ein",  "eine", "zu",  "ich", "sie",
              "es",  "mit", "den", "auf", "für", "sich",  "auch", "von",  "dem", "wir"}},
      {"fr", {"le",  "la",   "les",  "et",  "est", "de", "des", "un", "une", "que",  "en",  "du",
              "pas", "pour", "dans", "qui", "sur", "au", "ce",  "il", "je",  "vous", "nous"}},
      {"es", {"el",  "la",  "los",  "las", "y",  "es",  "de", "que", "en",   "un",  "una",
              "por", "con", "para", "no",  "se", "del", "al", "lo",  "como", "más", "su"}},
      {"it", {"il", "la",  "le",  "e",     "è",    "di", "che", "un",  "una", "per",  "non",
              "in", "con", "del", "della", "sono", "si", "lo",  "gli", "ma",  "anche"}},
      {"pt", {"o",    "a",   "os",  "as", "e",  "é",   "de",  "que", "em",  "um",   "uma",
              "para", "com", "não", "do", "da", "dos", "das", "se",  "por", "mais", "você"}},
      {"nl",
       {"de", "het", "een", "en", "is", "van", "dat", "niet", "in", "op", "te", "ik", "je", "met",
        "zijn", "voor", "die", "er", "ook"}},
      {"sw",
       {"na", "ya", "wa", "kwa", "ni", "za", "la", "katika", "hii", "kuwa", "yake", "cha", "vya",
        "au", "lakini", "sana", "hiyo", "kama"}},
      {"fi",
       {"ja", "on", "ei", "se", "että", "oli", "hän", "mutta", "kun", "niin", "myös", "tai", "ovat",
        "joka", "minä", "sinä", "tämä"}},
      {"vi",
       {"và", "là", "của", "có", "không", "một", "những", "các", "được", "cho", "người", "trong",
        "này", "với", "đã", "để"}},
      {"tr",
       {"ve", "bir", "bu", "da", "de", "için", "ile", "değil", "çok", "ne", "gibi", "olan", "daha",
        "ben", "sen", "olarak"}},
      {"pl",
       {"i", "w", "nie", "na", "jest", "to", "że", "się", "z", "do", "jak", "ale", "co", "tak", "o",
        "od", "jego"}},
      {"id",
       {"dan", "yang", "di", "ini", "itu", "dengan", "untuk", "tidak", "ada", "dari", "akan",
        "saya", "kami", "juga", "adalah"}},
      {"sv",
       {"och", "att", "det", "är", "som", "en", "på", "för", "med", "inte", "har", "jag", "av",
        "till", "den", "om"}},
      {"da",
       {"og", "at", "det", "er", "en", "til", "på", "med", "ikke", "for", "har", "jeg", "af", "som",
        "den", "de"}},
      {"no",
       {"og", "i", "det", "er", "som", "en", "til", "på", "med", "ikke", "for", "har", "jeg", "av",
        "den", "de"}},
  };
  return *m;
}

// Lowercased words (runs of Latin letters incl. accents and apostrophes inside).
std::vector<std::string> LatinWords(absl::string_view text) {
  static const RE2 re(R"([\p{L}]+(?:'[\p{L}]+)?)");
  std::vector<std::string> out;
  for (std::string w : AllMatches(re, text)) {
    std::string lower;
    lower.reserve(w.size());
    for (char c : w) lower += absl::ascii_tolower(c);
    // Lowercase the accented capitals we care about (two-byte Latin-1 supplement).
    for (size_t i = 0; i + 1 < lower.size(); ++i) {
      unsigned char c0 = static_cast<unsigned char>(lower[i]);
      unsigned char c1 = static_cast<unsigned char>(lower[i + 1]);
      if (c0 == 0xC3 && c1 >= 0x80 && c1 <= 0x9E && c1 != 0x97)
        lower[i + 1] = static_cast<char>(c1 + 0x20);
    }
    out.push_back(std::move(lower));
  }
  return out;
}

}  // namespace

bool IfevalLooksLikeLanguage(absl::string_view text, const std::string& language) {
  std::string lang = Lower(language);
  std::map<Script, int64_t> counts;
  int64_t letters = 0;
  for (uint32_t cp : CodePoints(text)) {
    Script s = ScriptOf(cp);
    if (s == Script::kOther) continue;
    ++counts[s];
    ++letters;
  }
  // langdetect raises on a text without letters, and the reference counts that as followed.
  if (letters == 0) return true;
  Script dominant = Script::kOther;
  int64_t best = -1;
  for (const auto& [s, n] : counts) {
    if (n > best) {
      best = n;
      dominant = s;
    }
  }
  auto it = LanguageScripts().find(lang);
  if (it != LanguageScripts().end()) {
    if (it->second == Script::kKana) {
      // Japanese mixes kana and kanji; kana must be present and the two must dominate.
      int64_t kana = counts[Script::kKana];
      return kana > 0 && kana + counts[Script::kHan] >= letters / 2;
    }
    if (it->second == Script::kHan) {
      return dominant == Script::kHan && counts[Script::kKana] * 20 < counts[Script::kHan];
    }
    return dominant == it->second;
  }
  if (dominant != Script::kLatin) return false;
  std::vector<std::string> words = LatinWords(text);
  if (words.empty()) return false;
  std::map<std::string, double> scores;
  for (const auto& [code, stops] : LatinStopWords()) {
    int64_t hits = 0;
    for (const auto& w : words) hits += stops.count(w);
    scores[code] = static_cast<double>(hits) / words.size();
  }
  auto own = scores.find(lang);
  if (own == scores.end()) {
    // A Latin-script language without stop words here: accept unless it reads as English.
    return scores["en"] < 0.15;
  }
  if (own->second <= 0) return false;
  for (const auto& [code, score] : scores) {
    if (code != lang && score > own->second) return false;
  }
  return true;
}

int64_t IfevalCountWords(absl::string_view text) {
  // nltk's RegexpTokenizer(r"\w+"): Python's Unicode \w.
  static const PyRegex* const kWord = new PyRegex(PyRegex::Compile(R"(\w+)").value());
  return static_cast<int64_t>(kWord->FindAll(text).size());
}

int64_t IfevalCountSentences(absl::string_view text) {
  return static_cast<int64_t>(EnglishPunkt().Tokenize(text).size());
}

int64_t IfevalCountCapitalWords(absl::string_view text) {
  int64_t count = 0;
  for (const std::string& w : NltkWordTokenize(text, EnglishPunkt())) count += PyIsUpper(w);
  return count;
}

std::optional<std::string> IfevalDetectLanguage(absl::string_view text) {
  const LangDetector* d = DefaultLangDetector();
  if (d == nullptr) return std::nullopt;
  auto lang = d->Detect(text, /*seed=*/0);
  if (!lang.ok()) return std::string();
  return *lang;
}

absl::StatusOr<IfevalChecker> IfevalChecker::Create(const std::string& id,
                                                    const nlohmann::json& kwargs,
                                                    const std::string& prompt) {
  Kwargs kw(id, kwargs);
  CheckFn check;
  if (id == "punctuation:no_comma") {
    check = [](absl::string_view r) { return r.find(',') == absl::string_view::npos; };
  } else if (id == "detectable_format:number_highlighted_sections") {
    EVALD_ASSIGN_OR_RETURN(int64_t n, kw.Int("num_highlights"));
    check = [n](absl::string_view r) {
      static const PyRegex* const kSingle =
          new PyRegex(PyRegex::Compile(R"(\*[^\n\*]*\*)").value());
      static const PyRegex* const kDouble =
          new PyRegex(PyRegex::Compile(R"(\*\*[^\n\*]*\*\*)").value());
      int64_t count = 0;
      for (const auto& h : kSingle->FindAll(r)) {
        count += !Strip(StripChars(h.groups[0], "*")).empty();
      }
      for (const auto& h : kDouble->FindAll(r)) {
        const std::string& m = h.groups[0];
        count += !Strip(m.substr(2, m.size() - 4)).empty();
      }
      return count >= n;
    };
  } else if (id == "length_constraints:number_words") {
    EVALD_ASSIGN_OR_RETURN(int64_t n, kw.Int("num_words"));
    EVALD_ASSIGN_OR_RETURN(Relation rel, kw.Rel("relation"));
    check = [n, rel](absl::string_view r) { return Compare(IfevalCountWords(r), rel, n); };
  } else if (id == "length_constraints:number_sentences") {
    EVALD_ASSIGN_OR_RETURN(int64_t n, kw.Int("num_sentences"));
    EVALD_ASSIGN_OR_RETURN(Relation rel, kw.Rel("relation"));
    check = [n, rel](absl::string_view r) { return Compare(IfevalCountSentences(r), rel, n); };
  } else if (id == "length_constraints:number_paragraphs") {
    EVALD_ASSIGN_OR_RETURN(int64_t n, kw.Int("num_paragraphs"));
    check = [n](absl::string_view r) {
      static const PyRegex* const kSeparator =
          new PyRegex(PyRegex::Compile(R"(\s?\*\*\*\s?)").value());
      const std::vector<std::string> parts = kSeparator->Split(r);
      int64_t count = static_cast<int64_t>(parts.size());
      for (size_t i = 0; i < parts.size(); ++i) {
        if (!Strip(parts[i]).empty()) continue;
        if (i == 0 || i + 1 == parts.size()) {
          --count;
        } else {
          return false;
        }
      }
      return count == n;
    };
  } else if (id == "length_constraints:nth_paragraph_first_word") {
    EVALD_ASSIGN_OR_RETURN(int64_t n, kw.Int("num_paragraphs"));
    EVALD_ASSIGN_OR_RETURN(int64_t nth, kw.Int("nth_paragraph"));
    EVALD_ASSIGN_OR_RETURN(std::string first, kw.Str("first_word"));
    if (nth < 1) return kw.Missing("nth_paragraph", "an integer >= 1");
    first = PyLower(first);
    check = [n, nth, first](absl::string_view r) {
      std::vector<std::string> paragraphs = absl::StrSplit(r, "\n\n");
      int64_t count = static_cast<int64_t>(paragraphs.size());
      for (const auto& p : paragraphs) count -= Strip(p).empty();
      if (nth > count || nth > static_cast<int64_t>(paragraphs.size())) return false;
      std::string paragraph = Strip(paragraphs[nth - 1]);
      if (paragraph.empty()) return false;
      std::vector<std::string> words = PySplit(paragraph);
      std::string word = words.empty() ? "" : words[0];
      // word.lstrip("'").lstrip('"'): in that order, so "'x" and "\"x" lose their quote but
      // "\"'x" keeps its "'".
      word = word.substr(std::min(word.size(), word.find_first_not_of('\'')));
      word = word.substr(std::min(word.size(), word.find_first_not_of('"')));
      // Lower-cased one character at a time (no final-sigma context), up to the first stop.
      static const PyRegex* const kChar = new PyRegex(PyRegex::Compile("(?s).").value());
      std::string got;
      for (const auto& ch : kChar->FindAll(word)) {
        const std::string& c = ch.groups[0];
        if (c == "." || c == "," || c == "?" || c == "!" || c == "'" || c == "\"") break;
        got += PyLower(c);
      }
      return count == n && got == first;
    };
  } else if (id == "detectable_format:title") {
    check = [](absl::string_view r) {
      static const PyRegex* const kTitle = new PyRegex(PyRegex::Compile(R"(<<[^\n]+>>)").value());
      for (const auto& t : kTitle->FindAll(r)) {
        // title.lstrip("<").rstrip(">").strip()
        absl::string_view v = t.groups[0];
        v.remove_prefix(std::min(v.size(), v.find_first_not_of('<')));
        const size_t last = v.find_last_not_of('>');
        v = last == absl::string_view::npos ? absl::string_view() : v.substr(0, last + 1);
        if (!Strip(v).empty()) return true;
      }
      return false;
    };
  } else if (id == "change_case:english_lowercase" || id == "change_case:english_capital") {
    // `text.islower() and langdetect.detect(text) == "en"`; a detector exception accepts.
    const bool lower = id == "change_case:english_lowercase";
    check = [lower](absl::string_view r) {
      if (!(lower ? PyIsLower(r) : PyIsUpper(r))) return false;
      std::optional<std::string> lang = IfevalDetectLanguage(r);
      return !lang || lang->empty() || *lang == "en";
    };
  } else if (id == "change_case:capital_word_frequency") {
    EVALD_ASSIGN_OR_RETURN(int64_t n, kw.Int("capital_frequency"));
    EVALD_ASSIGN_OR_RETURN(Relation rel, kw.Rel("capital_relation"));
    check = [n, rel](absl::string_view r) { return Compare(IfevalCountCapitalWords(r), rel, n); };
  } else if (id == "detectable_content:postscript") {
    EVALD_ASSIGN_OR_RETURN(std::string marker, kw.Str("postscript_marker"));
    marker = Strip(marker);
    std::shared_ptr<PyRegex> re;
    if (marker == "P.P.S") {
      re = std::make_shared<PyRegex>(PyRegex::Compile(R"((?m)\s*p\.\s?p\.\s?s.*$)").value());
    } else if (marker == "P.S.") {
      re = std::make_shared<PyRegex>(PyRegex::Compile(R"((?m)\s*p\.\s?s\..*$)").value());
    } else {
      // The reference concatenates the lower-cased marker into the pattern unescaped.
      re = UserRegex(absl::StrCat(R"((?m)\s*)", PyLower(marker), R"(.*$)"),
                     absl::StrCat(R"((?m)\s*)", PyRegex::Escape(PyLower(marker)), R"(.*$)"), false);
    }
    check = [re](absl::string_view r) { return re->Search(PyLower(r)).has_value(); };
  } else if (id == "detectable_content:number_placeholders") {
    EVALD_ASSIGN_OR_RETURN(int64_t n, kw.Int("num_placeholders"));
    check = [n](absl::string_view r) {
      static const PyRegex* const kPlaceholder =
          new PyRegex(PyRegex::Compile(R"(\[.*?\])").value());
      return static_cast<int64_t>(kPlaceholder->FindAll(r).size()) >= n;
    };
  } else if (id == "detectable_format:number_bullet_lists") {
    EVALD_ASSIGN_OR_RETURN(int64_t n, kw.Int("num_bullets"));
    check = [n](absl::string_view r) {
      static const PyRegex* const kStar =
          new PyRegex(PyRegex::Compile(R"((?m)^\s*\*[^\*].*$)").value());
      static const PyRegex* const kDash = new PyRegex(PyRegex::Compile(R"((?m)^\s*-.*$)").value());
      return static_cast<int64_t>(kStar->FindAll(r).size() + kDash->FindAll(r).size()) == n;
    };
  } else if (id == "detectable_format:constrained_response") {
    check = [](absl::string_view r) {
      std::string v = Strip(r);
      for (const char* option : {"My answer is yes.", "My answer is no.", "My answer is maybe."}) {
        if (absl::StrContains(v, option)) return true;
      }
      return false;
    };
  } else if (id == "detectable_format:multiple_sections") {
    EVALD_ASSIGN_OR_RETURN(std::string splitter, kw.Str("section_spliter"));
    EVALD_ASSIGN_OR_RETURN(int64_t n, kw.Int("num_sections"));
    // The reference concatenates the splitter into the pattern unescaped.
    auto re =
        UserRegex(absl::StrCat(R"(\s?)", Strip(splitter), R"(\s?\d+\s?)"),
                  absl::StrCat(R"(\s?)", PyRegex::Escape(Strip(splitter)), R"(\s?\d+\s?)"), false);
    check = [re, n](absl::string_view r) {
      return static_cast<int64_t>(re->Split(r).size()) >= n + 1;
    };
  } else if (id == "detectable_format:json_format") {
    check = [](absl::string_view r) {
      std::string v = Strip(r);
      // Chained removeprefix calls: each prefix at most once, in this order.
      for (const char* prefix : {"```json", "```Json", "```JSON", "```"}) {
        if (absl::StartsWith(v, prefix)) v.erase(0, std::string(prefix).size());
      }
      if (absl::EndsWith(v, "```")) v.resize(v.size() - 3);
      return PyJsonLoads(Strip(v));
    };
  } else if (id == "combination:repeat_prompt") {
    std::string to_repeat = prompt;
    if (kw.Find("prompt_to_repeat") != nullptr) {
      EVALD_ASSIGN_OR_RETURN(to_repeat, kw.Str("prompt_to_repeat"));
    }
    std::string want = PyLower(Strip(to_repeat));
    check = [want](absl::string_view r) { return absl::StartsWith(PyLower(Strip(r)), want); };
  } else if (id == "combination:two_responses") {
    check = [](absl::string_view r) {
      std::vector<std::string> parts = absl::StrSplit(r, "******");
      std::vector<std::string> valid;
      for (size_t i = 0; i < parts.size(); ++i) {
        if (Strip(parts[i]).empty()) {
          if (i != 0 && i + 1 != parts.size()) return false;
        } else {
          valid.push_back(parts[i]);
        }
      }
      return valid.size() == 2 && Strip(valid[0]) != Strip(valid[1]);
    };
  } else if (id == "startend:end_checker") {
    EVALD_ASSIGN_OR_RETURN(std::string end, kw.Str("end_phrase"));
    std::string want = PyLower(Strip(end));
    check = [want](absl::string_view r) {
      return absl::EndsWith(PyLower(StripChars(Strip(r), "\"")), want);
    };
  } else if (id == "startend:quotation") {
    check = [](absl::string_view r) {
      std::string v = Strip(r);
      return v.size() > 1 && v.front() == '"' && v.back() == '"';
    };
  } else if (id == "keywords:existence") {
    EVALD_ASSIGN_OR_RETURN(std::vector<std::string> words, kw.StrList("keywords"));
    // re.search(keyword, text, IGNORECASE): the keyword is a pattern, matched as a substring.
    std::vector<std::shared_ptr<PyRegex>> res;
    for (const auto& w : words) res.push_back(UserRegex(w, PyRegex::Escape(w), true));
    check = [res](absl::string_view r) {
      for (const auto& re : res) {
        if (!re->Search(r)) return false;
      }
      return true;
    };
  } else if (id == "keywords:forbidden_words") {
    EVALD_ASSIGN_OR_RETURN(std::vector<std::string> words, kw.StrList("forbidden_words"));
    std::vector<std::shared_ptr<PyRegex>> res;
    for (const auto& w : words) {
      res.push_back(UserRegex(absl::StrCat(R"(\b)", w, R"(\b)"),
                              absl::StrCat(R"(\b)", PyRegex::Escape(w), R"(\b)"), true));
    }
    check = [res](absl::string_view r) {
      for (const auto& re : res) {
        if (re->Search(r)) return false;
      }
      return true;
    };
  } else if (id == "keywords:frequency") {
    EVALD_ASSIGN_OR_RETURN(std::string word, kw.Str("keyword"));
    EVALD_ASSIGN_OR_RETURN(int64_t n, kw.Int("frequency"));
    EVALD_ASSIGN_OR_RETURN(Relation rel, kw.Rel("relation"));
    auto re = UserRegex(Strip(word), PyRegex::Escape(Strip(word)), true);
    check = [re, n, rel](absl::string_view r) {
      return Compare(static_cast<int64_t>(re->FindAll(r).size()), rel, n);
    };
  } else if (id == "keywords:letter_frequency") {
    EVALD_ASSIGN_OR_RETURN(std::string letter, kw.Str("letter"));
    EVALD_ASSIGN_OR_RETURN(int64_t n, kw.Int("let_frequency"));
    EVALD_ASSIGN_OR_RETURN(Relation rel, kw.Rel("let_relation"));
    // The reference draws a random letter for anything but one ASCII letter.
    if (letter.size() != 1 || !absl::ascii_isalpha(static_cast<unsigned char>(letter[0]))) {
      return kw.Missing("letter", "a single letter a-z");
    }
    const char want = absl::ascii_tolower(letter[0]);
    check = [want, n, rel](absl::string_view r) {
      // Counted in Python's value.lower(): 'İ' lower-cases to "i̇" and the Kelvin sign to 'k'. An
      // ASCII byte never occurs inside a multi-byte UTF-8 sequence, so bytes count characters.
      const std::string lower = PyLower(r);
      return Compare(static_cast<int64_t>(std::count(lower.begin(), lower.end(), want)), rel, n);
    };
  } else if (id == "language:response_language") {
    EVALD_ASSIGN_OR_RETURN(std::string lang, kw.Str("language"));
    check = [lang](absl::string_view r) {
      std::optional<std::string> detected = IfevalDetectLanguage(r);
      if (!detected) return IfevalLooksLikeLanguage(r, lang);  // no langdetect profiles
      return detected->empty() || *detected == lang;           // langdetect raised: followed
    };
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown IFEval instruction '", id,
                     "'; supported: ", absl::StrJoin(IfevalInstructionIds(), ", ")));
  }
  IfevalChecker c;
  c.id_ = id;
  c.check_ = std::move(check);
  return c;
}

bool IfevalChecker::Check(absl::string_view response) const {
  return !PyStrip(response).empty() && check_(response);
}

bool IfevalChecker::CheckLoose(absl::string_view response) const {
  std::vector<std::string> lines = absl::StrSplit(response, '\n');
  auto join = [&](size_t from, size_t to) {
    std::vector<std::string> part;
    for (size_t i = from; i < to && i < lines.size(); ++i) part.push_back(lines[i]);
    return Strip(absl::StrJoin(part, "\n"));
  };
  const size_t n = lines.size();
  std::vector<std::string> variants = {std::string(response), join(1, n),
                                       join(0, n > 0 ? n - 1 : 0), join(1, n > 0 ? n - 1 : 0)};
  const size_t base = variants.size();
  for (size_t i = 0; i < base; ++i) {
    std::string v = variants[i];
    v.erase(std::remove(v.begin(), v.end(), '*'), v.end());
    variants.push_back(std::move(v));
  }
  for (const auto& v : variants) {
    if (Check(v)) return true;
  }
  return false;
}

const std::vector<std::string>& IfevalInstructionIds() {
  static const auto* ids = new std::vector<std::string>{
      "change_case:capital_word_frequency",
      "change_case:english_capital",
      "change_case:english_lowercase",
      "combination:repeat_prompt",
      "combination:two_responses",
      "detectable_content:number_placeholders",
      "detectable_content:postscript",
      "detectable_format:constrained_response",
      "detectable_format:json_format",
      "detectable_format:multiple_sections",
      "detectable_format:number_bullet_lists",
      "detectable_format:number_highlighted_sections",
      "detectable_format:title",
      "keywords:existence",
      "keywords:forbidden_words",
      "keywords:frequency",
      "keywords:letter_frequency",
      "language:response_language",
      "length_constraints:nth_paragraph_first_word",
      "length_constraints:number_paragraphs",
      "length_constraints:number_sentences",
      "length_constraints:number_words",
      "punctuation:no_comma",
      "startend:end_checker",
      "startend:quotation",
  };
  return *ids;
}

}  // namespace evald::runner
