#include "daemon/export/metrics_extract.h"

#include <algorithm>
#include <filesystem>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/config/value.h"
#include "core/yaml_budget.h"
#include "daemon/export/file_util.h"
#include "nlohmann/json.hpp"

namespace evald::daemon::exporters {
namespace {

namespace fs = std::filesystem;
namespace cfgi = ::evald::config::internal;

constexpr const char* kNamePatterns[] = {"acc", "accuracy", "score",  "exact_match",
                                         "f1",  "em",       "pass@1", "pass@k"};
// A harness's *.json beyond this is a sample dump, not a score file: not parsed.
constexpr std::uintmax_t kMaxJsonBytes = 16 << 20;

// A number as the reference's loader types it: ints and floats; bools, strings (quoted "0.5"
// included) and null are not numbers.
bool YamlNumber(const YAML::Node& node, double* out) {
  if (!node || !node.IsScalar()) return false;
  cfgi::Value v = cfgi::TypeYamlScalar(node);
  if (v.kind == cfgi::Value::Kind::kInt) {
    *out = static_cast<double>(v.i);
    return true;
  }
  if (v.kind == cfgi::Value::Kind::kFloat) {
    *out = v.f;
    return true;
  }
  return false;
}

struct Collector {
  MetricMap metrics;
  std::map<std::string, std::string> origin;

  absl::Status Add(const std::string& key, double value, const std::string& where) {
    auto it = metrics.find(key);
    if (it == metrics.end()) {
      metrics.emplace(key, value);
      origin.emplace(key, where);
      return absl::OkStatus();
    }
    if (it->second == value) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat("metric conflict: '", key, "' is ",
                                                   MetricText(it->second), " (", origin[key],
                                                   ") and ", MetricText(value), " (", where, ")"));
  }
};

absl::Status ReadSection(const YAML::Node& section, const std::string& section_name,
                         const std::string& source, Collector& c) {
  if (!section || !section.IsMap()) return absl::OkStatus();
  for (const auto& task_kv : section) {
    const std::string task = task_kv.first.as<std::string>();
    if (!task_kv.second.IsMap()) continue;
    const YAML::Node metrics = task_kv.second["metrics"];
    if (!metrics || !metrics.IsMap()) continue;
    for (const auto& metric_kv : metrics) {
      const std::string metric = metric_kv.first.as<std::string>();
      if (!IsExportedMetricName(metric)) continue;
      const std::string where =
          absl::StrCat(source, " ", section_name, ".", task, ".metrics.", metric);
      const YAML::Node& m = metric_kv.second;
      double v = 0;
      if (YamlNumber(m, &v)) {
        if (auto s = c.Add(absl::StrCat(task, "_", metric), v, where); !s.ok()) return s;
        continue;
      }
      if (!m.IsMap()) continue;
      if (YamlNumber(m["value"], &v)) {
        if (auto s = c.Add(absl::StrCat(task, "_", metric), v, where); !s.ok()) return s;
      }
      const YAML::Node scores = m["scores"];
      if (!scores || !scores.IsMap()) continue;
      for (const auto& score_kv : scores) {
        const std::string score = score_kv.first.as<std::string>();
        if (!score_kv.second.IsMap() || !YamlNumber(score_kv.second["value"], &v)) continue;
        if (auto s = c.Add(absl::StrCat(task, "_", metric, "_", score), v,
                           absl::StrCat(where, ".scores.", score));
            !s.ok()) {
          return s;
        }
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

bool IsExportedMetricName(const std::string& metric) {
  const std::string lower = absl::AsciiStrToLower(metric);
  for (const char* p : kNamePatterns) {
    if (absl::StrContains(lower, p)) return true;
  }
  return false;
}

std::string MetricText(double v) { return cfgi::PyFloatRepr(v); }

absl::StatusOr<MetricMap> ExtractMetricsFromText(
    const std::string& results_yml, const std::string& source,
    const std::vector<std::pair<std::string, std::string>>& json_files,
    const std::vector<std::string>& log_metrics) {
  Collector c;
  if (!results_yml.empty()) {
    // The job wrote this file: bounded like results_reader.cc before aliases are expanded.
    absl::Status within = CheckYamlLimits(
        results_yml, source, YamlLimits{.max_nodes = 200000, .max_scalar_bytes = 16 << 20});
    if (!within.ok()) return within;
    try {
      YAML::Node root = YAML::Load(results_yml);
      const YAML::Node results = root.IsMap() ? root["results"] : YAML::Node();
      if (results && results.IsMap()) {
        if (auto s = ReadSection(results["groups"], "groups", source, c); !s.ok()) return s;
        if (auto s = ReadSection(results["tasks"], "tasks", source, c); !s.ok()) return s;
      }
    } catch (const YAML::ParserException& e) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ":", e.mark.line + 1, ":", e.mark.column + 1, ": ", e.msg));
    } catch (const YAML::Exception& e) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": ", e.what()));
    }
  }
  for (const auto& [stem, text] : json_files) {
    nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object()) continue;
    auto it = j.find("score");
    if (it == j.end() || !it->is_number()) continue;
    const std::string key = absl::StrCat(stem, "_score");
    if (c.metrics.count(key) != 0) continue;  // results.yml wins
    c.metrics.emplace(key, it->get<double>());
  }
  return FilterMetrics(c.metrics, log_metrics);
}

absl::StatusOr<MetricMap> ExtractMetrics(const std::string& artifacts_dir,
                                         const std::vector<std::string>& log_metrics) {
  const fs::path dir(artifacts_dir);
  std::string results;
  std::error_code ec;
  if (fs::is_regular_file(dir / "results.yml", ec)) {
    absl::StatusOr<std::string> text = ReadWholeFile((dir / "results.yml").string());
    if (!text.ok()) return text.status();
    results = std::move(*text);
  }
  std::vector<std::pair<std::string, std::string>> jsons;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const fs::path& p = it->path();
    if (p.extension() != ".json" || !it->is_regular_file(ec)) continue;
    if (it->file_size(ec) > kMaxJsonBytes) continue;
    absl::StatusOr<std::string> text = ReadWholeFile(p.string());
    if (!text.ok()) continue;
    jsons.emplace_back(p.stem().string(), std::move(*text));
  }
  std::sort(jsons.begin(), jsons.end());
  return ExtractMetricsFromText(results, (dir / "results.yml").string(), jsons, log_metrics);
}

MetricMap FilterMetrics(const MetricMap& metrics, const std::vector<std::string>& filters) {
  if (filters.empty()) return metrics;
  MetricMap out;
  for (const auto& [key, value] : metrics) {
    const std::string lower = absl::AsciiStrToLower(key);
    for (const std::string& f : filters) {
      if (absl::StrContains(lower, absl::AsciiStrToLower(f))) {
        out.emplace(key, value);
        break;
      }
    }
  }
  return out;
}

std::string BenchmarkName(const std::string& task_name, const std::string& harness) {
  if (!harness.empty() && absl::StartsWith(task_name, absl::StrCat(harness, "."))) {
    return task_name.substr(harness.size() + 1);
  }
  return task_name;
}

std::string ResolveModelName(const YAML::Node& config, const std::string& fallback,
                             const std::string& job_id) {
  auto at = [](const YAML::Node& n, std::initializer_list<const char*> path) -> std::string {
    YAML::Node cur = n;
    for (const char* key : path) {
      if (!cur || !cur.IsMap()) return "";
      cur.reset(YAML::Node(cur)[key]);
    }
    return cur && cur.IsScalar() ? cur.Scalar() : "";
  };
  for (auto path : {std::initializer_list<const char*>{"model_name"},
                    std::initializer_list<const char*>{"target", "api_endpoint", "model_id"},
                    std::initializer_list<const char*>{"deployment", "served_model_name"}}) {
    std::string s = at(config, path);
    if (!s.empty()) return s;
  }
  if (!fallback.empty()) return fallback;
  return absl::StrCat("unknown_model_", job_id);
}

}  // namespace evald::daemon::exporters
