// File: secrets.h
//
// How evalctl handles secret values: it reads the variables a config names (api_key_name, the
// sources of env_vars) from its own environment, sends the values only in Submit/Resume's
// `secrets` map, and scrubs them from anything it prints. Error messages name the variable and
// where the config uses it, never the value.
//
// Callers: the submit/run and resume commands.
//
//   auto uses = SecretUses(composed);   // {"HF_TOKEN": "evaluation.tasks[1].env_vars.HF_TOKEN"}
//   EVALD_ASSIGN_OR_RETURN(auto secrets, CollectSecrets(names, uses, env));
//   Redactor redact(secrets);
//   std::cout << redact(text);
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/redact.h"
#include "yaml-cpp/yaml.h"

namespace evald::cli {

// Looks up one environment variable; nullopt when unset (same shape as config::EnvLookup).
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;

// getenv.
EnvLookup ProcessEnvLookup();

// Where a composed config names each host variable: target.api_endpoint.api_key_name,
// evaluation.env_vars.<DST>, evaluation.tasks[i].env_vars.<DST>. First use wins.
std::map<std::string, std::string> SecretUses(const YAML::Node& composed);

// True for a variable name that says it holds a credential (KEY, TOKEN, SECRET, PASSWORD, PASSWD,
// CREDENTIAL, AUTH as a word of it, any case): the value a config pulls in with `${oc.env:NAME}`
// is then sent as a secret, masked in what evald stores and in what evalctl prints, like an
// api_key_name's. AWS_SECRET_ACCESS_KEY, WANDB_API_KEY and GH_TOKEN are; USER and HOME are not.
bool LooksLikeCredential(absl::string_view name);

// Reads every name. An unset one is InvalidArgument
//   "Trying to pass an unset environment variable HF_TOKEN (needed by
//   evaluation.tasks[1].env_vars.HF_TOKEN)"
// naming the first unset variable (and how many more are unset).
absl::StatusOr<std::map<std::string, std::string>> CollectSecrets(
    const std::vector<std::string>& names, const std::map<std::string, std::string>& uses,
    const EnvLookup& env);

// Reads the names that are set and returns them; the names that are not set go to `missing`.
std::map<std::string, std::string> CollectPresentSecrets(const std::vector<std::string>& names,
                                                         const EnvLookup& env,
                                                         std::vector<std::string>* missing);

// Replaces every secret value (4 characters or longer) in a text with `<secret:NAME>`: evald's
// masking (core/redact.h), so what evalctl prints matches what evald stores and returns.
using Redactor = ::evald::Redactor;

}  // namespace evald::cli
