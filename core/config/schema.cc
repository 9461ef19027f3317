#include "core/config/schema.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "core/config/suggest.h"
#include "core/config/value.h"

namespace evald::config {

using internal::MapEntry;
using internal::Value;

namespace {

// Value kinds a key may take, as bits (SchemaRule::kinds).
constexpr unsigned kNull = SchemaKinds::kNull;
constexpr unsigned kBool = SchemaKinds::kBool;
constexpr unsigned kInt = SchemaKinds::kInt;
constexpr unsigned kFloat = SchemaKinds::kFloat;
constexpr unsigned kStr = SchemaKinds::kStr;
constexpr unsigned kList = SchemaKinds::kList;
constexpr unsigned kMap = SchemaKinds::kMap;
constexpr unsigned kNum = SchemaKinds::kNum;
constexpr unsigned kAny = SchemaKinds::kAny;

unsigned KindOf(const Value& v) {
  switch (v.kind) {
    case Value::Kind::kNull:
      return kNull;
    case Value::Kind::kBool:
      return kBool;
    case Value::Kind::kInt:
      return kInt;
    case Value::Kind::kFloat:
      return kFloat;
    case Value::Kind::kString:
      return kStr;
    case Value::Kind::kList:
      return kList;
    case Value::Kind::kMap:
      return kMap;
  }
  return 0;
}

using Rule = SchemaRule;

Rule K(std::string path, unsigned kinds) { return SchemaKey(std::move(path), kinds); }

constexpr const char* kDeployments = "none vllm sglang nim trtllm command generic";

// The well-known harness parameters (nemo-evaluator names, also read by evalrun) under a map
// that reaches the harness: flat dotted keys in `overrides`, nested maps in `config`.
void AddHarnessKeys(const std::string& at, std::vector<Rule>& rules) {
  auto k = [&](const char* key, unsigned kinds) -> Rule& {
    rules.push_back(K(absl::StrCat(at, ".", key), kinds));
    return rules.back().Lenient();
  };
  for (const char* section : {"config", "config.params", "config.params.extra", "target",
                              "target.api_endpoint", "target.api_endpoint.adapter_config"}) {
    k(section, kMap | kNull).Open();
  }
  k("config.params.limit_samples", kNum | kNull).Min(0);
  k("config.params.parallelism", kInt | kNull).Min(1);
  k("config.params.temperature", kNum | kNull).Min(0);
  k("config.params.top_p", kNum | kNull).Range(0, 1);
  k("config.params.max_new_tokens", kInt | kNull).Min(1);
  k("config.params.request_timeout", kNum | kNull).Above(0);
  k("config.params.max_retries", kInt | kNull).Min(0);
  k("config.params.extra.n_samples", kInt | kNull).Min(1);
  k("config.params.extra.num_fewshot", kInt | kNull).Min(0);
  const std::string adapter = "target.api_endpoint.adapter_config.";
  for (const char* flag :
       {"use_reasoning", "use_system_prompt", "use_nvcf", "include_if_reasoning_not_finished",
        "log_failed_requests", "use_request_logging", "use_response_logging", "use_caching"}) {
    k((adapter + flag).c_str(), kBool | kNull);
  }
  k((adapter + "custom_system_prompt").c_str(), kStr | kNull);
  k((adapter + "max_logged_requests").c_str(), kInt | kNull).Min(0);
  k((adapter + "max_logged_responses").c_str(), kInt | kNull).Min(0);
}

// The table. Sources: configs/execution/*, configs/deployment/*.yaml, the reference's docs
// (peer-launcher.md §1, peer-newest.md §3) and what evald's own code reads.
std::vector<Rule> BuildRules(const std::vector<ExecutorSchema>& executors,
                             const std::string& executor_names) {
  std::vector<Rule> r = {
      // Top level: open (helper values for interpolation), sections typed.
      K("defaults", kAny),
      K("execution", kMap),
      K("deployment", kMap | kNull),
      K("target", kMap | kNull),
      // Newer configs' form of execution.auto_export.configs: export.<dest>: {keys}.
      K("export", kMap | kNull).Open(),
      K("evaluation", kMap | kList | kNull),

      // target
      K("target.api_endpoint", kMap | kNull),
      K("target.api_endpoint.url", kStr | kNull).Expect("a URL (a string)"),
      K("target.api_endpoint.model_id", kStr | kNum | kNull),
      K("target.api_endpoint.api_key_name", kStr | kNull)
          .Hide()
          .Expect("the NAME of an environment variable (a string) or null"),

      // evaluation
      K("evaluation.tasks", kList | kNull),
      K("evaluation.tasks[]", kMap),
      K("evaluation.tasks[].name", kStr),
      K("evaluation.tasks[].task_file", kStr | kNull).Expect("a path (a string)"),
      K("evaluation.tasks[].dataset", kStr | kNull).Expect("a path or URL (a string)"),
      K("evaluation.tasks[].dataset_dir", kStr | kNull).Expect("a path or URL (a string)"),
      K("evaluation.tasks[].container", kStr | kNull).Expect("an image name (a string)"),
      K("evaluation.tasks[].endpoint_type", kStr | kNull).OneOf("chat completions vlm"),

      // execution: every executor
      K("execution.type", kStr).OneOf(executor_names.c_str()),
      K("execution.output_dir", kStr).Expect("an absolute path (a string)"),
      K("execution.mode", kStr | kNull).OneOf("parallel sequential"),
      K("execution.auto_export", kMap | kNull),
      K("execution.auto_export.destinations", kList | kNull),
      K("execution.auto_export.destinations[]", kStr),
      K("execution.auto_export.configs", kMap | kNull).Open(),
      // evald's: how long auto-export retries a destination after the job succeeded (seconds).
      K("execution.auto_export.retry_timeout", kNum | kNull).Above(0),
      K("execution.endpoint_readiness_timeout", kNum | kNull).Above(0),
      K("execution.endpoint_readiness_interval", kNum | kNull).Above(0),
      // Read for every executor by the deployment parser (execution.env_vars.deployment, ...).
      K("execution.env_vars", kMap | kNull),
      K("execution.env_vars.deployment", kMap | kNull).Open(),
      K("execution.env_vars.evaluation", kMap | kNull).Open(),
      K("execution.mounts", kMap | kNull),
      K("execution.mounts.deployment", kMap | kNull).Open(),
      K("execution.mounts.evaluation", kMap | kNull).Open(),
      K("execution.mounts.mount_home", kBool | kNull),

      // deployment: every type (`none` ignores them, as the reference does)
      K("deployment.type", kStr).OneOf(kDeployments),
      K("deployment.image", kStr | kNull),
      K("deployment.checkpoint_path", kStr | kNull),
      K("deployment.hf_model_handle", kStr | kNull),
      K("deployment.cache_path", kStr | kNull),
      K("deployment.served_model_name", kStr | kNum),
      K("deployment.port", kInt | kStr).Range(1, 65535).OneOf("auto"),
      K("deployment.extra_args", kStr | kNull),
      K("deployment.command", kStr | kNull),
      K("deployment.env_vars", kMap | kNull).Open(),
      K("deployment.env_vars.*", kStr | kNum | kBool | kNull).Hide(),
      K("deployment.endpoints", kMap | kNull).Open(),
      K("deployment.endpoints.*", kStr | kNull).Expect("a URL path (a string) or null"),
      K("deployment.shared", kBool | kNull),
      K("deployment.stop_on_evald_shutdown", kBool | kNull),
      K("deployment.local_launch", kStr | kNull).OneOf("auto host container"),
      K("deployment.endpoint_readiness_timeout", kNum | kNull).Above(0),
      K("deployment.endpoint_readiness_interval", kNum | kNull).Above(0),
      K("deployment.server_timeout", kNum | kNull).Min(0),
      K("deployment.stop_grace_period", kNum | kNull).Min(0),
      // Only the servers whose command line takes them.
      K("deployment.tensor_parallel_size", kInt).Min(1).Only("none vllm sglang trtllm"),
      K("deployment.pipeline_parallel_size", kInt).Min(1).Only("none vllm trtllm"),
      K("deployment.data_parallel_size", kInt).Min(1).Only("none vllm sglang"),
      // Lepton endpoints (peer-launcher.md §3.4).
      K("deployment.lepton_config", kMap | kNull),
      K("deployment.lepton_config.endpoint_name", kStr | kNull),
      K("deployment.lepton_config.resource_shape", kStr | kNull),
      K("deployment.lepton_config.min_replicas", kInt | kNull).Min(0),
      K("deployment.lepton_config.max_replicas", kInt | kNull).Min(1),
      K("deployment.lepton_config.auto_scaler", kMap | kNull).Open(),
      K("deployment.lepton_config.health", kMap | kNull).Open(),
      K("deployment.lepton_config.envs", kMap | kNull).Open(),
      K("deployment.lepton_config.mounts", kMap | kNull),
      K("deployment.lepton_config.mounts.enabled", kBool | kNull),
      K("deployment.lepton_config.mounts.cache_path", kStr | kNull),
      K("deployment.lepton_config.mounts.mount_path", kStr | kNull),
      K("deployment.lepton_config.api_tokens", kList | kNull),
      K("deployment.lepton_config.api_token", kAny),
  };
  // What reaches the harness: open maps, with the well-known keys checked.
  for (const char* at : {"evaluation", "evaluation.tasks[]"}) {
    const std::string base = at;
    r.push_back(K(base + ".overrides", kMap | kNull).Open());
    r.push_back(K(base + ".config", kMap | kNull).Open());
    r.push_back(K(base + ".env_vars", kMap | kNull).Open());
    r.push_back(K(base + ".env_vars.*", kStr)
                    .Hide()
                    .Expect("the NAME of a host environment variable (a string)"));
    AddHarnessKeys(base + ".overrides", r);
    AddHarnessKeys(base + ".config", r);
    r.push_back(K(base + ".overrides.config.target.api_endpoint.url", kStr).Expect("a URL"));
  }
  // Each executor's own keys (executors/<name>/), belonging to that executor only.
  for (const ExecutorSchema& executor : executors) {
    for (Rule rule : executor.keys) {
      rule.only = {executor.name};
      r.push_back(std::move(rule));
    }
  }
  return r;
}

// "a.b[].c" -> "a.b[]"; "a.b[]" -> "a.b"; "a" -> "".
std::string ParentOf(const std::string& pattern) {
  if (pattern.size() >= 2 && pattern.compare(pattern.size() - 2, 2, "[]") == 0) {
    return pattern.substr(0, pattern.size() - 2);
  }
  size_t dot = pattern.rfind('.');
  return dot == std::string::npos ? "" : pattern.substr(0, dot);
}

std::string LastKey(const std::string& pattern) {
  size_t dot = pattern.rfind('.');
  return dot == std::string::npos ? pattern : pattern.substr(dot + 1);
}

std::string Join(const std::string& parent, const std::string& key) {
  return parent.empty() ? key : absl::StrCat(parent, ".", key);
}

class Schema {
 public:
  // The schema for this set of executors, built once per set (a process has one or two).
  static const Schema& Get(const std::vector<ExecutorSchema>& executors) {
    std::string key;
    for (const ExecutorSchema& e : executors) {
      absl::StrAppend(&key, e.name, "/", e.keys.size(), " ");
    }
    static absl::Mutex mu(absl::kConstInit);
    static auto* built = new std::map<std::string, std::unique_ptr<const Schema>>();
    absl::MutexLock lock(&mu);
    std::unique_ptr<const Schema>& schema = (*built)[key];
    if (schema == nullptr) {
      std::vector<std::string> names;
      for (const ExecutorSchema& e : executors) names.push_back(e.name);
      std::string joined = absl::StrJoin(names, " ");
      schema.reset(new Schema(BuildRules(executors, joined), joined));
    }
    return *schema;
  }

  const std::string& executor_names() const { return executor_names_; }

  bool Has(const std::string& pattern) const { return by_path_.count(pattern) != 0; }
  bool IsPrefix(const std::string& pattern) const { return prefixes_.count(pattern) != 0; }

  // The rule for `pattern` that applies to the selected type; null when none does.
  const Rule* Find(const std::string& pattern, const std::string& selector) const {
    auto it = by_path_.find(pattern);
    if (it == by_path_.end()) return nullptr;
    for (size_t i : it->second) {
      if (Applies(rules_[i], selector)) return &rules_[i];
    }
    return nullptr;
  }

  // The types `pattern` is a key of (for "it belongs to slurm").
  std::vector<std::string> OwnersOf(const std::string& pattern) const {
    std::vector<std::string> out;
    auto it = by_path_.find(pattern);
    if (it == by_path_.end()) return out;
    for (size_t i : it->second) {
      for (const std::string& type : rules_[i].only) {
        if (type != "none") out.push_back(type);  // `none` takes every key; not worth naming
      }
    }
    return out;
  }

  // The keys a mapping at `pattern` may hold for the selected type, in table order.
  std::vector<std::string> KeysOf(const std::string& pattern, const std::string& selector) const {
    std::vector<std::string> out;
    auto it = children_.find(pattern);
    if (it == children_.end()) return out;
    for (size_t i : it->second) {
      std::string key = LastKey(rules_[i].path);
      if (key != "*" && Applies(rules_[i], selector) &&
          std::find(out.begin(), out.end(), key) == out.end()) {
        out.push_back(key);
      }
    }
    return out;
  }

  static bool Applies(const Rule& rule, const std::string& selector) {
    return rule.only.empty() || selector.empty() ||
           std::find(rule.only.begin(), rule.only.end(), selector) != rule.only.end();
  }

 private:
  Schema(std::vector<Rule> rules, std::string executor_names)
      : rules_(std::move(rules)), executor_names_(std::move(executor_names)) {
    for (size_t i = 0; i < rules_.size(); ++i) {
      by_path_[rules_[i].path].push_back(i);
      children_[ParentOf(rules_[i].path)].push_back(i);
      for (std::string p = ParentOf(rules_[i].path); !p.empty(); p = ParentOf(p)) {
        prefixes_.insert(p);
      }
    }
  }

  std::vector<Rule> rules_;
  std::string executor_names_;  // space-separated
  std::map<std::string, std::vector<size_t>> by_path_;
  std::map<std::string, std::vector<size_t>> children_;
  std::set<std::string> prefixes_;
};

// At most `max` bytes of `s`, cut on a UTF-8 character boundary.
std::string Clip(const std::string& s, size_t max = 60) {
  if (s.size() <= max) return s;
  size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return s.substr(0, n) + "...";
}

std::string ScalarText(const Value& v) {
  if (v.is_string()) return absl::StrCat("'", absl::CEscape(Clip(v.s)), "'");
  return internal::CanonicalScalar(v);
}

// What was found, briefly: "a string 'lots'", "a list [1, 2]", "a mapping (keys: a, b)". Never
// walks deeper than one level, so a deeply nested value costs nothing.
std::string Found(const Value& v, bool hide) {
  if (v.is_null()) return "null";
  if (hide) return internal::KindName(v);
  if (v.is_list()) {
    bool flat =
        v.items.size() <= 6 && std::none_of(v.items.begin(), v.items.end(),
                                            [](const Value& x) { return x.is_container(); });
    if (!flat) {
      return absl::StrCat("a list of ", v.items.size(), v.items.size() == 1 ? " item" : " items");
    }
    std::vector<std::string> parts;
    for (const Value& x : v.items) parts.push_back(ScalarText(x));
    return absl::StrCat("a list [", absl::StrJoin(parts, ", "), "]");
  }
  if (v.is_map()) {
    if (v.entries.empty() || v.entries.size() > 4) {
      return absl::StrCat("a mapping of ", v.entries.size(),
                          v.entries.size() == 1 ? " key" : " keys");
    }
    std::vector<std::string> keys;
    for (const MapEntry& e : v.entries) keys.push_back(Clip(e.key, 30));
    return absl::StrCat("a mapping (keys: ", absl::StrJoin(keys, ", "), ")");
  }
  return absl::StrCat(internal::KindName(v), " ", ScalarText(v));
}

std::string Number(double x) { return absl::StrCat(x); }

std::string RangeText(const Rule& r) {
  if (r.min.has_value() && r.max.has_value()) {
    return absl::StrCat(" between ", Number(*r.min), " and ", Number(*r.max));
  }
  if (r.min.has_value()) return absl::StrCat(r.min_exclusive ? " > " : " >= ", Number(*r.min));
  if (r.max.has_value()) return absl::StrCat(" <= ", Number(*r.max));
  return "";
}

std::string Quoted(const std::vector<std::string>& values) {
  return absl::StrCat("'", absl::StrJoin(values, "', '"), "'");
}

std::string Expected(const Rule& r) {
  if (!r.expect.empty()) return r.expect;
  std::vector<std::string> parts;
  if ((r.kinds & kNum) == kNum) {
    parts.push_back("a number" + RangeText(r));
  } else if (r.kinds & kInt) {
    parts.push_back("an integer" + RangeText(r));
  } else if (r.kinds & kFloat) {
    parts.push_back("a number" + RangeText(r));
  }
  if (r.kinds & kStr) {
    if (r.one_of.size() == 1) {
      parts.push_back(Quoted(r.one_of));
    } else if (!r.one_of.empty()) {
      parts.push_back("one of " + Quoted(r.one_of));
    } else {
      parts.push_back("a string");
    }
  }
  if (r.kinds & kBool) parts.push_back("true or false");
  if (r.kinds & kList) parts.push_back("a list");
  if (r.kinds & kMap) parts.push_back("a mapping");
  if (r.kinds & kNull) parts.push_back("null");
  if (parts.size() == 1) return parts[0];
  std::string last = parts.back();
  parts.pop_back();
  return absl::StrCat(absl::StrJoin(parts, ", "), " or ", last);
}

constexpr size_t kMaxReported = 20;

class Checker {
 public:
  Checker(const Schema& schema, std::string exec_type, std::string deploy_type)
      : schema_(schema), exec_type_(std::move(exec_type)), deploy_type_(std::move(deploy_type)) {}

  // Walks `v` (at schema `pattern`, shown as `shown`). Descends only where the table has keys
  // below, so the depth is bounded by the table's, whatever the input's nesting.
  void Walk(const Value& v, const std::string& pattern, const std::string& shown) {
    if (v.is_map()) {
      WalkMap(v, pattern, shown);
    } else if (v.is_list()) {
      const std::string item = pattern + "[]";
      const Rule* rule = schema_.Find(item, SelectorOf(item));
      if (rule == nullptr && !schema_.IsPrefix(item)) return;
      for (size_t i = 0; i < v.items.size(); ++i) {
        const std::string at = absl::StrCat(shown, "[", i, "]");
        if (rule != nullptr && !Check(v.items[i], *rule, at)) continue;
        if (v.items[i].is_container() && schema_.IsPrefix(item)) Walk(v.items[i], item, at);
      }
    }
  }

  absl::Status Result(const std::string& source) const {
    if (problems_.empty()) return absl::OkStatus();
    if (problems_.size() == 1) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": ", problems_[0]));
    }
    std::string msg = absl::StrCat(source, ": ", total_, " problems in the config:");
    for (const std::string& p : problems_) absl::StrAppend(&msg, "\n  ", p);
    if (total_ > problems_.size()) {
      absl::StrAppend(&msg, "\n  ... and ", total_ - problems_.size(), " more");
    }
    return absl::InvalidArgumentError(msg);
  }

 private:
  void Report(std::string problem) {
    ++total_;
    if (problems_.size() < kMaxReported) problems_.push_back(std::move(problem));
  }

  // The executor or deployment type that selects the keys of `pattern`'s section.
  const std::string& SelectorOf(const std::string& pattern) const {
    static const std::string kNone;
    if (pattern.rfind("execution.", 0) == 0) return exec_type_;
    if (pattern.rfind("deployment.", 0) == 0) return deploy_type_;
    return kNone;
  }

  // " (execution type local)" for keys inside a typed section.
  std::string TypeNote(const std::string& pattern) const {
    const std::string& selector = SelectorOf(pattern);
    if (selector.empty()) return "";
    return absl::StrCat(" (", pattern.substr(0, pattern.find('.')), " type ", selector, ")");
  }

  void WalkMap(const Value& v, const std::string& pattern, const std::string& shown) {
    const bool root = pattern.empty();
    const Rule* self = root ? nullptr : schema_.Find(pattern, SelectorOf(pattern));
    const bool closed = self != nullptr && !self->open;
    for (const MapEntry& e : v.entries) {
      const std::string at = Join(shown, e.key);
      const std::string exact = Join(pattern, e.key);
      const std::string star = Join(pattern, "*");
      std::string matched;
      const Rule* rule = nullptr;
      bool other_type = false;  // a key of another executor/deployment type
      if (schema_.Has(exact)) {
        rule = schema_.Find(exact, SelectorOf(exact));
        if (rule != nullptr) {
          matched = exact;
        } else {
          other_type = true;
        }
      } else if (schema_.IsPrefix(exact)) {
        matched = exact;
      }
      if (matched.empty() && !other_type) {
        if (schema_.Has(star)) {
          rule = schema_.Find(star, SelectorOf(star));
          if (rule != nullptr) matched = star;
        } else if (schema_.IsPrefix(star)) {
          matched = star;
        }
      }
      if (matched.empty()) {
        if (root) {
          TopLevelTypo(e.key);
        } else if (closed || other_type) {
          UnknownKey(e.key, pattern, shown, exact, other_type);
        }
        continue;
      }
      if (rule != nullptr && !Check(e.value, *rule, at)) continue;
      if (e.value.is_container() && schema_.IsPrefix(matched)) Walk(e.value, matched, at);
    }
  }

  // The top level is open, but `executon:` is a typo, not a helper value.
  void TopLevelTypo(const std::string& key) {
    std::vector<std::string> close;
    const size_t limit = std::max<size_t>(1, std::min<size_t>(4, (key.size() + 2) / 3));
    for (const std::string& known : schema_.KeysOf("", "")) {
      if (key.size() <= 200 && internal::EditDistance(key, known) <= limit) close.push_back(known);
    }
    if (close.empty()) return;
    Report(absl::StrCat(key, ": unknown top-level key", internal::DidYouMean(close)));
  }

  void UnknownKey(const std::string& key, const std::string& pattern, const std::string& shown,
                  const std::string& exact, bool other_type) {
    const std::string& selector = SelectorOf(exact);
    std::string problem =
        absl::StrCat(Join(shown, key), ": unknown key in ", shown, TypeNote(exact));
    if (other_type) {
      std::vector<std::string> owners = schema_.OwnersOf(exact);
      absl::StrAppend(&problem, "; it is a key of type ", absl::StrJoin(owners, ", "));
      Report(std::move(problem));
      return;
    }
    std::vector<std::string> known = schema_.KeysOf(pattern, selector);
    std::vector<std::string> close = internal::Suggest(key, known);
    if (!close.empty()) {
      absl::StrAppend(&problem, internal::DidYouMean(close));
    } else if (!known.empty()) {
      absl::StrAppend(&problem, "; expected one of ", absl::StrJoin(known, ", "));
    }
    Report(std::move(problem));
  }

  // Whether `v` fits `rule` (reporting why not). False also for a `???` left in place, which
  // ParseRunConfig reports.
  bool Check(const Value& v, const Rule& rule, const std::string& at) {
    if (v.IsMissing()) return false;
    Value typed;
    const Value* checked = &v;
    if (rule.lenient && v.is_string() && !(rule.kinds & kStr)) {
      typed = internal::TypePlainScalar(std::string(absl::StripAsciiWhitespace(v.s)));
      checked = &typed;
    }
    const unsigned kind = KindOf(*checked);
    if (!(kind & rule.kinds)) {
      Report(absl::StrCat(at, ": expected ", Expected(rule), ", found ", Found(v, rule.hide)));
      return false;
    }
    if ((kind & kNum) && (rule.min.has_value() || rule.max.has_value())) {
      double x = kind == kInt ? static_cast<double>(checked->i) : checked->f;
      bool low =
          rule.min.has_value() && (rule.min_exclusive ? !(x > *rule.min) : !(x >= *rule.min));
      bool high = rule.max.has_value() && !(x <= *rule.max);
      if (low || high) {
        Report(absl::StrCat(at, ": expected ", Expected(rule), ", found ", Found(v, rule.hide)));
        return false;
      }
    }
    if (kind == kStr && !rule.one_of.empty() &&
        std::find(rule.one_of.begin(), rule.one_of.end(), checked->s) == rule.one_of.end()) {
      Report(absl::StrCat(at, ": expected ", Expected(rule), ", found ", Found(v, rule.hide),
                          internal::DidYouMean(internal::Suggest(checked->s, rule.one_of))));
      return false;
    }
    return true;
  }

  const Schema& schema_;
  const std::string exec_type_;
  const std::string deploy_type_;
  std::vector<std::string> problems_;
  size_t total_ = 0;
};

// The section's type when it is a known one (`generic` is `command`), else "" (all keys apply).
std::string SelectedType(const Value& root, const char* section, const char* known) {
  const Value* s = root.Get(section);
  const Value* type = (s != nullptr && s->is_map()) ? s->Get("type") : nullptr;
  if (type == nullptr || !type->is_string()) return "";
  std::vector<std::string> names = absl::StrSplit(known, ' ');
  if (std::find(names.begin(), names.end(), type->s) == names.end()) return "";
  return type->s == "generic" ? "command" : type->s;
}

}  // namespace

absl::Status CheckConfigSchema(const YAML::Node& composed, const std::string& source,
                               const std::vector<ExecutorSchema>& executors) {
  const Schema& schema = Schema::Get(executors);
  auto parsed = internal::ValueFromYaml(composed, std::make_shared<const std::string>(source));
  if (!parsed.ok()) return parsed.status();
  const Value& root = *parsed;
  if (!root.is_map()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": the config must be a mapping at the top level, found ",
                     Found(root, /*hide=*/false)));
  }
  Checker checker(schema, SelectedType(root, "execution", schema.executor_names().c_str()),
                  SelectedType(root, "deployment", kDeployments));
  checker.Walk(root, "", "");
  return checker.Result(source);
}

}  // namespace evald::config
