// The task catalog: the packaged mapping.toml + native.toml, lookups with the reference's errors
// and suggestions, and every malformed catalog file.
#include "core/config/task_catalog.h"

#include <catch2/catch.hpp>
#include <set>
#include <string>

#include "absl/strings/match.h"
#include "tests/core/config/test_util.h"

namespace evald::config {
namespace {

using testing::PackagedDir;
using testing::TempDir;

const TaskCatalog& Packaged() {
  static const TaskCatalog* catalog = [] {
    auto c = TaskCatalog::LoadDir(PackagedDir() + "/tasks");
    REQUIRE(c.ok());
    return new TaskCatalog(std::move(*c));
  }();
  return *catalog;
}

std::string FindError(const TaskCatalog& c, const std::string& q) {
  auto r = c.Find(q);
  return r.ok() ? std::string("<found>") : std::string(r.status().message());
}

TEST_CASE("The packaged catalog holds the reference mapping and the native tasks") {
  const TaskCatalog& c = Packaged();
  REQUIRE(c.tasks().size() == 157 + 5);
  CHECK(c.tasks().front().qualified_name() == "lm-evaluation-harness.ifeval");
  CHECK(c.tasks()[1].qualified_name() == "lm-evaluation-harness.mmlu_prox");
  CHECK(c.tasks()[156].harness == "tooltalk");
  std::set<std::string> native;
  for (size_t k = 157; k < c.tasks().size(); ++k) {
    const TaskDef& t = c.tasks()[k];
    CHECK(t.native());
    CHECK(t.container.empty());
    CHECK(t.endpoint_type == "chat");
    CHECK_FALSE(t.description.empty());
    native.insert(t.name);
  }
  CHECK(native == std::set<std::string>{"native_gsm8k", "native_mmlu", "native_mmlu_pro",
                                        "native_gpqa_diamond", "native_ifeval"});

  // Native names never collide with the reference catalog (a collision makes configs ambiguous).
  auto reference = TaskCatalog::FromToml(testing::ReadText(PackagedDir() + "/tasks/mapping.toml"),
                                         "mapping.toml");
  REQUIRE(reference.ok());
  for (const std::string& name : native) {
    CHECK(absl::StrContains(FindError(*reference, name), "does not exist"));
    CHECK(c.Find(name).ok());
  }
}

TEST_CASE("Lookup by task or harness.task returns the task definition") {
  const TaskCatalog& c = Packaged();
  auto ifeval = c.Find("ifeval");
  REQUIRE(ifeval.ok());
  CHECK((*ifeval)->harness == "lm-evaluation-harness");
  CHECK((*ifeval)->endpoint_type == "chat");
  CHECK((*ifeval)->container == "nvcr.io/nvidia/eval-factory/lm-evaluation-harness:25.08.1");

  auto gpqa = c.Find("gpqa_diamond");
  REQUIRE(gpqa.ok());
  CHECK((*gpqa)->harness == "simple_evals");
  CHECK((*gpqa)->required_env_vars == std::vector<std::string>{"HF_TOKEN"});

  auto hle = c.Find("hle.hle");
  REQUIRE(hle.ok());
  CHECK((*hle)->required_env_vars ==
        std::vector<std::string>{"HF_TOKEN", "OPENAI_CLIENT_ID", "OPENAI_CLIENT_SECRET"});

  auto qualified = c.Find("simple_evals.mmlu");
  REQUIRE(qualified.ok());
  CHECK((*qualified)->endpoint_type == "chat");
  auto chartqa = c.Find("chartqa");
  REQUIRE(chartqa.ok());
  CHECK((*chartqa)->endpoint_type == "vlm");
}

TEST_CASE("Lookup errors follow the reference with suggestions") {
  const TaskCatalog& c = Packaged();
  CHECK(FindError(c, "mmlu") ==
        "there are multiple tasks named 'mmlu' in the catalog, please select one of "
        "['lm-evaluation-harness.mmlu', 'simple_evals.mmlu']");
  CHECK(FindError(c, "humaneval") ==
        "there are multiple tasks named 'humaneval' in the catalog, please select one of "
        "['bigcode-evaluation-harness.humaneval', 'simple_evals.humaneval']");
  CHECK(FindError(c, "gsm8kk") ==
        "task 'gsm8kk' does not exist in the catalog; did you mean 'gsm8k'?");
  CHECK(FindError(c, "foo.bar") == "harness.task 'foo.bar' does not exist in the catalog");
  CHECK(absl::StartsWith(FindError(c, "simple_evals.gpqa_diamon"),
                         "harness.task 'simple_evals.gpqa_diamon' does not exist in the catalog; "
                         "did you mean"));
  CHECK(absl::StrContains(FindError(c, "simple_evals.gpqa_diamon"), "'simple_evals.gpqa_diamond'"));
  CHECK(FindError(c, "a.b.c") ==
        "invalid task 'a.b.c': it must contain zero or one '.' (task or harness.task)");
  CHECK(FindError(c, "") == "the task name is empty");
  CHECK(FindError(c, "zzzzzzzzzz") == "task 'zzzzzzzzzz' does not exist in the catalog");
}

TEST_CASE("Catalog files are checked like the reference checks its mapping") {
  auto malformed = TaskCatalog::FromToml("[h]\ncontainer = \"x\"\n[h.tasks.chat.t\n", "bad.toml");
  REQUIRE_FALSE(malformed.ok());
  CHECK(absl::StartsWith(malformed.status().message(), "bad.toml:3:"));

  auto twice = TaskCatalog::FromToml(
      "[h]\ncontainer = \"x\"\n[h.tasks.chat.t]\n[h.tasks.completions.t]\n", "dup.toml");
  REQUIRE_FALSE(twice.ok());
  CHECK(twice.status().message() == "task 'h.t' is defined twice: at dup.toml:3 and at dup.toml:4");

  auto reserved = TaskCatalog::FromToml("[h.tasks.chat.t]\ncontainer = \"y\"\n", "res.toml");
  REQUIRE_FALSE(reserved.ok());
  CHECK(reserved.status().message() ==
        "res.toml:2: 'container' is not allowed as key under [h.tasks.chat.t]");

  auto bad_vars = TaskCatalog::FromToml("[h.tasks.chat.t]\nrequired_env_vars = \"HF\"\n", "v.toml");
  REQUIRE_FALSE(bad_vars.ok());
  CHECK(bad_vars.status().message() ==
        "v.toml:2: h.tasks.chat.t.required_env_vars must be an array of strings");

  auto not_table = TaskCatalog::FromToml("h = 1\n", "n.toml");
  REQUIRE_FALSE(not_table.ok());
  CHECK(not_table.status().message() ==
        "n.toml:1: top-level key 'h' must be a harness table ([h])");

  auto extras = TaskCatalog::FromToml(
      "[h]\ncontainer = \"img\"\n[h.tasks.completions.t]\nsize = 5\ntags = [\"a\"]\n"
      "note = \"n\"\n",
      "e.toml");
  REQUIRE(extras.ok());
  const TaskDef& t = extras->tasks()[0];
  CHECK(t.extra.at("size") == "5");
  CHECK(t.extra.at("note") == "n");
  CHECK(t.extra.at("tags") == "[ 'a' ]");
  CHECK(t.container == "img");
  CHECK(t.endpoint_type == "completions");
}

TEST_CASE("LoadDir reads every toml file and rejects duplicates across files") {
  TempDir dir;
  dir.Write("a.toml", "[h]\ncontainer = \"x\"\n[h.tasks.chat.one]\n");
  dir.Write("b.toml", "[h2]\n[h2.tasks.chat.two]\n");
  dir.Write("ignored.txt", "not toml");
  auto ok = TaskCatalog::LoadDir(dir.path());
  REQUIRE(ok.ok());
  REQUIRE(ok->tasks().size() == 2);
  CHECK(ok->tasks()[0].name == "one");
  CHECK(ok->tasks()[1].qualified_name() == "h2.two");

  dir.Write("c.toml", "[h.tasks.completions.one]\n");
  auto dup = TaskCatalog::LoadDir(dir.path());
  REQUIRE_FALSE(dup.ok());
  CHECK(dup.status().message() == "task 'h.one' is defined twice: at " + dir.path() +
                                      "/a.toml:3 and at " + dir.path() + "/c.toml:1");

  auto missing = TaskCatalog::LoadDir(dir.path() + "/nope");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().code() == absl::StatusCode::kNotFound);
  TempDir empty;
  auto none = TaskCatalog::LoadDir(empty.path());
  REQUIRE_FALSE(none.ok());
  CHECK(absl::StrContains(none.status().message(), "has no *.toml files"));
}

}  // namespace
}  // namespace evald::config
