// Differential tests: evalrun's C++ Punkt, word_tokenize and langdetect against the real Python
// packages (Debian python3-nltk and python3-langdetect) on tests/runner/data/nltk_corpus.json.
// Skipped with a warning when no python3 can import both modules, unless EVALD_REQUIRE_NLTK=1
// (scripts/test sets it after scripts/setup installed them), which makes that a failure.
#include <catch2/catch.hpp>
#include <cstdio>
#include <optional>

#include "nlohmann/json.hpp"
#include "runner/langdetect.h"
#include "runner/nltk_tokenize.h"
#include "tests/runner/test_util.h"

namespace evald::runner {
namespace {

using testing::SourceDir;
using testing::TempDir;
using testing::WriteFile;

std::string RunCapture(const std::string& cmd, int* status) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) {
    *status = -1;
    return out;
  }
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  *status = pclose(p);
  return out;
}

// A python3 that imports nltk and langdetect ($EVALD_PYTHON first; pyenv shims may hide
// Debian's), or nullopt after a skip / failure.
std::optional<std::string> ReferencePython() {
  std::vector<std::string> candidates;
  if (const char* e = std::getenv("EVALD_PYTHON"); e && *e) candidates.push_back(e);
  candidates.push_back("python3");
  candidates.push_back("/usr/bin/python3");
  for (const auto& py : candidates) {
    int status = 0;
    RunCapture(py + " -c 'import nltk, langdetect' 2>/dev/null", &status);
    if (status == 0) return py;
  }
  const char* req = std::getenv("EVALD_REQUIRE_NLTK");
  if (req && std::string(req) == "1") {
    FAIL(
        "EVALD_REQUIRE_NLTK=1 but no python3 imports nltk and langdetect (scripts/setup installs "
        "python3-nltk python3-langdetect)");
  }
  WARN(
      "skipped: no python3 with nltk and langdetect (apt-get install python3-nltk "
      "python3-langdetect)");
  SUCCEED();
  return std::nullopt;
}

// Punkt parameters standing in for a trained English model (Debian ships none): abbreviations,
// a collocation, sentence starters and orthographic contexts, so every branch of the second
// pass is exercised. The same files are read by the C++ loader and by the Python script.
void WritePunktTab(const std::string& dir) {
  WriteFile(dir + "/abbrev_types.txt",
            "dr\nmr\nmrs\ne.g\nu.s\np.m\na.m\netc\nfig\nsec\nvs\napprox\n");
  WriteFile(dir + "/sent_starters.txt", "he\nthe\nthey\n");
  WriteFile(dir + "/collocations.tab", "s.\tbach\n##number##\tfifth\n");
  WriteFile(dir + "/ortho_context.tab", "then\t34\nhe\t6\nthe\t50\nanalysts\t2\nsmith\t4\n");
}

struct Reference {
  nlohmann::json corpus;
  nlohmann::json out;
  std::unique_ptr<PunktSentenceTokenizer> empty, trained;
};

std::optional<Reference> LoadReference(const TempDir& dir, int generated = 0) {
  auto py = ReferencePython();
  if (!py) return std::nullopt;
  WritePunktTab(dir.path());
  const std::string corpus_path = SourceDir() + "/tests/runner/data/nltk_corpus.json";
  int status = 0;
  const std::string out = RunCapture(
      *py + " " + SourceDir() + "/tests/runner/data/nltk_langdetect_reference.py " + corpus_path +
          " " + dir.path() + (generated ? " " + std::to_string(generated) : ""),
      &status);
  INFO(out);
  REQUIRE(status == 0);
  Reference r;
  r.out = nlohmann::json::parse(out);
  r.corpus = nlohmann::json::array();
  for (const auto& row : r.out["rows"]) r.corpus.push_back(row["text"]);
  if (!generated) REQUIRE(r.corpus == nlohmann::json::parse(testing::ReadFile(corpus_path)));
  auto params = LoadPunktParameters(dir.path());
  REQUIRE(params.ok());
  r.empty = std::make_unique<PunktSentenceTokenizer>(PunktParameters{});
  r.trained = std::make_unique<PunktSentenceTokenizer>(*std::move(params));
  return r;
}

void CompareTokenizers(const Reference* ref) {
  size_t agree = 0;
  const size_t n = ref->corpus.size();
  for (size_t i = 0; i < n; ++i) {
    const std::string text = ref->corpus[i].get<std::string>();
    const nlohmann::json& want = ref->out["rows"][i];
    INFO("string " << i << ": " << text);
    const auto empty = ref->empty->Tokenize(text);
    const auto sentences = ref->trained->Tokenize(text);
    const auto treebank = NltkTreebankTokenize(text);
    const auto words = NltkWordTokenize(text, *ref->trained);
    CHECK(nlohmann::json(empty) == want["sentences_empty"]);
    CHECK(nlohmann::json(sentences) == want["sentences"]);
    CHECK(nlohmann::json(treebank) == want["treebank"]);
    CHECK(nlohmann::json(words) == want["word_tokenize"]);
    agree += nlohmann::json(empty) == want["sentences_empty"] &&
             nlohmann::json(sentences) == want["sentences"] &&
             nlohmann::json(treebank) == want["treebank"] &&
             nlohmann::json(words) == want["word_tokenize"];
  }
  CHECK(agree == n);
  WARN("nltk: " << agree << "/" << n << " strings agree with Python on all four tokenizations");
}

void CompareLangdetect(const Reference* ref) {
  auto detector = LangDetector::Load(ref->out["langdetect_dir"].get<std::string>());
  REQUIRE(detector.ok());
  size_t agree = 0;
  const size_t n = ref->corpus.size();
  for (size_t i = 0; i < n; ++i) {
    const std::string text = ref->corpus[i].get<std::string>();
    const nlohmann::json& want = ref->out["rows"][i];
    INFO("string " << i << ": " << text);
    auto got = detector->Probabilities(text, 0);
    nlohmann::json got_json;
    if (got.ok()) {
      got_json = nlohmann::json::array();
      for (const auto& [lang, p] : *got) got_json.push_back({lang, p});
      CHECK(got_json == want.value("langs", nlohmann::json()));
    } else {
      CHECK(got.status().message() == want.value("lang_error", ""));
    }
    agree += got.ok() ? got_json == want.value("langs", nlohmann::json())
                      : got.status().message() == want.value("lang_error", "");
  }
  CHECK(agree == n);
  WARN("langdetect: " << agree << "/" << n << " strings agree with Python (languages and "
                      << "probabilities exactly)");
}

TEST_CASE("nltk: Punkt and word_tokenize agree with Python nltk on the corpus") {
  TempDir dir;
  auto ref = LoadReference(dir);
  if (ref) CompareTokenizers(&*ref);
}

TEST_CASE("langdetect: detect_langs with seed 0 agrees with Python langdetect on the corpus") {
  TempDir dir;
  auto ref = LoadReference(dir);
  if (ref) CompareLangdetect(&*ref);
}

// 1000 random strings (fixed seed, generated by the script) built from the same kind of
// fragments plus random characters of the Unicode blocks langdetect normalises specially.
TEST_CASE("nltk and langdetect agree with Python on 1000 generated strings") {
  TempDir dir;
  auto ref = LoadReference(dir, 1000);
  if (!ref) return;
  CompareTokenizers(&*ref);
  CompareLangdetect(&*ref);
}

}  // namespace
}  // namespace evald::runner
