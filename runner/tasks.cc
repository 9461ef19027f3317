// The built-in tasks and the shared TemplateTask. User-defined tasks are in user_task.cc.
#include <algorithm>
#include <cctype>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/status_macros.h"
#include "runner/ifeval.h"
#include "runner/tasks_internal.h"

namespace evald::runner {
namespace {

constexpr char kGsm8kUrl[] =
    "https://raw.githubusercontent.com/openai/grade-school-math/master/grade_school_math/data/"
    "test.jsonl";
constexpr char kIfevalUrl[] =
    "https://raw.githubusercontent.com/google-research/google-research/master/"
    "instruction_following_eval/data/input_data.jsonl";

constexpr char kGsm8kPrompt[] =
    "Solve the following math problem step by step. The last line of your response should be "
    "of the form \"The final answer is: $ANSWER\" (without quotes) where $ANSWER is the final "
    "number.\n\n{{question}}";

std::string JoinLetters(size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    if (i > 0) s += i + 1 == n ? " or " : ", ";
    s += OptionLetter(i);
  }
  return s;
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

class ChoiceTask : public Task {
 public:
  struct Item {
    std::string question;
    std::vector<std::string> options;
    uint8_t gold = 0;  // option index
  };

  ChoiceTask(std::string name, std::string description, std::vector<Item> items)
      : Task(std::move(name)), description_(std::move(description)), items_(std::move(items)) {
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
    std::string text = absl::StrCat(
        "Answer the following multiple choice question. The last line of your response should "
        "be of the following format: 'Answer: $LETTER' (without quotes) where LETTER is one of ",
        JoinLetters(it.options.size()), ". Think step by step before answering.\n\n", it.question,
        "\n");
    for (size_t i = 0; i < it.options.size(); ++i) {
      absl::StrAppend(&text, "\n", std::string(1, OptionLetter(i)), ") ", it.options[i]);
    }
    return AssemblePrompt(type, std::nullopt, {}, text);
  }

  Evaluation Score(size_t index, absl::string_view response) const override {
    const Item& it = items_[index];
    Evaluation e;
    e.gold = std::string(1, OptionLetter(it.gold));
    e.extracted = extractors_[it.options.size()]->Extract(response);
    e.correct = e.extracted &&
                MetricMatches(MetricKind::kChoiceAccuracy, *e.extracted, e.gold.get<std::string>());
    e.scores.emplace_back("choice_accuracy", e.correct ? 1.0 : 0.0);
    return e;
  }

  Evaluation ScoreFailure(size_t index) const override {
    Evaluation e;
    e.gold = std::string(1, OptionLetter(items_[index].gold));
    e.scores.emplace_back("choice_accuracy", 0.0);
    return e;
  }

  std::vector<std::string> ScoreNames() const override { return {"choice_accuracy"}; }
  std::string Describe() const override { return description_; }

 private:
  std::string description_;
  std::vector<Item> items_;
  std::vector<std::optional<Extractor>> extractors_;  // by option count
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

void Shuffle(ChoiceTask::Item& item, uint64_t seed, size_t row_index) {
  uint64_t state = seed ^ (0xA0761D6478BD642Full * (row_index + 1));
  std::vector<size_t> perm(item.options.size());
  for (size_t i = 0; i < perm.size(); ++i) perm[i] = i;
  for (size_t i = perm.size() - 1; i > 0; --i) {
    size_t j = SplitMix(state) % (i + 1);
    std::swap(perm[i], perm[j]);
  }
  std::vector<std::string> options(item.options.size());
  uint8_t gold = 0;
  for (size_t i = 0; i < perm.size(); ++i) {
    options[i] = std::move(item.options[perm[i]]);
    if (perm[i] == item.gold) gold = static_cast<uint8_t>(i);
  }
  item.options = std::move(options);
  item.gold = gold;
}

absl::StatusOr<std::unique_ptr<Task>> MakeChoiceTask(const Plan& plan, const Dataset& ds,
                                                     bool shuffle_default) {
  bool shuffle = plan.params.shuffle_choices.value_or(shuffle_default);
  uint64_t seed = static_cast<uint64_t>(plan.params.seed.value_or(0));
  std::vector<ChoiceTask::Item> items;
  items.reserve(ds.rows.size());
  for (size_t i = 0; i < ds.rows.size(); ++i) {
    EVALD_ASSIGN_OR_RETURN(ChoiceTask::Item item, ParseChoiceRow(ds.rows[i].value, ds.Where(i)));
    if (shuffle) Shuffle(item, seed, i);
    items.push_back(std::move(item));
  }
  std::string desc =
      absl::StrCat(ds.source, ", ", items.size(), " questions, choice letters, choice_accuracy",
                   shuffle ? ", options shuffled" : "");
  return std::unique_ptr<Task>(new ChoiceTask(plan.task, desc, std::move(items)));
}

// ---- GSM8K --------------------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<Task>> MakeGsm8kTask(const Plan& plan, Dataset ds) {
  std::vector<std::string> golds;
  golds.reserve(ds.rows.size());
  for (size_t i = 0; i < ds.rows.size(); ++i) {
    nlohmann::json& row = ds.rows[i].value;
    auto q = row.find("question");
    if (q == row.end() || !q->is_string() || q->get<std::string>().empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(ds.Where(i), ": missing or empty 'question' (a string)"));
    }
    auto a = row.find("answer");
    std::optional<std::string> gold;
    if (a != row.end() && a->is_string()) {
      gold = Gsm8kGold(a->get<std::string>());
      if (!gold && ParseNumber(a->get<std::string>())) gold = a->get<std::string>();
    } else if (a != row.end() && a->is_number()) {
      gold = a->dump();
    }
    if (!gold) {
      return absl::InvalidArgumentError(
          absl::StrCat(ds.Where(i),
                       ": 'answer' must end with '#### <number>' (the openai/grade-school-math "
                       "layout) or be a number"));
    }
    golds.push_back(*gold);
    // Keep only what the prompt needs.
    nlohmann::json slim = {{"question", std::move(*q)}};
    row = std::move(slim);
  }
  TemplateTask::Spec spec;
  spec.name = plan.task;
  spec.prompt = PromptTemplate::Parse(kGsm8kPrompt).value();
  spec.extractor = Extractor::Numeric();
  spec.metric = MetricKind::kNumericMatch;
  spec.description =
      absl::StrCat(ds.source, ", ", ds.rows.size(), " problems, numeric extractor, numeric_match");
  EVALD_ASSIGN_OR_RETURN(auto task,
                         TemplateTask::Create(std::move(spec), std::move(ds), std::move(golds)));
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

absl::StatusOr<std::unique_ptr<TemplateTask>> TemplateTask::Create(Spec spec, Dataset dataset,
                                                                   std::vector<std::string> golds) {
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
  return task;
}

Prompt TemplateTask::BuildPrompt(size_t index, EndpointType type) const {
  std::string text = spec_.prompt.Render(rows_[index]).value_or("");
  return AssemblePrompt(type, spec_.system_prompt, spec_.few_shot, text);
}

Evaluation TemplateTask::Score(size_t index, absl::string_view response) const {
  Evaluation e;
  e.gold = golds_[index];
  e.extracted = spec_.extractor.Extract(response);
  e.correct =
      e.extracted && MetricMatches(spec_.metric, *e.extracted, golds_[index], spec_.ignore_case);
  e.scores.emplace_back(MetricName(spec_.metric), e.correct ? 1.0 : 0.0);
  return e;
}

Evaluation TemplateTask::ScoreFailure(size_t index) const {
  Evaluation e;
  e.gold = golds_[index];
  e.scores.emplace_back(MetricName(spec_.metric), 0.0);
  return e;
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
  if (!plan.task_file.empty()) {
    return LoadUserTask(plan.task_file, plan.task, plan.params, dataset_options);
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
  if (plan.task == "native_gsm8k") return MakeGsm8kTask(plan, std::move(ds));
  if (plan.task == "native_ifeval") return MakeIfevalTask(plan, ds);
  return MakeChoiceTask(plan, ds, /*shuffle_default=*/plan.task == "native_gpqa_diamond");
}

}  // namespace evald::runner
