#include "cli/config_compose.h"

#include <memory>
#include <set>
#include <utility>

#include "cli/secrets.h"
#include "core/config/compose.h"
#include "core/config/run_config.h"
#include "core/config/schema.h"
#include "core/deployment/deployment_spec.h"
#include "core/status_macros.h"
#include "executors/registry.h"

namespace evald::cli {

absl::StatusOr<ComposedConfig> ComposeWithConfigLibrary(const ComposeInput& input) {
  config::ComposeRequest req;
  req.primary_path = input.primary_path;
  req.search_path = input.search_path;
  req.packaged_dir = config::PackagedConfigDir();
  req.overrides = input.overrides;
  // Which variables `${oc.env:NAME}` read: those named like credentials travel as secrets.
  auto read_names = std::make_shared<std::set<std::string>>();
  config::EnvLookup lookup = input.env ? config::EnvLookup(input.env) : config::ProcessEnv();
  req.env = [lookup, read_names](const std::string& name) {
    read_names->insert(name);
    return lookup(name);
  };
  req.working_dir = input.working_dir;
  // The schema first (evald checks it too; here the message names the user's file), with `???`
  // left in place: a misspelt key usually leaves the value it meant to set missing, and "did you
  // mean 'output_dir'" says more than "missing mandatory value".
  req.allow_missing = true;
  EVALD_ASSIGN_OR_RETURN(YAML::Node unchecked, config::Compose(req));
  EVALD_RETURN_IF_ERROR(
      config::CheckConfigSchema(unchecked, input.primary_path, executors::BuiltinSchemas()));
  req.allow_missing = false;
  EVALD_ASSIGN_OR_RETURN(YAML::Node composed, config::Compose(req));
  ComposedConfig out;
  out.yaml = config::ToYaml(composed);
  std::set<std::string> names;
  for (std::string& n : config::SecretNamesOf(composed)) names.insert(std::move(n));
  for (std::string& n : deployment::HostSecretNames(composed)) names.insert(std::move(n));
  out.secret_uses = SecretUses(composed);
  for (const std::string& name : *read_names) {
    if (!LooksLikeCredential(name) || !lookup(name).has_value()) continue;
    if (names.insert(name).second) out.secret_uses.emplace(name, "${oc.env:" + name + "}");
  }
  out.secret_names.assign(names.begin(), names.end());
  return out;
}

std::string PackagedConfigsDir() { return config::PackagedConfigDir(); }

}  // namespace evald::cli
