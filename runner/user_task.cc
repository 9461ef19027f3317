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
  static const auto* keys = new std::set<std::string>{"name",
                                                      "description",
                                                      "dataset",
                                                      "prompt",
                                                      "system_prompt",
                                                      "answer_field",
                                                      "extractor",
                                                      "metric",
                                                      "ignore_case",
                                                      "endpoint_type",
                                                      "few_shot",
                                                      "few_shot_answer",
                                                      "num_fewshot",
                                                      "filter_list",
                                                      "metric_list",
                                                      "think_end_token",
                                                      "generation_kwargs",
                                                      "choices_field"};
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

// lm-eval's `filter_list`: [{name, filter: [{function, ...}, ...]}, ...] (the keys of
// lm_eval/filters: regex_pattern, group_select, fallback, ignore_case, ignore_punctuation,
// regexes_to_ignore).
absl::StatusOr<std::vector<FilterPipeline>> ReadFilterList(const YamlDoc& doc,
                                                           const YAML::Node& node) {
  std::vector<FilterPipeline> out;
  if (!node.IsSequence() || node.size() == 0) {
    return doc.Error(node, "filter_list",
                     "expected a list of {name: <score name>, filter: [{function: regex, ...}]}");
  }
  std::set<std::string> names;
  for (size_t i = 0; i < node.size(); ++i) {
    const YAML::Node entry = node[i];
    const std::string path = absl::StrCat("filter_list[", i, "]");
    if (!entry.IsMap()) return doc.Error(entry, path, "expected a map with name and filter");
    EVALD_ASSIGN_OR_RETURN(auto name, doc.OptString(YamlDoc::Child(entry, "name"), path + ".name"));
    if (!name || name->empty()) return doc.Error(entry, path + ".name", "missing: the score name");
    if (!names.insert(*name).second) {
      return doc.Error(entry, path + ".name", absl::StrCat("'", *name, "' is used twice"));
    }
    FilterPipeline pipeline;
    pipeline.name = *name;
    const YAML::Node steps = YamlDoc::Child(entry, "filter");
    if (!steps.IsSequence() || steps.size() == 0) {
      return doc.Error(steps.IsDefined() ? steps : entry, path + ".filter",
                       "expected a list of {function: ...} steps");
    }
    for (size_t k = 0; k < steps.size(); ++k) {
      const YAML::Node st = steps[k];
      const std::string spath = absl::StrCat(path, ".filter[", k, "]");
      if (!st.IsMap()) return doc.Error(st, spath, "expected a map with 'function'");
      auto child = [&](const char* key) { return YamlDoc::Child(st, key); };
      auto kpath = [&](const char* key) { return absl::StrCat(spath, ".", key); };
      EVALD_ASSIGN_OR_RETURN(auto fn, doc.OptString(child("function"), kpath("function")));
      if (!fn) return doc.Error(st, kpath("function"), "missing");
      static const std::set<std::string> kKeys = {
          "function",    "regex_pattern",      "group_select",     "fallback",
          "ignore_case", "ignore_punctuation", "regexes_to_ignore"};
      for (const auto& kv : st) {
        if (!kKeys.count(kv.first.Scalar())) {
          return doc.Error(kv.first, kpath(kv.first.Scalar().c_str()), "unknown filter key");
        }
      }
      // RegexFilter's defaults.
      EVALD_ASSIGN_OR_RETURN(auto pattern,
                             doc.OptString(child("regex_pattern"), kpath("regex_pattern")));
      EVALD_ASSIGN_OR_RETURN(auto group, doc.OptInt(child("group_select"), kpath("group_select")));
      EVALD_ASSIGN_OR_RETURN(auto fallback, doc.OptString(child("fallback"), kpath("fallback")));
      EVALD_ASSIGN_OR_RETURN(auto icase, doc.OptBool(child("ignore_case"), kpath("ignore_case")));
      EVALD_ASSIGN_OR_RETURN(auto ipunct,
                             doc.OptBool(child("ignore_punctuation"), kpath("ignore_punctuation")));
      std::vector<std::string> ignores;
      if (child("regexes_to_ignore").IsDefined() && !child("regexes_to_ignore").IsNull()) {
        EVALD_ASSIGN_OR_RETURN(
            ignores, doc.StringList(child("regexes_to_ignore"), kpath("regexes_to_ignore")));
      }
      const std::string p = pattern.value_or(R"(#### (\-?[0-9\.\,]+))");
      const int g = static_cast<int>(group.value_or(0));
      absl::StatusOr<FilterStep> step = absl::InvalidArgumentError("");
      if (*fn == "regex") {
        step = FilterStep::Regex(p, g, fallback.value_or("[invalid]"));
      } else if (*fn == "multi_choice_regex") {
        step = FilterStep::MultiChoiceRegex(p, g, fallback.value_or("[invalid]"),
                                            icase.value_or(false), ipunct.value_or(false), ignores);
      } else if (*fn == "take_first") {
        step = FilterStep::TakeFirst();
      } else if (*fn == "remove_whitespace") {
        step = FilterStep::RemoveWhitespace();
      } else if (*fn == "lowercase") {
        step = FilterStep::Lowercase();
      } else if (*fn == "uppercase") {
        step = FilterStep::Uppercase();
      } else {
        return doc.Error(child("function"), kpath("function"),
                         absl::StrCat("unknown filter '", *fn,
                                      "'; expected regex, multi_choice_regex, take_first, "
                                      "remove_whitespace, lowercase or uppercase"));
      }
      if (!step.ok()) {
        return doc.Error(child("regex_pattern").IsDefined() ? child("regex_pattern") : st,
                         kpath("regex_pattern"), std::string(step.status().message()));
      }
      pipeline.steps.push_back(*std::move(step));
    }
    out.push_back(std::move(pipeline));
  }
  return out;
}

// lm-eval's `metric_list` with its one metric that compares extracted text: exact_match and
// its options.
absl::StatusOr<ExactMatchOptions> ReadMetricList(const YamlDoc& doc, const YAML::Node& node) {
  if (!node.IsSequence() || node.size() != 1 || !node[0].IsMap()) {
    return doc.Error(node, "metric_list",
                     "expected one entry {metric: exact_match, ignore_case: ..., "
                     "ignore_punctuation: ..., regexes_to_ignore: [...]}");
  }
  const YAML::Node m = node[0];
  auto child = [&](const char* key) { return YamlDoc::Child(m, key); };
  auto kpath = [&](const char* key) { return absl::StrCat("metric_list[0].", key); };
  static const std::set<std::string> kKeys = {
      "metric",         "aggregation",      "higher_is_better", "ignore_case", "ignore_punctuation",
      "ignore_numbers", "regexes_to_ignore"};
  for (const auto& kv : m) {
    if (!kKeys.count(kv.first.Scalar())) {
      return doc.Error(kv.first, kpath(kv.first.Scalar().c_str()), "unknown metric key");
    }
  }
  EVALD_ASSIGN_OR_RETURN(auto metric, doc.OptString(child("metric"), kpath("metric")));
  if (!metric || *metric != "exact_match") {
    return doc.Error(child("metric"), kpath("metric"),
                     "only exact_match is supported in metric_list");
  }
  EVALD_ASSIGN_OR_RETURN(auto agg, doc.OptString(child("aggregation"), kpath("aggregation")));
  if (agg && *agg != "mean") {
    return doc.Error(child("aggregation"), kpath("aggregation"), "only mean is supported");
  }
  ExactMatchOptions o;
  EVALD_ASSIGN_OR_RETURN(auto icase, doc.OptBool(child("ignore_case"), kpath("ignore_case")));
  EVALD_ASSIGN_OR_RETURN(auto ipunct,
                         doc.OptBool(child("ignore_punctuation"), kpath("ignore_punctuation")));
  EVALD_ASSIGN_OR_RETURN(auto inum, doc.OptBool(child("ignore_numbers"), kpath("ignore_numbers")));
  o.ignore_case = icase.value_or(false);
  o.ignore_punctuation = ipunct.value_or(false);
  o.ignore_numbers = inum.value_or(false);
  if (child("regexes_to_ignore").IsDefined() && !child("regexes_to_ignore").IsNull()) {
    EVALD_ASSIGN_OR_RETURN(auto list,
                           doc.StringList(child("regexes_to_ignore"), kpath("regexes_to_ignore")));
    for (size_t i = 0; i < list.size(); ++i) {
      auto re = PyRegex::Compile(list[i]);
      if (!re.ok()) {
        return doc.Error(child("regexes_to_ignore")[i],
                         absl::StrCat(kpath("regexes_to_ignore"), "[", i, "]"),
                         std::string(re.status().message()));
      }
      o.regexes_to_ignore.push_back(*std::move(re));
    }
  }
  return o;
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

  EVALD_ASSIGN_OR_RETURN(auto ignore_case, doc.OptBool(child("ignore_case"), "ignore_case"));
  spec.ignore_case = ignore_case.value_or(false);

  // lm-eval's scoring vocabulary: each filter_list pipeline is a score, compared by metric_list's
  // exact_match. Without filter_list, metric_list scores the whole response ("none", as lm-eval).
  const bool reference = child("filter_list").IsDefined() || child("metric_list").IsDefined();
  if (reference) {
    std::vector<FilterPipeline> pipelines;
    if (child("filter_list").IsDefined()) {
      EVALD_ASSIGN_OR_RETURN(pipelines, ReadFilterList(doc, child("filter_list")));
    } else {
      pipelines.push_back({"none", {FilterStep::TakeFirst()}});
    }
    ExactMatchOptions em;
    em.ignore_case = spec.ignore_case;
    if (child("metric_list").IsDefined()) {
      EVALD_ASSIGN_OR_RETURN(em, ReadMetricList(doc, child("metric_list")));
    }
    for (auto& p : pipelines) spec.reference.push_back({std::move(p), em});
  }
  // The extractor + metric score: required without filter_list/metric_list, an extra score with.
  spec.extractor_score = !reference || child("extractor").IsDefined();
  if (spec.extractor_score) {
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
    // Two scores of one name would be summed into one.
    for (const auto& r : spec.reference) {
      if (r.filter.name == MetricName(spec.metric)) {
        return doc.Error(
            child("metric"), "metric",
            absl::StrCat("a filter_list pipeline is also named '", r.filter.name, "'"));
      }
    }
  } else if (child("metric").IsDefined()) {
    return doc.Error(child("metric"), "metric",
                     "metric goes with extractor; with filter_list the metric is metric_list");
  }
  EVALD_ASSIGN_OR_RETURN(auto think_end,
                         doc.OptString(child("think_end_token"), "think_end_token"));
  EVALD_ASSIGN_OR_RETURN(auto choices_field,
                         doc.OptString(child("choices_field"), "choices_field"));
  // lm-eval's generation_kwargs: `until` cuts the response before scoring; the sampling keys
  // (temperature, max_gen_toks, ...) come from config.params and are ignored here.
  std::vector<std::string> until;
  const YAML::Node gen = child("generation_kwargs");
  EVALD_RETURN_IF_ERROR(doc.ExpectMap(gen, "generation_kwargs"));
  if (gen.IsMap()) {
    const YAML::Node u = YamlDoc::Child(gen, "until");
    if (u.IsScalar()) {
      until.push_back(u.Scalar());
    } else if (u.IsDefined() && !u.IsNull()) {
      EVALD_ASSIGN_OR_RETURN(until, doc.StringList(u, "generation_kwargs.until"));
    }
  }

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

  std::vector<std::string> golds, reference_golds;
  std::vector<std::vector<std::string>> row_choices;
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
    if (reference) reference_golds.push_back(gold);
    if (choices_field) {
      auto c = row.find(*choices_field);
      if (c == row.end() || !c->is_array()) {
        return absl::InvalidArgumentError(
            absl::StrCat(ds.Where(i), ": choices_field '", *choices_field,
                         "' must be a list of the answer choices (task file ", task_file, ")"));
      }
      std::vector<std::string> texts;
      for (const auto& v : *c) texts.push_back(GoldText(v));
      row_choices.push_back(std::move(texts));
    }
    if (!spec.extractor_score) continue;
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
  std::vector<std::string> scored;
  for (const auto& r : spec.reference) {
    scored.push_back(absl::StrCat(
        r.filter.name, " [",
        absl::StrJoin(r.filter.steps, ", ",
                      [](std::string* out, const FilterStep& st) { out->append(st.Describe()); }),
        "]"));
  }
  if (spec.extractor_score) {
    scored.push_back(absl::StrCat(spec.extractor.Describe(), ", ", MetricName(spec.metric)));
  }
  spec.scoring = {{"task_file", task_file}};
  if (reference) {
    const ExactMatchOptions& em = spec.reference[0].exact_match;
    std::vector<std::string> ignores;
    for (const auto& re : em.regexes_to_ignore) ignores.push_back(re.pattern());
    spec.scoring["filters"] = FiltersJson(spec.reference);
    spec.scoring["exact_match"] = {{"ignore_case", em.ignore_case},
                                   {"ignore_punctuation", em.ignore_punctuation},
                                   {"ignore_numbers", em.ignore_numbers},
                                   {"regexes_to_ignore", ignores}};
  }
  spec.description = absl::StrCat(
      task_file, ": ", ds.source, ", ", ds.rows.size(), " rows, ", absl::StrJoin(scored, "; "),
      spec.few_shot.empty() ? "" : absl::StrCat(", ", spec.few_shot.size(), "-shot"));
  EVALD_ASSIGN_OR_RETURN(auto task,
                         TemplateTask::Create(std::move(spec), std::move(ds), std::move(golds),
                                              std::move(reference_golds), std::move(row_choices)));
  task->set_think_end_token(think_end);
  task->set_stop_strings(std::move(until));
  return std::unique_ptr<Task>(std::move(task));
}

}  // namespace evald::runner
