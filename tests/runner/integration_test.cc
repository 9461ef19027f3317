// evalrun end to end: the real evalrun binary against the real reference endpoint
// (tests/fixtures/ref_endpoint), both as child processes on loopback ports picked by the kernel.
#include <httplib.h>

#include <catch2/catch.hpp>
#include <map>
#include <thread>

#include "runner/response_cache.h"
#include "runner/yaml_util.h"
#include "tests/runner/test_util.h"

namespace evald::runner {
namespace {

using testing::BinPath;
using testing::Child;
using testing::DataDir;
using testing::FileExists;
using testing::ReadFile;
using testing::ReadLines;
using testing::SourceDir;
using testing::TempDir;
using testing::WaitForFile;
using testing::WriteFile;

// A running ref_endpoint; SIGTERM at scope exit.
class RefEndpoint {
 public:
  RefEndpoint(const TempDir& dir, const std::string& name, std::vector<std::string> args) {
    const std::string port_file = dir / (name + ".port");
    std::vector<std::string> argv = {
        BinPath("ref_endpoint"), "--host",  "127.0.0.1",  "--port",    "0",
        "--port-file",           port_file, "--model-id", "test-model"};
    argv.insert(argv.end(), args.begin(), args.end());
    child_ = Child::Start(argv, dir / name);
    if (!WaitForFile(port_file, 20)) FAIL("ref_endpoint did not start: " << child_.Stderr());
    port_ = std::stoi(ReadFile(port_file));
  }
  ~RefEndpoint() {
    child_.Signal(SIGTERM);
    child_.Wait(5);
  }
  std::string url(const std::string& path = "/v1/chat/completions") const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  nlohmann::json Stats() const {
    httplib::Client cli("127.0.0.1", port_);
    auto res = cli.Get("/stats");
    REQUIRE(res);
    return nlohmann::json::parse(res->body);
  }
  int64_t Requests() const { return Stats()["paths"]["/v1/chat/completions"].get<int64_t>(); }
  // Requests of a killed client may still be in the server's latency sleep; wait them out so
  // that they are counted before a test takes a baseline.
  void WaitIdle() const {
    for (int i = 0; i < 1000 && Stats()["in_flight"].get<int64_t>() > 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

 private:
  Child child_;
  int port_ = 0;
};

// A plan as JSON; tests edit it, then Write() turns it into plan.yaml.
nlohmann::json BasePlan(const std::string& out, const std::string& task, const std::string& dataset,
                        const std::string& url) {
  return {
      {"config",
       {{"type", task},
        {"output_dir", out},
        {"params",
         {{"limit_samples", nullptr},
          {"parallelism", 4},
          {"temperature", 0.0},
          {"max_new_tokens", 512},
          {"request_timeout", 10},
          {"max_retries", 4},
          {"extra",
           {{"n_samples", 1},
            {"seed", 1234},
            {"dataset", dataset},
            {"retry_base_delay", 0.01},
            {"retry_max_delay", 0.05}}}}}}},
      {"target",
       {{"api_endpoint",
         {{"url", url}, {"model_id", "test-model"}, {"type", "chat"}, {"api_key", "API_KEY"}}}}}};
}

std::string WritePlan(const TempDir& dir, const std::string& name, const nlohmann::json& plan) {
  const std::string path = dir / (name + ".yaml");
  WriteFile(path, EmitYaml(plan));
  return path;
}

struct Run {
  int code = -1;
  std::string out, err;
};

Run Evalrun(const TempDir& dir, const std::string& plan, const std::string& name,
            const std::vector<std::string>& extra_args = {},
            const std::vector<std::pair<std::string, std::string>>& env = {},
            double timeout_s = 120) {
  std::vector<std::string> argv = {BinPath("evalrun"), "--plan", plan};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  Child c = Child::Start(argv, dir / name, env, {"API_KEY", "HF_TOKEN"});
  Run r;
  r.code = c.Wait(timeout_s);
  r.out = c.Stdout();
  r.err = c.Stderr();
  return r;
}

YAML::Node Results(const std::string& artifacts) {
  auto doc = YamlDoc::Load(artifacts + "/results.yml");
  REQUIRE(doc.ok());
  return doc->root();
}

double Score(const std::string& artifacts, const std::string& task, const std::string& score) {
  YAML::Node n = YamlDoc::Child(Results(artifacts),
                                "results.tasks." + task + ".metrics.accuracy.scores." + score);
  REQUIRE(n.IsMap());
  return n["value"].as<double>();
}

// sample index -> correct, from samples.jsonl.
std::map<int64_t, bool> Correctness(const std::string& artifacts) {
  std::map<int64_t, bool> out;
  for (const auto& line : ReadLines(artifacts + "/samples.jsonl")) {
    auto j = nlohmann::json::parse(line);
    out[j["sample"].get<int64_t>() * 100 + j["repeat"].get<int64_t>()] = j["correct"].get<bool>();
  }
  return out;
}

nlohmann::json Metrics(const std::string& artifacts) {
  return nlohmann::json::parse(ReadFile(artifacts + "/eval_factory_metrics.json"));
}

// A generated GSM8K-style dataset of n rows and its key file.
void WriteGeneratedGsm8k(const TempDir& dir, int n) {
  std::string rows, keys;
  for (int i = 0; i < n; ++i) {
    const std::string q = "Generated problem number " + std::to_string(i) + ": what is " +
                          std::to_string(i) + " plus 10?";
    rows += nlohmann::json({{"question", q}, {"answer", "#### " + std::to_string(i + 10)}}).dump() +
            "\n";
    keys +=
        nlohmann::json({{"match", q}, {"answer", "The final answer is: " + std::to_string(i + 10)}})
            .dump() +
        "\n";
  }
  WriteFile(dir / "gen.jsonl", rows);
  WriteFile(dir / "gen_keys.jsonl", keys);
}

TEST_CASE("evalrun: a fault-free GSM8K run writes every artifact of the contract") {
  TempDir dir;
  RefEndpoint ep(dir, "ep", {"--keys", DataDir() + "/gsm8k_keys.jsonl", "--accuracy", "1"});
  const std::string out = dir / "artifacts";
  auto plan = WritePlan(dir, "plan",
                        BasePlan(out, "native_gsm8k", DataDir() + "/gsm8k_tiny.jsonl", ep.url()));
  Run r = Evalrun(dir, plan, "run");
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(Score(out, "native_gsm8k", "lenient_numeric_match") == 1.0);
  // lm-eval gsm8k's scores of the same answers: "#### N" twice; the last number 10 times (not
  // "$\boxed{N}$.", whose last hit is "$.").
  CHECK(Score(out, "native_gsm8k", "strict-match") == Approx(2.0 / 12));
  CHECK(Score(out, "native_gsm8k", "flexible-extract") == Approx(10.0 / 12));
  YAML::Node scoring = YamlDoc::Child(Results(out), "scoring.native_gsm8k");
  CHECK(scoring["commit"].as<std::string>() == "4e7e0d47f33bc71070c1d38394bafbb52b117163");
  CHECK(scoring["think_end_token"].IsNull());
  CHECK(scoring["variant"].as<std::string>() == "gsm8k");
  CHECK(scoring["until"][0].as<std::string>() == "Question:");
  // The regexes read back as written (YAML quoting).
  CHECK(scoring["exact_match"]["regexes_to_ignore"][1].as<std::string>() == "\\$");
  CHECK(scoring["exact_match"]["regexes_to_ignore"][2].as<std::string>() == "(?s).*#### ");
  CHECK(scoring["filters"][0]["steps"][0].as<std::string>() ==
        "regex(#### (\\-?[0-9\\.\\,]+), group_select=0)");
  CHECK(YamlDoc::Child(Results(out),
                       "results.tasks.native_gsm8k.metrics.accuracy.scores."
                       "lenient_numeric_match.stats.count")
            .as<int>() == 12);
  auto samples = ReadLines(out + "/samples.jsonl");
  REQUIRE(samples.size() == 12);
  auto first = nlohmann::json::parse(samples[0]);
  for (const char* k : {"prompt", "response", "extracted", "gold", "correct", "filtered", "scores"})
    CHECK(first.contains(k));
  // Each score's extraction and value, so a disagreement with the reference can be traced.
  CHECK(first["filtered"].contains("strict-match"));
  CHECK(first["filtered"].contains("flexible-extract"));
  CHECK(first["filtered"].contains("lenient_numeric_match"));
  CHECK(first["scores"].size() == 3);
  auto progress = nlohmann::json::parse(ReadFile(out + "/progress.json"));
  CHECK(progress["done"] == 12);
  CHECK(progress["total"] == 12);
  CHECK(progress["errors"] == 0);
  CHECK(ReadFile(out + "/progress") == "12\n");
  auto run_config = YamlDoc::Load(out + "/run_config.yml");
  REQUIRE(run_config.ok());
  CHECK(run_config->root()["config"]["type"].as<std::string>() == "native_gsm8k");
  nlohmann::json m = Metrics(out);
  CHECK(m["evaluation"]["partial"] == false);
  CHECK(m["evaluation"]["token_usage"]["total_tokens"].get<int64_t>() > 0);
  CHECK(m["response_stats"]["latency_ms"]["count"] == 12);
  CHECK(m["runner"]["requests_sent"] == 12);
  CHECK(FileExists(out + "/cache/cache.sqlite3"));
  CHECK(ep.Requests() == 12);
  CHECK_THAT(r.out, Catch::Contains("lenient_numeric_match") && Catch::Contains("1.0000"));

  // Rerun: every answer comes from the cache, nothing is sent.
  Run again = Evalrun(dir, plan, "again");
  REQUIRE(again.code == 0);
  CHECK(ep.Requests() == 12);
  CHECK(Metrics(out)["runner"]["cached"] == 12);
  CHECK(Score(out, "native_gsm8k", "lenient_numeric_match") == 1.0);
}

TEST_CASE("evalrun: parallelism bounds the requests in flight") {
  TempDir dir;
  RefEndpoint ep(dir, "ep", {"--keys", DataDir() + "/gsm8k_keys.jsonl", "--latency-ms", "100"});
  nlohmann::json p =
      BasePlan(dir / "out", "native_gsm8k", DataDir() + "/gsm8k_tiny.jsonl", ep.url());
  p["config"]["params"]["parallelism"] = 3;
  Run r = Evalrun(dir, WritePlan(dir, "plan", p), "run");
  REQUIRE(r.code == 0);
  CHECK(ep.Stats()["max_in_flight"] == 3);
}

TEST_CASE("evalrun: every fault type converges to the fault-free results") {
  TempDir dir;
  const std::vector<std::string> common = {
      "--keys", DataDir() + "/gsm8k_keys.jsonl", "--accuracy", "0.5", "--seed", "11"};
  std::map<int64_t, bool> baseline;
  double baseline_score = 0;
  {
    RefEndpoint ep(dir, "clean", common);
    const std::string out = dir / "clean_out";
    Run r =
        Evalrun(dir,
                WritePlan(dir, "clean",
                          BasePlan(out, "native_gsm8k", DataDir() + "/gsm8k_tiny.jsonl", ep.url())),
                "clean_run");
    REQUIRE(r.code == 0);
    baseline = Correctness(out);
    baseline_score = Score(out, "native_gsm8k", "lenient_numeric_match");
    REQUIRE(baseline.size() == 12);
    REQUIRE(baseline_score > 0.0);  // the mix of right and wrong makes the comparison meaningful
    REQUIRE(baseline_score < 1.0);
  }
  const std::vector<std::pair<std::string, std::string>> faults = {
      {"--fault-429-rate", "429"},
      {"--fault-500-rate", "500"},
      {"--fault-503-rate", "503"},
      {"--fault-hang-rate", "hang"},
      {"--fault-drop-rate", "drop"},
      {"--fault-malformed-rate", "malformed"},
      {"--fault-truncated-rate", "truncated"}};
  for (const auto& [flag, name] : faults) {
    DYNAMIC_SECTION("fault " << name) {
      std::vector<std::string> args = common;
      args.insert(args.end(), {flag, "0.5", "--fault-attempts", "1", "--retry-after", "0.05"});
      RefEndpoint ep(dir, "ep_" + name, args);
      const std::string out = dir / ("out_" + name);
      nlohmann::json p = BasePlan(out, "native_gsm8k", DataDir() + "/gsm8k_tiny.jsonl", ep.url());
      p["config"]["params"]["request_timeout"] = 1;  // hung requests time out and are retried
      Run r = Evalrun(dir, WritePlan(dir, "plan_" + name, p), "run_" + name);
      INFO(r.err);
      REQUIRE(r.code == 0);
      CHECK(ep.Stats()["faults"][name].get<int64_t>() > 0);
      // Faulted requests were sent again (by evalrun's retry policy, or by curl itself for a
      // keep-alive connection that died before answering).
      CHECK(ep.Requests() > 12);
      nlohmann::json m = Metrics(out);
      if (name != "drop") CHECK(m["runner"]["retries"].get<int64_t>() > 0);
      CHECK(m["runner"]["errored"] == 0);
      CHECK(Correctness(out) == baseline);
      CHECK(Score(out, "native_gsm8k", "lenient_numeric_match") == baseline_score);
    }
  }
}

TEST_CASE("evalrun: Retry-After 0 is retried at once, not after the backoff") {
  TempDir dir;
  // Every first attempt is a 429 saying "retry now"; the backoff would wait a minute.
  RefEndpoint ep(dir, "ep",
                 {"--keys", DataDir() + "/gsm8k_keys.jsonl", "--fault-429-rate", "1",
                  "--fault-attempts", "1", "--retry-after", "0"});
  const std::string out = dir / "out";
  nlohmann::json p = BasePlan(out, "native_gsm8k", DataDir() + "/gsm8k_tiny.jsonl", ep.url());
  p["config"]["params"]["extra"]["retry_base_delay"] = 60;
  p["config"]["params"]["extra"]["retry_max_delay"] = 60;
  // Finishing at all within the limit is the check: the old policy waited >= 30 s per retry.
  Run r = Evalrun(dir, WritePlan(dir, "plan", p), "run", {}, {}, /*timeout_s=*/20);
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(ep.Stats()["faults"]["429"].get<int64_t>() == 12);
  nlohmann::json m = Metrics(out);
  CHECK(m["runner"]["retries"] == 12);
  CHECK(m["runner"]["errored"] == 0);
}

TEST_CASE("evalrun: a run the endpoint fails part-way marks results.yml partial") {
  TempDir dir;
  // Every attempt of some bodies fails with 500, and no failure is allowed: the run stops at the
  // first such sample, after scoring the ones before it (parallelism 1 keeps the order).
  RefEndpoint ep(dir, "ep",
                 {"--keys", DataDir() + "/gsm8k_keys.jsonl", "--fault-500-rate", "0.3",
                  "--fault-attempts", "0", "--seed", "1"});
  const std::string out = dir / "out";
  nlohmann::json p = BasePlan(out, "native_gsm8k", DataDir() + "/gsm8k_tiny.jsonl", ep.url());
  p["config"]["params"]["parallelism"] = 1;
  p["config"]["params"]["max_retries"] = 0;
  Run r = Evalrun(dir, WritePlan(dir, "plan", p), "run");
  INFO(r.err);
  REQUIRE(r.code == 3);
  nlohmann::json m = Metrics(out);
  const int64_t done = m["runner"]["done"].get<int64_t>();
  REQUIRE(done > 1);  // the seed puts the first faulted body after a few good ones
  REQUIRE(done < 12);
  YAML::Node results = Results(out);
  REQUIRE(results["partial"]);
  CHECK(results["partial"].as<bool>());
  CHECK(results["samples_scored"].as<int64_t>() == done);
  CHECK(results["samples_total"].as<int64_t>() == 12);
  // The scores are still where readers look for them.
  CHECK(results["results"]["tasks"]["native_gsm8k"]["metrics"]);

  // A complete run carries no marker: the reference's format, unchanged.
  RefEndpoint clean(dir, "clean", {"--keys", DataDir() + "/gsm8k_keys.jsonl"});
  const std::string out2 = dir / "out2";
  Run ok = Evalrun(
      dir,
      WritePlan(dir, "plan2",
                BasePlan(out2, "native_gsm8k", DataDir() + "/gsm8k_tiny.jsonl", clean.url())),
      "run2");
  REQUIRE(ok.code == 0);
  YAML::Node full = Results(out2);
  CHECK_FALSE(full["partial"]);
  CHECK_FALSE(full["samples_scored"]);
}

TEST_CASE("evalrun: answers still bad after the retries are errored, counted, not fatal") {
  TempDir dir;
  // Which bodies fail depends on their text (the prompt); 0.6 hits some but not all 12.
  RefEndpoint ep(dir, "ep",
                 {"--keys", DataDir() + "/gsm8k_keys.jsonl", "--fault-malformed-rate", "0.6",
                  "--fault-attempts", "0", "--seed", "5"});
  const std::string out = dir / "out";
  nlohmann::json p = BasePlan(out, "native_gsm8k", DataDir() + "/gsm8k_tiny.jsonl", ep.url());
  p["config"]["params"]["max_retries"] = 1;
  Run r = Evalrun(dir, WritePlan(dir, "plan", p), "run");
  INFO(r.err);
  REQUIRE(r.code == 0);
  nlohmann::json m = Metrics(out);
  const int64_t errored = m["runner"]["errored"].get<int64_t>();
  CHECK(errored > 0);
  CHECK(errored < 12);
  CHECK(m["runner"]["errored_by_kind"]["malformed_response"] == errored);
  int64_t errored_lines = 0;
  for (const auto& line : ReadLines(out + "/samples.jsonl")) {
    auto j = nlohmann::json::parse(line);
    if (j.contains("error")) {
      ++errored_lines;
      CHECK(j["correct"] == false);
      CHECK(j["error_kind"] == "malformed_response");
      CHECK(j["attempts"] == 2);
    }
  }
  CHECK(errored_lines == errored);
  CHECK(nlohmann::json::parse(ReadFile(out + "/progress.json"))["errors"] == errored);
  // Errored samples count as wrong: the score covers all 12.
  CHECK(Score(out, "native_gsm8k", "lenient_numeric_match") == Approx((12.0 - errored) / 12.0));
}

TEST_CASE("evalrun: SIGTERM stops within 2 s, flushes, and a rerun sends only what is missing") {
  TempDir dir;
  WriteGeneratedGsm8k(dir, 40);
  RefEndpoint ep(dir, "ep", {"--keys", dir / "gen_keys.jsonl", "--latency-ms", "200"});
  const std::string out = dir / "out";
  const std::string plan =
      WritePlan(dir, "plan", BasePlan(out, "native_gsm8k", dir / "gen.jsonl", ep.url()));
  Child run = Child::Start({BinPath("evalrun"), "--plan", plan}, dir / "run1", {}, {"API_KEY"});
  // Wait until some samples finished, then stop it.
  for (int i = 0; i < 2000; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    auto text = ReadFile(out + "/progress.json");
    if (!text.empty() && nlohmann::json::parse(text)["done"].get<int64_t>() >= 8) break;
  }
  run.Signal(SIGTERM);
  const int code = run.Wait(2.0);  // the contract: out in under 2 s
  INFO(run.Stderr());
  REQUIRE(code == 143);
  nlohmann::json m = Metrics(out);
  CHECK(m["evaluation"]["partial"] == true);
  const int64_t done = m["runner"]["done"].get<int64_t>();
  CHECK(done >= 8);
  CHECK(done < 40);
  CHECK(FileExists(out + "/results.yml"));
  CHECK(ReadLines(out + "/samples.jsonl").size() == static_cast<size_t>(done));
  int64_t cached_rows = 0;
  {
    auto cache = ResponseCache::Open({.dir = out + "/cache"});
    REQUIRE(cache.ok());
    cached_rows = (*cache)->Count();
  }
  CHECK(cached_rows == done);  // every finished answer reached the cache

  ep.WaitIdle();
  const int64_t sent_before = ep.Requests();
  Run rerun = Evalrun(dir, plan, "run2");
  REQUIRE(rerun.code == 0);
  CHECK(ep.Requests() - sent_before == 40 - cached_rows);
  nlohmann::json m2 = Metrics(out);
  CHECK(m2["runner"]["cached"] == cached_rows);
  CHECK(m2["evaluation"]["partial"] == false);
  CHECK(Score(out, "native_gsm8k", "lenient_numeric_match") == 1.0);
  CHECK(ReadLines(out + "/samples.jsonl").size() == 40);
}

TEST_CASE("evalrun: after SIGKILL a rerun sends only the requests not in the cache") {
  TempDir dir;
  WriteGeneratedGsm8k(dir, 40);
  RefEndpoint ep(dir, "ep", {"--keys", dir / "gen_keys.jsonl", "--latency-ms", "150"});
  const std::string out = dir / "out";
  const std::string plan =
      WritePlan(dir, "plan", BasePlan(out, "native_gsm8k", dir / "gen.jsonl", ep.url()));
  Child run = Child::Start({BinPath("evalrun"), "--plan", plan}, dir / "run1", {}, {"API_KEY"});
  for (int i = 0; i < 2000; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    auto text = ReadFile(out + "/progress.json");
    if (!text.empty() && nlohmann::json::parse(text)["done"].get<int64_t>() >= 12) break;
  }
  run.Signal(SIGKILL);
  REQUIRE(run.Wait(5) == 128 + SIGKILL);
  int64_t cached_rows = 0;
  {
    auto cache = ResponseCache::Open({.dir = out + "/cache"});
    REQUIRE(cache.ok());
    cached_rows = (*cache)->Count();
  }
  CHECK(cached_rows > 0);
  ep.WaitIdle();
  const int64_t sent_before = ep.Requests();
  Run rerun = Evalrun(dir, plan, "run2");
  REQUIRE(rerun.code == 0);
  CHECK(ep.Requests() - sent_before == 40 - cached_rows);
  CHECK(Score(out, "native_gsm8k", "lenient_numeric_match") == 1.0);
}

TEST_CASE("evalrun: an unreachable endpoint fails with exit 3 and the last error") {
  TempDir dir;
  int port = 0;
  {
    // Start and stop an endpoint: its port is then closed.
    RefEndpoint gone(dir, "gone", {"--keys", DataDir() + "/gsm8k_keys.jsonl"});
    port = std::stoi(gone.url("").substr(std::string("http://127.0.0.1:").size()));
  }
  const std::string out = dir / "out";
  nlohmann::json p = BasePlan(out, "native_gsm8k", DataDir() + "/gsm8k_tiny.jsonl",
                              "http://127.0.0.1:" + std::to_string(port) + "/v1/chat/completions");
  p["config"]["params"]["max_retries"] = 2;
  Run r = Evalrun(dir, WritePlan(dir, "plan", p), "run");
  CHECK(r.code == 3);
  CHECK_THAT(r.err, Catch::Contains("unreachable") && Catch::Contains("after 3 attempt(s)") &&
                        Catch::Contains("onnect"));
  CHECK(Metrics(out)["evaluation"]["partial"] == true);
}

TEST_CASE("evalrun: a 401 stops the run with exit 5 and names the missing key variable") {
  TempDir dir;
  RefEndpoint ep(dir, "ep",
                 {"--keys", DataDir() + "/gsm8k_keys.jsonl", "--require-api-key", "sk-sekret-123"});
  const std::string out = dir / "out";
  nlohmann::json p = BasePlan(out, "native_gsm8k", DataDir() + "/gsm8k_tiny.jsonl", ep.url());
  p["target"]["api_endpoint"]["adapter_config"] = {
      {"use_request_logging", true}, {"use_response_logging", true}, {"max_logged_requests", 5}};
  const std::string plan = WritePlan(dir, "plan", p);
  Run r = Evalrun(dir, plan, "nokey");
  CHECK(r.code == 5);
  CHECK_THAT(r.err, Catch::Contains("401") && Catch::Contains("$API_KEY is not set"));
  Run wrong = Evalrun(dir, plan, "wrongkey", {}, {{"API_KEY", "sk-wrong-000"}});
  CHECK(wrong.code == 5);
  CHECK_THAT(wrong.err, Catch::Contains("check the API key in $API_KEY"));
  Run ok = Evalrun(dir, plan, "withkey", {}, {{"API_KEY", "sk-sekret-123"}});
  INFO(ok.err);
  REQUIRE(ok.code == 0);
  CHECK(Score(out, "native_gsm8k", "lenient_numeric_match") > 0.0);
  CHECK(ReadLines(out + "/request_log.jsonl").size() == 5);
  // The key never reaches an artifact or a log.
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir.path())) {
    if (!entry.is_regular_file()) continue;
    if (entry.path().filename() == "withkey.err" || entry.path().filename() == "withkey.out" ||
        entry.path().string().find("/out/") != std::string::npos) {
      INFO(entry.path());
      CHECK(ReadFile(entry.path()).find("sk-sekret-123") == std::string::npos);
    }
  }
}

TEST_CASE("evalrun: bad input exits 2 naming file and line, and sends nothing") {
  TempDir dir;
  RefEndpoint ep(dir, "ep", {"--keys", DataDir() + "/gsm8k_keys.jsonl"});
  WriteFile(dir / "bad.jsonl",
            "{\"question\": \"a\", \"answer\": \"#### 1\"}\n{\"question\": \"b\", \"answer\": \n");
  Run bad_row = Evalrun(
      dir, WritePlan(dir, "p1", BasePlan(dir / "o1", "native_gsm8k", dir / "bad.jsonl", ep.url())),
      "r1");
  CHECK(bad_row.code == 2);
  CHECK_THAT(bad_row.err, Catch::Contains(dir / "bad.jsonl:2: invalid JSON"));

  WriteFile(dir / "task/t.yaml",
            "dataset: ../bad.jsonl\nprompt: \"{{nope}}\"\nanswer_field: answer\nextractor: "
            "full\nmetric: exact_match\n");
  WriteFile(dir / "good.jsonl", "{\"question\": \"a\", \"answer\": \"x\"}\n");
  nlohmann::json p = BasePlan(dir / "o2", "my_task", dir / "good.jsonl", ep.url());
  p["config"]["task_file"] = dir / "task/t.yaml";
  Run bad_field = Evalrun(dir, WritePlan(dir, "p2", p), "r2");
  CHECK(bad_field.code == 2);
  CHECK_THAT(bad_field.err, Catch::Contains("t.yaml:2: prompt: unknown template field 'nope'"));

  WriteFile(dir / "p3.yaml", "config: {type: native_gsm8k}\n");
  Run bad_plan = Evalrun(dir, dir / "p3.yaml", "r3");
  CHECK(bad_plan.code == 2);
  CHECK_THAT(bad_plan.err, Catch::Contains("p3.yaml:1: config.output_dir"));

  Run no_plan = Evalrun(dir, dir / "missing.yaml", "r4");
  CHECK(no_plan.code == 2);
  Run bad_flag = Evalrun(dir, dir / "p3.yaml", "r5", {"--no-such-flag"});
  CHECK(bad_flag.code == 2);
  CHECK(ep.Stats()["total"] == 0);
}

TEST_CASE("evalrun: --dry-run prints the first request and sends nothing") {
  TempDir dir;
  RefEndpoint ep(dir, "ep", {"--keys", DataDir() + "/gsm8k_keys.jsonl"});
  const std::string out = dir / "out";
  nlohmann::json p = BasePlan(out, "native_gsm8k", DataDir() + "/gsm8k_tiny.jsonl", ep.url());
  p["target"]["api_endpoint"]["adapter_config"] = {{"use_system_prompt", true},
                                                   {"custom_system_prompt", "Be exact."}};
  Run r =
      Evalrun(dir, WritePlan(dir, "plan", p), "dry", {"--dry-run"}, {{"API_KEY", "sk-hidden-42"}});
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("first request body") && Catch::Contains("Mia has 12 apples") &&
                        Catch::Contains("Be exact.") && Catch::Contains("12 x 1"));
  CHECK(r.out.find("sk-hidden-42") == std::string::npos);
  CHECK_THAT(r.out, Catch::Contains("$API_KEY (set)"));
  CHECK(ep.Stats()["total"] == 0);
  CHECK_FALSE(FileExists(out));
  Run help = Evalrun(dir, "x", "help", {"--help"});
  CHECK(help.code == 0);
  for (const char* flag : {"--plan", "--dry-run", "--override", "--log-level", "--version"}) {
    CHECK_THAT(help.out, Catch::Contains(flag));
  }
  CHECK_THAT(help.out, Catch::Contains("Exit codes"));
}

TEST_CASE("evalrun: the built-in multiple-choice and IFEval tasks end to end") {
  TempDir dir;
  struct Case {
    std::string task, data, keys, score;
  };
  const std::vector<Case> cases = {
      {"native_mmlu", "mmlu_tiny.jsonl", "mmlu_keys.jsonl", "lenient_choice_accuracy"},
      {"native_mmlu_pro", "mmlu_pro_tiny.jsonl", "mmlu_pro_keys.jsonl", "lenient_choice_accuracy"},
      {"native_gpqa_diamond", "gpqa_tiny.jsonl", "gpqa_keys.jsonl", "lenient_choice_accuracy"},
      {"native_ifeval", "ifeval_tiny.jsonl", "ifeval_keys.jsonl", "prompt_level_strict_acc"},
  };
  for (const auto& c : cases) {
    for (const char* accuracy : {"1", "0"}) {
      DYNAMIC_SECTION(c.task << " accuracy " << accuracy) {
        RefEndpoint ep(dir, "ep", {"--keys", DataDir() + "/" + c.keys, "--accuracy", accuracy});
        const std::string out = dir / (c.task + accuracy);
        nlohmann::json p = BasePlan(out, c.task, DataDir() + "/" + c.data, ep.url());
        p["config"]["params"]["extra"]["shuffle_choices"] = false;
        Run r = Evalrun(dir, WritePlan(dir, "plan", p), "run");
        INFO(r.err);
        REQUIRE(r.code == 0);
        CHECK(ep.Stats()["answers"]["default"] == 0);  // every prompt matched its key
        CHECK(Score(out, c.task, c.score) == (std::string(accuracy) == "1" ? 1.0 : 0.0));
        // The reference score comes first; these keys all use the reference's answer form.
        if (c.task == "native_mmlu_pro" || c.task == "native_gpqa_diamond") {
          const char* ref = c.task == "native_mmlu_pro" ? "custom-extract" : "score";
          CHECK(Score(out, c.task, ref) == (std::string(accuracy) == "1" ? 1.0 : 0.0));
        }
        if (c.task == "native_ifeval") {
          for (const char* s :
               {"inst_level_strict_acc", "prompt_level_loose_acc", "inst_level_loose_acc"}) {
            CHECK(YamlDoc::Child(Results(out),
                                 "results.tasks.native_ifeval.metrics.accuracy.scores." +
                                     std::string(s) + ".value")
                      .IsDefined());
          }
        }
      }
    }
  }
}

TEST_CASE("evalrun: think_end_token scores the text after the reasoning, as lm-eval's model arg") {
  TempDir dir;
  RefEndpoint ep(dir, "ep", {"--keys", DataDir() + "/mmlu_keys.jsonl", "--think"});
  const std::string out = dir / "out";
  nlohmann::json p = BasePlan(out, "native_mmlu", DataDir() + "/mmlu_tiny.jsonl", ep.url());
  p["config"]["params"]["extra"]["think_end_token"] = "</think>";
  Run r = Evalrun(dir, WritePlan(dir, "plan", p), "run");
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(Score(out, "native_mmlu", "lenient_choice_accuracy") == 1.0);
  YAML::Node scoring = YamlDoc::Child(Results(out), "scoring.native_mmlu");
  CHECK(scoring["think_end_token"].as<std::string>() == "</think>");
  CHECK(scoring["reasoning_interceptor"].as<bool>() == false);
  for (const auto& line : ReadLines(out + "/samples.jsonl")) {
    nlohmann::json j = nlohmann::json::parse(line);
    CHECK(j["response"].get<std::string>().find("</think>") != std::string::npos);  // raw
    CHECK(j["scored_response"].get<std::string>().find("</think>") == std::string::npos);
  }
}

TEST_CASE("evalrun: reasoning is stripped before scoring, inline or in reasoning_content") {
  TempDir dir;
  for (const char* mode : {"--think", "--reasoning-content"}) {
    DYNAMIC_SECTION(mode) {
      RefEndpoint ep(dir, "ep", {"--keys", DataDir() + "/mmlu_keys.jsonl", mode});
      const std::string out = dir / (std::string("out") + mode);
      nlohmann::json p = BasePlan(out, "native_mmlu", DataDir() + "/mmlu_tiny.jsonl", ep.url());
      p["target"]["api_endpoint"]["adapter_config"] = {{"use_reasoning", true}};
      Run r = Evalrun(dir, WritePlan(dir, "plan", p), "run");
      REQUIRE(r.code == 0);
      CHECK(Score(out, "native_mmlu", "lenient_choice_accuracy") == 1.0);
      nlohmann::json m = Metrics(out);
      CHECK(m["reasoning_stats"]["reasoning_finished_count"] == 8);
      for (const auto& line : ReadLines(out + "/samples.jsonl")) {
        nlohmann::json sample = nlohmann::json::parse(line);
        CHECK(sample["response"].get<std::string>().find("<think>") == std::string::npos);
        // The text as the model sent it stays traceable: inline thinking is stripped from
        // `response` and kept in `raw_response`; reasoning_content never was in the content.
        if (std::string(mode) == "--think") {
          REQUIRE(sample.contains("raw_response"));
          CHECK(sample["raw_response"].get<std::string>().find("<think>") != std::string::npos);
          CHECK(sample["raw_response"].get<std::string>().find(
                    sample["response"].get<std::string>()) != std::string::npos);
        } else {
          CHECK_FALSE(sample.contains("raw_response"));
        }
      }
    }
  }
}

TEST_CASE("evalrun: the example user task runs from its task file") {
  TempDir dir;
  const std::string examples = SourceDir() + "/examples/tasks";
  RefEndpoint ep(dir, "ep", {"--keys", examples + "/capitals_keys.jsonl", "--accuracy", "1"});
  const std::string out = dir / "out";
  nlohmann::json p = BasePlan(out, "capitals", "", ep.url());
  p["config"]["params"]["extra"].erase("dataset");
  p["config"]["task_file"] = examples + "/capitals.yaml";
  Run r = Evalrun(dir, WritePlan(dir, "plan", p), "run");
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(Score(out, "capitals", "exact_match") == 1.0);
  CHECK(ep.Stats()["answers"]["default"] == 0);
}

TEST_CASE("evalrun: repeats report pass@k and have their own cache entries") {
  TempDir dir;
  RefEndpoint ep(dir, "ep",
                 {"--keys", DataDir() + "/gsm8k_keys.jsonl", "--accuracy", "0.5", "--seed", "3"});
  const std::string out = dir / "out";
  nlohmann::json p = BasePlan(out, "native_gsm8k", DataDir() + "/gsm8k_tiny.jsonl", ep.url());
  p["config"]["params"]["extra"]["n_samples"] = 3;
  const std::string plan = WritePlan(dir, "plan", p);
  Run r = Evalrun(dir, plan, "run");
  REQUIRE(r.code == 0);
  CHECK(ep.Requests() == 36);
  YAML::Node pass =
      YamlDoc::Child(Results(out), "results.tasks.native_gsm8k.metrics.pass@k.scores");
  REQUIRE(pass.IsMap());
  CHECK(pass["pass@1"]["stats"]["count"].as<int>() == 12);
  CHECK(pass["pass@3"].IsDefined());
  CHECK(nlohmann::json::parse(ReadFile(out + "/progress.json"))["total"] == 36);
  Run again = Evalrun(dir, plan, "again");
  REQUIRE(again.code == 0);
  CHECK(ep.Requests() == 36);
}

TEST_CASE("evalrun: completions endpoints get a prompt string") {
  TempDir dir;
  RefEndpoint ep(dir, "ep", {"--keys", DataDir() + "/gsm8k_keys.jsonl"});
  const std::string out = dir / "out";
  nlohmann::json p =
      BasePlan(out, "native_gsm8k", DataDir() + "/gsm8k_tiny.jsonl", ep.url("/v1/completions"));
  p["target"]["api_endpoint"]["type"] = "completions";
  Run r = Evalrun(dir, WritePlan(dir, "plan", p), "run");
  REQUIRE(r.code == 0);
  CHECK(ep.Stats()["paths"]["/v1/completions"] == 12);
  CHECK(Score(out, "native_gsm8k", "lenient_numeric_match") == 1.0);
}

TEST_CASE("evalrun: progress tracking posts samples_processed to a URL") {
  TempDir dir;
  RefEndpoint ep(dir, "ep", {"--keys", DataDir() + "/gsm8k_keys.jsonl"});
  httplib::Server tracker;
  std::mutex mu;
  std::vector<int64_t> seen;
  tracker.Post("/progress", [&](const httplib::Request& req, httplib::Response& res) {
    std::lock_guard<std::mutex> lock(mu);
    seen.push_back(nlohmann::json::parse(req.body)["samples_processed"].get<int64_t>());
    res.set_content("{}", "application/json");
  });
  int port = tracker.bind_to_any_port("127.0.0.1");
  std::thread t([&] { tracker.listen_after_bind(); });
  while (!tracker.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const std::string out = dir / "out";
  nlohmann::json p = BasePlan(out, "native_gsm8k", DataDir() + "/gsm8k_tiny.jsonl", ep.url());
  p["target"]["api_endpoint"]["adapter_config"] = {
      {"use_progress_tracking", true},
      {"progress_tracking_url", "http://127.0.0.1:" + std::to_string(port) + "/progress"},
      {"progress_tracking_interval", 4}};
  Run r = Evalrun(dir, WritePlan(dir, "plan", p), "run");
  tracker.stop();
  t.join();
  REQUIRE(r.code == 0);
  std::lock_guard<std::mutex> lock(mu);
  REQUIRE_FALSE(seen.empty());
  CHECK(seen.back() == 12);
  for (size_t i = 1; i < seen.size(); ++i) CHECK(seen[i] > seen[i - 1]);
}

}  // namespace
}  // namespace evald::runner
