#include "daemon/export/wandb_exporter.h"

#include <catch2/catch.hpp>
#include <chrono>

#include "absl/strings/escaping.h"
#include "tests/daemon/export/export_test_util.h"
#include "tests/fixtures/wandb_fake/server.h"

namespace evald::daemon::exporters {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using testing::MakeJob;
using testing::SimpleResults;
using testing::TempDir;
using wandb_fake::Fault;
using wandb_fake::WandbFakeServer;

constexpr char kKey[] = "wandb-canary-key-0123456789abcdef";

RestClientOptions FastClient() {
  RestClientOptions o;
  o.backoff_base = absl::Milliseconds(5);
  o.backoff_max = absl::Seconds(2);
  o.request_timeout = absl::Seconds(5);
  return o;
}

WandbExporter Exporter(const WandbFakeServer& fake, json cfg = json::object(),
                       const std::string& key = kKey) {
  cfg["base_url"] = fake.url() + "/";
  if (!cfg.contains("project")) cfg["project"] = "evals";
  absl::StatusOr<WandbExporter> e = WandbExporter::FromConfig(cfg, key, FastClient());
  REQUIRE(e.ok());
  return *e;
}

// "METHOD path operation status" of every recorded request.
std::vector<std::string> Calls(const json& requests) {
  std::vector<std::string> out;
  for (const json& r : requests) {
    std::string path = r["path"];
    if (path.rfind("/_storage/", 0) == 0) path = "/_storage/...";
    out.push_back(r["method"].get<std::string>() + " " + path +
                  (r["operation"].is_string() ? " " + r["operation"].get<std::string>() : "") +
                  " " + std::to_string(r["status"].get<int>()));
  }
  return out;
}

JobExportInput Job(const fs::path& root, int index = 2) {
  JobExportInput job = MakeJob(root, "0123abcd", index, "lm-evaluation-harness.gsm8k", R"(results:
  tasks:
    gsm8k:
      metrics:
        exact_match: {scores: {strict-match: {value: 0.75}, flexible-extract: {value: 0.5}}}
        latency: {value: 3.0}
)");
  job.config_yaml = "target: {api_endpoint: {model_id: my/model}}\n";
  return job;
}

bool HoldsKey(const std::string& text) { return text.find(kKey) != std::string::npos; }

TEST_CASE("wandb: per_task run with config, history, summary and files over GraphQL") {
  TempDir tmp;
  WandbFakeServer fake({.api_key = kKey});
  REQUIRE(fake.Start().ok());
  JobExportResult r = Exporter(fake, {{"entity", "team"},
                                      {"tags", {"baseline", "h100"}},
                                      {"description", "first run"},
                                      {"extra_metadata", {{"hardware", "H100"}, {"gpus", 8}}}})
                          .ExportJob(Job(tmp.path()));
  INFO(r.message);
  REQUIRE(r.success);
  const std::string run_id = r.metadata["run_id"];
  CHECK(run_id.size() == 8);
  const json requests = fake.Requests();
  CHECK(Calls(requests) ==
        std::vector<std::string>{"POST /graphql Runs 200", "POST /graphql RunResumeStatus 200",
                                 "POST /graphql UpsertBucket 200",
                                 "POST /files/team/evals/" + run_id + "/file_stream 200",
                                 "POST /graphql RunUploadUrls 200", "PUT /_storage/... 200",
                                 "PUT /_storage/... 200", "PUT /_storage/... 200",
                                 "POST /files/team/evals/" + run_id + "/file_stream 200"});
  const std::string basic = "Basic " + absl::Base64Escape(std::string("api:") + kKey);
  for (const json& req : requests) {
    if (req["path"].get<std::string>().rfind("/_storage/", 0) == 0) {
      CHECK_FALSE(req["headers"].contains("authorization"));  // the signed URL is the credential
    } else {
      CHECK(req["headers"]["authorization"] == basic);
    }
  }
  CHECK(requests[0]["json"]["variables"]["filters"] ==
        json{{"display_name", "eval-0123abcd-gsm8k"}}.dump());
  const json& upsert = requests[2]["json"]["variables"];
  CHECK(upsert["name"] == run_id);
  CHECK(upsert["entity"] == "team");
  CHECK(upsert["project"] == "evals");
  CHECK(upsert["displayName"] == "eval-0123abcd-gsm8k");
  CHECK(upsert["groupName"] == "0123abcd");
  CHECK(upsert["jobType"] == "evaluation");
  CHECK(upsert["notes"] == "first run");
  CHECK(upsert["tags"] == json{"baseline", "h100"});

  const json run = fake.State()["runs"]["team/evals/" + run_id];
  CHECK(run["config"] == json::parse(R"({
    "invocation_id": {"desc": null, "value": "0123abcd"},
    "executor": {"desc": null, "value": "local"},
    "job_id": {"desc": null, "value": "0123abcd.2"},
    "harness": {"desc": null, "value": "lm-evaluation-harness"},
    "benchmark": {"desc": null, "value": "gsm8k"},
    "hardware": {"desc": null, "value": "H100"},
    "gpus": {"desc": null, "value": 8}})"));
  REQUIRE(run["history"].size() == 1);
  const json& line = run["history"][0];
  CHECK(line["_step"] == 2);
  CHECK(line["gsm8k_exact_match_strict-match"] == 0.75);
  CHECK(line["gsm8k_exact_match_flexible-extract"] == 0.5);
  CHECK_FALSE(line.contains("gsm8k_latency"));
  CHECK(run["summary"]["gsm8k_exact_match_strict-match"] == 0.75);
  CHECK(run["summary"]["_step"] == 2);
  CHECK(run["state"] == "finished");
  CHECK(run["exitcode"] == 0);
  CHECK(run["files"]["config.yaml"] == "target: {api_endpoint: {model_id: my/model}}\n");
  CHECK(run["files"].contains("gsm8k/results.yml"));
  CHECK(run["files"].contains("gsm8k/eval_factory_metrics.json"));

  CHECK(r.metadata["run_url"] == fake.url() + "/team/evals/runs/" + run_id);
  CHECK(r.metadata["metrics_logged"] == 2);
  CHECK(r.metadata["artifacts_logged"] ==
        json{"config.yaml", "gsm8k/results.yml", "gsm8k/eval_factory_metrics.json"});
  CHECK(r.message == "Exported 2 metrics and 3 files to W&B run team/evals/" + run_id);
}

TEST_CASE("wandb: exporting a job again resumes its run, adds no run and no history line") {
  TempDir tmp;
  WandbFakeServer fake({.api_key = kKey});
  REQUIRE(fake.Start().ok());
  WandbExporter exporter = Exporter(fake, {{"log_artifacts", false}});
  JobExportResult first = exporter.ExportJob(Job(tmp.path()));
  REQUIRE(first.success);
  JobExportResult second = exporter.ExportJob(Job(tmp.path()));
  REQUIRE(second.success);
  CHECK(second.metadata["run_id"] == first.metadata["run_id"]);
  CHECK(second.metadata["resumed"] == true);
  CHECK(second.message.find("(resumed)") != std::string::npos);
  // No entity given: the key's default one.
  CHECK(first.metadata["entity"] == "evald-user");
  const json state = fake.State();
  REQUIRE(state["runs"].size() == 1);
  CHECK(state["runs"].begin().value()["history"].size() == 1);
}

TEST_CASE("wandb: multi_task logs every job of an invocation into one run") {
  TempDir tmp;
  WandbFakeServer fake({.api_key = kKey});
  REQUIRE(fake.Start().ok());
  JobExportInput a = MakeJob(tmp.path(), "feed0001", 0, "gsm8k", SimpleResults("gsm8k", 0.5));
  JobExportInput b = MakeJob(tmp.path(), "feed0001", 1, "mmlu", SimpleResults("mmlu", 0.25));
  WandbExporter exporter = Exporter(fake, {{"log_mode", "multi_task"}, {"log_artifacts", false}});
  InvocationExportResult r = exporter.ExportInvocation({a, b});
  REQUIRE(r.success);
  CHECK(r.metadata["run_url"] == fake.url() + "/evald-user/evals/runs/feed0001");
  json run = fake.State()["runs"]["evald-user/evals/feed0001"];
  CHECK(run["displayName"] == "eval-feed0001");
  CHECK(run["config"]["benchmarks"]["value"] == json{"gsm8k", "mmlu"});
  CHECK(run["config"]["harnesses"]["value"] == json{"lm-evaluation-harness"});
  REQUIRE(run["history"].size() == 2);
  CHECK(run["history"][0]["_step"] == 0);
  CHECK(run["history"][0]["gsm8k_accuracy"] == 0.5);
  CHECK(run["history"][1]["_step"] == 1);
  CHECK(run["history"][1]["mmlu_accuracy"] == 0.25);
  CHECK(run["summary"]["gsm8k_accuracy"] == 0.5);
  CHECK(run["summary"]["mmlu_accuracy"] == 0.25);
  // Again: the same run, the same two history lines.
  REQUIRE(exporter.ExportInvocation({a, b}).success);
  run = fake.State()["runs"]["evald-user/evals/feed0001"];
  CHECK(fake.State()["runs"].size() == 1);
  CHECK(run["history"].size() == 2);
  CHECK(run["config"]["benchmarks"]["value"] == json{"gsm8k", "mmlu"});
}

TEST_CASE("wandb: jobs sharing a run exported out of order each get a history line, once") {
  TempDir tmp;
  WandbFakeServer fake({.api_key = kKey});
  REQUIRE(fake.Start().ok());
  JobExportInput a = MakeJob(tmp.path(), "feed0002", 0, "gsm8k", SimpleResults("gsm8k", 0.5));
  JobExportInput b = MakeJob(tmp.path(), "feed0002", 1, "mmlu", SimpleResults("mmlu", 0.25));
  WandbExporter exporter = Exporter(fake, {{"log_mode", "multi_task"}, {"log_artifacts", false}});
  // Job 1 ended first: auto-export sends each job as it succeeds.
  REQUIRE(exporter.ExportInvocation({b}).success);
  REQUIRE(exporter.ExportInvocation({a}).success);
  json run = fake.State()["runs"]["evald-user/evals/feed0002"];
  REQUIRE(run["history"].size() == 2);
  CHECK(run["history"][0]["_step"] == 1);
  CHECK(run["history"][0]["mmlu_accuracy"] == 0.25);
  CHECK(run["history"][1]["_step"] == 2);  // steps only go up in W&B
  CHECK(run["history"][1]["gsm8k_accuracy"] == 0.5);
  REQUIRE(exporter.ExportInvocation({a, b}).success);
  CHECK(fake.State()["runs"]["evald-user/evals/feed0002"]["history"].size() == 2);
}

TEST_CASE("wandb: 429 with Retry-After is honoured and 5xx retried") {
  TempDir tmp;
  WandbFakeServer fake({.api_key = kKey});
  REQUIRE(fake.Start().ok());
  fake.AddFault({.method = "POST", .path = "/graphql", .status = 503, .count = 2});
  fake.AddFault({.method = "POST", .path = "*/file_stream", .status = 429, .retry_after = "1"});
  const auto start = std::chrono::steady_clock::now();
  JobExportResult r = Exporter(fake, {{"log_artifacts", false}}).ExportJob(Job(tmp.path()));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  INFO(r.message);
  REQUIRE(r.success);
  CHECK(seconds >= 1.0);
  const std::vector<std::string> calls = Calls(fake.Requests());
  REQUIRE(calls.size() == 8);
  CHECK(calls[0] == "POST /graphql Runs 503");
  CHECK(calls[1] == "POST /graphql Runs 503");
  CHECK(calls[2] == "POST /graphql Runs 200");
  CHECK(calls[5].find("file_stream 429") != std::string::npos);
  CHECK(calls[6].find("file_stream 200") != std::string::npos);
  CHECK(fake.State()["runs"].size() == 1);
}

TEST_CASE("wandb: 5xx on every attempt gives up naming the route and status") {
  TempDir tmp;
  WandbFakeServer fake({.api_key = kKey});
  REQUIRE(fake.Start().ok());
  fake.AddFault({.path = "/graphql", .status = 502, .count = -1, .message = "bad gateway"});
  JobExportResult r = Exporter(fake).ExportJob(Job(tmp.path()));
  CHECK_FALSE(r.success);
  CHECK(r.message == "W&B POST /graphql Runs: HTTP 502: bad gateway");
  CHECK(fake.Requests().size() == 6);  // max_attempts
}

TEST_CASE("wandb: 401 is not retried and no message holds the key") {
  TempDir tmp;
  WandbFakeServer fake({.api_key = "the-right-key-000"});
  REQUIRE(fake.Start().ok());
  JobExportResult r = Exporter(fake).ExportJob(Job(tmp.path()));
  CHECK_FALSE(r.success);
  CHECK(r.message ==
        "W&B POST /graphql Runs: HTTP 401: user is not logged in (invalid API key) (the W&B API "
        "key was refused; check WANDB_API_KEY)");
  CHECK(fake.Requests().size() == 1);
  CHECK_FALSE(HoldsKey(r.message));
  CHECK_FALSE(HoldsKey(r.metadata.dump()));
  // A 404 on the file stream (run gone) is not retried either.
  WandbFakeServer ok({.api_key = kKey});
  REQUIRE(ok.Start().ok());
  ok.AddFault({.path = "*/file_stream", .status = 404, .message = "run not found"});
  JobExportResult gone = Exporter(ok, {{"log_artifacts", false}}).ExportJob(Job(tmp.path()));
  CHECK_FALSE(gone.success);
  INFO(gone.message);
  CHECK(gone.message.find("file_stream: HTTP 404: run not found") != std::string::npos);
}

TEST_CASE("wandb: config errors name the key and what was expected") {
  auto error = [](const json& cfg, const std::string& key = "k") {
    absl::StatusOr<WandbExporter> e = WandbExporter::FromConfig(cfg, key);
    REQUIRE_FALSE(e.ok());
    return std::string(e.status().message());
  };
  CHECK(error(json::object()) ==
        "export config wandb.project is required (the W&B project to log runs to)");
  CHECK(error({{"project", "p"}, {"log_mode", "both"}}) ==
        "export config wandb.log_mode must be per_task or multi_task, not 'both'");
  CHECK(error({{"project", "p"}, {"tags", {{"a", 1}}}}) ==
        "export config wandb.tags must be a list");
  CHECK(error({{"project", "p"}, {"log_artifacts", "yes"}}) ==
        "export config wandb.log_artifacts must be true or false, not \"yes\"");
  CHECK(error({{"project", "p"}, {"extra_metadata", "x"}}) ==
        "export config wandb.extra_metadata must be a mapping");
  CHECK(error({{"project", "p"}}, "").find("set WANDB_API_KEY") != std::string::npos);
  CHECK(error({{"project", "p"}, {"base_url", "ftp://x"}}).find("wandb.base_url must be") !=
        std::string::npos);
}

}  // namespace
}  // namespace evald::daemon::exporters
