// `evalctl compare` end to end: real evald, evalrun and reference models. Two runs of the same
// model on the same 40 arith samples differ in nothing; a model that answers about half of them
// wrong (ref_endpoint --accuracy 0.5) is significantly worse (McNemar, paired on samples), and
// `--fail-on-regression` exits 1 on it, 0 the other way round.
#include <catch2/catch.hpp>
#include <filesystem>

#include "absl/strings/match.h"
#include "nlohmann/json.hpp"
#include "tests/integration/fixture.h"

namespace evald::testing {
namespace {

// Submits the 40-sample arith run against `model`, waits for it, returns the invocation id.
std::string RunArith(Evald& evald, const TempDir& dir, const RefEndpoint& model,
                     const std::string& name) {
  ArithOptions o;
  o.limit_samples = 40;
  CommandResult r = evald.Ctl(
      {"submit", WriteConfig(dir, name + ".yaml", ArithConfig(dir, model, o)), "--wait", "--json"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  std::string id = InvocationIdFromJson(r.out);
  REQUIRE(id.size() == 8);
  return id;
}

nlohmann::json CompareJson(Evald& evald, const std::string& a, const std::string& b) {
  CommandResult r = evald.Ctl({"compare", a, b, "--json"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  nlohmann::json j = nlohmann::json::parse(r.out);
  REQUIRE(j["metrics"].size() == 1);
  return j["metrics"][0];
}

TEST_CASE("compare: the same model twice is no difference, a worse model is a regression") {
  TempDir dir;
  RefEndpoint good(dir, ArithModelFlags());
  RefEndpoint worse(dir, ArithModelFlags({"--accuracy", "0.5", "--seed", "7"}));
  Evald evald(dir);
  const std::string a = RunArith(evald, dir, good, "a");
  const std::string a2 = RunArith(evald, dir, good, "a2");
  const std::string b = RunArith(evald, dir, worse, "b");

  nlohmann::json same = CompareJson(evald, a, a2);
  CHECK(same["task"] == "arith");
  CHECK(same["metric"] == "accuracy");
  CHECK(same["score"] == "exact_match");
  CHECK(same["a"] == 1.0);
  CHECK(same["b"] == 1.0);
  CHECK(same["diff"] == 0.0);
  CHECK(same["method"] == "mcnemar_exact");
  CHECK(same["paired_samples"] == 40);
  CHECK(same["p_value"] == 1.0);
  CHECK(same["significant"] == false);
  CommandResult gate_same = evald.Ctl({"compare", a, a2, "--fail-on-regression"});
  INFO(gate_same.out << gate_same.err);
  CHECK(gate_same.exit_code == 0);
  CHECK(absl::StrContains(gate_same.out, "mcnemar_exact (n=40)"));

  nlohmann::json regressed = CompareJson(evald, a, b);
  const double vb = regressed["b"].get<double>();
  INFO(regressed.dump());
  CHECK(vb < 0.8);  // about half wrong; the draw is per prompt, fixed by the seed
  CHECK(regressed["diff"].get<double>() == Approx(vb - 1.0));
  CHECK(regressed["method"] == "mcnemar_exact");
  CHECK(regressed["paired_samples"] == 40);
  CHECK(regressed["p_value"].get<double>() < 0.001);
  CHECK(regressed["significant"] == true);
  CHECK(regressed["regression"] == true);

  // Human output: one row, and the gate for CI.
  CommandResult table = evald.Ctl({"compare", a, b});
  INFO(table.out << table.err);
  CHECK(table.exit_code == 0);
  CHECK(absl::StrContains(table.out, "yes (worse)"));
  CommandResult gate = evald.Ctl({"compare", a, b, "--fail-on-regression"});
  INFO(gate.out << gate.err);
  CHECK(gate.exit_code == 1);
  CHECK(
      absl::StrContains(gate.err, "significantly worse in " + b + ": arith.accuracy.exact_match"));
  // b -> a is an improvement: significant, but no regression.
  CommandResult better = evald.Ctl({"compare", b, a, "--fail-on-regression"});
  INFO(better.out << better.err);
  CHECK(better.exit_code == 0);
  CHECK(absl::StrContains(better.out, "yes (better)"));

  // Job ids work as well as invocation ids; an unknown id is NOT_FOUND (exit 4).
  CHECK(CompareJson(evald, a + ".0", b)["significant"] == true);
  CHECK(evald.Ctl({"compare", a, "0000beef"}).exit_code == 4);

  // Without b's samples.jsonl the runs cannot be paired: a two-sample z on the stderrs, still
  // significant (a has stderr 0, b about 0.08), and the note says why.
  int removed = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir.path() + "/out")) {
    const std::string path = e.path().string();
    if (e.path().filename() == "samples.jsonl" && absl::StrContains(path, b)) {
      std::filesystem::remove(e.path());
      ++removed;
      break;  // the iterator must not go on over a removed entry
    }
  }
  REQUIRE(removed == 1);
  nlohmann::json unpaired = CompareJson(evald, a, b);
  INFO(unpaired.dump());
  CHECK(unpaired["method"] == "z_stderr");
  CHECK(unpaired["paired_samples"] == 0);
  CHECK(unpaired["significant"] == true);
  CHECK(absl::StrContains(unpaired["note"].get<std::string>(), "samples.jsonl"));
}

}  // namespace
}  // namespace evald::testing
