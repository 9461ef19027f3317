#include "runner/nltk_tokenize.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "runner/py_regex.h"

namespace evald::runner {
namespace {

// Orthographic context flags (punkt.py _ORTHO_*).
constexpr int kBegUc = 1 << 1;
constexpr int kMidUc = 1 << 2;
constexpr int kUnkUc = 1 << 3;
constexpr int kBegLc = 1 << 4;
constexpr int kMidLc = 1 << 5;
constexpr int kUnkLc = 1 << 6;
constexpr int kUc = kBegUc + kMidUc + kUnkUc;
constexpr int kLc = kBegLc + kMidLc + kUnkLc;

const PyRegex& Compiled(const char* pattern) {
  // Each call site keeps its own static; a pattern that does not compile is a programming error.
  auto re = PyRegex::Compile(pattern);
  if (!re.ok()) std::abort();
  return *new PyRegex(*std::move(re));
}

// Byte length of the UTF-8 sequence starting with `c` (1 for a stray byte).
size_t CharLen(unsigned char c) { return c < 0xC0 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4; }

absl::string_view FirstChar(absl::string_view s) {
  return s.empty() ? s : s.substr(0, std::min(s.size(), CharLen(s[0])));
}

// Length of Python's s.rstrip(): everything up to the end of the last non-space character.
size_t RStripLen(absl::string_view s) {
  const std::string stripped = PyStrip(s);
  if (stripped.empty()) return 0;
  return (s.size() - PyLStrip(s).size()) + stripped.size();
}

// re.sub(pattern, template, text) for templates using \N and \g<N>.
std::string SubTemplate(const PyRegex& re, absl::string_view text, absl::string_view tmpl) {
  std::string out;
  size_t prev = 0;
  for (const PyRegex::Match& m : re.FindAll(text)) {
    absl::StrAppend(&out, text.substr(prev, m.start - prev));
    for (size_t i = 0; i < tmpl.size(); ++i) {
      if (tmpl[i] != '\\' || i + 1 >= tmpl.size()) {
        out += tmpl[i];
        continue;
      }
      size_t group = 0;
      if (absl::ascii_isdigit(tmpl[i + 1])) {
        group = tmpl[i + 1] - '0';
        i += 1;
      } else if (tmpl[i + 1] == 'g') {  // \g<N>
        const size_t close = tmpl.find('>', i);
        group =
            static_cast<size_t>(std::atoi(std::string(tmpl.substr(i + 3, close - i - 3)).c_str()));
        i = close;
      }
      if (group < m.groups.size()) out += m.groups[group];
    }
    prev = m.end;
  }
  absl::StrAppend(&out, text.substr(prev));
  return out;
}

// str.split(): runs of Python whitespace separate tokens.
std::vector<std::string> SplitWhitespace(absl::string_view s) {
  std::vector<std::string> out;
  std::string rest = PyLStrip(s);
  while (!rest.empty()) {
    size_t i = 0;
    while (i < rest.size()) {
      const size_t len = CharLen(rest[i]);
      if (PyLStrip(absl::string_view(rest).substr(i, len)).empty()) break;
      i += len;
    }
    out.push_back(rest.substr(0, i));
    rest = PyLStrip(absl::string_view(rest).substr(i));
  }
  return out;
}

// PunktToken with its annotations.
struct Token {
  std::string tok;
  std::string type;
  bool period_final = false;
  bool parastart = false;
  bool linestart = false;
  bool sentbreak = false;
  bool abbr = false;
  bool ellipsis = false;

  explicit Token(std::string t) : tok(std::move(t)) {
    static const PyRegex& numeric = Compiled(R"(^-?[\.,]?\d[\d,\.-]*\.?$)");
    type = numeric.Sub(PyLower(tok), "##number##");
    period_final = !tok.empty() && tok.back() == '.';
  }
  std::string TypeNoPeriod() const {
    if (type.size() > 1 && type.back() == '.') return type.substr(0, type.size() - 1);
    return type;
  }
  std::string TypeNoSentPeriod() const { return sentbreak ? TypeNoPeriod() : type; }
  bool FirstUpper() const { return PyIsUpper(FirstChar(tok)); }
  bool FirstLower() const { return PyIsLower(FirstChar(tok)); }
  bool IsEllipsis() const {
    static const PyRegex& re = Compiled(R"(\A\.\.+$)");
    return re.Search(tok).has_value();
  }
  bool IsInitial() const {
    static const PyRegex& re = Compiled(R"(\A[^\W\d]\.$)");
    return re.Search(tok).has_value();
  }
};

// PunktLanguageVars' regexes, written out (the verbose originals with their comments dropped).
constexpr char kNonWord[] = R"((?:[)\";}\]\*:@\'\({\[!\?]))";
constexpr char kMultiChar[] = R"((?:\-{2,}|\.{2,}|(?:\.\s){2,}\.))";
constexpr char kWordStart[] = R"([^\(\"\`{\[:;&\#\*@\)}\]\-,])";

const PyRegex& PunktWordRe() {
  static const PyRegex& re =
      Compiled(absl::StrCat("(", kMultiChar, "|(?=", kWordStart, ")\\S+?(?=\\s|$|", kNonWord, "|",
                            kMultiChar, "|,(?=$|\\s|", kNonWord, "|", kMultiChar, "))|\\S)")
                   .c_str());
  return re;
}

const PyRegex& PeriodContextRe() {
  static const PyRegex& re = Compiled(
      absl::StrCat(R"([\.\?!](?=(?P<after_tok>)", kNonWord, R"(|\s+(?P<next_tok>\S+))))").c_str());
  return re;
}

// PunktBaseClass._tokenize_words.
std::vector<Token> TokenizeWords(absl::string_view text) {
  std::vector<Token> out;
  bool parastart = false;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (PyStrip(line).empty()) {
      parastart = true;
      continue;
    }
    bool first = true;
    for (const PyRegex::Match& m : PunktWordRe().FindAll(line)) {
      Token t(m.groups[1]);
      if (first) {
        t.parastart = parastart;
        t.linestart = true;
        parastart = false;
        first = false;
      }
      out.push_back(std::move(t));
    }
  }
  return out;
}

bool IsSentEndChar(const std::string& tok) { return tok == "." || tok == "?" || tok == "!"; }

void FirstPass(Token& t, const PunktParameters& p) {
  if (IsSentEndChar(t.tok)) {
    t.sentbreak = true;
  } else if (t.IsEllipsis()) {
    t.ellipsis = true;
  } else if (t.period_final && !absl::EndsWith(t.tok, "..")) {
    const std::string base = PyLower(absl::string_view(t.tok).substr(0, t.tok.size() - 1));
    const size_t dash = base.rfind('-');
    const std::string last = dash == std::string::npos ? base : base.substr(dash + 1);
    if (p.abbrev_types.count(base) || p.abbrev_types.count(last)) {
      t.abbr = true;
    } else {
      t.sentbreak = true;
    }
  }
}

enum class Ortho { kFalse, kTrue, kUnknown };

int OrthoContext(const PunktParameters& p, const std::string& type) {
  auto it = p.ortho_context.find(type);
  return it == p.ortho_context.end() ? 0 : it->second;
}

Ortho OrthoHeuristic(const Token& t, const PunktParameters& p) {
  if (t.tok.size() == 1 && absl::string_view(";:,.!?").find(t.tok[0]) != absl::string_view::npos)
    return Ortho::kFalse;
  const int ctx = OrthoContext(p, t.TypeNoSentPeriod());
  if (t.FirstUpper() && (ctx & kLc) && !(ctx & kMidUc)) return Ortho::kTrue;
  if (t.FirstLower() && ((ctx & kUc) || !(ctx & kBegLc))) return Ortho::kFalse;
  return Ortho::kUnknown;
}

void SecondPass(Token& t1, const Token* t2, const PunktParameters& p) {
  if (t2 == nullptr || !t1.period_final) return;
  const std::string typ = t1.TypeNoPeriod();
  const std::string next_typ = t2->TypeNoSentPeriod();
  const bool initial = t1.IsInitial();
  if (p.collocations.count({typ, next_typ})) {
    t1.sentbreak = false;
    t1.abbr = true;
    return;
  }
  if ((t1.abbr || t1.ellipsis) && !initial) {
    if (OrthoHeuristic(*t2, p) == Ortho::kTrue) {
      t1.sentbreak = true;
      return;
    }
    if (t2->FirstUpper() && p.sent_starters.count(next_typ)) {
      t1.sentbreak = true;
      return;
    }
  }
  if (initial || typ == "##number##") {
    const Ortho h = OrthoHeuristic(*t2, p);
    if (h == Ortho::kFalse) {
      t1.sentbreak = false;
      t1.abbr = true;
      return;
    }
    if (h == Ortho::kUnknown && initial && t2->FirstUpper() && !(OrthoContext(p, next_typ) & kLc)) {
      t1.sentbreak = false;
      t1.abbr = true;
    }
  }
}

std::vector<std::string> ReadLines(const std::filesystem::path& file, bool* found) {
  std::vector<std::string> out;
  std::ifstream in(file);
  if (!in) return out;
  *found = true;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

}  // namespace

absl::StatusOr<PunktParameters> LoadPunktParameters(const std::string& dir) {
  const std::filesystem::path d(dir);
  PunktParameters p;
  bool found = false;
  for (auto& l : ReadLines(d / "abbrev_types.txt", &found)) p.abbrev_types.insert(l);
  for (auto& l : ReadLines(d / "sent_starters.txt", &found)) p.sent_starters.insert(l);
  for (auto& l : ReadLines(d / "collocations.tab", &found)) {
    std::vector<std::string> f = absl::StrSplit(l, '\t');
    if (f.size() == 2) p.collocations.insert({f[0], f[1]});
  }
  for (auto& l : ReadLines(d / "ortho_context.tab", &found)) {
    std::vector<std::string> f = absl::StrSplit(l, '\t');
    if (f.size() == 2) p.ortho_context[f[0]] = std::atoi(f[1].c_str());
  }
  if (!found) return absl::NotFoundError(absl::StrCat("no Punkt parameter files in ", dir));
  return p;
}

bool PunktSentenceTokenizer::ContainsSentBreak(absl::string_view context) const {
  std::vector<Token> toks = TokenizeWords(context);
  for (Token& t : toks) FirstPass(t, params_);
  bool found = false;
  for (size_t i = 0; i < toks.size(); ++i) {
    SecondPass(toks[i], i + 1 < toks.size() ? &toks[i + 1] : nullptr, params_);
    if (found) return true;
    if (toks[i].sentbreak) found = true;
  }
  return false;
}

std::vector<std::pair<size_t, size_t>> PunktSentenceTokenizer::Spans(absl::string_view text) const {
  // _match_potential_end_contexts, then _slices_from_text.
  struct Candidate {
    size_t end;
    std::optional<size_t> next_tok;
    std::string context;
  };
  std::vector<Candidate> candidates;
  size_t prev_start = 0, prev_stop = 0;
  std::optional<PyRegex::Match> prev_match;
  auto context_of = [&](const PyRegex::Match& m) {
    return absl::StrCat(
        text.substr(prev_start, prev_stop > prev_start ? prev_stop - prev_start : 0), m.groups[0],
        m.groups[1]);
  };
  auto candidate_of = [&](const PyRegex::Match& m) {
    Candidate c{m.end, std::nullopt, context_of(m)};
    if (m.matched[2]) c.next_tok = m.end + m.groups[1].size() - m.groups[2].size();
    return c;
  };
  for (const PyRegex::Match& m : PeriodContextRe().FindAll(text)) {
    const absl::string_view before = text.substr(prev_stop, m.start - prev_stop);
    size_t last_space = 0;  // 0 also when the only whitespace is at index 0, as in nltk
    for (size_t i = before.size(); i-- > 0;) {
      if (absl::string_view(" \t\n\r\x0b\x0c").find(before[i]) != absl::string_view::npos) {
        last_space = i;
        break;
      }
    }
    const size_t word_start = last_space ? last_space + prev_stop + 1 : prev_start;
    if (prev_match && prev_stop <= word_start) candidates.push_back(candidate_of(*prev_match));
    prev_match = m;
    prev_start = word_start;
    prev_stop = m.start;
  }
  if (prev_match) candidates.push_back(candidate_of(*prev_match));

  std::vector<std::pair<size_t, size_t>> slices;
  size_t last_break = 0;
  for (const Candidate& c : candidates) {
    if (!ContainsSentBreak(c.context)) continue;
    slices.push_back({last_break, c.end});
    last_break = c.next_tok ? *c.next_tok : c.end;
  }
  slices.push_back({last_break, RStripLen(text)});

  // _realign_boundaries.
  static const PyRegex& realign_re = Compiled(R"((?m)\A["\')\]}]+?(?:\s+|(?=--)|$))");
  std::vector<std::pair<size_t, size_t>> out;
  size_t realign = 0;
  for (size_t i = 0; i < slices.size(); ++i) {
    const size_t start = slices[i].first + realign;
    const size_t stop = slices[i].second;
    if (i + 1 == slices.size()) {
      if (start < stop) out.push_back({start, stop});
      continue;
    }
    const auto [s2_start, s2_stop] = slices[i + 1];
    const absl::string_view s2 =
        s2_start < s2_stop ? text.substr(s2_start, s2_stop - s2_start) : absl::string_view();
    if (auto m = realign_re.Search(s2)) {
      out.push_back({start, s2_start + RStripLen(m->groups[0])});
      realign = m->end;
    } else {
      realign = 0;
      if (start < stop) out.push_back({start, stop});
    }
  }
  return out;
}

std::vector<std::string> PunktSentenceTokenizer::Tokenize(absl::string_view text) const {
  std::vector<std::string> out;
  for (const auto& [s, e] : Spans(text)) out.emplace_back(text.substr(s, e - s));
  return out;
}

std::vector<std::string> NltkTreebankTokenize(absl::string_view sentence) {
  struct Rule {
    const PyRegex& re;
    const char* tmpl;
  };
  // NLTKWordTokenizer's rule lists, in the order tokenize() applies them.
  static const auto* before_pad = new std::vector<Rule>{
      // STARTING_QUOTES
      {Compiled("([«“‘„]|[`]+)"), R"( \1 )"},
      {Compiled(R"(^\")"), R"(``)"},
      {Compiled(R"((``))"), R"( \1 )"},
      {Compiled(R"(([ \(\[{<])(\"|\'{2}))"), R"(\1 `` )"},
      {Compiled(R"((?i)(\')(?!re|ve|ll|m|t|s|d|n)(\w)\b)"), R"(\1 \2)"},
      // PUNCTUATION
      {Compiled(R"(([^\.])(\.)([\]\)}>"\')"
                "»”’ "
                R"(]*)\s*$)"),
       R"(\1 \2 \3 )"},
      {Compiled(R"(([:,])([^\d]))"), R"( \1 \2)"},
      {Compiled(R"(([:,])$)"), R"( \1 )"},
      {Compiled(R"(\.{2,})"), R"( \g<0> )"},
      {Compiled(R"([;@#$%&])"), R"( \g<0> )"},
      {Compiled(R"(([^\.])(\.)([\]\)}>"\']*)\s*$)"), R"(\1 \2\3 )"},
      {Compiled(R"([?!])"), R"( \g<0> )"},
      {Compiled(R"(([^'])' )"), R"(\1 ' )"},
      {Compiled(R"([*])"), R"( \g<0> )"},
      // PARENS_BRACKETS, DOUBLE_DASHES
      {Compiled(R"([\]\[\(\)\{\}\<\>])"), R"( \g<0> )"},
      {Compiled(R"(--)"), R"( -- )"},
  };
  static const auto* after_pad = new std::vector<Rule>{
      // ENDING_QUOTES
      {Compiled("([»”’])"), R"( \1 )"},
      {Compiled(R"('')"), R"( '' )"},
      {Compiled(R"(")"), R"( '' )"},
      {Compiled(R"(([^' ])('[sS]|'[mM]|'[dD]|') )"), R"(\1 \2 )"},
      {Compiled(R"(([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) )"), R"(\1 \2 )"},
      // CONTRACTIONS2, CONTRACTIONS3
      {Compiled(R"((?i)\b(can)(?#X)(not)\b)"), R"( \1 \2 )"},
      {Compiled(R"((?i)\b(d)(?#X)('ye)\b)"), R"( \1 \2 )"},
      {Compiled(R"((?i)\b(gim)(?#X)(me)\b)"), R"( \1 \2 )"},
      {Compiled(R"((?i)\b(gon)(?#X)(na)\b)"), R"( \1 \2 )"},
      {Compiled(R"((?i)\b(got)(?#X)(ta)\b)"), R"( \1 \2 )"},
      {Compiled(R"((?i)\b(lem)(?#X)(me)\b)"), R"( \1 \2 )"},
      {Compiled(R"((?i)\b(more)(?#X)('n)\b)"), R"( \1 \2 )"},
      {Compiled(R"((?i)\b(wan)(?#X)(na)(?=\s))"), R"( \1 \2 )"},
      {Compiled(R"((?i) ('t)(?#X)(is)\b)"), R"( \1 \2 )"},
      {Compiled(R"((?i) ('t)(?#X)(was)\b)"), R"( \1 \2 )"},
  };
  std::string text(sentence);
  for (const Rule& r : *before_pad) text = SubTemplate(r.re, text, r.tmpl);
  text = absl::StrCat(" ", text, " ");
  for (const Rule& r : *after_pad) text = SubTemplate(r.re, text, r.tmpl);
  return SplitWhitespace(text);
}

std::vector<std::string> NltkWordTokenize(absl::string_view text,
                                          const PunktSentenceTokenizer& punkt) {
  std::vector<std::string> out;
  for (const std::string& s : punkt.Tokenize(text)) {
    for (std::string& t : NltkTreebankTokenize(s)) out.push_back(std::move(t));
  }
  return out;
}

namespace {

struct EnglishPunktState {
  std::string source;
  std::unique_ptr<PunktSentenceTokenizer> tokenizer;
};

const EnglishPunktState& English() {
  static const EnglishPunktState* state = [] {
    auto* s = new EnglishPunktState;
    std::vector<std::string> dirs;
    if (const char* d = std::getenv("EVALD_PUNKT_DIR"); d && *d) dirs.push_back(d);
    std::vector<std::string> roots;
    if (const char* d = std::getenv("NLTK_DATA"); d && *d) {
      for (absl::string_view r : absl::StrSplit(d, ':', absl::SkipEmpty())) roots.emplace_back(r);
    }
    if (const char* h = std::getenv("HOME"); h && *h)
      roots.push_back(absl::StrCat(h, "/nltk_data"));
    for (const char* r : {"/usr/share/nltk_data", "/usr/local/share/nltk_data",
                          "/usr/lib/nltk_data", "/usr/local/lib/nltk_data"}) {
      roots.emplace_back(r);
    }
    for (const auto& r : roots) dirs.push_back(absl::StrCat(r, "/tokenizers/punkt_tab/english"));
    for (const auto& d : dirs) {
      auto p = LoadPunktParameters(d);
      if (!p.ok()) continue;
      s->source = d;
      s->tokenizer = std::make_unique<PunktSentenceTokenizer>(*std::move(p));
      return s;
    }
    // Not NLTK's model: a few abbreviations so "Dr. Smith" and "e.g. this" stay one sentence.
    PunktParameters fallback;
    fallback.abbrev_types = {"mr",  "mrs", "ms",  "dr",  "prof", "sr", "jr",  "st",    "vs",
                             "etc", "e.g", "i.e", "inc", "ltd",  "co", "fig", "approx"};
    s->source = "builtin-fallback";
    s->tokenizer = std::make_unique<PunktSentenceTokenizer>(std::move(fallback));
    return s;
  }();
  return *state;
}

}  // namespace

const PunktSentenceTokenizer& EnglishPunkt() { return *English().tokenizer; }
const std::string& EnglishPunktSource() { return English().source; }

}  // namespace evald::runner
