// The built-in tasks and the shared TemplateTask. User-defined tasks are in user_task.cc.
#include <algorithm>
#include <cctype>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "core/status_macros.h"
#include "runner/ifeval.h"
#include "runner/langdetect.h"
#include "runner/nltk_tokenize.h"
#include "runner/reference_scoring.h"
#include "runner/tasks_internal.h"

namespace evald::runner {
namespace {

constexpr char kGsm8kUrl[] =
    "https://raw.githubusercontent.com/openai/grade-school-math/master/grade_school_math/data/"
    "test.jsonl";
constexpr char kIfevalUrl[] =
    "https://raw.githubusercontent.com/google-research/google-research/master/"
    "instruction_following_eval/data/input_data.jsonl";

// config.params.extra.<key>, or null when absent or null. The plan's own fields do not carry the
// scoring options, so they are read from the config as given.
const nlohmann::json* ExtraValue(const Plan& plan, const char* key) {
  if (!plan.config.is_object() || !plan.config.contains("params")) return nullptr;
  const nlohmann::json& params = plan.config["params"];
  if (!params.is_object() || !params.contains("extra")) return nullptr;
  const nlohmann::json& extra = params["extra"];
  if (!extra.is_object() || !extra.contains(key) || extra[key].is_null()) return nullptr;
  return &extra[key];
}

// config.params.extra.<key> as a string (nullopt when absent or null).
absl::StatusOr<std::optional<std::string>> ExtraString(const Plan& plan, const char* key) {
  const nlohmann::json* value = ExtraValue(plan, key);
  if (value == nullptr) return std::nullopt;
  if (!value->is_string()) {
    return absl::InvalidArgumentError(
        absl::StrCat("config.params.extra.", key, ": expected a string"));
  }
  return value->get<std::string>();
}

// config.params.extra.<key> as an integer (nullopt when absent or null).
absl::StatusOr<std::optional<int64_t>> ExtraInt(const Plan& plan, const char* key) {
  const nlohmann::json* value = ExtraValue(plan, key);
  if (value == nullptr) return std::nullopt;
  if (!value->is_number_integer()) {
    return absl::InvalidArgumentError(
        absl::StrCat("config.params.extra.", key, ": expected an integer"));
  }
  return value->get<int64_t>();
}

// splitmix64: a small, portable PRNG so option shuffles are the same on every platform.
uint64_t SplitMix(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

std::string ValueText(const nlohmann::json& v) {
  return v.is_string() ? v.get<std::string>() : v.dump();
}

// ---- multiple choice ------------------------------------------------------------------------

// Which reference a multiple-choice task reproduces.
enum class ChoiceReference { kSimpleEvalsMmlu, kSimpleEvalsGpqa, kLmEvalMmluPro };

class ChoiceTask : public Task {
 public:
  struct Item {
    std::string question;
    std::vector<std::string> options;
    uint8_t gold = 0;     // option index
    std::string subject;  // MMLU-Pro's category (its prompt names it)
  };

  ChoiceTask(std::string name, std::string description, std::vector<Item> items,
             ChoiceReference reference, nlohmann::json scoring)
      : Task(std::move(name)),
        description_(std::move(description)),
        items_(std::move(items)),
        reference_(reference),
        scoring_(std::move(scoring)),
        mmlu_pro_(MmluProReference()) {
    size_t max_options = 0;
    for (const auto& it : items_) max_options = std::max(max_options, it.options.size());
    extractors_.resize(max_options + 1);
    for (size_t n = 2; n <= max_options; ++n) {
      std::vector<std::string> letters;
      for (size_t i = 0; i < n; ++i) letters.emplace_back(1, OptionLetter(i));
      extractors_[n] = Extractor::Choices(letters).value();
    }
  }

  size_t size() const override { return items_.size(); }

  Prompt BuildPrompt(size_t index, EndpointType type) const override {
    const Item& it = items_[index];
    std::string text;
    if (reference_ == ChoiceReference::kLmEvalMmluPro) {
      // lm-eval mmlu_pro's description and CoT question format (zero-shot here).
      std::string subject =
          absl::StrReplaceAll(it.subject.empty() ? "various subjects" : it.subject, {{"_", " "}});
      text =
          absl::StrCat("The following are multiple choice questions (with answers) about ", subject,
                       ". Think step by step and then finish your answer with \"the answer is "
                       "(X)\" where X is the correct letter choice.\n\nQuestion:\n",
                       it.question, "\nOptions:\n");
      for (size_t i = 0; i < it.options.size(); ++i) {
        absl::StrAppend(&text, std::string(1, OptionLetter(i)), ". ", it.options[i], "\n");
      }
      text += "Answer: Let's think step by step.";
      return AssemblePrompt(type, std::nullopt, {}, text);
    }
    // simple-evals' QUERY_TEMPLATE_MULTICHOICE ("one of ABCD").
    std::string letters;
    for (size_t i = 0; i < it.options.size(); ++i) letters += OptionLetter(i);
    text = absl::StrCat(
        "Answer the following multiple choice question. The last line of your response should "
        "be of the following format: 'Answer: $LETTER' (without quotes) where LETTER is one of ",
        letters, ". Think step by step before answering.\n\n", it.question, "\n");
    for (size_t i = 0; i < it.options.size(); ++i) {
      absl::StrAppend(&text, "\n", std::string(1, OptionLetter(i)), ") ", it.options[i]);
    }
    return AssemblePrompt(type, std::nullopt, {}, text);
  }

  Evaluation Score(size_t index, absl::string_view response) const override {
    const Item& it = items_[index];
    Evaluation e;
    const std::string gold(1, OptionLetter(it.gold));
    e.gold = gold;
    e.filtered = nlohmann::json::object();
    const std::string name = ReferenceScoreName();
    switch (reference_) {
      case ChoiceReference::kSimpleEvalsMmlu:
      case ChoiceReference::kSimpleEvalsGpqa: {
        e.extracted = reference_ == ChoiceReference::kSimpleEvalsMmlu
                          ? SimpleEvalsMmluExtract(response)
                          : SimpleEvalsGpqaExtract(response);
        e.correct = e.extracted && *e.extracted == gold;  // case-sensitive, as the reference
        break;
      }
      case ChoiceReference::kLmEvalMmluPro: {
        std::string got = mmlu_pro_.filter.Apply(response, {});
        e.correct = ExactMatch(got, gold, mmlu_pro_.exact_match);
        e.extracted = got;
        break;
      }
    }
    e.filtered[name] = e.extracted ? nlohmann::json(*e.extracted) : nlohmann::json(nullptr);
    e.scores.emplace_back(name, e.correct ? 1.0 : 0.0);
    auto lenient = extractors_[it.options.size()]->Extract(response);
    const bool lenient_ok = lenient && MetricMatches(MetricKind::kChoiceAccuracy, *lenient, gold);
    e.filtered[kLenientChoice] = lenient ? nlohmann::json(*lenient) : nlohmann::json(nullptr);
    e.scores.emplace_back(kLenientChoice, lenient_ok ? 1.0 : 0.0);
    return e;
  }

  Evaluation ScoreFailure(size_t index) const override {
    Evaluation e;
    e.gold = std::string(1, OptionLetter(items_[index].gold));
    e.scores.emplace_back(ReferenceScoreName(), 0.0);
    e.scores.emplace_back(kLenientChoice, 0.0);
    return e;
  }

  std::vector<std::string> ScoreNames() const override {
    return {ReferenceScoreName(), kLenientChoice};
  }
  std::string Describe() const override { return description_; }
  nlohmann::json ScoringJson() const override { return scoring_; }

 private:
  static constexpr char kLenientChoice[] = "lenient_choice_accuracy";
  std::string ReferenceScoreName() const {
    return reference_ == ChoiceReference::kLmEvalMmluPro ? "custom-extract" : "score";
  }

  std::string description_;
  std::vector<Item> items_;
  ChoiceReference reference_;
  nlohmann::json scoring_;
  ReferenceScore mmlu_pro_;
  std::vector<std::optional<Extractor>> extractors_;  // by option count (the lenient score)
};

// Reads one multiple-choice row in any of the documented layouts (see docs/tasks.md).
absl::StatusOr<ChoiceTask::Item> ParseChoiceRow(const nlohmann::json& row,
                                                const std::string& where) {
  ChoiceTask::Item item;
  const nlohmann::json* q = nullptr;
  for (const char* key : {"question", "Question"}) {
    if (row.contains(key)) {
      q = &row[key];
      break;
    }
  }
  if (q == nullptr || !q->is_string() ||
      absl::StripAsciiWhitespace(q->get<std::string>()).empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": missing or empty 'question' (a string)"));
  }
  item.question = q->get<std::string>();
  for (const char* key : {"category", "subject"}) {
    if (row.contains(key) && row[key].is_string()) {
      item.subject = row[key].get<std::string>();
      break;
    }
  }

  std::optional<size_t> gold;
  if (row.contains("Correct Answer")) {
    // GPQA's own CSV columns, converted to JSON as they are.
    item.options.push_back(ValueText(row["Correct Answer"]));
    for (int i = 1; i <= 3; ++i) {
      std::string key = absl::StrCat("Incorrect Answer ", i);
      if (!row.contains(key)) {
        return absl::InvalidArgumentError(absl::StrCat(where, ": missing '", key, "'"));
      }
      item.options.push_back(ValueText(row[key]));
    }
    gold = 0;
  } else {
    const nlohmann::json* opts = nullptr;
    for (const char* key : {"options", "choices"}) {
      if (row.contains(key)) {
        opts = &row[key];
        break;
      }
    }
    if (opts == nullptr || !opts->is_array()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": missing 'options' (or 'choices'): a list of answer texts"));
    }
    for (const auto& o : *opts) item.options.push_back(ValueText(o));
  }
  if (item.options.size() < 2 || item.options.size() > 26) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": expected between 2 and 26 options, got ", item.options.size()));
  }
  const size_t n = item.options.size();
  if (!gold) {
    auto bad_gold = [&](const std::string& what) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": ", what, "; expected 'answer' as a letter A-",
          std::string(1, OptionLetter(n - 1)), " or an option index, or 'answer_index'"));
    };
    const nlohmann::json* a = row.contains("answer") ? &row["answer"] : nullptr;
    if (a != nullptr && a->is_string()) {
      std::string s(absl::StripAsciiWhitespace(a->get<std::string>()));
      if (s.size() == 1 && std::isupper(static_cast<unsigned char>(s[0]))) {
        gold = static_cast<size_t>(s[0] - 'A');
      } else {
        for (size_t i = 0; i < n && !gold; ++i) {
          if (item.options[i] == s) gold = i;
        }
        if (!gold) return bad_gold(absl::StrCat("answer '", s, "' is not a letter or an option"));
      }
    } else if (a != nullptr && a->is_number_integer()) {
      gold = a->get<int64_t>() < 0 ? n : static_cast<size_t>(a->get<int64_t>());
    } else if (row.contains("answer_index") && row["answer_index"].is_number_integer()) {
      int64_t idx = row["answer_index"].get<int64_t>();
      gold = idx < 0 ? n : static_cast<size_t>(idx);
    } else {
      return bad_gold("missing the gold answer");
    }
    if (*gold >= n) return bad_gold(absl::StrCat("gold answer out of range for ", n, " options"));
  }
  item.gold = static_cast<uint8_t>(*gold);
  return item;
}

// Reorders the options: new option i is old option perm[i].
void Permute(ChoiceTask::Item& item, const std::vector<size_t>& perm) {
  std::vector<std::string> options(item.options.size());
  uint8_t gold = 0;
  for (size_t i = 0; i < perm.size(); ++i) {
    options[i] = std::move(item.options[perm[i]]);
    if (perm[i] == item.gold) gold = static_cast<uint8_t>(i);
  }
  item.options = std::move(options);
  item.gold = gold;
}

void Shuffle(ChoiceTask::Item& item, uint64_t seed, size_t row_index) {
  uint64_t state = seed ^ (0xA0761D6478BD642Full * (row_index + 1));
  std::vector<size_t> perm(item.options.size());
  for (size_t i = 0; i < perm.size(); ++i) perm[i] = i;
  for (size_t i = perm.size() - 1; i > 0; --i) {
    size_t j = SplitMix(state) % (i + 1);
    std::swap(perm[i], perm[j]);
  }
  Permute(item, perm);
}

absl::StatusOr<std::unique_ptr<Task>> MakeChoiceTask(const Plan& plan, const Dataset& ds) {
  ChoiceReference reference = ChoiceReference::kSimpleEvalsMmlu;
  nlohmann::json scoring;
  if (plan.task == "native_gpqa_diamond") {
    reference = ChoiceReference::kSimpleEvalsGpqa;
    scoring = {{"reference", "simple-evals gpqa_eval.py (variant diamond)"},
               {"commit", kSimpleEvalsCommit},
               {"score", "score"},
               {"pattern", R"((?i)Answer[ \t]*:[ \t]*\$?([A-D])\$?)"},
               {"normalisation", "none"}};
  } else if (plan.task == "native_mmlu_pro") {
    reference = ChoiceReference::kLmEvalMmluPro;
    scoring = {{"reference", "lm-evaluation-harness mmlu_pro (_default_template_yaml)"},
               {"commit", kLmEvalCommit},
               {"score", "custom-extract"},
               {"pattern", R"(answer is \(?([ABCDEFGHIJ])\)?)"},
               {"exact_match", {{"ignore_case", true}, {"ignore_punctuation", true}}}};
  } else {
    scoring = {{"reference", "simple-evals mmlu_eval.py"},
               {"commit", kSimpleEvalsCommit},
               {"score", "score"},
               {"normalisation", "normalize_response, 42 multilingual answer labels"}};
  }
  scoring["lenient_score"] = "lenient_choice_accuracy";
  // GPQA: simple-evals' permutation, random.Random(seed).sample(range(4), 4) drawn row after row
  // (seed 0 unless extra.seed); other tasks keep the file's order unless shuffle_choices.
  const bool gpqa = reference == ChoiceReference::kSimpleEvalsGpqa;
  const bool shuffle = plan.params.shuffle_choices.value_or(gpqa);
  const uint64_t seed = static_cast<uint64_t>(plan.params.seed.value_or(0));
  // simple-evals runs GPQA n_repeats = 4 times (`examples * n_repeats`, each copy with its own
  // permutation); extra.n_repeats changes it (1 with the permutation off).
  EVALD_ASSIGN_OR_RETURN(std::optional<int64_t> n_repeats, ExtraInt(plan, "n_repeats"));
  if (n_repeats && !gpqa) {
    return absl::InvalidArgumentError(
        absl::StrCat("config.params.extra.n_repeats: only native_gpqa_diamond repeats its "
                     "questions (use extra.n_samples for repeated requests)"));
  }
  if (n_repeats && (*n_repeats < 1 || *n_repeats > 100)) {
    return absl::InvalidArgumentError("config.params.extra.n_repeats: must be in [1, 100]");
  }
  const int64_t repeats = gpqa ? n_repeats.value_or(shuffle ? 4 : 1) : 1;
  std::vector<ChoiceTask::Item> rows;
  rows.reserve(ds.rows.size());
  for (size_t i = 0; i < ds.rows.size(); ++i) {
    EVALD_ASSIGN_OR_RETURN(ChoiceTask::Item item, ParseChoiceRow(ds.rows[i].value, ds.Where(i)));
    rows.push_back(std::move(item));
  }
  PythonRandom rng(seed);
  std::vector<ChoiceTask::Item> items;
  items.reserve(rows.size() * repeats);
  for (int64_t r = 0; r < repeats; ++r) {
    for (size_t i = 0; i < rows.size(); ++i) {
      ChoiceTask::Item item = rows[i];
      if (shuffle && gpqa) {
        std::vector<int> p = rng.SampleRange(static_cast<int>(item.options.size()),
                                             static_cast<int>(item.options.size()));
        Permute(item, std::vector<size_t>(p.begin(), p.end()));
      } else if (shuffle) {
        Shuffle(item, seed, i);
      }
      items.push_back(std::move(item));
    }
  }
  if (gpqa) {
    scoring["permutation"] = shuffle ? absl::StrCat("random.Random(", seed, ")") : "none";
    scoring["n_repeats"] = repeats;
  }
  std::string desc = absl::StrCat(ds.source, ", ", rows.size(), " questions",
                                  repeats > 1 ? absl::StrCat(" x ", repeats, " repeats") : "", ", ",
                                  scoring["reference"].get<std::string>(), " scoring",
                                  shuffle ? ", options shuffled" : "");
  // mmlu_pro's generation stops at "Question:"; simple-evals sets no stop strings.
  std::vector<std::string> until;
  if (reference == ChoiceReference::kLmEvalMmluPro) until = {"Question:"};
  scoring["until"] = until;
  auto task = std::make_unique<ChoiceTask>(plan.task, desc, std::move(items), reference,
                                           std::move(scoring));
  task->set_stop_strings(std::move(until));
  return std::unique_ptr<Task>(std::move(task));
}

// ---- GSM8K --------------------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<Task>> MakeGsm8kTask(const Plan& plan, Dataset ds) {
  EVALD_ASSIGN_OR_RETURN(std::optional<std::string> variant, ExtraString(plan, "variant"));
  EVALD_ASSIGN_OR_RETURN(Gsm8kReference ref, Gsm8kReferenceFor(variant.value_or("gsm8k")));
  std::vector<std::string> golds, reference_golds;
  golds.reserve(ds.rows.size());
  reference_golds.reserve(ds.rows.size());
  for (size_t i = 0; i < ds.rows.size(); ++i) {
    nlohmann::json& row = ds.rows[i].value;
    auto q = row.find("question");
    if (q == row.end() || !q->is_string() || q->get<std::string>().empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(ds.Where(i), ": missing or empty 'question' (a string)"));
    }
    auto a = row.find("answer");
    std::optional<std::string> gold;
    std::string reference_gold;
    if (a != row.end() && a->is_string()) {
      const std::string& answer = a->get_ref<const std::string&>();
      gold = Gsm8kGold(answer);
      if (!gold && ParseNumber(answer)) gold = answer;
      reference_gold = Gsm8kReferenceGold(ref, answer);
    } else if (a != row.end() && a->is_number()) {
      gold = a->dump();
      reference_gold = *gold;
    }
    if (!gold) {
      return absl::InvalidArgumentError(
          absl::StrCat(ds.Where(i),
                       ": 'answer' must end with '#### <number>' (the openai/grade-school-math "
                       "layout) or be a number"));
    }
    golds.push_back(*gold);
    reference_golds.push_back(std::move(reference_gold));
    // Keep only what the prompt needs.
    nlohmann::json slim = {{"question", std::move(*q)}};
    row = std::move(slim);
  }
  TemplateTask::Spec spec;
  spec.name = plan.task;
  spec.prompt = PromptTemplate::Parse(ref.prompt).value();
  spec.extractor = Extractor::Numeric();
  spec.metric = MetricKind::kNumericMatch;
  spec.reference = ref.scores;
  spec.extractor_score_name = "lenient_numeric_match";
  spec.scoring = {
      {"reference", absl::StrCat("lm-evaluation-harness ", ref.task, " (", ref.file, ")")},
      {"commit", kLmEvalCommit},
      {"variant", ref.task},
      {"filters", FiltersJson(ref.scores)},
      {"exact_match",
       {{"ignore_case", true},
        {"ignore_punctuation", false},
        {"regexes_to_ignore", {",", "\\$", "(?s).*#### ", "\\.$"}}}},
      {"lenient_score", "lenient_numeric_match"}};
  spec.description = absl::StrCat(ds.source, ", ", ds.rows.size(), " problems, lm-eval ", ref.task,
                                  " scoring (", ref.scores[0].filter.name, ", ",
                                  ref.scores[1].filter.name, ") + lenient_numeric_match");
  spec.scoring["until"] = ref.until;
  EVALD_ASSIGN_OR_RETURN(auto task,
                         TemplateTask::Create(std::move(spec), std::move(ds), std::move(golds),
                                              std::move(reference_golds)));
  task->set_stop_strings(ref.until);
  return std::unique_ptr<Task>(std::move(task));
}

// ---- IFEval -------------------------------------------------------------------------------

class IfevalTask : public Task {
 public:
  struct Item {
    std::string prompt;
    std::vector<IfevalChecker> checkers;
  };

  IfevalTask(std::string name, std::string description, std::vector<Item> items)
      : Task(std::move(name)), description_(std::move(description)), items_(std::move(items)) {}

  size_t size() const override { return items_.size(); }
  Prompt BuildPrompt(size_t index, EndpointType type) const override {
    return AssemblePrompt(type, std::nullopt, {}, items_[index].prompt);
  }

  Evaluation Score(size_t index, absl::string_view response) const override {
    const Item& it = items_[index];
    Evaluation e;
    nlohmann::json strict = nlohmann::json::array(), loose = nlohmann::json::array();
    nlohmann::json ids = nlohmann::json::array();
    bool all_strict = true, all_loose = true;
    for (const auto& c : it.checkers) {
      bool s = c.Check(response);
      bool l = s || c.CheckLoose(response);
      all_strict = all_strict && s;
      all_loose = all_loose && l;
      strict.push_back(s);
      loose.push_back(l);
      ids.push_back(c.id());
    }
    e.correct = all_strict;
    e.gold = ids;
    e.scores.emplace_back("prompt_level_strict_acc", all_strict ? 1.0 : 0.0);
    for (const auto& s : strict) e.scores.emplace_back("inst_level_strict_acc", s.get<bool>());
    e.scores.emplace_back("prompt_level_loose_acc", all_loose ? 1.0 : 0.0);
    for (const auto& l : loose) e.scores.emplace_back("inst_level_loose_acc", l.get<bool>());
    e.details = {{"instruction_id_list", ids},
                 {"follow_instruction_list_strict", strict},
                 {"follow_instruction_list_loose", loose}};
    return e;
  }

  Evaluation ScoreFailure(size_t index) const override {
    const Item& it = items_[index];
    Evaluation e;
    nlohmann::json ids = nlohmann::json::array();
    for (const auto& c : it.checkers) ids.push_back(c.id());
    e.gold = ids;
    e.scores.emplace_back("prompt_level_strict_acc", 0.0);
    for (size_t i = 0; i < it.checkers.size(); ++i)
      e.scores.emplace_back("inst_level_strict_acc", 0.0);
    e.scores.emplace_back("prompt_level_loose_acc", 0.0);
    for (size_t i = 0; i < it.checkers.size(); ++i)
      e.scores.emplace_back("inst_level_loose_acc", 0.0);
    return e;
  }

  std::vector<std::string> ScoreNames() const override {
    return {"prompt_level_strict_acc", "inst_level_strict_acc", "prompt_level_loose_acc",
            "inst_level_loose_acc"};
  }
  std::string Describe() const override { return description_; }
  nlohmann::json ScoringJson() const override {
    return {{"reference", "lm-evaluation-harness ifeval (lm_eval/tasks/ifeval/ifeval.yaml)"},
            {"commit", kLmEvalCommit},
            // Which tokenizer parameters and language detector this process scores with.
            {"sentence_tokenizer",
             absl::StrCat("nltk Punkt port (nltk 3.8), parameters: ", EnglishPunktSource())},
            {"word_tokenizer", "nltk word_tokenize port (Punkt, then NLTKWordTokenizer)"},
            {"language_detector",
             DefaultLangDetector() != nullptr
                 ? absl::StrCat(LangDetectorSource(), " (langdetect port, seed 0)")
                 : std::string("heuristic: Unicode script and stop words (no langdetect "
                               "profiles found)")}};
  }

 private:
  std::string description_;
  std::vector<Item> items_;
};

absl::StatusOr<std::unique_ptr<Task>> MakeIfevalTask(const Plan& plan, const Dataset& ds) {
  std::vector<IfevalTask::Item> items;
  items.reserve(ds.rows.size());
  size_t instructions = 0;
  for (size_t i = 0; i < ds.rows.size(); ++i) {
    const nlohmann::json& row = ds.rows[i].value;
    const std::string where = ds.Where(i);
    auto p = row.find("prompt");
    if (p == row.end() || !p->is_string() || p->get<std::string>().empty()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": missing or empty 'prompt'"));
    }
    auto ids = row.find("instruction_id_list");
    if (ids == row.end() || !ids->is_array() || ids->empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": missing 'instruction_id_list' (a non-empty list)"));
    }
    auto kwargs = row.find("kwargs");
    if (kwargs != row.end() && !kwargs->is_array()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": 'kwargs' must be a list"));
    }
    if (kwargs != row.end() && kwargs->size() != ids->size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": 'kwargs' has ", kwargs->size(), " entries for ", ids->size(), " instructions"));
    }
    IfevalTask::Item item;
    item.prompt = p->get<std::string>();
    for (size_t k = 0; k < ids->size(); ++k) {
      if (!(*ids)[k].is_string()) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ": instruction_id_list[", k, "] must be a string"));
      }
      static const nlohmann::json kEmpty = nlohmann::json::object();
      const nlohmann::json& kw = kwargs != row.end() ? (*kwargs)[k] : kEmpty;
      auto checker = IfevalChecker::Create((*ids)[k].get<std::string>(), kw, item.prompt);
      if (!checker.ok()) {
        return absl::InvalidArgumentError(absl::StrCat(where, ": ", checker.status().message()));
      }
      item.checkers.push_back(*std::move(checker));
    }
    instructions += item.checkers.size();
    items.push_back(std::move(item));
  }
  std::string desc =
      absl::StrCat(ds.source, ", ", items.size(), " prompts, ", instructions, " instructions");
  return std::unique_ptr<Task>(new IfevalTask(plan.task, desc, std::move(items)));
}

}  // namespace

// ---- TemplateTask -------------------------------------------------------------------------

Prompt AssemblePrompt(EndpointType type, const std::optional<std::string>& system_prompt,
                      const std::vector<std::pair<std::string, std::string>>& few_shot,
                      const std::string& user_text) {
  Prompt p;
  if (type == EndpointType::kChat) {
    if (system_prompt) p.messages.push_back({"system", *system_prompt});
    for (const auto& [q, a] : few_shot) {
      p.messages.push_back({"user", q});
      p.messages.push_back({"assistant", a});
    }
    p.messages.push_back({"user", user_text});
    return p;
  }
  if (system_prompt) absl::StrAppend(&p.text, *system_prompt, "\n\n");
  for (const auto& [q, a] : few_shot) {
    bool needs_space = !q.empty() && !std::isspace(static_cast<unsigned char>(q.back()));
    absl::StrAppend(&p.text, q, needs_space ? " " : "", a, "\n\n");
  }
  p.text += user_text;
  return p;
}

absl::StatusOr<std::unique_ptr<TemplateTask>> TemplateTask::Create(
    Spec spec, Dataset dataset, std::vector<std::string> golds,
    std::vector<std::string> reference_golds, std::vector<std::vector<std::string>> choices) {
  std::unique_ptr<TemplateTask> task(new TemplateTask(std::move(spec)));
  task->rows_.reserve(dataset.rows.size());
  for (size_t i = 0; i < dataset.rows.size(); ++i) {
    auto rendered = task->spec_.prompt.Render(dataset.rows[i].value);
    if (!rendered.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(dataset.Where(i), ": ", rendered.status().message()));
    }
    task->rows_.push_back(std::move(dataset.rows[i].value));
  }
  task->golds_ = std::move(golds);
  task->reference_golds_ = std::move(reference_golds);
  task->choices_ = std::move(choices);
  return task;
}

Prompt TemplateTask::BuildPrompt(size_t index, EndpointType type) const {
  std::string text = spec_.prompt.Render(rows_[index]).value_or("");
  return AssemblePrompt(type, spec_.system_prompt, spec_.few_shot, text);
}

std::vector<std::string> TemplateTask::ScoreNames() const {
  std::vector<std::string> names;
  for (const auto& r : spec_.reference) names.push_back(r.filter.name);
  if (spec_.extractor_score) names.push_back(ExtractorScoreName());
  return names;
}

Evaluation TemplateTask::Score(size_t index, absl::string_view response) const {
  Evaluation e;
  e.gold = index < golds_.size() ? golds_[index] : reference_golds_[index];
  e.filtered = nlohmann::json::object();
  FilterContext ctx;
  if (index < choices_.size()) ctx.choices = &choices_[index];
  bool first = true;
  for (const auto& r : spec_.reference) {
    std::string got = r.filter.Apply(response, ctx);
    const bool ok = ExactMatch(got, reference_golds_[index], r.exact_match);
    e.scores.emplace_back(r.filter.name, ok ? 1.0 : 0.0);
    if (first) {
      e.correct = ok;
      e.extracted = got;
      first = false;
    }
    e.filtered[r.filter.name] = std::move(got);
  }
  if (spec_.extractor_score) {
    std::optional<std::string> got = spec_.extractor.Extract(response);
    const bool ok = got && MetricMatches(spec_.metric, *got, golds_[index], spec_.ignore_case);
    e.scores.emplace_back(ExtractorScoreName(), ok ? 1.0 : 0.0);
    e.filtered[ExtractorScoreName()] = got ? nlohmann::json(*got) : nlohmann::json(nullptr);
    if (first) {
      e.correct = ok;
      e.extracted = std::move(got);
    }
  }
  return e;
}

Evaluation TemplateTask::ScoreFailure(size_t index) const {
  Evaluation e;
  e.gold = index < golds_.size() ? golds_[index] : reference_golds_[index];
  for (const auto& name : ScoreNames()) e.scores.emplace_back(name, 0.0);
  return e;
}

nlohmann::json FiltersJson(const std::vector<ReferenceScore>& scores) {
  nlohmann::json filters = nlohmann::json::array();
  for (const auto& r : scores) {
    nlohmann::json steps = nlohmann::json::array();
    for (const auto& st : r.filter.steps) steps.push_back(st.Describe());
    filters.push_back({{"name", r.filter.name}, {"steps", std::move(steps)}});
  }
  return filters;
}

std::string ApplyThinkEndToken(absl::string_view response,
                               const std::optional<std::string>& think_end_token) {
  if (!think_end_token || think_end_token->empty()) return std::string(response);
  size_t pos = response.rfind(*think_end_token);
  if (pos == absl::string_view::npos) return std::string(response);
  return PyLStrip(response.substr(pos + think_end_token->size()));
}

std::string PostprocessResponse(absl::string_view response,
                                const std::optional<std::string>& think_end_token,
                                const std::vector<std::string>& stop_strings) {
  std::string text = ApplyThinkEndToken(response, think_end_token);
  for (const auto& stop : stop_strings) {
    if (stop.empty()) continue;
    size_t pos = text.find(stop);
    if (pos != std::string::npos) text.resize(pos);
  }
  return text;
}

// ---- factory ------------------------------------------------------------------------------

const std::vector<std::string>& BuiltinTaskNames() {
  static const auto* names = new std::vector<std::string>{
      "native_gsm8k", "native_mmlu", "native_mmlu_pro", "native_gpqa_diamond", "native_ifeval"};
  return *names;
}

std::string DefaultDatasetUrl(const std::string& task) {
  if (task == "native_gsm8k") return kGsm8kUrl;
  if (task == "native_ifeval") return kIfevalUrl;
  return "";
}

absl::StatusOr<std::unique_ptr<Task>> CreateTask(const Plan& plan,
                                                 const DatasetOptions& dataset_options) {
  EVALD_ASSIGN_OR_RETURN(std::optional<std::string> think_end,
                         ExtraString(plan, "think_end_token"));
  if (!plan.task_file.empty()) {
    EVALD_ASSIGN_OR_RETURN(auto task,
                           LoadUserTask(plan.task_file, plan.task, plan.params, dataset_options));
    // The plan's value wins over the task file's.
    if (think_end) task->set_think_end_token(think_end);
    return task;
  }
  const auto& names = BuiltinTaskNames();
  if (std::find(names.begin(), names.end(), plan.task) == names.end()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "config.type: unknown native task '", plan.task, "'; built-in tasks are ",
        absl::StrJoin(names, ", "), ", and a user-defined task needs config.task_file"));
  }
  std::string source = plan.params.dataset;
  if (source.empty()) source = DefaultDatasetUrl(plan.task);
  if (source.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "config.params.extra.dataset: task ", plan.task,
        " has no public JSONL download; set config.params.extra.dataset to a local JSONL file or "
        "URL (docs/tasks.md says where to get the data and how to convert it)"));
  }
  DatasetOptions opts = dataset_options;
  opts.limit = plan.params.limit_samples;
  EVALD_ASSIGN_OR_RETURN(Dataset ds, LoadDataset(source, opts));
  std::unique_ptr<Task> task;
  if (plan.task == "native_gsm8k") {
    EVALD_ASSIGN_OR_RETURN(task, MakeGsm8kTask(plan, std::move(ds)));
  } else if (plan.task == "native_ifeval") {
    EVALD_ASSIGN_OR_RETURN(task, MakeIfevalTask(plan, ds));
  } else {
    EVALD_ASSIGN_OR_RETURN(task, MakeChoiceTask(plan, ds));
  }
  task->set_think_end_token(think_end);
  return task;
}

}  // namespace evald::runner
