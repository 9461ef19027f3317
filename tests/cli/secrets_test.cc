// Secret collection: unset variables are named (with where the config uses them), values never
// leak into rendered text.
#include "cli/secrets.h"

#include <catch2/catch.hpp>

namespace evald::cli {
namespace {

EnvLookup MapEnv(std::map<std::string, std::string> vars) {
  return [vars](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

constexpr char kConfig[] = R"(
target:
  api_endpoint:
    url: http://localhost:8000/v1/chat/completions
    api_key_name: NGC_API_KEY
evaluation:
  env_vars:
    JUDGE_KEY: host:JUDGE_API_KEY
  tasks:
    - name: gsm8k
    - name: gpqa_diamond
      env_vars:
        HF_TOKEN: HF_TOKEN_FOR_GPQA
)";

TEST_CASE("secret uses name the key path of each variable") {
  auto uses = SecretUses(YAML::Load(kConfig));
  CHECK(uses.size() == 3);
  CHECK(uses["NGC_API_KEY"] == "target.api_endpoint.api_key_name");
  CHECK(uses["JUDGE_API_KEY"] == "evaluation.env_vars.JUDGE_KEY");
  CHECK(uses["HF_TOKEN_FOR_GPQA"] == "evaluation.tasks[1].env_vars.HF_TOKEN");
  // Malformed shapes are ignored, never a crash.
  CHECK(SecretUses(YAML::Load("evaluation: [1, 2]")).empty());
  CHECK(SecretUses(YAML::Load("evaluation: {tasks: {a: 1}, env_vars: [x]}")).empty());
  CHECK(SecretUses(YAML::Load("target: {api_endpoint: {api_key_name: {a: b}}}")).empty());
  CHECK(SecretUses(YAML::Node()).empty());
}

TEST_CASE("an unset variable is an error naming it and where it is needed") {
  auto uses = SecretUses(YAML::Load(kConfig));
  std::vector<std::string> names = {"HF_TOKEN_FOR_GPQA", "JUDGE_API_KEY", "NGC_API_KEY"};
  auto r = CollectSecrets(
      names, uses,
      MapEnv({{"NGC_API_KEY", "nvapi-secret-value-123"}, {"JUDGE_API_KEY", "judge-secret-456"}}));
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(std::string(r.status().message()) ==
        "Trying to pass an unset environment variable HF_TOKEN_FOR_GPQA (needed by "
        "evaluation.tasks[1].env_vars.HF_TOKEN)");
  CHECK(std::string(r.status().message()).find("secret-value") == std::string::npos);

  r = CollectSecrets({"A", "B"}, {}, MapEnv({}));
  REQUIRE_FALSE(r.ok());
  CHECK(std::string(r.status().message()) ==
        "Trying to pass an unset environment variable A; also unset: B");
}

TEST_CASE("set variables are collected, empty values included") {
  auto r = CollectSecrets({"A", "B"}, {}, MapEnv({{"A", "x"}, {"B", ""}, {"C", "unused"}}));
  REQUIRE(r.ok());
  CHECK(*r == std::map<std::string, std::string>{{"A", "x"}, {"B", ""}});
  std::vector<std::string> missing;
  auto present = CollectPresentSecrets({"A", "Z"}, MapEnv({{"A", "x"}}), &missing);
  CHECK(present.size() == 1);
  CHECK(missing == std::vector<std::string>{"Z"});
}

TEST_CASE("variable names that say they hold a credential are told from the others") {
  for (const char* name :
       {"AWS_SECRET_ACCESS_KEY", "WANDB_API_KEY", "GH_TOKEN", "db_password",
        "MLFLOW_TRACKING_PASSWD", "GOOGLE_APPLICATION_CREDENTIALS", "AUTH", "hf-token"}) {
    CHECK(LooksLikeCredential(name));
  }
  for (const char* name :
       {"USER", "HOME", "PWD", "KEYBOARD", "TOKENIZER_PATH", "AUTHOR", "MODEL_DIR", ""}) {
    CHECK_FALSE(LooksLikeCredential(name));
  }
}

TEST_CASE("the redactor removes every secret value from text") {
  Redactor redact({{"HF_TOKEN", "hf_abcdef"}, {"LONG", "hf_abcdef_longer"}, {"TINY", "ab"}});
  CHECK(redact("token=hf_abcdef and hf_abcdef_longer; ab stays") ==
        "token=<secret:HF_TOKEN> and <secret:LONG>; ab stays");
  CHECK(Redactor()("unchanged") == "unchanged");
}

}  // namespace
}  // namespace evald::cli
