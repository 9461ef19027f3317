#include "cli/secrets.h"

#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace evald::cli {
namespace {

// A scalar's text, or "" for anything else (yaml-cpp throws on as<> of a non-scalar).
std::string ScalarText(const YAML::Node& node) {
  if (!node || !node.IsScalar()) return "";
  return node.Scalar();
}

// env_vars values name a host variable, optionally with a `host:` prefix.
std::string HostVarOf(const std::string& value) {
  constexpr absl::string_view kHost = "host:";
  if (value.compare(0, kHost.size(), kHost.data(), kHost.size()) == 0) {
    return value.substr(kHost.size());
  }
  return value;
}

void AddEnvVarUses(const YAML::Node& env_vars, const std::string& path,
                   std::map<std::string, std::string>* uses) {
  if (!env_vars || !env_vars.IsMap()) return;
  for (const auto& kv : env_vars) {
    std::string dst = ScalarText(kv.first);
    std::string src = HostVarOf(ScalarText(kv.second));
    if (src.empty()) continue;
    uses->emplace(src, absl::StrCat(path, ".", dst));
  }
}

}  // namespace

EnvLookup ProcessEnvLookup() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

bool LooksLikeCredential(absl::string_view name) {
  // Not PASS or PWD: $PWD is the working directory, which configs do use in paths.
  static constexpr absl::string_view kWords[] = {"KEY",    "TOKEN",      "SECRET",      "PASSWORD",
                                                 "PASSWD", "CREDENTIAL", "CREDENTIALS", "AUTH"};
  for (absl::string_view word : absl::StrSplit(name, absl::ByAnyChar("_-."), absl::SkipEmpty())) {
    const std::string upper = absl::AsciiStrToUpper(word);
    for (absl::string_view w : kWords) {
      if (upper == w) return true;
    }
  }
  return false;
}

std::map<std::string, std::string> SecretUses(const YAML::Node& composed) {
  std::map<std::string, std::string> uses;
  if (!composed || !composed.IsMap()) return uses;
  const YAML::Node target = composed["target"];
  if (target && target.IsMap()) {
    const YAML::Node endpoint = target["api_endpoint"];
    if (endpoint && endpoint.IsMap()) {
      std::string key = ScalarText(endpoint["api_key_name"]);
      if (!key.empty()) uses.emplace(key, "target.api_endpoint.api_key_name");
    }
  }
  const YAML::Node evaluation = composed["evaluation"];
  if (!evaluation || !evaluation.IsMap()) return uses;
  AddEnvVarUses(evaluation["env_vars"], "evaluation.env_vars", &uses);
  const YAML::Node tasks = evaluation["tasks"];
  if (tasks && tasks.IsSequence()) {
    for (size_t i = 0; i < tasks.size(); ++i) {
      if (!tasks[i].IsMap()) continue;
      AddEnvVarUses(tasks[i]["env_vars"], absl::StrCat("evaluation.tasks[", i, "].env_vars"),
                    &uses);
    }
  }
  return uses;
}

absl::StatusOr<std::map<std::string, std::string>> CollectSecrets(
    const std::vector<std::string>& names, const std::map<std::string, std::string>& uses,
    const EnvLookup& env) {
  std::vector<std::string> missing;
  std::map<std::string, std::string> values = CollectPresentSecrets(names, env, &missing);
  if (missing.empty()) return values;
  const std::string& first = missing.front();
  std::string msg = absl::StrCat("Trying to pass an unset environment variable ", first);
  auto it = uses.find(first);
  if (it != uses.end()) absl::StrAppend(&msg, " (needed by ", it->second, ")");
  if (missing.size() > 1) {
    absl::StrAppend(&msg, "; also unset:");
    for (size_t i = 1; i < missing.size(); ++i) absl::StrAppend(&msg, " ", missing[i]);
  }
  return absl::InvalidArgumentError(msg);
}

std::map<std::string, std::string> CollectPresentSecrets(const std::vector<std::string>& names,
                                                         const EnvLookup& env,
                                                         std::vector<std::string>* missing) {
  std::map<std::string, std::string> values;
  for (const std::string& name : names) {
    std::optional<std::string> v = env ? env(name) : std::nullopt;
    if (v.has_value()) {
      values[name] = *v;
    } else if (missing != nullptr) {
      missing->push_back(name);
    }
  }
  return values;
}

}  // namespace evald::cli
