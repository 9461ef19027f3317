#include "runner/langdetect.h"

#include <unicode/uchar.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "runner/py_regex.h"

namespace evald::runner {
namespace {

std::u32string Utf8ToU32(absl::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    const size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    char32_t cp = n == 1 ? c : n == 2 ? (c & 0x1F) : n == 3 ? (c & 0x0F) : (c & 0x07);
    bool ok = n > 0 && i + n <= s.size();
    for (size_t k = 1; ok && k < n; ++k) {
      const unsigned char cc = static_cast<unsigned char>(s[i + k]);
      ok = (cc & 0xC0) == 0x80;
      cp = (cp << 6) | (cc & 0x3F);
    }
    out.push_back(ok ? cp : U'\uFFFD');
    i += ok ? n : 1;
  }
  return out;
}

// Python's random.seed(int): init_by_array over the seed's 32-bit words, as a seed sequence for
// std::mt19937 (whose generator and tempering are the reference MT19937, like CPython's).
struct PySeedSeq {
  using result_type = uint32_t;
  std::vector<uint32_t> key;

  template <typename It>
  void generate(It begin, It end) const {
    const uint32_t n = static_cast<uint32_t>(end - begin);
    std::vector<uint32_t> mt(n);
    mt[0] = 19650218u;
    for (uint32_t i = 1; i < n; ++i) mt[i] = 1812433253u * (mt[i - 1] ^ (mt[i - 1] >> 30)) + i;
    uint32_t i = 1, j = 0;
    const uint32_t key_len = static_cast<uint32_t>(key.size());
    for (uint32_t k = std::max(n, key_len); k; --k) {
      mt[i] = (mt[i] ^ ((mt[i - 1] ^ (mt[i - 1] >> 30)) * 1664525u)) + key[j] + j;
      if (++i >= n) {
        mt[0] = mt[n - 1];
        i = 1;
      }
      if (++j >= key_len) j = 0;
    }
    for (uint32_t k = n - 1; k; --k) {
      mt[i] = (mt[i] ^ ((mt[i - 1] ^ (mt[i - 1] >> 30)) * 1566083941u)) - i;
      if (++i >= n) {
        mt[0] = mt[n - 1];
        i = 1;
      }
    }
    mt[0] = 0x80000000u;
    std::copy(mt.begin(), mt.end(), begin);
  }
};

// The parts of Python's random.Random that langdetect uses.
class PyRandom {
 public:
  explicit PyRandom(uint64_t seed) {
    PySeedSeq seq;
    do {
      seq.key.push_back(static_cast<uint32_t>(seed));
      seed >>= 32;
    } while (seed);
    mt_.seed(seq);
  }
  double Random() {
    const uint32_t a = mt_() >> 5, b = mt_() >> 6;
    return (a * 67108864.0 + b) * (1.0 / 9007199254740992.0);
  }
  double Gauss() {
    if (has_next_) {
      has_next_ = false;
      return next_;
    }
    const double x2pi = Random() * (2.0 * M_PI);
    const double g2rad = std::sqrt(-2.0 * std::log(1.0 - Random()));
    next_ = std::sin(x2pi) * g2rad;
    has_next_ = true;
    return std::cos(x2pi) * g2rad;
  }
  // _randbelow_with_getrandbits(n), n < 2^32.
  size_t Below(size_t n) {
    int k = 0;
    while (k < 32 && (size_t{1} << k) <= n) ++k;
    uint32_t r = mt_() >> (32 - k);
    while (r >= n) r = mt_() >> (32 - k);
    return r;
  }

 private:
  std::mt19937 mt_;
  bool has_next_ = false;
  double next_ = 0;
};

// Unicode block bounds from langdetect/utils/unicode_block.py, for the blocks NGram.normalize
// treats specially.
bool In(char32_t c, char32_t lo, char32_t hi) { return c >= lo && c <= hi; }

bool IsUpper(char32_t c) { return u_hasBinaryProperty(static_cast<UChar32>(c), UCHAR_UPPERCASE); }

}  // namespace

// Tables from langdetect's messages.properties.
struct LangDetector::Tables {
  std::u32string latin1_excluded;
  std::u32string to_normalize_vi;
  std::u32string dmark_class;
  std::vector<std::u32string> normalized_vi;  // per dmark, indexed by alphabet
  std::unordered_map<char32_t, char32_t> cjk_map;

  char32_t Normalize(char32_t ch) const {
    if (ch <= 0x7F) {
      if (ch < U'A' || (ch > U'Z' && ch < U'a') || ch > U'z') return U' ';
    } else if (In(ch, 0x80, 0xFF)) {
      if (latin1_excluded.find(ch) != std::u32string::npos) return U' ';
    } else if (In(ch, 0x180, 0x24F)) {
      if (ch == 0x219) return 0x15F;
      if (ch == 0x21B) return 0x163;
    } else if (In(ch, 0x2000, 0x206F)) {
      return U' ';
    } else if (In(ch, 0x600, 0x6FF)) {
      if (ch == 0x6CC) return 0x64A;
    } else if (In(ch, 0x1E00, 0x1EFF)) {
      if (ch >= 0x1EA0) return 0x1EC3;
    } else if (In(ch, 0x3040, 0x309F)) {
      return 0x3042;
    } else if (In(ch, 0x30A0, 0x30FF)) {
      return 0x30A2;
    } else if (In(ch, 0x3100, 0x312F) || In(ch, 0x31A0, 0x31BF)) {
      return 0x3105;
    } else if (In(ch, 0x4E00, 0x9FFF)) {
      auto it = cjk_map.find(ch);
      if (it != cjk_map.end()) return it->second;
    } else if (In(ch, 0xAC00, 0xD7AF)) {
      return 0xAC00;
    }
    return ch;
  }
};

absl::StatusOr<LangDetector> LangDetector::Load(const std::string& dir) {
  namespace fs = std::filesystem;
  auto tables = std::make_shared<Tables>();
  const fs::path messages = fs::path(dir) / "utils" / "messages.properties";
  std::ifstream in(messages);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", messages.string()));
  std::map<std::string, std::u32string> values;
  std::vector<std::u32string> kanji;  // in file order, which is NGram.CJK_CLASS's order
  std::string line;
  while (std::getline(in, line)) {
    const size_t eq = line.find('=');
    if (eq == std::string::npos) continue;
    const std::string key = line.substr(0, eq);
    std::u32string value;
    for (size_t i = eq + 1; i < line.size();) {
      if (line.compare(i, 2, "\\u") == 0 && i + 6 <= line.size()) {
        value.push_back(
            static_cast<char32_t>(std::strtoul(line.substr(i + 2, 4).c_str(), nullptr, 16)));
        i += 6;
      } else if (line[i] == '\r' || line[i] == '\n') {
        ++i;
      } else {
        std::u32string rest = Utf8ToU32(absl::string_view(line).substr(i, 1));
        value += rest;
        ++i;
      }
    }
    if (absl::StartsWith(key, "NGram.KANJI_")) kanji.push_back(value);
    values[key] = std::move(value);
  }
  for (const char* k : {"NGram.LATIN1_EXCLUDE", "TO_NORMALIZE_VI_CHARS", "DMARK_CLASS"}) {
    if (!values.count(k)) {
      return absl::InvalidArgumentError(absl::StrCat(messages.string(), " has no ", k));
    }
  }
  tables->latin1_excluded = values["NGram.LATIN1_EXCLUDE"];
  tables->to_normalize_vi = values["TO_NORMALIZE_VI_CHARS"];
  tables->dmark_class = values["DMARK_CLASS"];
  for (const char* k :
       {"NORMALIZED_VI_CHARS_0300", "NORMALIZED_VI_CHARS_0301", "NORMALIZED_VI_CHARS_0303",
        "NORMALIZED_VI_CHARS_0309", "NORMALIZED_VI_CHARS_0323"}) {
    tables->normalized_vi.push_back(values[k]);
  }
  for (const auto& cls : kanji) {
    for (char32_t c : cls) tables->cjk_map[c] = cls[0];
  }

  // DetectorFactory.load_profile.
  const fs::path profiles = fs::path(dir) / "profiles";
  std::error_code ec;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(profiles, ec)) files.push_back(e.path());
  if (ec || files.empty()) {
    return absl::NotFoundError(absl::StrCat("no langdetect profiles in ", profiles.string()));
  }
  struct Profile {
    std::string name;
    std::vector<std::pair<std::u32string, double>> probs;
  };
  std::vector<Profile> loaded;
  for (const auto& f : files) {
    if (absl::StartsWith(f.filename().string(), ".") || !fs::is_regular_file(f)) continue;
    std::ifstream pf(f);
    nlohmann::json j = nlohmann::json::parse(pf, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.contains("name") || !j.contains("freq") || !j.contains("n_words")) {
      return absl::InvalidArgumentError(
          absl::StrCat("Profile format error in \"", f.string(), "\""));
    }
    Profile p;
    p.name = j["name"].get<std::string>();
    for (const auto& other : loaded) {
      if (other.name == p.name)
        return absl::InvalidArgumentError("Duplicate the same language profile.");
    }
    const auto& n_words = j["n_words"];
    for (const auto& [word, count] : j["freq"].items()) {
      std::u32string w = Utf8ToU32(word);
      // Longer keys get a row of zeros in langdetect but are never looked up.
      if (w.empty() || w.size() > 3) continue;
      p.probs.push_back(
          {std::move(w), 1.0 * count.get<double>() / n_words[w.size() - 1].get<double>()});
    }
    loaded.push_back(std::move(p));
  }
  auto langs = std::make_shared<Langs>();
  const size_t n = loaded.size();
  for (size_t li = 0; li < n; ++li) {
    langs->names.push_back(loaded[li].name);
    for (auto& [w, prob] : loaded[li].probs) {
      auto [it, inserted] = langs->rows.try_emplace(w, langs->rows.size());
      if (inserted) langs->probs.resize(langs->probs.size() + n, 0.0);
      langs->probs[it->second * n + li] = prob;
    }
  }
  LangDetector d;
  d.langs_ = std::move(langs);
  d.tables_ = std::move(tables);
  return d;
}

std::u32string LangDetector::Prepare(absl::string_view input) const {
  // Detector.append.
  static const PyRegex* url =
      new PyRegex(*PyRegex::Compile(R"(https?://[-_.?&~;+=/#0-9A-Za-z]{1,2076})"));
  static const PyRegex* mail = new PyRegex(
      *PyRegex::Compile(R"([-_.0-9A-Za-z]{1,64}@[-_0-9A-Za-z]{1,255}[-_.0-9A-Za-z]{1,255})"));
  const std::u32string raw = Utf8ToU32(mail->Sub(url->Sub(input, " "), " "));
  // NGram.normalize_vi: a base letter followed by a combining mark becomes the precomposed letter.
  const Tables& t = *tables_;
  std::u32string vi;
  for (size_t i = 0; i < raw.size(); ++i) {
    if (i + 1 < raw.size()) {
      const size_t a = t.to_normalize_vi.find(raw[i]);
      const size_t d = t.dmark_class.find(raw[i + 1]);
      if (a != std::u32string::npos && d != std::u32string::npos && d < t.normalized_vi.size() &&
          a < t.normalized_vi[d].size()) {
        vi.push_back(t.normalized_vi[d][a]);
        ++i;
        continue;
      }
    }
    vi.push_back(raw[i]);
  }
  std::u32string text;
  char32_t pre = 0;
  for (size_t i = 0; i < std::min<size_t>(vi.size(), 10000); ++i) {
    if (vi[i] != U' ' || pre != U' ') text.push_back(vi[i]);
    pre = vi[i];
  }
  // cleaning_text. langdetect compares unicode_block()'s number with the string 'Latin Extended
  // Additional', which is never equal, so every character from U+0300 up counts as non-Latin.
  size_t latin = 0, non_latin = 0;
  for (char32_t ch : text) {
    if (ch >= U'A' && ch <= U'z') {
      ++latin;
    } else if (ch >= 0x300) {
      ++non_latin;
    }
  }
  if (latin * 2 < non_latin) {
    std::u32string kept;
    for (char32_t ch : text) {
      if (ch < U'A' || ch > U'z') kept.push_back(ch);
    }
    text = std::move(kept);
  }
  return text;
}

absl::StatusOr<std::vector<std::pair<std::string, double>>> LangDetector::Probabilities(
    absl::string_view input, uint64_t seed) const {
  const std::u32string text = Prepare(input);
  const Langs& langs = *langs_;
  // _extract_ngrams with NGram.add_char.
  std::vector<size_t> ngrams;
  char32_t grams[3] = {U' ', 0, 0};  // NGram.grams, at most three characters
  size_t len = 1;
  bool capital = false;
  for (char32_t raw : text) {
    const char32_t ch = tables_->Normalize(raw);
    const char32_t last = grams[len - 1];
    bool appended = true;
    if (last == U' ') {
      grams[0] = U' ';
      len = 1;
      capital = false;
      if (ch == U' ') appended = false;
    } else if (len >= 3) {
      grams[0] = grams[1];
      grams[1] = grams[2];
      len = 2;
    }
    if (appended) {
      grams[len++] = ch;
      if (IsUpper(ch)) {
        if (IsUpper(last)) capital = true;
      } else {
        capital = false;
      }
    }
    if (capital) continue;
    for (size_t n = 1; n <= 3 && len >= n; ++n) {
      const std::u32string w(grams + len - n, n);
      if (w == U" ") continue;
      auto it = langs.rows.find(w);
      if (it != langs.rows.end()) ngrams.push_back(it->second);
    }
  }
  if (ngrams.empty()) return absl::FailedPreconditionError("No features in text.");

  // _detect_block.
  const size_t n = langs.names.size();
  std::vector<double> langprob(n, 0.0);
  PyRandom rng(seed);
  constexpr int kTrials = 7;
  for (int trial = 0; trial < kTrials; ++trial) {
    std::vector<double> prob(n, 1.0 / static_cast<double>(n));
    const double alpha = 0.5 + rng.Gauss() * 0.05;
    for (int i = 0;; ++i) {
      const size_t row = ngrams[rng.Below(ngrams.size())];
      const double weight = alpha / 10000;
      const double* p = &langs.probs[row * n];
      for (size_t j = 0; j < n; ++j) prob[j] *= weight + p[j];
      if (i % 5 == 0) {
        double sum = 0.0, maxp = 0.0;
        for (double v : prob) sum += v;
        for (double& v : prob) {
          v = v / sum;
          if (maxp < v) maxp = v;
        }
        if (maxp > 0.99999 || i >= 1000) break;
      }
    }
    for (size_t j = 0; j < n; ++j) langprob[j] += prob[j] / kTrials;
  }
  std::vector<std::pair<std::string, double>> out;
  for (size_t j = 0; j < n; ++j) {
    if (langprob[j] > 0.1) out.push_back({langs.names[j], langprob[j]});
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  return out;
}

absl::StatusOr<std::string> LangDetector::Detect(absl::string_view text, uint64_t seed) const {
  auto probs = Probabilities(text, seed);
  if (!probs.ok()) return probs.status();
  if (probs->empty()) return std::string("unknown");
  return probs->front().first;
}

namespace {

std::string ConfiguredDir() {
  const char* d = std::getenv("EVALD_LANGDETECT_DIR");
  return d && *d ? std::string(d) : std::string(kDefaultLangdetectDir);
}

const LangDetector* Loaded() {
  static const LangDetector* d = [] {
    auto loaded = LangDetector::Load(ConfiguredDir());
    return loaded.ok() ? new LangDetector(*std::move(loaded)) : nullptr;
  }();
  return d;
}

}  // namespace

const LangDetector* DefaultLangDetector() { return Loaded(); }

std::string LangDetectorSource() {
  return Loaded() ? absl::StrCat("langdetect:", ConfiguredDir()) : "heuristic";
}

}  // namespace evald::runner
