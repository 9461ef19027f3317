// End to end through real processes: evalctl -> gRPC -> evald -> bash run.sh -> evalrun -> the
// reference model. Submit, watch, results, kill, resume.
#include <signal.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"
#include "tests/integration/fixture.h"

namespace evald::testing {

namespace {

using Json = nlohmann::json;

TEST_CASE("submit runs every task to success and records its results") {
  TempDir dir;
  RefEndpoint model(dir, ArithModelFlags());
  Evald evald(dir);
  std::string cfg = WriteConfig(dir, "run.yaml", ArithConfig(dir, model, {.tasks = 2}));

  CommandResult r = evald.Ctl({"submit", cfg, "--json"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  std::string inv = InvocationIdFromJson(r.out);
  REQUIRE(inv.size() == 8);
  CommandResult w = evald.Ctl({"watch", inv});
  INFO(w.out << w.err);
  REQUIRE(w.exit_code == 0);

  CommandResult ls = evald.Ctl({"ls", "runs"});
  REQUIRE(ls.exit_code == 0);
  CHECK(absl::StrContains(ls.out, inv));

  CommandResult status = evald.Ctl({"status", inv, "--json"});
  INFO(status.out << status.err);
  REQUIRE(status.exit_code == 0);
  Json s = Json::parse(status.out);
  CHECK(s["invocation_id"] == inv);
  CHECK(s["state"] == "succeeded");
  REQUIRE(s["jobs"].size() == 2);
  for (const Json& job : s["jobs"]) {
    CHECK(job["state"] == "succeeded");
    CHECK(job["task"] == "arith");
    CHECK(job["progress"]["done"] == 10);
    std::string out_dir = job["output_dir"];
    CHECK(std::filesystem::exists(out_dir + "/artifacts/results.yml"));
    CHECK(std::filesystem::exists(out_dir + "/run.sh"));
    CHECK(std::filesystem::exists(out_dir + "/plan.yaml"));
    CHECK(Slurp(out_dir + "/logs/stage.exit").find(" 0") != std::string::npos);
  }
  // Two tasks of the same name get distinct job directories.
  CHECK(s["jobs"][0]["output_dir"] != s["jobs"][1]["output_dir"]);

  CommandResult results = evald.Ctl({"results", inv, "--json"});
  INFO(results.out << results.err);
  REQUIRE(results.exit_code == 0);
  Json rows = Json::parse(results.out);
  REQUIRE(rows.size() >= 2);
  bool perfect = false;
  for (const Json& row : rows) perfect |= (row["value"].get<double>() == 1.0);
  CHECK(perfect);  // the model knows every answer
}

TEST_CASE("a failing job fails the invocation and watch says so with exit code 1") {
  TempDir dir;
  RefEndpoint model(dir, ArithModelFlags());
  Evald evald(dir);
  // A task file that is valid YAML but names a dataset that does not exist: evalrun exits 2 (bad
  // input). (A task file that does not parse is refused already at submit.)
  Spit(dir.path() + "/broken_task.yaml",
       "dataset: no-such-data.jsonl\nprompt: \"{{question}}\"\nanswer_field: answer\n"
       "extractor:\n  regex: \"(\\\\d+)\"\nmetric: exact_match\n");
  std::string cfg = WriteConfig(
      dir, "run.yaml",
      absl::StrCat(
          "defaults:\n  - execution: local\n  - deployment: none\n  - _self_\n"
          "execution:\n  output_dir: ",
          dir.path(), "/out\n", "target:\n  api_endpoint:\n    url: ", model.chat_url(),
          "\n    model_id: m\n    api_key_name: null\n",
          "evaluation:\n  tasks:\n    - name: broken\n      task_file: broken_task.yaml\n"));
  CommandResult r = evald.Ctl({"submit", cfg, "--json"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  std::string inv = InvocationIdFromJson(r.out);
  REQUIRE(!inv.empty());
  CommandResult w = evald.Ctl({"watch", inv});
  INFO(w.out << w.err);
  CHECK(w.exit_code == 1);
  v1::Invocation got = evald.Get(inv);
  CHECK(got.state() == v1::JOB_STATE_FAILED);
  CHECK(got.jobs(0).exit_code() == 2);
  CHECK(got.jobs(0).exit_reason() == v1::EXIT_REASON_EXIT_CODE);
}

TEST_CASE("kill stops a running job and leaves no process behind, resume finishes it") {
  TempDir dir;
  RefEndpoint model(dir, ArithModelFlags({"--latency-ms", "300"}));
  Evald evald(dir);
  std::string cfg = WriteConfig(dir, "run.yaml",
                                ArithConfig(dir, model, {.limit_samples = 20, .parallelism = 1}));
  CommandResult r = evald.Ctl({"submit", cfg, "--json"});
  REQUIRE(r.exit_code == 0);
  std::string inv = InvocationIdFromJson(r.out);

  // Wait until evalrun is really working (some samples done).
  std::optional<v1::Invocation> working = evald.WaitWorking(inv);
  REQUIRE(working.has_value());
  const v1::Invocation& running = *working;
  int pid = 0;
  REQUIRE(absl::SimpleAtoi(absl::StripPrefix(running.jobs(0).backend_id(), "pid "), &pid));
  REQUIRE(PidAlive(pid));

  CommandResult k = evald.Ctl({"kill", inv});
  INFO(k.out << k.err);
  REQUIRE(k.exit_code == 0);
  v1::Invocation killed = evald.WaitTerminal(inv, 30);
  CHECK(killed.state() == v1::JOB_STATE_KILLED);
  CHECK(killed.jobs(0).exit_reason() == v1::EXIT_REASON_KILLED_BY_USER);
  CHECK(WaitFor([&] { return !PidAlive(pid); }, 10));
  // Nothing of the job's process group is left.
  CHECK(Run({"pgrep", "-g", std::to_string(pid)}).exit_code == 1);

  // Killing it again is refused: it already finished.
  CommandResult again = evald.Ctl({"kill", inv});
  CHECK(again.exit_code == 5);

  CommandResult res = evald.Ctl({"resume", inv});
  INFO(res.out << res.err);
  REQUIRE(res.exit_code == 0);
  v1::Invocation done = evald.WaitTerminal(inv, 60);
  CHECK(done.state() == v1::JOB_STATE_SUCCEEDED);
  CHECK(done.jobs(0).attempt() == 2);
  CHECK(done.jobs(0).progress().done() == 20);
}

TEST_CASE("sequential mode runs one job at a time in order") {
  TempDir dir;
  RefEndpoint model(dir, ArithModelFlags({"--latency-ms", "20"}));
  Evald evald(dir);
  std::string cfg =
      WriteConfig(dir, "run.yaml", ArithConfig(dir, model, {.tasks = 3, .mode = "sequential"}));
  CommandResult r = evald.Ctl({"submit", cfg, "--json"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  std::string inv = InvocationIdFromJson(r.out);
  REQUIRE(evald.Ctl({"watch", inv}).exit_code == 0);
  v1::Invocation got = evald.Get(inv);
  REQUIRE(got.jobs_size() == 3);
  for (int i = 1; i < 3; ++i) {
    // Each job started after the previous one ended.
    CHECK(got.jobs(i).started_ms() >= got.jobs(i - 1).ended_ms());
  }
}

TEST_CASE("dry run renders everything and stores nothing") {
  TempDir dir;
  RefEndpoint model(dir, ArithModelFlags());
  Evald evald(dir);
  std::string cfg = WriteConfig(dir, "run.yaml", ArithConfig(dir, model));
  CommandResult r = evald.Ctl({"submit", cfg, "--dry-run", "--json"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  Json j = Json::parse(r.out);
  CHECK(absl::StrContains(j["config"].get<std::string>(), "arith_task.yaml"));
  REQUIRE(j["jobs"].size() == 1);
  CHECK(absl::StrContains(j["jobs"][0]["script"].get<std::string>(), "evalrun"));
  CHECK(absl::StrContains(j["jobs"][0]["script"].get<std::string>(), "stage.exit"));
  CHECK_FALSE(std::filesystem::exists(dir.path() + "/out"));
  v1::ListInvocationsResponse list;
  grpc::ClientContext ctx;
  REQUIRE(evald.Stub()->ListInvocations(&ctx, v1::ListInvocationsRequest(), &list).ok());
  CHECK(list.invocations_size() == 0);
}

TEST_CASE("top_p 1e-5 reaches plan.yaml, the stored config and run_config.yml as 1.0e-05") {
  // A YAML 1.1 reader (the reference's PyYAML) reads 1e-05 as a string; 1.0e-05 is a float.
  TempDir dir;
  RefEndpoint model(dir, ArithModelFlags());
  Evald evald(dir);
  std::string text = ArithConfig(dir, model, {.limit_samples = 2});
  const std::string anchor = "    config.params.parallelism: 4\n";
  REQUIRE(absl::StrContains(text, anchor));
  text.replace(text.find(anchor), anchor.size(), anchor + "    config.params.top_p: 1e-5\n");
  std::string cfg = WriteConfig(dir, "run.yaml", text);
  CommandResult r = evald.Ctl({"submit", cfg, "--json"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  std::string inv = InvocationIdFromJson(r.out);
  CommandResult w = evald.Ctl({"watch", inv});
  INFO(w.out << w.err);
  REQUIRE(w.exit_code == 0);  // evalrun read the plan's top_p as a number in [0, 1]
  CommandResult info = evald.Ctl({"info", inv, "--json"});
  REQUIRE(info.exit_code == 0);
  Json j = Json::parse(info.out);
  CHECK(absl::StrContains(j["config"].get<std::string>(), "config.params.top_p: 1.0e-05\n"));
  CommandResult status = evald.Ctl({"status", inv, "--json"});
  REQUIRE(status.exit_code == 0);
  std::string out_dir = Json::parse(status.out)["jobs"][0]["output_dir"];
  std::string plan = Slurp(out_dir + "/plan.yaml");
  INFO(plan);
  CHECK(absl::StrContains(plan, "top_p: 1.0e-05\n"));
  CHECK(absl::StrContains(Slurp(out_dir + "/artifacts/run_config.yml"), "top_p: 1.0e-05\n"));
  if (Run({"python3", "-c", "import yaml"}).exit_code == 0) {
    CommandResult py = Run({"python3", "-c",
                            "import sys, yaml; p = yaml.safe_load(open(sys.argv[1]));"
                            "print(type(p['config']['params']['top_p']).__name__)",
                            out_dir + "/plan.yaml"});
    CHECK(py.out == "float\n");
  }
}

TEST_CASE("an escaped interpolation reaches the stored config as a literal") {
  TempDir dir;
  RefEndpoint model(dir, ArithModelFlags());
  Evald evald(dir);
  std::string cfg = WriteConfig(
      dir, "run.yaml",
      ArithConfig(dir, model,
                  {.extra_yaml = "notes: 'job \\${SLURM_JOB_ID} on ${oc.env:HOME}'\n"}));
  CommandResult r = evald.Ctl({"submit", cfg, "--json"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  std::string inv = InvocationIdFromJson(r.out);
  CommandResult info = evald.Ctl({"info", inv});
  INFO(info.out << info.err);
  REQUIRE(info.exit_code == 0);
  CHECK(absl::StrContains(info.out, "job ${SLURM_JOB_ID} on /"));
  REQUIRE(evald.Ctl({"watch", inv}).exit_code == 0);
}

TEST_CASE("results --fail-under gates a real run: equal passes, above fails with exit 7") {
  TempDir dir;
  RefEndpoint model(dir, ArithModelFlags({"--accuracy", "0.5", "--seed", "7"}));
  Evald evald(dir);
  std::string cfg = WriteConfig(dir, "run.yaml", ArithConfig(dir, model, {.limit_samples = 20}));
  CommandResult r = evald.Ctl({"submit", cfg, "--json", "--wait"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  std::string inv = InvocationIdFromJson(r.out);
  REQUIRE(inv.size() == 8);

  CommandResult plain = evald.Ctl({"results", inv, "--json"});
  INFO(plain.out << plain.err);
  REQUIRE(plain.exit_code == 0);
  Json rows = Json::parse(plain.out);
  REQUIRE(rows.size() == 1);
  REQUIRE(rows[0]["task"] == "arith");
  REQUIRE(rows[0]["metric"] == "accuracy");
  double value = rows[0]["value"];
  REQUIRE(value > 0.0);  // the model gets some answers wrong, not all
  REQUIRE(value < 1.0);
  // The shortest text that reads back as the same double: the gate at exactly the value passes.
  std::string exact = Json(value).dump();

  CommandResult pass = evald.Ctl({"results", inv, "--fail-under", "arith.accuracy=" + exact,
                                  "--fail-under", "*.accuracy=0.01"});
  INFO(pass.out << pass.err);
  CHECK(pass.exit_code == 0);
  CHECK(absl::StrContains(pass.out, "PASS arith.accuracy "));
  CHECK(absl::StrContains(pass.out, " >= " + exact + "\n"));
  CHECK_FALSE(absl::StrContains(pass.out, "FAIL"));

  CommandResult fail = evald.Ctl({"results", inv, "--json", "--fail-under", "arith.accuracy=0.01",
                                  "--fail-under", "arith.accuracy=0.999"});
  INFO(fail.out << fail.err);
  CHECK(fail.exit_code == 7);
  Json j = Json::parse(fail.out);
  CHECK(j["passed"] == false);
  REQUIRE(j["gates"].size() == 2);
  CHECK(j["gates"][0]["passed"] == true);
  CHECK(j["gates"][1]["passed"] == false);
  CHECK(j["gates"][1]["value"] == value);

  CommandResult typo = evald.Ctl({"results", inv, "--fail-under", "arith.acuracy=0.5"});
  INFO(typo.out << typo.err);
  CHECK(typo.exit_code == 2);
  CHECK(absl::StrContains(typo.err, "available: arith.accuracy"));
}

}  // namespace
}  // namespace evald::testing
