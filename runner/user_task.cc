// User-defined tasks: a YAML file naming a dataset, a prompt template, an extractor and a metric
// (the schema is in docs/tasks.md). Relative paths are relative to the task file's folder.
#include <filesystem>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/status_macros.h"
#include "runner/tasks_internal.h"
#include "runner/yaml_util.h"

namespace evald::runner {
namespace {

namespace fs = std::filesystem;

const std::set<std::string>& KnownKeys() {
  static const auto* keys = new std::set<std::string>{
      "name",         "description",     "dataset",    "prompt",      "system_prompt",
      "answer_field", "extractor",       "metric",     "ignore_case", "endpoint_type",
      "few_shot",     "few_shot_answer", "num_fewshot"};
  return *keys;
}

absl::StatusOr<Extractor> ReadExtractor(const YamlDoc& doc, const YAML::Node& node) {
  const std::string path = "extractor";
  if (!node.IsDefined() || node.IsNull()) {
    return doc.Error(node, path,
                     "missing; expected {regex: '<pattern with one group>'}, {choices: [A, B, C, "
                     "D]}, numeric or full");
  }
  auto wrap = [&](const YAML::Node& n, const std::string& p,
                  absl::StatusOr<Extractor> e) -> absl::StatusOr<Extractor> {
    if (!e.ok()) return doc.Error(n, p, std::string(e.status().message()));
    return e;
  };
  if (node.IsScalar()) {
    const std::string s = node.Scalar();
    if (s == "numeric") return Extractor::Numeric();
    if (s == "full") return Extractor::Full();
    if (absl::StartsWith(s, "regex:")) return wrap(node, path, Extractor::Regex(s.substr(6)));
    if (absl::StartsWith(s, "choices:")) {
      std::vector<std::string> letters;
      for (char c : s.substr(8)) {
        if (c != ',' && c != ' ') letters.emplace_back(1, c);
      }
      return wrap(node, path, Extractor::Choices(letters));
    }
    return doc.Error(
        node, path,
        absl::StrCat("unknown extractor '", s,
                     "'; expected numeric, full, regex:<pattern> or choices:<letters>"));
  }
  if (!node.IsMap() || node.size() != 1) {
    return doc.Error(node, path, "expected exactly one of regex, choices, numeric or full");
  }
  const std::string kind = node.begin()->first.Scalar();
  const YAML::Node value = node.begin()->second;
  const std::string vpath = path + "." + kind;
  if (kind == "regex") {
    EVALD_ASSIGN_OR_RETURN(auto pattern, doc.OptString(value, vpath));
    if (!pattern) return doc.Error(value, vpath, "expected a regex with one capture group");
    return wrap(value, vpath, Extractor::Regex(*pattern));
  }
  if (kind == "choices") {
    std::vector<std::string> letters;
    if (value.IsScalar()) {
      for (char c : value.Scalar()) {
        if (c != ',' && c != ' ') letters.emplace_back(1, c);
      }
    } else {
      EVALD_ASSIGN_OR_RETURN(letters, doc.StringList(value, vpath));
    }
    return wrap(value, vpath, Extractor::Choices(letters));
  }
  if (kind == "numeric" || kind == "full") {
    return kind == "numeric" ? Extractor::Numeric() : Extractor::Full();
  }
  return doc.Error(
      node, path,
      absl::StrCat("unknown extractor '", kind, "'; expected regex, choices, numeric or full"));
}

// Few-shot rows: an inline list of row objects, or a path to a JSONL/JSON file.
absl::StatusOr<std::vector<nlohmann::json>> ReadFewShot(const YamlDoc& doc, const YAML::Node& node,
                                                        const std::string& base_dir,
                                                        std::string* source) {
  std::vector<nlohmann::json> rows;
  if (!node.IsDefined() || node.IsNull()) return rows;
  if (node.IsScalar()) {
    std::string path = ResolvePath(base_dir, node.Scalar());
    *source = path;
    DatasetOptions opts;
    auto ds = LoadDataset(path, opts);
    if (!ds.ok()) {
      return doc.Error(node, "few_shot", std::string(ds.status().message()));
    }
    for (auto& r : ds->rows) rows.push_back(std::move(r.value));
    return rows;
  }
  if (!node.IsSequence()) {
    return doc.Error(node, "few_shot", "expected a list of example rows or a JSONL file path");
  }
  for (size_t i = 0; i < node.size(); ++i) {
    if (!node[i].IsMap()) {
      return doc.Error(node[i], absl::StrCat("few_shot[", i, "]"),
                       "expected a map of field: value");
    }
    rows.push_back(YamlToJson(node[i]));
  }
  *source = doc.name();
  return rows;
}

std::string GoldText(const nlohmann::json& v) {
  return v.is_string() ? v.get<std::string>() : v.dump();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Task>> LoadUserTask(const std::string& task_file,
                                                   const std::string& name, const Params& params,
                                                   const DatasetOptions& dataset_options) {
  EVALD_ASSIGN_OR_RETURN(YamlDoc doc, YamlDoc::Load(task_file));
  const YAML::Node& root = doc.root();
  if (!root.IsMap()) {
    return doc.Error(root, "(top level)",
                     "expected a map with dataset, prompt, answer_field, extractor and metric");
  }
  for (const auto& kv : root) {
    const std::string key = kv.first.Scalar();
    if (!KnownKeys().count(key)) {
      return doc.Error(kv.first, key,
                       absl::StrCat("unknown key; known keys: ", absl::StrJoin(KnownKeys(), ", ")));
    }
  }
  const std::string base_dir = fs::path(task_file).parent_path().string();
  auto child = [&](const char* key) { return YamlDoc::Child(root, key); };

  TemplateTask::Spec spec;
  spec.name = name;

  EVALD_ASSIGN_OR_RETURN(auto dataset, doc.OptString(child("dataset"), "dataset"));
  if (!dataset || dataset->empty()) {
    return doc.Error(root, "dataset", "missing: a JSONL/JSON file path or an http(s) URL");
  }
  std::string source = ResolvePath(base_dir, *dataset);
  if (!params.dataset.empty()) source = params.dataset;  // config.params.extra.dataset wins

  EVALD_ASSIGN_OR_RETURN(auto prompt, doc.OptString(child("prompt"), "prompt"));
  if (!prompt || prompt->empty()) {
    return doc.Error(root, "prompt", "missing: the prompt template with {{field}} placeholders");
  }
  auto tmpl = PromptTemplate::Parse(*prompt);
  if (!tmpl.ok()) return doc.Error(child("prompt"), "prompt", std::string(tmpl.status().message()));
  spec.prompt = *std::move(tmpl);

  EVALD_ASSIGN_OR_RETURN(spec.system_prompt,
                         doc.OptString(child("system_prompt"), "system_prompt"));

  EVALD_ASSIGN_OR_RETURN(auto answer_field, doc.OptString(child("answer_field"), "answer_field"));
  if (!answer_field || answer_field->empty()) {
    return doc.Error(root, "answer_field", "missing: the row field holding the gold answer");
  }

  EVALD_ASSIGN_OR_RETURN(spec.extractor, ReadExtractor(doc, child("extractor")));

  EVALD_ASSIGN_OR_RETURN(auto metric_name, doc.OptString(child("metric"), "metric"));
  if (!metric_name) {
    return doc.Error(root, "metric",
                     "missing; expected exact_match, numeric_match, choice_accuracy, contains or "
                     "regex_match");
  }
  auto metric = ParseMetric(*metric_name);
  if (!metric.ok())
    return doc.Error(child("metric"), "metric", std::string(metric.status().message()));
  spec.metric = *metric;
  if (spec.metric == MetricKind::kChoiceAccuracy &&
      spec.extractor.kind() != Extractor::Kind::kChoices) {
    return doc.Error(child("metric"), "metric", "choice_accuracy needs a choices: extractor");
  }

  EVALD_ASSIGN_OR_RETURN(auto ignore_case, doc.OptBool(child("ignore_case"), "ignore_case"));
  spec.ignore_case = ignore_case.value_or(false);

  EVALD_ASSIGN_OR_RETURN(auto endpoint_type,
                         doc.OptString(child("endpoint_type"), "endpoint_type"));
  if (endpoint_type && *endpoint_type == "completions") {
    spec.default_type = EndpointType::kCompletions;
  } else if (endpoint_type && *endpoint_type != "chat") {
    return doc.Error(child("endpoint_type"), "endpoint_type",
                     absl::StrCat("expected chat or completions, got '", *endpoint_type, "'"));
  }

  // Few-shot examples: rendered once with the same template; the answer side is
  // `few_shot_answer` (a template) or the answer field itself.
  std::string few_source;
  EVALD_ASSIGN_OR_RETURN(std::vector<nlohmann::json> few,
                         ReadFewShot(doc, child("few_shot"), base_dir, &few_source));
  EVALD_ASSIGN_OR_RETURN(auto num_fewshot, doc.OptInt(child("num_fewshot"), "num_fewshot"));
  if (params.num_fewshot) num_fewshot = params.num_fewshot;
  if (num_fewshot && *num_fewshot < 0) {
    return doc.Error(child("num_fewshot"), "num_fewshot", "must be >= 0");
  }
  if (num_fewshot && static_cast<size_t>(*num_fewshot) < few.size()) few.resize(*num_fewshot);
  EVALD_ASSIGN_OR_RETURN(auto few_answer,
                         doc.OptString(child("few_shot_answer"), "few_shot_answer"));
  PromptTemplate answer_tmpl =
      PromptTemplate::Parse(few_answer.value_or("{{" + *answer_field + "}}"))
          .value_or(PromptTemplate());
  if (few_answer) {
    auto t = PromptTemplate::Parse(*few_answer);
    if (!t.ok()) {
      return doc.Error(child("few_shot_answer"), "few_shot_answer",
                       std::string(t.status().message()));
    }
    answer_tmpl = *std::move(t);
  }
  for (size_t i = 0; i < few.size(); ++i) {
    auto q = spec.prompt.Render(few[i]);
    auto a = answer_tmpl.Render(few[i]);
    if (!q.ok() || !a.ok()) {
      return doc.Error(
          child("few_shot"), absl::StrCat("few_shot[", i, "]"),
          absl::StrCat(few_source, ": ", (!q.ok() ? q.status() : a.status()).message()));
    }
    spec.few_shot.emplace_back(*std::move(q), *std::move(a));
  }

  DatasetOptions opts = dataset_options;
  opts.limit = params.limit_samples;
  auto loaded = LoadDataset(source, opts);
  if (!loaded.ok()) {
    return absl::Status(loaded.status().code(),
                        absl::StrCat(loaded.status().message(), " (task file ", task_file, ")"));
  }
  Dataset ds = *std::move(loaded);

  // A template field missing from the first row is a template mistake: name the task file.
  if (!ds.rows.empty()) {
    const nlohmann::json& first = ds.rows[0].value;
    for (const std::string& field : spec.prompt.Fields()) {
      std::string top = field.substr(0, field.find('.'));
      if (!first.contains(top)) {
        std::vector<std::string> keys;
        for (const auto& item : first.items()) keys.push_back(item.key());
        return doc.Error(child("prompt"), "prompt",
                         absl::StrCat("unknown template field '", field, "': the rows of ",
                                      ds.Where(0), " have ", absl::StrJoin(keys, ", ")));
      }
    }
  }

  std::vector<std::string> golds;
  golds.reserve(ds.rows.size());
  const auto& choices = spec.extractor.choices();
  for (size_t i = 0; i < ds.rows.size(); ++i) {
    const nlohmann::json& row = ds.rows[i].value;
    auto it = row.find(*answer_field);
    if (it == row.end() || it->is_null()) {
      return absl::InvalidArgumentError(absl::StrCat(ds.Where(i), ": missing the answer field '",
                                                     *answer_field, "' (task file ", task_file,
                                                     ")"));
    }
    std::string gold = GoldText(*it);
    if (spec.extractor.kind() == Extractor::Kind::kChoices) {
      if (it->is_number_integer()) {
        int64_t idx = it->get<int64_t>();
        if (idx < 0 || static_cast<size_t>(idx) >= choices.size()) {
          return absl::InvalidArgumentError(absl::StrCat(ds.Where(i), ": answer index ", idx,
                                                         " is out of range for the ",
                                                         choices.size(), " choices"));
        }
        gold = choices[idx];
      } else if (std::find(choices.begin(), choices.end(), gold) == choices.end()) {
        return absl::InvalidArgumentError(absl::StrCat(ds.Where(i), ": answer '", gold,
                                                       "' is not one of the choices ",
                                                       absl::StrJoin(choices, ", ")));
      }
    }
    golds.push_back(std::move(gold));
  }
  spec.description =
      absl::StrCat(task_file, ": ", ds.source, ", ", ds.rows.size(), " rows, ",
                   spec.extractor.Describe(), ", ", MetricName(spec.metric),
                   spec.few_shot.empty() ? "" : absl::StrCat(", ", spec.few_shot.size(), "-shot"));
  EVALD_ASSIGN_OR_RETURN(auto task,
                         TemplateTask::Create(std::move(spec), std::move(ds), std::move(golds)));
  return std::unique_ptr<Task>(std::move(task));
}

}  // namespace evald::runner
