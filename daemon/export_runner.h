// File: export_runner.h
//
// The glue between evald's records and its result exporters (daemon/export, docs/export.md):
// builds a job's JobExportInput from its invocation and job rows, and a destination's config from
// the invocation's `execution.auto_export.configs.<dest>` with the caller's config, `-o` overrides
// and flags on top. Called by ServerCore::Export (the Export RPC) and by the AutoExporter
// (auto_exporter.h), so both export a job the same way.
//
//   ExportLayers layers{.overrides = {"export.local.format=csv"}};
//   EVALD_ASSIGN_OR_RETURN(nlohmann::json cfg, DestinationConfig(inv_config, "local", layers));
//   exporters::JobExportInput in = ExportInputFor(view.invocation, inv_config, job);
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/model.h"
#include "daemon/export/export_types.h"
#include "nlohmann/json.hpp"
#include "yaml-cpp/yaml.h"

namespace evald::daemon {

// The secret that carries the MLflow token (the reference's and MLflow's own variable name).
inline constexpr char kMlflowTokenSecret[] = "MLFLOW_TRACKING_TOKEN";
// The secret that carries the W&B API key (W&B's own variable name).
inline constexpr char kWandbApiKeySecret[] = "WANDB_API_KEY";

// local, mlflow, wandb and gsheets; an error naming them otherwise.
absl::Status CheckExportDestination(const std::string& dest);

// A job's export input: its ids, names, task dir and the invocation's (masked) config.
exporters::JobExportInput ExportInputFor(const InvocationRecord& invocation,
                                         const YAML::Node& config, const JobRecord& job);

// What a caller puts over the invocation's own exporter config, in this order (last wins).
struct ExportLayers {
  YAML::Node extra;                                 // a mapping of the destination's keys, or null
  std::vector<std::string> overrides;               // export.<dest>.key=value
  nlohmann::json flags = nlohmann::json::object();  // explicit keys (CLI flags), set last
};

// The destination's section of a config document given with --config: `export.<dest>`, else
// `execution.auto_export.configs.<dest>`, else the document itself (the destination's keys).
YAML::Node DestinationSection(const YAML::Node& doc, const std::string& dest);

// The invocation config's `export.<dest>` overlaid with its `execution.auto_export.configs.<dest>`,
// then the layers.
absl::StatusOr<nlohmann::json> DestinationConfig(const YAML::Node& config, const std::string& dest,
                                                 const ExportLayers& layers);

// `execution.auto_export.destinations` of a config (empty when absent).
std::vector<std::string> AutoExportDestinations(const YAML::Node& config);

}  // namespace evald::daemon
