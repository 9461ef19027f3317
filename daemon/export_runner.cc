#include "daemon/export_runner.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "core/status_macros.h"
#include "daemon/export/export_config.h"
#include "daemon/export/metrics_extract.h"

namespace evald::daemon {
namespace {

YAML::Node Child(const YAML::Node& node, const char* key) {
  if (!node || !node.IsMap()) return YAML::Node();
  return node[key];
}

std::string IsoUtc(int64_t ms) {
  absl::Time t = ms > 0 ? absl::FromUnixMillis(ms) : absl::Now();
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

}  // namespace

absl::Status CheckExportDestination(const std::string& dest) {
  if (dest == "local" || dest == "mlflow" || dest == "wandb" || dest == "gsheets") {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown export destination '", dest, "'; use local, mlflow, wandb or gsheets"));
}

exporters::JobExportInput ExportInputFor(const InvocationRecord& invocation,
                                         const YAML::Node& config, const JobRecord& job) {
  exporters::JobExportInput in;
  in.invocation_id = invocation.id;
  in.job_id = job.id;
  in.job_index = job.index;
  in.task_name = job.task;
  in.harness = job.harness;
  in.container = job.container;
  in.executor = invocation.executor;
  in.model_name = exporters::ResolveModelName(config, "", job.id);
  in.artifacts_dir = job.output_dir + "/artifacts";
  in.logs_dir = job.output_dir + "/logs";
  in.timestamp = IsoUtc(job.ended_ms);
  in.config_yaml = invocation.config_yaml;  // stored with secret values masked
  return in;
}

YAML::Node DestinationSection(const YAML::Node& doc, const std::string& dest) {
  if (!doc || !doc.IsMap()) return doc;
  YAML::Node top = Child(Child(doc, "export"), dest.c_str());
  if (top && !top.IsNull()) return top;
  YAML::Node nested =
      Child(Child(Child(Child(doc, "execution"), "auto_export"), "configs"), dest.c_str());
  if (nested && !nested.IsNull()) return nested;
  return doc;
}

absl::StatusOr<nlohmann::json> DestinationConfig(const YAML::Node& config, const std::string& dest,
                                                 const ExportLayers& layers) {
  // Newer configs put a destination's keys at top-level export.<dest>; when both forms are
  // present the execution.auto_export.configs.<dest> keys win, key by key.
  nlohmann::json cfg = nlohmann::json::object();
  const std::pair<YAML::Node, std::string> sections[] = {
      {Child(Child(config, "export"), dest.c_str()), absl::StrCat("export.", dest)},
      {Child(Child(Child(Child(config, "execution"), "auto_export"), "configs"), dest.c_str()),
       absl::StrCat("execution.auto_export.configs.", dest)}};
  for (const auto& [section, key_path] : sections) {
    if (!section || section.IsNull()) continue;
    if (!section.IsMap()) {
      return absl::InvalidArgumentError(
          absl::StrCat(key_path, ": expected a mapping of the exporter's keys"));
    }
    EVALD_ASSIGN_OR_RETURN(nlohmann::json part, exporters::MergeExportConfig(section, {}, dest));
    cfg.merge_patch(part);
  }
  if (layers.extra && !layers.extra.IsNull()) {
    if (!layers.extra.IsMap()) {
      return absl::InvalidArgumentError(
          absl::StrCat("the export config for ", dest, " must be a mapping of its keys"));
    }
    cfg.merge_patch(exporters::YamlToTypedJson(layers.extra));
  }
  if (!layers.overrides.empty()) {
    EVALD_ASSIGN_OR_RETURN(nlohmann::json over,
                           exporters::MergeExportConfig(YAML::Node(), layers.overrides, dest));
    cfg.merge_patch(over);
  }
  for (const auto& [key, value] : layers.flags.items()) cfg[key] = value;
  return cfg;
}

std::vector<std::string> AutoExportDestinations(const YAML::Node& config) {
  std::vector<std::string> out;
  YAML::Node list = Child(Child(Child(config, "execution"), "auto_export"), "destinations");
  if (!list || !list.IsSequence()) return out;
  for (const YAML::Node& item : list) {
    if (item.IsScalar()) out.push_back(item.Scalar());
  }
  return out;
}

}  // namespace evald::daemon
