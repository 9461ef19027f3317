// Export of results through real processes (issue 13): evalctl export -> gRPC -> evald's Export
// RPC -> the local exporter (files on disk) or the MLflow, W&B or Google Sheets exporter ->
// mlflow_fake, wandb_fake or gsheets_fake, separate processes whose request logs and state the
// tests read through their /_fake/ control routes.
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "tests/integration/fixture.h"

namespace evald::testing {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

constexpr char kMlflowToken[] = "mlflow-token-8086-secret";

// mlflow_fake on a free port, requiring kMlflowToken.
class MlflowFake {
 public:
  explicit MlflowFake(const TempDir& dir) {
    std::string port_file = dir.path() + "/mlflow.port";
    process_ = std::make_unique<Process>(
        std::vector<std::string>{BinDir() + "/mlflow_fake", "--port", "0", "--port-file", port_file,
                                 "--token", kMlflowToken},
        std::map<std::string, std::string>{}, dir.path() + "/mlflow_fake");
    for (int i = 0; i < 200 && port_ == 0; ++i) {
      std::ifstream in(port_file);
      std::string text;
      if (std::getline(in, text)) (void)absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &port_);
      if (port_ == 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    REQUIRE(port_ > 0);
  }
  std::string url() const { return absl::StrCat("http://127.0.0.1:", port_); }

  Json Requests() {
    httplib::Client c("127.0.0.1", port_);
    httplib::Result r = c.Get("/_fake/requests");
    REQUIRE(r);
    REQUIRE(r->status == 200);
    return Json::parse(r->body);
  }
  void AddFault(const Json& fault) {
    httplib::Client c("127.0.0.1", port_);
    httplib::Result r = c.Post("/_fake/faults", fault.dump(), "application/json");
    REQUIRE(r);
    REQUIRE(r->status == 200);
  }
  void ClearFaults() {
    httplib::Client c("127.0.0.1", port_);
    httplib::Result r = c.Delete("/_fake/faults");
    REQUIRE(r);
    REQUIRE(r->status == 200);
  }
  // The requests whose path ends with `suffix`.
  std::vector<Json> Matching(const std::string& method, const std::string& suffix) {
    std::vector<Json> out;
    for (const Json& r : Requests()) {
      if (r["method"] == method && absl::EndsWith(r["path"].get<std::string>(), suffix)) {
        out.push_back(r);
      }
    }
    return out;
  }

 private:
  std::unique_ptr<Process> process_;
  int port_ = 0;
};

// Submits `tasks` arith tasks (with `overrides`) and waits until they all succeeded.
std::string RunToSuccess(const Evald& evald, const TempDir& dir, const RefEndpoint& model,
                         int tasks, std::vector<std::string> overrides = {}) {
  std::string cfg = WriteConfig(dir, "run.yaml", ArithConfig(dir, model, {.tasks = tasks}));
  std::vector<std::string> args = {"submit", cfg, "--json"};
  for (const std::string& o : overrides) {
    args.push_back("-o");
    args.push_back(o);
  }
  CommandResult r = evald.Ctl(args);
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  std::string inv = InvocationIdFromJson(r.out);
  REQUIRE(inv.size() == 8);
  v1::Invocation done = evald.WaitTerminal(inv);
  REQUIRE(done.state() == v1::JOB_STATE_SUCCEEDED);
  return inv;
}

TEST_CASE("export --dest local copies a finished invocation's artifacts and writes its summary") {
  TempDir dir;
  RefEndpoint model(dir, ArithModelFlags());
  Evald evald(dir);
  std::string inv = RunToSuccess(evald, dir, model, 2);

  // A relative --output-dir is evalctl's working directory's.
  fs::create_directories(dir.path() + "/cwd");
  CommandResult r =
      evald.Ctl({"export", inv, "--dest", "local", "--output-dir", "exported", "--format", "json"},
                {}, 120, dir.path() + "/cwd");
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(absl::StrContains(r.out, "Export completed for " + inv));
  const std::string out = dir.path() + "/cwd/exported";
  for (const std::string& job : {inv + ".0", inv + ".1"}) {
    CHECK(absl::StrContains(r.out,
                            "  " + job + ": Exported 2 files. Missing optional: omni-info.json"));
    CHECK(fs::exists(out + "/" + inv + "/" + job + "/artifacts/results.yml"));
    CHECK(fs::exists(out + "/" + inv + "/" + job + "/artifacts/eval_factory_metrics.json"));
    Json meta = Json::parse(Slurp(out + "/" + inv + "/" + job + "/job_metadata.json"));
    CHECK(meta["invocation_id"] == inv);
    CHECK(meta["job_id"] == job);
    CHECK(meta["executor"] == "local");
    CHECK_FALSE(fs::exists(out + "/" + inv + "/" + job + "/logs"));  // no --copy-logs
  }
  Json summary = Json::parse(Slurp(out + "/" + inv + "/processed_results.json"));
  INFO(summary.dump(2));
  const Json& entries = summary["benchmarks"]["arith"]["models"]["ref-model"];
  REQUIRE(entries.size() == 2);
  for (const Json& e : entries) {
    CHECK(e["invocation_id"] == inv);
    CHECK(e["executor"] == "local");
    CHECK(e["scores"]["arith_accuracy_exact_match"] == 1.0);
  }

  // The same export again as CSV and JSON output: the summary's rows are replaced, not added.
  CommandResult csv = evald.Ctl({"export", inv + ".1", "--output-dir", out, "--format", "csv",
                                 "--log-metrics", "accuracy", "--copy-logs", "--json"});
  INFO(csv.out << csv.err);
  REQUIRE(csv.exit_code == 0);
  Json j = Json::parse(csv.out);
  CHECK(j["success"] == true);
  REQUIRE(j["invocations"].size() == 1);
  REQUIRE(j["invocations"][0]["jobs"].size() == 1);
  CHECK(j["invocations"][0]["jobs"][0]["job_id"] == inv + ".1");
  CHECK(j["invocations"][0]["summary_path"] == out + "/" + inv + "/processed_results.csv");
  CHECK(fs::exists(out + "/" + inv + "/" + inv + ".1/logs/stdout.log"));
  std::string text = Slurp(out + "/" + inv + "/processed_results.csv");
  CHECK(absl::StartsWith(text,
                         "Model Name,Harness,Task Name,Executor,Container,Invocation ID,Job ID,"
                         "accuracy_exact_match\r\n"));
  CHECK(absl::StrContains(text, "ref-model,"));
  CHECK(absl::StrContains(text, "," + inv + "," + inv + ".1,1.0\r\n"));

  // --no-copy-artifacts: the summary and metadata, no artifacts.
  const std::string bare = dir.path() + "/bare";
  CommandResult no_art = evald.Ctl({"export", inv, "--output-dir", bare, "--format", "json",
                                    "--no-copy-artifacts"});
  INFO(no_art.out << no_art.err);
  REQUIRE(no_art.exit_code == 0);
  CHECK(fs::exists(bare + "/" + inv + "/processed_results.json"));
  CHECK(fs::exists(bare + "/" + inv + "/" + inv + ".0/job_metadata.json"));
  CHECK_FALSE(fs::exists(bare + "/" + inv + "/" + inv + ".0/artifacts"));

  // Refusals map to the usual exit codes.
  CHECK(evald.Ctl({"export", "abcdef12"}).exit_code == 4);
  CHECK(evald.Ctl({"export", inv, "--copy-artifacts", "--no-copy-artifacts"}).exit_code == 2);
  CHECK(evald.Ctl({"export", inv, "--dest", "jet"}).exit_code == 2);
  CHECK(
      evald.Ctl({"export", inv, "-o", "export.local.format=xml", "--output-dir", out}).exit_code ==
      2);
}

TEST_CASE("export --dest mlflow logs the extracted metrics with the token sent as a secret") {
  TempDir dir;
  RefEndpoint model(dir, ArithModelFlags());
  MlflowFake mlflow(dir);
  Evald evald(dir);
  std::string inv = RunToSuccess(evald, dir, model, 2);
  const std::string uri_override = "export.mlflow.tracking_uri=" + mlflow.url();

  // One job: one run named after its benchmark.
  CommandResult r = evald.Ctl({"export", inv + ".0", "--dest", "mlflow", "-o", uri_override, "-o",
                               "export.mlflow.tags.team=evals"},
                              {{"MLFLOW_TRACKING_TOKEN", kMlflowToken}});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(absl::StrContains(r.out, "  " + inv + ".0: Exported 1 metrics, 3 params"));
  CHECK(absl::StrContains(r.out, "URL: " + mlflow.url() + "/#/experiments/1/runs/"));
  std::vector<Json> created = mlflow.Matching("POST", "/runs/create");
  REQUIRE(created.size() == 1);
  CHECK(created[0]["json"]["run_name"] == "eval-" + inv + "-arith");
  std::map<std::string, std::string> tags;
  for (const Json& t : created[0]["json"]["tags"]) tags[t["key"]] = t["value"];
  CHECK(tags["invocation_id"] == inv);
  CHECK(tags["job_id"] == inv + ".0");
  CHECK(tags["benchmark"] == "arith");
  CHECK(tags["executor"] == "local");
  CHECK(tags["team"] == "evals");
  std::vector<Json> batches = mlflow.Matching("POST", "/runs/log-batch");
  REQUIRE(batches.size() == 1);
  std::set<std::string> keys;
  for (const Json& m : batches[0]["json"]["metrics"]) {
    keys.insert(m["key"]);
    CHECK(m["value"] == 1.0);
  }
  CHECK(keys == std::set<std::string>{"arith_accuracy_exact_match"});
  for (const Json& req : mlflow.Requests()) {
    CHECK(req["headers"]["authorization"] == std::string("Bearer ") + kMlflowToken);
  }

  // The whole invocation: one run with the union of its jobs' metrics.
  CommandResult all = evald.Ctl({"export", inv, "--dest", "mlflow", "-o", uri_override, "--json"},
                                {{"MLFLOW_TRACKING_TOKEN", kMlflowToken}});
  INFO(all.out << all.err);
  REQUIRE(all.exit_code == 0);
  Json j = Json::parse(all.out);
  CHECK(absl::StartsWith(j["invocations"][0]["run_url"].get<std::string>(), mlflow.url()));
  created = mlflow.Matching("POST", "/runs/create");
  REQUIRE(created.size() == 2);
  CHECK(created[1]["json"]["run_name"] == "eval-" + inv);

  // Without the token the server refuses; the export fails (exit 1) and says what to set.
  CommandResult no_token =
      evald.Ctl({"export", inv + ".1", "--dest", "mlflow", "-o", uri_override}, {}, 120);
  INFO(no_token.out << no_token.err);
  CHECK(no_token.exit_code == 1);
  CHECK(absl::StrContains(no_token.out, inv + ".1 failed: "));
  CHECK(absl::StrContains(no_token.out, "MLFLOW_TRACKING_TOKEN"));

  // The token is in no log, output or event.
  CHECK_FALSE(absl::StrContains(evald.process().Stderr(), kMlflowToken));
  CHECK_FALSE(absl::StrContains(evald.process().Stdout(), kMlflowToken));
  CHECK_FALSE(absl::StrContains(r.out + r.err + all.out + all.err, kMlflowToken));
}

std::string DestRunUrl(const Json& job, const std::string& dest) {
  for (const Json& e : job["exports"]) {
    if (e["dest"] == dest && e["run_url"].is_string()) return e["run_url"];
  }
  return "";
}

// Polls `status --json` until every job has an export to each of `dests` that is no longer
// pending; returns the last status.
Json WaitExported(const Evald& evald, const std::string& inv, size_t dests, double timeout_s) {
  Json s;
  for (int i = 0; i < timeout_s * 5; ++i) {
    CommandResult r = evald.Ctl({"status", inv, "--json"});
    REQUIRE(r.exit_code == 0);
    s = Json::parse(r.out);
    bool done = true;
    for (const Json& job : s["jobs"]) {
      if (!job.contains("exports") || job["exports"].size() != dests) {
        done = false;
        continue;
      }
      for (const Json& e : job["exports"]) done &= e["state"] != "pending";
    }
    if (done) return s;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return s;
}

TEST_CASE("auto-export sends every succeeded job of an invocation to local and mlflow") {
  TempDir dir;
  RefEndpoint model(dir, ArithModelFlags());
  MlflowFake mlflow(dir);
  Evald evald(dir, {}, {{"MLFLOW_TRACKING_TOKEN", kMlflowToken}});
  const std::string out = dir.path() + "/auto";
  // Both forms of a destination's keys: mlflow's only at top-level export.<dest> (newer configs),
  // local's in both, where execution.auto_export.configs wins (json, not csv).
  std::string inv =
      RunToSuccess(evald, dir, model, 4,
                   {"+execution.auto_export.destinations=[local,mlflow]",
                    "+execution.auto_export.configs.local.output_dir=" + out,
                    "+execution.auto_export.configs.local.format=json",
                    "+export.local.format=csv", "+export.mlflow.tracking_uri=" + mlflow.url()});
  Json s = WaitExported(evald, inv, 2, 60);
  INFO(s.dump(2));
  REQUIRE(s["jobs"].size() == 4);
  for (const Json& job : s["jobs"]) {
    REQUIRE(job["exports"].size() == 2);
    for (const Json& e : job["exports"]) {
      CHECK(e["state"] == "succeeded");
      CHECK(e["attempts"] == 1);
    }
    CHECK(DestRunUrl(job, "mlflow").rfind(mlflow.url() + "/#/experiments/", 0) == 0);
    std::string job_id = job["job_id"];
    CHECK(fs::exists(out + "/" + inv + "/" + job_id + "/artifacts/results.yml"));
  }
  CHECK(s["state"] == "succeeded");
  // One run per job, each with the job's metric.
  std::vector<Json> created = mlflow.Matching("POST", "/runs/create");
  CHECK(created.size() == 4);
  for (const Json& b : mlflow.Matching("POST", "/runs/log-batch")) {
    REQUIRE(b["json"]["metrics"].size() == 1);
    CHECK(b["json"]["metrics"][0]["key"] == "arith_accuracy_exact_match");
  }
  Json summary = Json::parse(Slurp(out + "/" + inv + "/processed_results.json"));
  CHECK(summary["benchmarks"]["arith"]["models"]["ref-model"].size() == 4);
  // Each attempt is an event (evald logs it too); the token is in no log.
  std::string log = evald.process().Stderr() + evald.process().Stdout();
  CHECK(absl::StrContains(log, inv + ".3: export mlflow: ok, run_url " + mlflow.url()));
  CHECK(absl::StrContains(log, inv + ".0: export local: ok, Exported 2 files"));
  CHECK_FALSE(absl::StrContains(log, kMlflowToken));
  CommandResult info = evald.Ctl({"info", inv + ".1", "--no-config"});
  CHECK(absl::StrContains(info.out, "succeeded (1 attempt): " + mlflow.url()));
}

TEST_CASE(
    "a credential an export config reads with oc.env is masked in dry runs and the database") {
  TempDir dir;
  RefEndpoint model(dir, ArithModelFlags());
  MlflowFake mlflow(dir);
  Evald evald(dir, {}, {{"MLFLOW_TRACKING_TOKEN", kMlflowToken}});
  const std::string canary = "aws-canary-Secret-0123456789";
  std::string cfg = ArithConfig(dir, model, {.tasks = 1});
  const std::string anchor = "execution:\n";
  cfg.replace(cfg.find(anchor), anchor.size(),
              "execution:\n  auto_export:\n    destinations: [mlflow]\n    configs:\n"
              "      mlflow:\n        tracking_uri: " +
                  mlflow.url() +
                  "\n        extra_metadata:\n"
                  "          aws: ${oc.env:AWS_SECRET_ACCESS_KEY}\n"
                  "          who: ${oc.env:EVALD_TEST_WHO}\n");
  const std::string path = WriteConfig(dir, "run.yaml", cfg);
  const std::map<std::string, std::string> env = {{"AWS_SECRET_ACCESS_KEY", canary},
                                                  {"EVALD_TEST_WHO", "team-a"}};
  CommandResult dry = evald.Ctl({"submit", path, "--dry-run"}, env);
  INFO(dry.out << dry.err);
  REQUIRE(dry.exit_code == 0);
  CHECK_FALSE(absl::StrContains(dry.out + dry.err, canary));
  CHECK(absl::StrContains(dry.out, "who: team-a"));  // a variable not named like a credential

  CommandResult r = evald.Ctl({"submit", path, "--json"}, env);
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const std::string inv = InvocationIdFromJson(r.out);
  CHECK(evald.WaitTerminal(inv).state() == v1::JOB_STATE_SUCCEEDED);
  CommandResult info = evald.Ctl({"info", inv});
  CHECK_FALSE(absl::StrContains(info.out + info.err, canary));
  CHECK(absl::StrContains(info.out, "AWS_SECRET_ACCESS_KEY"));  // listed among its secrets
  evald.Terminate();
  for (const char* file : {"/evald.db", "/evald.db-wal"}) {
    CHECK_FALSE(absl::StrContains(Slurp(evald.state_dir() + file), canary));
  }
  CHECK_FALSE(absl::StrContains(evald.process().Stderr(), canary));
}

TEST_CASE("a failed job is neither auto-exported nor exported, and its invocation stays failed") {
  TempDir dir;
  RefEndpoint model(dir, ArithModelFlags());
  Evald evald(dir);
  // Job 1 names a dataset that does not exist: evalrun exits 2 and the job fails.
  Spit(dir.path() + "/broken_task.yaml",
       "dataset: no-such-data.jsonl\nprompt: \"{{question}}\"\nanswer_field: answer\n"
       "extractor:\n  regex: \"(\\\\d+)\"\nmetric: exact_match\n");
  std::string cfg =
      WriteConfig(dir, "run.yaml",
                  ArithConfig(dir, model) + "    - name: broken\n      task_file: " + dir.path() +
                      "/broken_task.yaml\n");
  const std::string out = dir.path() + "/auto";
  CommandResult r =
      evald.Ctl({"submit", cfg, "--json", "-o", "+execution.auto_export.destinations=[local]", "-o",
                 "+execution.auto_export.configs.local.output_dir=" + out});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  std::string inv = InvocationIdFromJson(r.out);
  REQUIRE(evald.WaitTerminal(inv).state() == v1::JOB_STATE_FAILED);
  Json s;
  for (int i = 0; i < 100; ++i) {
    s = Json::parse(evald.Ctl({"status", inv, "--json"}).out);
    if (s["jobs"][0].contains("exports") && s["jobs"][0]["exports"][0]["state"] != "pending") {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  INFO(s.dump(2));
  CHECK(s["jobs"][0]["exports"][0]["state"] == "succeeded");
  CHECK_FALSE(s["jobs"][1].contains("exports"));
  CHECK(s["state"] == "failed");
  CHECK(s["jobs"][1]["state"] == "failed");
  CHECK(fs::exists(out + "/" + inv + "/" + inv + ".0/artifacts/results.yml"));
  CHECK_FALSE(fs::exists(out + "/" + inv + "/" + inv + ".1"));

  // evalctl export: the invocation exports its succeeded job and names the other; the failed
  // job alone is refused (exit 5).
  CommandResult e = evald.Ctl({"export", inv, "--output-dir", dir.path() + "/manual"});
  INFO(e.out << e.err);
  CHECK(e.exit_code == 0);
  CHECK(absl::StrContains(e.out, "  " + inv + ".1: failed (not exported)"));
  CommandResult refused = evald.Ctl({"export", inv + ".1"});
  INFO(refused.err);
  CHECK(refused.exit_code == 5);
  CHECK(absl::StrContains(refused.err, "only succeeded jobs are exported"));
}

// Polls evald's output (up to ~20 s) until it holds every one of `needles`.
bool WaitLogged(Evald& evald, const std::vector<std::string>& needles) {
  for (int i = 0; i < 100; ++i) {
    const std::string log = evald.process().Stderr() + evald.process().Stdout();
    bool all = true;
    for (const std::string& n : needles) all &= absl::StrContains(log, n);
    if (all) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return false;
}

TEST_CASE("auto-export retries through an MLflow outage and leaves the invocation's state alone") {
  TempDir dir;
  RefEndpoint model(dir, ArithModelFlags());
  MlflowFake mlflow(dir);
  Evald evald(dir, {}, {{"MLFLOW_TRACKING_TOKEN", kMlflowToken}});
  mlflow.AddFault({{"path", "/api/*"}, {"status", 503}, {"count", -1}});
  std::string inv =
      RunToSuccess(evald, dir, model, 2,
                   {"+execution.auto_export.destinations=[mlflow]",
                    "+execution.auto_export.configs.mlflow.tracking_uri=" + mlflow.url()});
  // The outage lasts until both jobs have failed at least once.
  REQUIRE(WaitLogged(evald,
                     {inv + ".0: export mlflow: failed: ", inv + ".1: export mlflow: failed: "}));
  std::this_thread::sleep_for(std::chrono::seconds(3));
  mlflow.ClearFaults();
  Json s = WaitExported(evald, inv, 1, 90);
  INFO(s.dump(2));
  CHECK(s["state"] == "succeeded");
  for (const Json& job : s["jobs"]) {
    CHECK(job["state"] == "succeeded");
    CHECK(job["exports"][0]["state"] == "succeeded");
    CHECK(job["exports"][0]["attempts"].get<int>() >= 2);
  }
  std::string log = evald.process().Stderr() + evald.process().Stdout();
  CHECK(absl::StrContains(log, "HTTP 503"));
  CHECK(absl::StrContains(log, "; retrying in "));
  CHECK(absl::StrContains(log, inv + ".0: export mlflow: ok, run_url "));
}

TEST_CASE("auto-export still pending when evald restarts is resumed by the new evald") {
  TempDir dir;
  RefEndpoint model(dir, ArithModelFlags());
  MlflowFake mlflow(dir);
  Evald evald(dir, {}, {{"MLFLOW_TRACKING_TOKEN", kMlflowToken}});
  mlflow.AddFault({{"path", "/api/*"}, {"status", 503}, {"count", -1}});
  std::string inv =
      RunToSuccess(evald, dir, model, 1,
                   {"+execution.auto_export.destinations=[mlflow]",
                    "+execution.auto_export.configs.mlflow.tracking_uri=" + mlflow.url()});
  REQUIRE(WaitLogged(evald, {inv + ".0: export mlflow: failed: "}));
  evald.Restart();
  mlflow.ClearFaults();
  Json s = WaitExported(evald, inv, 1, 90);
  INFO(s.dump(2));
  CHECK(s["state"] == "succeeded");
  CHECK(s["jobs"][0]["exports"][0]["state"] == "succeeded");
  CHECK(mlflow.Matching("POST", "/runs/update").size() == 1);
}

constexpr char kWandbKey[] = "wandb-canary-key-4242-secret";
constexpr char kServiceAccount[] = "evald-export@my-project.iam.gserviceaccount.com";

// A fake service (wandb_fake, gsheets_fake) as a process on a free port.
class FakeProcess {
 public:
  FakeProcess(const TempDir& dir, const std::string& name, std::vector<std::string> args) {
    const std::string port_file = dir.path() + "/" + name + ".port";
    std::vector<std::string> argv = {BinDir() + "/" + name, "--port", "0", "--port-file",
                                     port_file};
    argv.insert(argv.end(), args.begin(), args.end());
    process_ = std::make_unique<Process>(argv, std::map<std::string, std::string>{},
                                         dir.path() + "/" + name);
    for (int i = 0; i < 200 && port_ == 0; ++i) {
      std::ifstream in(port_file);
      std::string text;
      if (std::getline(in, text)) (void)absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &port_);
      if (port_ == 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    REQUIRE(port_ > 0);
  }
  std::string url() const { return absl::StrCat("http://127.0.0.1:", port_); }
  Json Get(const std::string& path) {
    httplib::Client c("127.0.0.1", port_);
    httplib::Result r = c.Get(path);
    REQUIRE(r);
    REQUIRE(r->status == 200);
    return Json::parse(r->body);
  }

 private:
  std::unique_ptr<Process> process_;
  int port_ = 0;
};

// Every file under `root` (evald's state: database, WAL, logs) as one string.
std::string AllFiles(const std::string& root) {
  std::string all;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    if (e.is_regular_file()) all += Slurp(e.path().string());
  }
  return all;
}

TEST_CASE(
    "auto-export and export --dest wandb and gsheets: metrics logged once, keys kept secret") {
  TempDir dir;
  RefEndpoint model(dir, ArithModelFlags());
  const std::string key_pem = dir.path() + "/sa.pem";
  const std::string pub_pem = dir.path() + "/sa.pub";
  REQUIRE(std::system(("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out " +
                       key_pem + " 2>/dev/null && openssl pkey -in " + key_pem + " -pubout -out " +
                       pub_pem + " 2>/dev/null")
                          .c_str()) == 0);
  FakeProcess wandb(dir, "wandb_fake", {"--api-key", kWandbKey});
  FakeProcess sheets(dir, "gsheets_fake",
                     {"--public-key", pub_pem, "--client-email", kServiceAccount});
  const std::string private_key = Slurp(key_pem);
  const std::string key_file = dir.path() + "/service_account.json";
  Spit(key_file, Json{{"type", "service_account"},
                      {"private_key_id", "kid-1"},
                      {"private_key", private_key},
                      {"client_email", kServiceAccount},
                      {"token_uri", sheets.url() + "/token"}}
                     .dump());
  // A line from the middle of the PEM body: the canary for the private key.
  const std::string key_canary = private_key.substr(private_key.find('\n') + 1, 48);

  Evald evald(dir, {}, {{"WANDB_API_KEY", kWandbKey}});
  std::string inv =
      RunToSuccess(evald, dir, model, 2,
                   {"+execution.auto_export.destinations=[wandb,gsheets]",
                    "+execution.auto_export.configs.wandb.base_url=" + wandb.url(),
                    "+execution.auto_export.configs.wandb.project=evals",
                    "+execution.auto_export.configs.wandb.log_artifacts=false",
                    "+execution.auto_export.configs.gsheets.service_account_file=" + key_file,
                    "+execution.auto_export.configs.gsheets.sheets_api_url=" + sheets.url(),
                    "+execution.auto_export.configs.gsheets.drive_api_url=" + sheets.url()});
  Json s = WaitExported(evald, inv, 2, 60);
  INFO(s.dump(2));
  for (const Json& job : s["jobs"]) {
    REQUIRE(job["exports"].size() == 2);
    for (const Json& e : job["exports"]) CHECK(e["state"] == "succeeded");
    CHECK(DestRunUrl(job, "wandb").rfind(wandb.url() + "/evald-user/evals/runs/", 0) == 0);
    CHECK(DestRunUrl(job, "gsheets").rfind("https://docs.google.com/spreadsheets/d/", 0) == 0);
  }
  // per_task: the run is found by its display name eval-<inv>-<benchmark>; both jobs run the same
  // benchmark, so (as in the reference) they share one run, a history line each.
  Json runs = wandb.Get("/_fake/state")["runs"];
  REQUIRE(runs.size() == 1);
  Json run = runs.begin().value();
  CHECK(run["displayName"] == "eval-" + inv + "-arith");
  // Jobs are exported as they succeed, in either order: a line each, steps rising.
  REQUIRE(run["history"].size() == 2);
  CHECK(run["history"][0]["_step"].get<int>() < run["history"][1]["_step"].get<int>());
  for (int line = 0; line < 2; ++line) {
    CHECK(run["history"][line]["arith_accuracy_exact_match"] == 1.0);
  }
  CHECK(run["summary"]["arith_accuracy_exact_match"] == 1.0);
  CHECK(run["config"]["invocation_id"]["value"] == inv);
  CHECK(run["group"] == inv);
  CHECK(run["state"] == "finished");
  Json book = sheets.Get("/_fake/state")["spreadsheets"];
  REQUIRE(book.size() == 1);
  Json rows = book.begin().value()["sheets"][0]["rows"];
  REQUIRE(rows.size() == 3);
  CHECK(rows[0] == Json::parse(R"(["Model Name", "Task Name", "Invocation ID", "Job ID",
                                   "Executor", "accuracy_exact_match"])"));
  CHECK(rows[1][2] == inv);
  CHECK(rows[1][5] == 1.0);

  // evalctl export again: the W&B runs are resumed and the sheet's rows updated, nothing doubled.
  CommandResult w = evald.Ctl({"export", inv, "--dest", "wandb", "-o", "export.wandb.tags=[ci]"},
                              {{"WANDB_API_KEY", kWandbKey}});
  INFO(w.out << w.err);
  REQUIRE(w.exit_code == 0);
  CHECK(absl::StrContains(w.out, "  " + inv + ".0: Exported 1 metrics and 0 files to W&B run"));
  CHECK(absl::StrContains(w.out, "(resumed)"));
  runs = wandb.Get("/_fake/state")["runs"];
  CHECK(runs.size() == 1);
  CHECK(runs.begin().value()["history"].size() == 2);
  CHECK(runs.begin().value()["tags"] == Json{"ci"});
  CommandResult g = evald.Ctl({"export", inv + ".1", "--dest", "gsheets", "--json"});
  INFO(g.out << g.err);
  REQUIRE(g.exit_code == 0);
  Json gj = Json::parse(g.out);
  // The job's existing row is updated in place; jobs were appended as they succeeded, in either
  // order, so its row number is where it stands (1-based, the header is row 1).
  int job1_row = 0;
  for (size_t i = 1; i < rows.size(); ++i) {
    if (rows[i][3] == inv + ".1") job1_row = static_cast<int>(i) + 1;
  }
  CHECK(job1_row >= 2);
  CHECK(gj["invocations"][0]["jobs"][0]["metadata"]["row"] == job1_row);
  CHECK(sheets.Get("/_fake/state")["spreadsheets"].begin().value()["sheets"][0]["rows"].size() ==
        3);

  // Without the key evald refuses before calling W&B (bad input: exit 2) and says what to set.
  CommandResult no_key = evald.Ctl({"export", inv, "--dest", "wandb"});
  CHECK(no_key.exit_code == 2);
  CHECK(absl::StrContains(no_key.err, "WANDB_API_KEY"));

  // Neither the W&B key nor the private key is in evald's logs, database or events.
  const std::string log = evald.process().Stderr() + evald.process().Stdout();
  CHECK(absl::StrContains(log, inv + ".0: export wandb: ok, run_url " + wandb.url()));
  CHECK(absl::StrContains(log, inv + ".1: export gsheets: ok, run_url https://docs.google.com/"));
  CommandResult events = evald.Ctl({"info", inv});
  const std::string state = AllFiles(evald.state_dir());
  for (const std::string& canary : {std::string(kWandbKey), key_canary}) {
    CHECK_FALSE(absl::StrContains(log, canary));
    CHECK_FALSE(absl::StrContains(state, canary));
    CHECK_FALSE(absl::StrContains(events.out + events.err, canary));
    CHECK_FALSE(absl::StrContains(w.out + w.err + g.out + g.err, canary));
  }
}

TEST_CASE("export --retry re-queues a failed auto-export, which then succeeds") {
  TempDir dir;
  RefEndpoint model(dir, ArithModelFlags());
  MlflowFake mlflow(dir);
  Evald evald(dir, {}, {{"MLFLOW_TRACKING_TOKEN", kMlflowToken}});
  // 404 is permanent: the auto-export fails at its first attempt, no retries.
  mlflow.AddFault({{"path", "/api/*"}, {"status", 404}, {"count", -1}});
  std::string inv =
      RunToSuccess(evald, dir, model, 1,
                   {"+execution.auto_export.destinations=[mlflow]",
                    "+execution.auto_export.configs.mlflow.tracking_uri=" + mlflow.url()});
  Json failed = WaitExported(evald, inv, 1, 30);
  INFO(failed.dump(2));
  REQUIRE(failed["jobs"][0]["exports"][0]["state"] == "failed");

  // Nothing to retry to another destination: refused (exit 5), nothing changed.
  CommandResult none = evald.Ctl({"export", "--retry", inv, "--dest", "local"});
  INFO(none.out << none.err);
  CHECK(none.exit_code == 5);
  CHECK(absl::StrContains(none.err, "no failed auto-export to local to retry"));

  mlflow.ClearFaults();
  CommandResult retry = evald.Ctl({"export", "--retry", inv, "--json"});
  INFO(retry.out << retry.err);
  REQUIRE(retry.exit_code == 0);
  Json retried = Json::parse(retry.out)["retried"];
  REQUIRE(retried.size() == 1);
  CHECK(retried[0]["job_id"] == inv + ".0");
  CHECK(retried[0]["dest"] == "mlflow");
  CHECK(retried[0]["attempts"] == 1);
  CHECK(absl::StrContains(retried[0]["message"].get<std::string>(), "HTTP 404"));

  Json s = WaitExported(evald, inv, 1, 60);
  INFO(s.dump(2));
  CHECK(s["jobs"][0]["exports"][0]["state"] == "succeeded");
  CHECK(s["jobs"][0]["exports"][0]["attempts"] == 1);  // counted afresh from the retry
  CHECK(s["state"] == "succeeded");
  CHECK_FALSE(mlflow.Matching("POST", "/runs/create").empty());
  // Succeeded now: a second retry has nothing to do.
  CHECK(evald.Ctl({"export", "--retry", inv}).exit_code == 5);
}

}  // namespace
}  // namespace evald::testing
