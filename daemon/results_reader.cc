#include "daemon/results_reader.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "core/yaml_budget.h"
#include "yaml-cpp/yaml.h"

namespace evald::daemon {
namespace {

bool AsDouble(const YAML::Node& node, double* out) {
  return node && node.IsScalar() && YAML::convert<double>::decode(node, *out);
}

void ReadStats(const YAML::Node& stats, ResultRecord& r) {
  if (!stats || !stats.IsMap()) return;
  r.has_stats = true;
  double v = 0;
  if (AsDouble(stats["count"], &v)) r.count = static_cast<int64_t>(v);
  if (AsDouble(stats["mean"], &v)) r.mean = v;
  if (AsDouble(stats["stderr"], &v)) r.stderr_ = v;
  if (AsDouble(stats["stddev"], &v)) r.stddev = v;
  if (AsDouble(stats["min"], &v)) r.min = v;
  if (AsDouble(stats["max"], &v)) r.max = v;
  if (AsDouble(stats["sum"], &v)) r.sum = v;
}

void ReadSection(const YAML::Node& section, const JobRecord& job,
                 std::vector<ResultRecord>& out) {
  if (!section || !section.IsMap()) return;
  for (const auto& task_kv : section) {
    const YAML::Node metrics = task_kv.second["metrics"];
    if (!metrics || !metrics.IsMap()) continue;
    for (const auto& metric_kv : metrics) {
      ResultRecord base;
      base.job_id = job.id;
      base.invocation_id = job.invocation_id;
      base.task = task_kv.first.as<std::string>();
      base.metric = metric_kv.first.as<std::string>();
      const YAML::Node& m = metric_kv.second;
      double v = 0;
      if (AsDouble(m, &v)) {
        base.value = v;
        out.push_back(base);
        continue;
      }
      if (!m.IsMap()) continue;
      if (m["scores"] && m["scores"].IsMap()) {
        for (const auto& score_kv : m["scores"]) {
          ResultRecord r = base;
          r.score = score_kv.first.as<std::string>();
          if (!AsDouble(score_kv.second["value"], &r.value)) continue;
          ReadStats(score_kv.second["stats"], r);
          out.push_back(std::move(r));
        }
      } else if (AsDouble(m["value"], &v)) {
        base.value = v;
        ReadStats(m["stats"], base);
        out.push_back(std::move(base));
      }
    }
  }
}

}  // namespace

absl::StatusOr<std::vector<ResultRecord>> ParseResults(const std::string& yaml_text,
                                                       const std::string& source,
                                                       const JobRecord& job) {
  std::vector<ResultRecord> out;
  // A job writes this file, and ReadSection's walk would expand its aliases: bounded first, with
  // more room than a config (a group of many tasks has many scores).
  absl::Status within = CheckYamlLimits(
      yaml_text, source, YamlLimits{.max_nodes = 200000, .max_scalar_bytes = 16 << 20});
  if (!within.ok()) return within;
  try {
    YAML::Node root = YAML::Load(yaml_text);
    if (!root.IsMap() || !root["results"] || !root["results"].IsMap()) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": no 'results' mapping"));
    }
    ReadSection(root["results"]["tasks"], job, out);
    ReadSection(root["results"]["groups"], job, out);
  } catch (const YAML::ParserException& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ":", e.mark.line + 1, ":", e.mark.column + 1, ": ", e.msg));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": ", e.what()));
  }
  return out;
}

PartialMarker ParsePartialMarker(const std::string& yaml_text) {
  PartialMarker m;
  try {
    YAML::Node root = YAML::Load(yaml_text);
    if (!root.IsMap()) return m;
    bool partial = false;
    if (!root["partial"] || !YAML::convert<bool>::decode(root["partial"], partial) || !partial) {
      return m;
    }
    m.partial = true;
    double v = 0;
    if (AsDouble(root["samples_scored"], &v)) m.samples_scored = static_cast<int64_t>(v);
    if (AsDouble(root["samples_total"], &v)) m.samples_total = static_cast<int64_t>(v);
  } catch (const YAML::Exception&) {
  }
  return m;
}

PartialMarker ReadPartialMarker(const std::string& path) {
  std::ifstream in(path);
  if (!in) return {};
  std::stringstream ss;
  ss << in.rdbuf();
  return ParsePartialMarker(ss.str());
}

absl::StatusOr<std::vector<ResultRecord>> ReadResultsFile(const std::string& path,
                                                          const JobRecord& job) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("no results file ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseResults(ss.str(), path, job);
}

}  // namespace evald::daemon
