// Composition: the reference's examples against OmegaConf goldens, Hydra's defaults-list and
// override semantics, interpolation, the `???` check, paths, and every bad input with its message.
#include "core/config/compose.h"

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tests/core/config/test_util.h"

namespace evald::config {
namespace {

namespace fs = std::filesystem;
using testing::At;
using testing::ComposeText;
using testing::FixedEnv;
using testing::PackagedDir;
using testing::PeerExamplesDir;
using testing::TempDir;

constexpr char kWorkDir[] = "/submit/dir";

std::string Str(const YAML::Node& n) { return n.IsScalar() ? n.Scalar() : "<not a scalar>"; }

absl::StatusOr<YAML::Node> ComposeFile(const std::string& path,
                                       std::vector<std::string> overrides = {},
                                       bool allow_missing = false,
                                       std::vector<std::string> search_path = {}) {
  ComposeRequest req;
  req.primary_path = path;
  req.packaged_dir = PackagedDir();
  req.search_path = std::move(search_path);
  req.overrides = std::move(overrides);
  req.env = testing::GoldenEnv();
  req.working_dir = kWorkDir;
  req.allow_missing = allow_missing;
  return Compose(req);
}

std::string ErrorOf(const absl::StatusOr<YAML::Node>& r) {
  return r.ok() ? std::string("<ok>") : std::string(r.status().message());
}

const char kMinimal[] = R"(defaults:
  - execution: local
  - deployment: none
  - _self_
execution:
  output_dir: /out
target:
  api_endpoint:
    url: http://127.0.0.1:8000/v1/chat/completions
    model_id: m
    api_key_name: null
evaluation:
  overrides:
    config.params.temperature: 0.5
  tasks:
    - name: ifeval
    - name: gpqa_diamond
      env_vars:
        HF_TOKEN: MY_HF
)";

TEST_CASE("Every peer example composes to the values the reference produces") {
  int examples = 0, scenarios = 0;
  std::vector<fs::path> goldens;
  for (const auto& entry : fs::directory_iterator(PeerExamplesDir() + "/golden")) {
    if (entry.path().extension() == ".json" && entry.path().filename() != "cases.json") {
      goldens.push_back(entry.path());
    }
  }
  std::sort(goldens.begin(), goldens.end());
  for (const fs::path& golden_path : goldens) {
    nlohmann::ordered_json golden = testing::ReadJson(golden_path.string());
    std::vector<std::string> overrides = golden["overrides"].get<std::vector<std::string>>();
    (overrides.empty() ? examples : scenarios)++;
    std::string example = golden["example"].get<std::string>();
    CAPTURE(golden_path.filename().string(), overrides);
    auto composed =
        ComposeFile(PeerExamplesDir() + "/" + example, overrides, /*allow_missing=*/true);
    REQUIRE(composed.ok());
    nlohmann::ordered_json want = golden["config"];
    // Difference 1: our execution/slurm/default.yaml has `type: slurm`; the reference's lacks it.
    if (want["execution"].contains("hostname") && !want["execution"].contains("type")) {
      REQUIRE(Str(At(*composed, "execution.type")) == "slurm");
      (*composed)["execution"].remove("type");
    }
    // Difference 2: a relative execution.output_dir is made absolute against the working dir.
    std::string out = want["execution"]["output_dir"].get<std::string>();
    if (out != "???" && out.front() != '/') {
      want["execution"]["output_dir"] = absl::StrCat(kWorkDir, "/", out);
    }
    std::vector<std::string> diffs = testing::DiffAgainstJson(*composed, want);
    CAPTURE(absl::StrJoin(diffs, "\n"));
    CHECK(diffs.empty());
  }
  CHECK(examples == 15);
  CHECK(scenarios >= 10);
}

TEST_CASE("OmegaConf interpolation and YAML typing cases match the reference") {
  nlohmann::ordered_json golden = testing::ReadJson(PeerExamplesDir() + "/golden/cases.json");
  REQUIRE(golden["cases"].size() >= 15);
  for (const auto& c : golden["cases"]) {
    std::string name = c["name"].get<std::string>();
    CAPTURE(name);
    ComposeRequest req;
    req.primary_yaml = c["yaml"].get<std::string>();
    req.primary_name = name + ".yaml";
    req.env = testing::GoldenEnv();
    req.allow_missing = !c["error"].get<bool>() && absl::StrContains(c["config"].dump(), "\"???\"");
    auto composed = Compose(req);
    if (c["error"].get<bool>()) {
      CAPTURE(c["reference_error"].get<std::string>());
      CHECK_FALSE(composed.ok());
      continue;
    }
    REQUIRE(composed.ok());
    std::vector<std::string> diffs = testing::DiffAgainstJson(*composed, c["config"]);
    CAPTURE(absl::StrJoin(diffs, "\n"));
    CHECK(diffs.empty());
  }
}

TEST_CASE("Interpolation error messages name the key path and the cause") {
  auto env = ComposeText("a:\n  b: ${oc.env:EVALD_NOT_SET}\n");
  REQUIRE_FALSE(env.ok());
  CHECK(ErrorOf(env) ==
        "interpolation '${oc.env:EVALD_NOT_SET}' at 'a.b': environment variable 'EVALD_NOT_SET' "
        "is not set; export it or give a default: ${oc.env:EVALD_NOT_SET,default}");

  auto cycle = ComposeText("a: ${b}\nb:\n  c: ${a}\n");
  REQUIRE_FALSE(cycle.ok());
  CHECK(ErrorOf(cycle) == "interpolation cycle: a -> b.c -> a");

  auto unknown = ComposeText("execution:\n  output_dir: /x\nv: ${execution.output_dri}\n");
  REQUIRE_FALSE(unknown.ok());
  CHECK(absl::StrContains(ErrorOf(unknown), "key 'execution.output_dri' not found"));
  CHECK(absl::StrContains(ErrorOf(unknown), "did you mean 'output_dir'?"));

  auto missing = ComposeText("a: ???\nb: x${a}\n");
  REQUIRE_FALSE(missing.ok());
  CHECK(ErrorOf(missing) ==
        "missing mandatory value at 'a' (needed by 'x${a}' at 'b'); set it in the config or "
        "with -o");

  auto resolver = ComposeText("a: ${oc.nope:1}\n");
  REQUIRE_FALSE(resolver.ok());
  CHECK(absl::StrContains(ErrorOf(resolver), "unsupported resolver 'oc.nope'"));

  auto syntax = ComposeText("a: ${b\n");
  REQUIRE_FALSE(syntax.ok());
  CHECK(absl::StrContains(ErrorOf(syntax), "interpolation '${b' at 'a': missing '}'"));
}

TEST_CASE("References that grow exponentially are refused") {
  std::string lists = "a0: [x, x]\n";
  std::string strings = "s0: xxxxxxxxxxxxxxxx\n";
  for (int k = 1; k <= 40; ++k) {
    lists += absl::StrCat("a", k, ":\n  - ${a", k - 1, "}\n  - ${a", k - 1, "}\n");
    strings += absl::StrCat("s", k, ": ${s", k - 1, "}${s", k - 1, "}\n");
  }
  auto l = ComposeText(lists);
  REQUIRE_FALSE(l.ok());
  CHECK(absl::StrContains(ErrorOf(l), "references copy more than 20000 values"));
  auto s = ComposeText(strings);
  REQUIRE_FALSE(s.ok());
  CHECK(absl::StrContains(ErrorOf(s), "the result is longer than 1048576 bytes"));
}

TEST_CASE("A value referring to a missing value stays missing when missing values are allowed") {
  ComposeRequest req;
  req.primary_yaml = "a: ???\nb: x${a}\nc: ${oc.select:a,dflt}\n";
  req.allow_missing = true;
  auto composed = Compose(req);
  REQUIRE(composed.ok());
  CHECK(Str(At(*composed, "b")) == "???");
  CHECK(Str(At(*composed, "c")) == "dflt");
}

TEST_CASE("Missing mandatory values are reported with their full key path") {
  auto local = ComposeFile(PeerExamplesDir() + "/local_aa_reasoning.yaml");
  REQUIRE_FALSE(local.ok());
  CHECK(ErrorOf(local) ==
        "missing mandatory value at 'execution.output_dir' (set it in the config or with -o)");

  auto slurm = ComposeFile(PeerExamplesDir() + "/slurm_llama_3_1_8b_instruct.yaml");
  REQUIRE_FALSE(slurm.ok());
  CHECK(ErrorOf(slurm) ==
        "missing mandatory values at 'execution.hostname', 'execution.account' (set them in the "
        "config or with -o)");

  auto listed = ComposeText("evaluation:\n  tasks:\n    - name: ifeval\n    - name: ???\n");
  REQUIRE_FALSE(listed.ok());
  CHECK(absl::StrContains(ErrorOf(listed), "'evaluation.tasks[1].name'"));

  auto fixed = ComposeFile(PeerExamplesDir() + "/slurm_llama_3_1_8b_instruct.yaml",
                           {"execution.hostname=login", "execution.account=acct"});
  CHECK(fixed.ok());
}

TEST_CASE("Malformed YAML reports the file line and column") {
  TempDir dir;
  std::string path = dir.Write("bad.yaml", "execution:\n  output_dir: /x\n  bad: [1, 2\n");
  auto r = ComposeFile(path);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(absl::StartsWith(ErrorOf(r), path + ":4:1: "));

  std::string colon = dir.Write("colon.yaml", "a: b: c\n");
  auto r2 = ComposeFile(colon);
  REQUIRE_FALSE(r2.ok());
  CHECK(ErrorOf(r2) == colon + ":1:5: illegal map value");

  std::string dup = dir.Write("dup.yaml", "a: 1\nb: 2\na: 3\n");
  auto r3 = ComposeFile(dup);
  REQUIRE_FALSE(r3.ok());
  CHECK(ErrorOf(r3) == dup + ":3:1: duplicate key 'a'");

  // A broken group file is named too.
  dir.Write("execution/broken.yaml", "type: local\n  oops: 1\n");
  std::string primary = dir.Write("main.yaml", "defaults:\n  - execution: broken\n");
  auto r4 = ComposeFile(primary);
  REQUIRE_FALSE(r4.ok());
  CHECK(absl::StartsWith(ErrorOf(r4), dir.path() + "/execution/broken.yaml:2:7: "));

  auto text = ComposeText("a:\n\t- 1\n");
  REQUIRE_FALSE(text.ok());
  CHECK(absl::StartsWith(ErrorOf(text), "test.yaml:2:"));

  std::string scalar = dir.Write("scalar.yaml", "just a string\n");
  auto r5 = ComposeFile(scalar);
  REQUIRE_FALSE(r5.ok());
  CHECK(ErrorOf(r5) == scalar + ": a config must be a mapping at the top level, not a string");
}

TEST_CASE("An unknown group option lists the available options") {
  auto r = ComposeText(kMinimal, {"execution=slurmm"});
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == absl::StatusCode::kNotFound);
  CHECK(ErrorOf(r) ==
        "unknown option 'execution=slurmm' for group 'execution'; available: lepton/default, "
        "local, slurm/default (did you mean 'slurm/default'?)");

  TempDir dir;
  std::string path =
      dir.Write("cfg.yaml", "defaults:\n  - deployment: none\n  - execution: lokal\n");
  auto r2 = ComposeFile(path);
  REQUIRE_FALSE(r2.ok());
  CHECK(ErrorOf(r2) == path +
                           ":3:5: unknown option 'execution: lokal' for group 'execution' in the "
                           "defaults list; available: lepton/default, local, slurm/default "
                           "(did you mean 'local'?)");

  std::string group = dir.Write("group.yaml", "defaults:\n  - executor: local\n");
  auto r3 = ComposeFile(group);
  REQUIRE_FALSE(r3.ok());
  CHECK(absl::StrContains(ErrorOf(r3), group + ":2:5: unknown config group 'executor' in the "
                                               "defaults list; available groups: deployment, "
                                               "execution"));
  CHECK(absl::StrContains(ErrorOf(r3), "did you mean 'execution'?"));

  std::string choose = dir.Write("choose.yaml", "defaults:\n  - execution: ???\n");
  auto r4 = ComposeFile(choose);
  REQUIRE_FALSE(r4.ok());
  CHECK(ErrorOf(r4) == choose +
                           ":2:5: choose an option for group 'execution' (e.g. -o "
                           "execution=lepton/default); available: lepton/default, local, "
                           "slurm/default");
  CHECK(ComposeFile(choose, {"execution=local", "execution.output_dir=/o"}).ok());

  std::string bad = dir.Write("entry.yaml", "defaults:\n  - [a, b]\n");
  auto r5 = ComposeFile(bad);
  REQUIRE_FALSE(r5.ok());
  CHECK(absl::StrContains(ErrorOf(r5), bad + ":2:5: invalid defaults list entry: got a list"));
}

TEST_CASE("Group overrides switch add and delete defaults list entries") {
  auto slurm = ComposeText(
      kMinimal, {"execution=slurm/default", "execution.hostname=h", "execution.account=a"});
  REQUIRE(slurm.ok());
  CHECK(Str(At(*slurm, "execution.type")) == "slurm");
  CHECK(Str(At(*slurm, "execution.username")) == "tester");
  CHECK(Str(At(*slurm, "execution.output_dir")) == "/out");

  auto deleted = ComposeText(kMinimal, {"~deployment"});
  REQUIRE(deleted.ok());
  CHECK_FALSE(At(*deleted, "deployment").IsDefined());

  auto add_existing = ComposeText(kMinimal, {"+execution=local"});
  REQUIRE_FALSE(add_existing.ok());
  CHECK(absl::StrContains(ErrorOf(add_existing),
                          "cannot add group 'execution' with override '+execution=local': the "
                          "defaults list already has it"));

  const char* no_deployment = "defaults:\n  - execution: local\nexecution:\n  output_dir: /o\n";
  auto switch_absent = ComposeText(no_deployment, {"deployment=vllm"});
  REQUIRE_FALSE(switch_absent.ok());
  CHECK(ErrorOf(switch_absent) ==
        "cannot switch group 'deployment' with override 'deployment=vllm': the defaults list has "
        "no 'deployment' entry; use +deployment=vllm to add it");

  auto added = ComposeText(
      no_deployment, {"+deployment=nim", "deployment.image=i", "deployment.served_model_name=s"});
  REQUIRE(added.ok());
  CHECK(Str(At(*added, "deployment.type")) == "nim");

  auto forced = ComposeText(no_deployment, {"++deployment=none"});
  REQUIRE(forced.ok());
  CHECK(Str(At(*forced, "deployment.type")) == "none");

  auto bad_delete = ComposeText(no_deployment, {"~deployment"});
  REQUIRE_FALSE(bad_delete.ok());
  CHECK(absl::StrContains(ErrorOf(bad_delete), "cannot delete group 'deployment'"));

  auto null_choice = ComposeText(kMinimal, {"deployment=null"});
  REQUIRE(null_choice.ok());
  CHECK_FALSE(At(*null_choice, "deployment").IsDefined());
}

TEST_CASE("Without _self_ the config body is merged after its defaults as in Hydra 1.1") {
  const char* body = "execution:\n  type: local\n  output_dir: /mine\n";
  auto implicit = ComposeText(absl::StrCat("defaults:\n  - execution: local\n", body));
  REQUIRE(implicit.ok());
  CHECK(Str(At(*implicit, "execution.output_dir")) == "/mine");

  TempDir dir;
  dir.Write("execution/fixed.yaml", "type: local\noutput_dir: /from-group\n");
  std::string self_first =
      dir.Write("first.yaml",
                "defaults:\n  - _self_\n  - execution: fixed\nexecution:\n  output_dir: /mine\n");
  auto first = ComposeFile(self_first);
  REQUIRE(first.ok());
  CHECK(Str(At(*first, "execution.output_dir")) == "/from-group");

  auto twice = ComposeText("defaults:\n  - _self_\n  - execution: local\n  - execution: local\n");
  REQUIRE_FALSE(twice.ok());
  CHECK(absl::StrContains(ErrorOf(twice), "group 'execution' appears more than once"));
}

TEST_CASE("The primary folder and user config dirs are searched before the packaged configs") {
  TempDir user;
  user.Write("execution/local.yaml", "type: local\noutput_dir: /from-user-dir\nextra: 1\n");
  user.Write("deployment/mine.yaml", "type: none\nflavour: user\n");
  TempDir project;
  project.Write("execution/local.yaml", "type: local\noutput_dir: /from-primary-dir\n");
  std::string primary = project.Write(
      "cfg.yaml", "defaults:\n  - execution: local\n  - deployment: mine\n  - _self_\n");
  auto r = ComposeFile(primary, {}, false, {user.path()});
  REQUIRE(r.ok());
  CHECK(Str(At(*r, "execution.output_dir")) == "/from-primary-dir");
  CHECK_FALSE(At(*r, "execution.extra").IsDefined());
  CHECK(Str(At(*r, "deployment.flavour")) == "user");

  // Without the primary folder's copy, the user dir wins over the packaged one.
  TempDir other;
  std::string p2 = other.Write("cfg.yaml", "defaults:\n  - execution: local\n");
  auto r2 = ComposeFile(p2, {}, false, {user.path()});
  REQUIRE(r2.ok());
  CHECK(Str(At(*r2, "execution.output_dir")) == "/from-user-dir");

  // User options show up in the list of available options.
  auto r3 = ComposeFile(p2, {"deployment=nope"}, false, {user.path()});
  REQUIRE_FALSE(r3.ok());
  CHECK(absl::StrContains(ErrorOf(r3), "cannot switch group 'deployment'"));
  auto r4 = ComposeFile(primary, {"deployment=nope"}, false, {user.path()});
  REQUIRE_FALSE(r4.ok());
  CHECK(absl::StrContains(ErrorOf(r4), "unknown option 'deployment=nope' for group 'deployment'"));
  CHECK(absl::StrContains(ErrorOf(r4), " mine, nim, none, "));
}

TEST_CASE("A config file changed on disk is read again, even at the same size") {
  TempDir user;
  user.Write("execution/local.yaml", "type: local\noutput_dir: /first\n");
  TempDir other;
  std::string primary = other.Write("cfg.yaml", "defaults:\n  - execution: local\n");
  auto first = ComposeFile(primary, {}, false, {user.path()});
  REQUIRE(first.ok());
  CHECK(Str(At(*first, "execution.output_dir")) == "/first");
  user.Write("execution/local.yaml", "type: local\noutput_dir: /other\n");
  auto second = ComposeFile(primary, {}, false, {user.path()});
  REQUIRE(second.ok());
  CHECK(Str(At(*second, "execution.output_dir")) == "/other");
  // The one composed before is not changed by the one composed after.
  CHECK(Str(At(*first, "execution.output_dir")) == "/first");
  user.Write("execution/local.yaml", "type: [local\n");
  auto broken = ComposeFile(primary, {}, false, {user.path()});
  REQUIRE_FALSE(broken.ok());
  CHECK(absl::StrContains(ErrorOf(broken), "execution/local.yaml"));
}

TEST_CASE("Unreadable config dirs are reported") {
  auto missing = ComposeFile(PeerExamplesDir() + "/local_llama_3_1_8b_instruct.yaml", {}, false,
                             {"/nonexistent/evald-config-dir"});
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().code() == absl::StatusCode::kNotFound);
  CHECK(ErrorOf(missing) == "config dir '/nonexistent/evald-config-dir' does not exist");

  TempDir dir;
  std::string file = dir.Write("not-a-dir", "x");
  auto not_dir =
      ComposeFile(PeerExamplesDir() + "/local_llama_3_1_8b_instruct.yaml", {}, false, {file});
  REQUIRE_FALSE(not_dir.ok());
  CHECK(ErrorOf(not_dir) == "config dir '" + file + "' is not a directory");

  ComposeRequest req;
  req.primary_yaml = kMinimal;
  req.packaged_dir = "/nonexistent/packaged";
  auto packaged = Compose(req);
  REQUIRE_FALSE(packaged.ok());
  CHECK(ErrorOf(packaged) == "packaged config dir '/nonexistent/packaged' does not exist");

  if (::geteuid() != 0) {  // root reads everything, so the permission case needs a normal user
    std::string locked = dir.path() + "/locked";
    fs::create_directory(locked);
    ::chmod(locked.c_str(), 0);
    auto unreadable =
        ComposeFile(PeerExamplesDir() + "/local_llama_3_1_8b_instruct.yaml", {}, false, {locked});
    REQUIRE_FALSE(unreadable.ok());
    CHECK(ErrorOf(unreadable) == "cannot read config dir '" + locked + "': Permission denied");
  }

  auto no_primary = ComposeFile(dir.path() + "/absent.yaml");
  REQUIRE_FALSE(no_primary.ok());
  CHECK(no_primary.status().code() == absl::StatusCode::kNotFound);
  CHECK(ErrorOf(no_primary) == "config file '" + dir.path() + "/absent.yaml' does not exist");

  CHECK_FALSE(Compose(ComposeRequest{}).ok());
}

TEST_CASE("Overrides follow Hydra struct mode") {
  auto set = ComposeText(kMinimal, {"execution.output_dir=/elsewhere"});
  REQUIRE(set.ok());
  CHECK(Str(At(*set, "execution.output_dir")) == "/elsewhere");

  auto unknown = ComposeText(kMinimal, {"execution.outptu_dir=/x"});
  REQUIRE_FALSE(unknown.ok());
  CHECK(ErrorOf(unknown) ==
        "unknown key path 'execution.outptu_dir' in override 'execution.outptu_dir=/x': key "
        "'outptu_dir' is not in 'execution'; did you mean 'output_dir'?; use "
        "+execution.outptu_dir=/x to add it");

  auto top = ComposeText(kMinimal, {"a.b=1"});
  REQUIRE_FALSE(top.ok());
  CHECK(ErrorOf(top) ==
        "unknown key path 'a.b' in override 'a.b=1': key 'a' is not in the config; use +a.b=1 to "
        "add it");

  auto added = ComposeText(kMinimal, {"+a.b=1", "+execution.mode=sequential"});
  REQUIRE(added.ok());
  CHECK(Str(At(*added, "a.b")) == "1");
  CHECK(Str(At(*added, "execution.mode")) == "sequential");

  auto exists = ComposeText(kMinimal, {"+execution.output_dir=/x"});
  REQUIRE_FALSE(exists.ok());
  CHECK(ErrorOf(exists) ==
        "cannot add 'execution.output_dir' in override '+execution.output_dir=/x': it already "
        "exists ('/out'); use execution.output_dir=/x to change it or ++execution.output_dir=/x "
        "to set it either way");

  auto forced = ComposeText(kMinimal, {"++execution.output_dir=/x", "++new.key=2"});
  REQUIRE(forced.ok());
  CHECK(Str(At(*forced, "execution.output_dir")) == "/x");
  CHECK(Str(At(*forced, "new.key")) == "2");

  auto deleted =
      ComposeText(kMinimal, {"~evaluation.overrides", "~target.api_endpoint.model_id=m"});
  REQUIRE(deleted.ok());
  CHECK_FALSE(At(*deleted, "evaluation.overrides").IsDefined());
  CHECK_FALSE(At(*deleted, "target.api_endpoint.model_id").IsDefined());

  auto wrong_value = ComposeText(kMinimal, {"~target.api_endpoint.model_id=other"});
  REQUIRE_FALSE(wrong_value.ok());
  CHECK(ErrorOf(wrong_value) ==
        "cannot delete 'target.api_endpoint.model_id' in override "
        "'~target.api_endpoint.model_id=other': its value is 'm', not 'other'");

  auto delete_missing = ComposeText(kMinimal, {"~target.nope"});
  REQUIRE_FALSE(delete_missing.ok());
  CHECK(absl::StrContains(ErrorOf(delete_missing), "key 'nope' is not in 'target'"));

  auto through_scalar = ComposeText(kMinimal, {"execution.output_dir.x=1"});
  REQUIRE_FALSE(through_scalar.ok());
  CHECK(ErrorOf(through_scalar) ==
        "override 'execution.output_dir.x=1': key path 'execution.output_dir.x' goes through "
        "'execution.output_dir', which is a string, not a mapping");

  auto merge = ComposeText(kMinimal, {"target.api_endpoint={model_id: n, extra: 1}"});
  REQUIRE(merge.ok());
  CHECK(Str(At(*merge, "target.api_endpoint.model_id")) == "n");
  CHECK(Str(At(*merge, "target.api_endpoint.url")) == "http://127.0.0.1:8000/v1/chat/completions");
  CHECK(Str(At(*merge, "target.api_endpoint.extra")) == "1");

  auto bad = ComposeText(kMinimal, {"no_equals_sign"});
  REQUIRE_FALSE(bad.ok());
  CHECK(absl::StrContains(ErrorOf(bad), "invalid override 'no_equals_sign'"));
}

TEST_CASE("Override paths take list indexes in both notations") {
  auto brackets = ComposeText(kMinimal, {"evaluation.tasks[1].name=mbpp"});
  REQUIRE(brackets.ok());
  CHECK(Str(At(*brackets, "evaluation.tasks.1.name")) == "mbpp");
  auto dotted = ComposeText(kMinimal, {"evaluation.tasks.0.name=mmlu_pro"});
  REQUIRE(dotted.ok());
  CHECK(Str(At(*dotted, "evaluation.tasks.0.name")) == "mmlu_pro");
  auto add_field = ComposeText(kMinimal, {"+evaluation.tasks[0].container=img:1"});
  REQUIRE(add_field.ok());
  CHECK(Str(At(*add_field, "evaluation.tasks.0.container")) == "img:1");
  auto removed = ComposeText(kMinimal, {"~evaluation.tasks[0]"});
  REQUIRE(removed.ok());
  CHECK(At(*removed, "evaluation.tasks").size() == 1);

  auto out_of_range = ComposeText(kMinimal, {"evaluation.tasks[5].name=x"});
  REQUIRE_FALSE(out_of_range.ok());
  CHECK(absl::StrContains(ErrorOf(out_of_range),
                          "index 5 is out of range for 'evaluation.tasks' (2 items)"));
  auto by_key = ComposeText(kMinimal, {"evaluation.tasks.name=x"});
  REQUIRE_FALSE(by_key.ok());
  CHECK(absl::StrContains(ErrorOf(by_key), "'evaluation.tasks' is a list"));
}

TEST_CASE("Dotted keys of evaluation.overrides are addressable by overrides") {
  auto set = ComposeText(kMinimal, {"evaluation.overrides.config.params.temperature=0.7"});
  REQUIRE(set.ok());
  CHECK(Str(At(*set, "evaluation.overrides")["config.params.temperature"]) == "0.7");
  auto added = ComposeText(kMinimal, {"++evaluation.overrides.config.params.limit_samples=5",
                                      "+evaluation.tasks[1].overrides.config.params.top_p=0.9"});
  REQUIRE(added.ok());
  CHECK(Str(At(*added, "evaluation.overrides")["config.params.limit_samples"]) == "5");
  CHECK(Str(At(*added, "evaluation.tasks.1.overrides")["config.params.top_p"]) == "0.9");
}

TEST_CASE("Override values are typed") {
  std::vector<std::string> overrides = {"+v.int=42",
                                        "+v.neg=-7",
                                        "+v.float=1e-5",
                                        "+v.bool=TRUE",
                                        "+v.null=null",
                                        "+v.str=hello world",
                                        "+v.quoted='42'",
                                        "+v.dq=\"a,b\"",
                                        "+v.list=[1, a, [true]]",
                                        "+v.dict={a: 1, b: x}",
                                        "+v.time=1:00:00",
                                        "+v.yes=yes",
                                        "+v.empty=",
                                        "+v.interp=${v.int}",
                                        "+v.url=http://h:1/p?q",
                                        "+v.esc=a\\,b"};
  auto r = ComposeText("v: {}\n", overrides);
  REQUIRE(r.ok());
  nlohmann::ordered_json want = nlohmann::ordered_json::parse(R"({"v": {
    "int": 42, "neg": -7, "float": 1e-05, "bool": true, "null": null, "str": "hello world",
    "quoted": "42", "dq": "a,b", "list": [1, "a", [true]], "dict": {"a": 1, "b": "x"},
    "time": "1:00:00", "yes": "yes", "empty": "", "interp": 42, "url": "http://h:1/p?q",
    "esc": "a,b"}})");
  std::vector<std::string> diffs = testing::DiffAgainstJson(*r, want);
  CAPTURE(absl::StrJoin(diffs, "\n"));
  CHECK(diffs.empty());

  auto sweep = ComposeText("v: 1\n", {"v=1,2"});
  REQUIRE_FALSE(sweep.ok());
  CHECK(absl::StrContains(ErrorOf(sweep), "a top-level ',' makes this a sweep"));
  auto open = ComposeText("v: 1\n", {"v=[1, 2"});
  REQUIRE_FALSE(open.ok());
  CHECK(absl::StrContains(ErrorOf(open), "missing ']'"));
}

TEST_CASE("Port auto turns every reference to deployment.port into EVALD_PORT") {
  const char* cfg = R"(defaults:
  - execution: local
  - deployment: vllm
  - _self_
execution:
  output_dir: /o
deployment:
  checkpoint_path: /ckpt
  served_model_name: m
  port: auto
  probe: ${deployment.port}
  relative: ${.port}
  selected: ${oc.select:deployment.port,1}
)";
  auto r = ComposeText(cfg);
  REQUIRE(r.ok());
  CHECK(Str(At(*r, "deployment.port")) == "auto");
  CHECK(Str(At(*r, "deployment.probe")) == "${EVALD_PORT}");
  CHECK(Str(At(*r, "deployment.relative")) == "${EVALD_PORT}");
  CHECK(Str(At(*r, "deployment.selected")) == "${EVALD_PORT}");
  CHECK(absl::StrContains(Str(At(*r, "deployment.command")), "--port ${EVALD_PORT} "));
  // Composing the composed config again changes nothing.
  auto again = ComposeText(ToYaml(*r));
  REQUIRE(again.ok());
  CHECK(ToYaml(*again) == ToYaml(*r));

  auto fixed = ComposeText(cfg, {"deployment.port=8123"});
  REQUIRE(fixed.ok());
  CHECK(Str(At(*fixed, "deployment.probe")) == "8123");
  CHECK(At(*fixed, "deployment.probe").Tag() == "?");
  CHECK(absl::StrContains(Str(At(*fixed, "deployment.command")), "--port 8123 "));
}

TEST_CASE("Relative paths become absolute") {
  TempDir dir;
  std::string primary = dir.Write("sub/cfg.yaml", R"(defaults:
  - execution: local
execution:
  output_dir: results/run
evaluation:
  tasks:
    - name: mine
      task_file: tasks/mine.yaml
      dataset: data/set.jsonl
    - name: remote
      dataset: https://example.com/d.jsonl
      dataset_dir: ../shared
    - name: homed
      task_file: ~/t.yaml
)");
  auto r = ComposeFile(primary);
  REQUIRE(r.ok());
  CHECK(Str(At(*r, "execution.output_dir")) == "/submit/dir/results/run");
  CHECK(Str(At(*r, "evaluation.tasks.0.task_file")) == dir.path() + "/sub/tasks/mine.yaml");
  CHECK(Str(At(*r, "evaluation.tasks.0.dataset")) == dir.path() + "/sub/data/set.jsonl");
  CHECK(Str(At(*r, "evaluation.tasks.1.dataset")) == "https://example.com/d.jsonl");
  CHECK(Str(At(*r, "evaluation.tasks.1.dataset_dir")) == dir.path() + "/shared");
  CHECK(Str(At(*r, "evaluation.tasks.2.task_file")) == "/home/evald-test/t.yaml");

  // Text configs resolve task paths against the working dir.
  auto text = ComposeText("evaluation:\n  tasks:\n    - name: x\n      task_file: t.yaml\n");
  REQUIRE(text.ok());
  CHECK(Str(At(*text, "evaluation.tasks.0.task_file")) == "/submit/dir/t.yaml");

  auto absolute = ComposeText(kMinimal);
  REQUIRE(absolute.ok());
  CHECK(Str(At(*absolute, "execution.output_dir")) == "/out");
}

TEST_CASE("Nested defaults lists and package headers compose like Hydra") {
  TempDir dir;
  dir.Write("execution/base.yaml", "type: local\noutput_dir: /base\nlimits:\n  cpu: 1\n");
  dir.Write("execution/derived.yaml",
            "defaults:\n  - /execution/base@_here_\n  - _self_\noutput_dir: /derived\n");
  dir.Write("extras/globals.yaml", "# @package _global_\nglobal_key: g\n");
  dir.Write("extras/scoped.yaml", "value: s\n");
  std::string primary = dir.Write("cfg.yaml",
                                  "defaults:\n  - execution: derived\n  - extras/globals\n"
                                  "  - extras@placed: scoped\n  - _self_\n");
  auto r = ComposeFile(primary);
  CAPTURE(ErrorOf(r));
  REQUIRE(r.ok());
  CHECK(Str(At(*r, "global_key")) == "g");
  CHECK(Str(At(*r, "placed.value")) == "s");
}

TEST_CASE("Composed configs print as YAML that reads back with the same types") {
  auto r = ComposeText(R"(strings:
  yes_word: "yes"
  number: "42"
  time: 01:00:00
  empty: ""
  tilde: "~"
  missing_text: "???x"
  colon: "a: b"
  hash: "a #b"
  dash: "- x"
  lead: " x"
  multi: |
    line one
    line two
  no_final_newline: "a\nb"
  control: "a\tb\u0001"
  quote: "it's"
numbers:
  octal: 0755
  float: 1e-5
  big: 1.5e300
  inf: .inf
  int: -12
flags: [yes, off, true]
nothing: null
)");
  REQUIRE(r.ok());
  std::string text = ToYaml(*r);
  auto back = ParseYaml(text, "printed");
  REQUIRE(back.ok());
  CHECK(ToYaml(*back) == text);
  auto composed_again = ComposeText(text);
  REQUIRE(composed_again.ok());
  CHECK(ToYaml(*composed_again) == text);
  CHECK(Str(At(*back, "strings.yes_word")) == "yes");
  CHECK(At(*back, "strings.yes_word").Tag() == "!");
  CHECK(Str(At(*back, "numbers.octal")) == "493");
  CHECK(Str(At(*back, "numbers.float")) == "1.0e-05");
  CHECK(absl::StrContains(text, "  float: 1.0e-05\n"));
  CHECK(Str(At(*back, "strings.multi")) == "line one\nline two\n");
  CHECK(Str(At(*back, "strings.no_final_newline")) == "a\nb");
  CHECK(Str(At(*back, "strings.control")) == "a\tb\x01");
  CHECK(absl::StrContains(text, "multi: |\n"));
  CHECK(absl::StrContains(text, "nothing: null\n"));
}

TEST_CASE("Keys longer than YAML's implicit key limit print so they read back") {
  YAML::Node node(YAML::NodeType::Map);
  const std::string long_key(1500, 'k');
  node[long_key] = "v";
  node[std::string(400, '\x1e')] = "control characters grow when escaped";
  std::string text = ToYaml(node);
  auto back = ParseYaml(text, "printed");
  REQUIRE(back.ok());
  CHECK(ToYaml(*back) == text);
  CHECK(Str((*back)[long_key]) == "v");
}

TEST_CASE("Packaged configs copy the reference except for the slurm type") {
  const std::vector<std::string> files = {"default.yaml",
                                          "execution/local.yaml",
                                          "execution/slurm/default.yaml",
                                          "execution/lepton/default.yaml",
                                          "deployment/none.yaml",
                                          "deployment/vllm.yaml",
                                          "deployment/sglang.yaml",
                                          "deployment/nim.yaml"};
  for (const std::string& f : files) {
    CAPTURE(f);
    auto ours = ParseYaml(testing::ReadText(PackagedDir() + "/" + f), f);
    auto theirs = ParseYaml(testing::ReadText(PeerExamplesDir() + "/configs/" + f), f);
    REQUIRE(ours.ok());
    REQUIRE(theirs.ok());
    if (f == "execution/slurm/default.yaml") {
      REQUIRE(Str((*ours)["type"]) == "slurm");
      ours->remove("type");
    }
    CHECK(ToYaml(*ours) == ToYaml(*theirs));
  }
  CHECK(testing::ReadText(PackagedDir() + "/tasks/mapping.toml") ==
        testing::ReadText(PeerExamplesDir() + "/mapping.toml"));
}

TEST_CASE("ParseYaml rejects duplicate keys and unknown tags with positions") {
  auto dup = ParseYaml("a:\n  b: 1\n  b: 2\n", "x.yaml");
  REQUIRE_FALSE(dup.ok());
  CHECK(dup.status().message() == "x.yaml:3:3: duplicate key 'b'");
  auto tag = ParseYaml("a: !custom 1\n", "x.yaml");
  REQUIRE_FALSE(tag.ok());
  CHECK(absl::StartsWith(tag.status().message(), "x.yaml:1:4: unsupported tag '!custom'"));
  auto utf8 = ParseYaml("a: 1\nb: ok \xff\n", "x.yaml");
  REQUIRE_FALSE(utf8.ok());
  CHECK(utf8.status().message() == "x.yaml:2:7: invalid UTF-8 (byte 0xff)");
  CHECK_FALSE(ParseYaml("a: \xc0\xaf\n", "overlong.yaml").ok());
  CHECK(ParseYaml("a: \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\n", "ok.yaml").ok());
  auto override_utf8 = ComposeText("a: 1\n", {"a=\xfe"});
  REQUIRE_FALSE(override_utf8.ok());
  CHECK(override_utf8.status().message() == "invalid override: it is not valid UTF-8");
  // A raw NUL once made yaml-cpp guess UTF-16 and hand back bytes that printed as invalid YAML.
  auto nul = ParseYaml(std::string("a: 1\n: \0_\n", 10), "x.yaml");
  REQUIRE_FALSE(nul.ok());
  CHECK(nul.status().message() ==
        "x.yaml:2:3: control character not allowed in YAML (write it as an escape in a "
        "double-quoted string) (byte 0x00)");
  CHECK_FALSE(ParseYaml("a: x\x1by\n", "x.yaml").ok());
  CHECK(ParseYaml("a: \x7f\n", "x.yaml").ok());
  auto escaped = ParseYaml("a: \"x\\0y\\x1b\"\r\nb:\tz\n", "x.yaml");
  REQUIRE(escaped.ok());
  CHECK((*escaped)["a"].as<std::string>() == std::string("x\0y\x1b", 4));
  auto reread = ParseYaml(ToYaml(*escaped), "printed");
  REQUIRE(reread.ok());
  CHECK(ToYaml(*reread) == ToYaml(*escaped));
  auto bad_int = ParseYaml("a: !!int abc\n", "x.yaml");
  REQUIRE_FALSE(bad_int.ok());
  CHECK(bad_int.status().message() == "x.yaml:1:4: 'abc' is not a valid int");
  auto laughs = ParseYaml(
      "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
      "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, "
      "*c]\n"
      "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, "
      "*e]\n",
      "laughs.yaml");
  REQUIRE_FALSE(laughs.ok());
  CHECK(absl::StrContains(laughs.status().message(),
                          "too many nodes after alias expansion (limit 20000)"));
}

}  // namespace
}  // namespace evald::config

namespace evald::config {
namespace {

// Not run by ctest (hidden tag); `evald_config_tests "[bench]"` prints the time per compose of the
// largest example, which evalctl pays on every submit.
TEST_CASE("Composing the largest example takes milliseconds", "[.][bench]") {
  const std::string path = PeerExamplesDir() + "/lepton_vllm_llama_3_1_8b_instruct.yaml";
  constexpr int kRounds = 200;
  auto start = std::chrono::steady_clock::now();
  for (int k = 0; k < kRounds; ++k) {
    auto r = ComposeFile(path, {}, /*allow_missing=*/true);
    REQUIRE(r.ok());
  }
  auto elapsed = std::chrono::steady_clock::now() - start;
  double ms = std::chrono::duration<double, std::milli>(elapsed).count() / kRounds;
  WARN("compose " << path << ": " << ms << " ms per compose (" << kRounds << " rounds)");
}

}  // namespace
}  // namespace evald::config
