#include "daemon/export/mlflow_exporter.h"

#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

#include "tests/daemon/export/export_test_util.h"
#include "tests/fixtures/mlflow_fake/server.h"

namespace evald::daemon::exporters {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using mlflow_fake::Fault;
using mlflow_fake::MlflowFakeServer;
using testing::MakeJob;
using testing::SimpleResults;
using testing::TempDir;

// Fast retries so fault tests take milliseconds.
MlflowClient::Options FastClient() {
  MlflowClient::Options o;
  o.backoff_base = absl::Milliseconds(5);
  o.backoff_max = absl::Seconds(2);
  o.request_timeout = absl::Seconds(5);
  return o;
}

MlflowExporter Exporter(const MlflowFakeServer& fake, json cfg = json::object(),
                        const std::string& token = "") {
  cfg["tracking_uri"] = fake.url() + "/";
  absl::StatusOr<MlflowExporter> e = MlflowExporter::FromConfig(cfg, token, FastClient());
  REQUIRE(e.ok());
  return *e;
}

// "METHOD path" of every recorded request with its status.
std::vector<std::string> Calls(const json& requests) {
  std::vector<std::string> out;
  for (const json& r : requests) {
    out.push_back(r["method"].get<std::string>() + " " + r["path"].get<std::string>() + " " +
                  std::to_string(r["status"].get<int>()));
  }
  return out;
}

JobExportInput Job(const fs::path& root) {
  JobExportInput job = MakeJob(root, "0123abcd", 2, "lm-evaluation-harness.gsm8k", R"(results:
  tasks:
    gsm8k:
      metrics:
        exact_match: {scores: {strict-match: {value: 0.75}, flexible-extract: {value: 0.5}}}
        latency: {value: 3.0}
)");
  job.config_yaml = "target: {api_endpoint: {model_id: my/model}}\n";
  return job;
}

TEST_CASE("mlflow: one run per job with exact metrics, params, tags and artifacts") {
  TempDir tmp;
  MlflowFakeServer fake({.token = "s3cret-token"});
  REQUIRE(fake.Start().ok());
  JobExportInput job = Job(tmp.path());
  MlflowExporter exporter = Exporter(fake,
                                     {{"experiment_name", "evals"},
                                      {"description", "baseline run"},
                                      {"tags", {{"framework", "vLLM"}, {"job_id", "user"}}},
                                      {"extra_metadata", {{"hardware", "H100"}, {"empty", ""}}}},
                                     "s3cret-token");
  JobExportResult r = exporter.ExportJob(job);
  REQUIRE(r.success);
  const json requests = fake.Requests();
  CHECK(Calls(requests) ==
        std::vector<std::string>{
            "GET /api/2.0/mlflow/experiments/get-by-name 404",
            "POST /api/2.0/mlflow/experiments/create 200", "POST /api/2.0/mlflow/runs/create 200",
            "POST /api/2.0/mlflow/runs/log-batch 200",
            "PUT /api/2.0/mlflow-artifacts/artifacts/1/" + r.metadata["run_id"].get<std::string>() +
                "/artifacts/config.yaml 200",
            "PUT /api/2.0/mlflow-artifacts/artifacts/1/" + r.metadata["run_id"].get<std::string>() +
                "/artifacts/gsm8k/results.yml 200",
            "PUT /api/2.0/mlflow-artifacts/artifacts/1/" + r.metadata["run_id"].get<std::string>() +
                "/artifacts/gsm8k/eval_factory_metrics.json 200",
            "POST /api/2.0/mlflow/runs/update 200"});
  for (const json& req : requests) {
    CHECK(req["headers"]["authorization"] == "Bearer s3cret-token");
  }
  CHECK(requests[0]["query"] == json{{"experiment_name", {"evals"}}});
  CHECK(requests[1]["json"] == json{{"name", "evals"}});
  const json& create = requests[2]["json"];
  CHECK(create["experiment_id"] == "1");
  CHECK(create["run_name"] == "eval-0123abcd-gsm8k");
  CHECK(create["tags"] == json::parse(R"([
    {"key": "framework", "value": "vLLM"}, {"key": "job_id", "value": "0123abcd.2"},
    {"key": "invocation_id", "value": "0123abcd"}, {"key": "task_name", "value": "gsm8k"},
    {"key": "benchmark", "value": "gsm8k"}, {"key": "harness", "value": "lm-evaluation-harness"},
    {"key": "executor", "value": "local"}, {"key": "mlflow.note.content", "value": "baseline run"}
  ])"));
  const json& batch = requests[3]["json"];
  CHECK(batch["run_id"] == r.metadata["run_id"]);
  REQUIRE(batch["metrics"].size() == 2);
  CHECK(batch["metrics"][0]["key"] == "gsm8k_exact_match_flexible-extract");
  CHECK(batch["metrics"][0]["value"] == 0.5);
  CHECK(batch["metrics"][1]["key"] == "gsm8k_exact_match_strict-match");
  CHECK(batch["metrics"][1]["value"] == 0.75);
  CHECK(batch["metrics"][0]["step"] == 0);
  CHECK(batch["metrics"][0]["timestamp"].is_number_integer());
  CHECK(batch["params"] == json::parse(R"([
    {"key": "invocation_id", "value": "0123abcd"}, {"key": "executor", "value": "local"},
    {"key": "timestamp", "value": "2026-12-06T10:00:00Z"}, {"key": "hardware", "value": "H100"}
  ])"));
  CHECK(batch["tags"] == json::array());
  CHECK(requests[7]["json"]["status"] == "FINISHED");
  CHECK(requests[4]["body"] == job.config_yaml);

  const std::string run_id = r.metadata["run_id"];
  CHECK(r.metadata["run_url"] == fake.url() + "/#/experiments/1/runs/" + run_id);
  CHECK(r.metadata["experiment_id"] == "1");
  CHECK(r.metadata["tracking_uri"] == fake.url());
  CHECK(r.metadata["metrics_logged"] == 2);
  CHECK(r.metadata["params_logged"] == 4);
  CHECK(r.metadata["artifacts_logged"] ==
        json{"config.yaml", "gsm8k/results.yml", "gsm8k/eval_factory_metrics.json"});
  CHECK(r.message == "Exported 2 metrics, 4 params and 3 artifacts to MLflow run " + run_id);
  const json state = fake.State();
  CHECK(state["runs"][run_id]["info"]["status"] == "FINISHED");
  CHECK(state["runs"][run_id]["tags"]["mlflow.runName"] == "eval-0123abcd-gsm8k");
}

TEST_CASE("mlflow: log_metrics, log_artifacts false and an existing experiment") {
  TempDir tmp;
  MlflowFakeServer fake;
  REQUIRE(fake.Start().ok());
  MlflowExporter first = Exporter(fake, {{"log_metrics", {"strict"}}, {"log_artifacts", false}});
  REQUIRE(first.ExportJob(Job(tmp.path())).success);
  REQUIRE(first.ExportJob(Job(tmp.path())).success);
  const json requests = fake.Requests();
  // Second export: the experiment is found, no create.
  REQUIRE(requests.size() == 9);  // no artifact uploads
  CHECK(Calls(requests)[5] == "GET /api/2.0/mlflow/experiments/get-by-name 200");
  CHECK(Calls(requests)[6] == "POST /api/2.0/mlflow/runs/create 200");
  CHECK(requests[3]["json"]["metrics"] ==
        json::parse(R"([{"key": "gsm8k_exact_match_strict-match", "value": 0.75,
                         "timestamp": )" +
                    requests[3]["json"]["metrics"][0]["timestamp"].dump() + R"(, "step": 0}])"));
  CHECK(fake.State()["runs"].size() == 2);
}

TEST_CASE("mlflow: skip_existing finds the job's run by its tags and creates nothing") {
  TempDir tmp;
  MlflowFakeServer fake;
  REQUIRE(fake.Start().ok());
  MlflowExporter exporter = Exporter(fake, {{"skip_existing", true}});
  JobExportResult first = exporter.ExportJob(Job(tmp.path()));
  REQUIRE(first.success);
  const size_t before = fake.Requests().size();
  JobExportResult second = exporter.ExportJob(Job(tmp.path()));
  REQUIRE(second.success);
  CHECK(second.metadata["skipped"] == true);
  CHECK(second.metadata["run_id"] == first.metadata["run_id"]);
  CHECK(second.message == "Skipped: MLflow run " + first.metadata["run_id"].get<std::string>() +
                              " already exists (tags.invocation_id = '0123abcd' and tags.job_id "
                              "= '0123abcd.2')");
  const json requests = fake.Requests();
  CHECK(requests.size() - before == 2);
  CHECK(Calls(requests).back() == "POST /api/2.0/mlflow/runs/search 200");
  CHECK(requests.back()["json"] ==
        json{{"experiment_ids", {"1"}},
             {"filter", "tags.invocation_id = '0123abcd' and tags.job_id = '0123abcd.2'"},
             {"max_results", 1000}});
  CHECK(fake.State()["runs"].size() == 1);
  // Another job of the same invocation is not skipped.
  JobExportInput other = MakeJob(tmp.path(), "0123abcd", 3, "mmlu", SimpleResults("mmlu", 0.5));
  JobExportResult third = exporter.ExportJob(other);
  REQUIRE(third.success);
  CHECK_FALSE(third.metadata.contains("skipped"));
  CHECK(fake.State()["runs"].size() == 2);
}

TEST_CASE("mlflow: 503 twice then success, 429 with Retry-After, a slow answer retried") {
  TempDir tmp;
  MlflowFakeServer fake;
  REQUIRE(fake.Start().ok());
  fake.AddFault({.method = "POST", .path = "*/runs/create", .status = 503, .count = 2});
  fake.AddFault({.method = "POST", .path = "*/runs/log-batch", .status = 429, .retry_after = "1"});
  JobExportInput job = Job(tmp.path());
  auto start = std::chrono::steady_clock::now();
  JobExportResult r = Exporter(fake, {{"log_artifacts", false}}).ExportJob(job);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  REQUIRE(r.success);
  CHECK(seconds >= 1.0);  // Retry-After honoured
  const json requests = fake.Requests();
  CHECK(Calls(requests) ==
        std::vector<std::string>{
            "GET /api/2.0/mlflow/experiments/get-by-name 404",
            "POST /api/2.0/mlflow/experiments/create 200", "POST /api/2.0/mlflow/runs/create 503",
            "POST /api/2.0/mlflow/runs/create 503", "POST /api/2.0/mlflow/runs/create 200",
            "POST /api/2.0/mlflow/runs/log-batch 429", "POST /api/2.0/mlflow/runs/log-batch 200",
            "POST /api/2.0/mlflow/runs/update 200"});
  CHECK(requests[2]["fault"] == "503");
  CHECK(fake.State()["runs"].size() == 1);

  // A GET answered after the client's timeout is retried.
  MlflowClient::Options slow = FastClient();
  slow.request_timeout = absl::Milliseconds(300);
  fake.AddFault({.method = "GET", .path = "*/get-by-name", .count = 1, .delay_ms = 1000});
  MlflowClient client([&] {
    slow.tracking_uri = fake.url();
    return slow;
  }());
  const size_t before = fake.Requests().size();
  const auto get_start = std::chrono::steady_clock::now();
  absl::StatusOr<std::string> id = client.GetExperimentIdByName("nemo-evaluator-launcher");
  REQUIRE(id.ok());
  CHECK(*id == "1");
  // Answered by a retry well before the slow answer (1 s) came: the first attempt timed out.
  CHECK(std::chrono::steady_clock::now() - get_start < std::chrono::milliseconds(900));
  // The fake records the slow GET once it has answered it, after the retry.
  json after = fake.Requests();
  for (int i = 0; i < 40 && after.size() < before + 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    after = fake.Requests();
  }
  REQUIRE(after.size() == before + 2);
  CHECK(Calls(after)[before] == "GET /api/2.0/mlflow/experiments/get-by-name 200");
  CHECK(after[before]["fault"].is_null());
  CHECK(after[before + 1]["path"] == "/api/2.0/mlflow/experiments/get-by-name");
  CHECK(after[before + 1]["fault"] == "slow");
}

TEST_CASE("mlflow: 503 on every attempt gives up with status, route and message") {
  TempDir tmp;
  MlflowFakeServer fake;
  REQUIRE(fake.Start().ok());
  fake.AddFault({.method = "POST",
                 .path = "*/runs/create",
                 .status = 503,
                 .count = -1,
                 .message = "database is locked"});
  JobExportResult r = Exporter(fake).ExportJob(Job(tmp.path()));
  CHECK_FALSE(r.success);
  CHECK(r.message ==
        "MLflow POST /api/2.0/mlflow/runs/create: HTTP 503: TEMPORARILY_UNAVAILABLE: database is "
        "locked");
  int creates = 0;
  for (const std::string& c : Calls(fake.Requests()))
    creates += c.find("runs/create") != std::string::npos;
  CHECK(creates == 6);  // max_attempts
}

TEST_CASE("mlflow: 401 is not retried and the error never shows the token") {
  TempDir tmp;
  MlflowFakeServer fake({.token = "right-token"});
  REQUIRE(fake.Start().ok());
  JobExportResult r = Exporter(fake, {}, "wrong-token-123").ExportJob(Job(tmp.path()));
  CHECK_FALSE(r.success);
  CHECK(r.message ==
        "MLflow GET /api/2.0/mlflow/experiments/get-by-name: HTTP 401: UNAUTHENTICATED: You are "
        "not authenticated. Please provide a valid token. (the token was refused)");
  CHECK(r.message.find("wrong-token-123") == std::string::npos);
  CHECK(r.metadata.dump().find("wrong-token-123") == std::string::npos);
  CHECK(fake.Requests().size() == 1);
  // Without a token the message says how to give one.
  JobExportResult none = Exporter(fake).ExportJob(Job(tmp.path()));
  CHECK(none.message.find("set MLFLOW_TRACKING_TOKEN") != std::string::npos);
}

TEST_CASE("mlflow: a failure after the run exists marks it FAILED") {
  TempDir tmp;
  MlflowFakeServer fake;
  REQUIRE(fake.Start().ok());
  fake.AddFault({.method = "PUT",
                 .path = "*/config.yaml",
                 .status = 404,
                 .error_code = "RESOURCE_DOES_NOT_EXIST",
                 .message = "no artifact root"});
  JobExportResult r = Exporter(fake).ExportJob(Job(tmp.path()));
  CHECK_FALSE(r.success);
  CHECK(r.message.find("HTTP 404: RESOURCE_DOES_NOT_EXIST: no artifact root") != std::string::npos);
  const std::string run_id = r.metadata["run_id"];
  CHECK(fake.State()["runs"][run_id]["info"]["status"] == "FAILED");
}

TEST_CASE("mlflow: params and tags are cut to MLflow's limits, empty params dropped") {
  TempDir tmp;
  MlflowFakeServer fake;
  REQUIRE(fake.Start().ok());
  const std::string long_value(300, 'v');
  const std::string long_note(6000, 'n');
  JobExportResult r = Exporter(fake, {{"extra_metadata", {{"long", long_value}, {"none", ""}}},
                                      {"description", long_note},
                                      {"log_artifacts", false}})
                          .ExportJob(Job(tmp.path()));
  REQUIRE(r.success);
  const json run = fake.State()["runs"][r.metadata["run_id"].get<std::string>()];
  CHECK(run["params"]["long"] == std::string(250, 'v'));
  CHECK_FALSE(run["params"].contains("none"));
  CHECK(run["tags"]["mlflow.note.content"] == std::string(5000, 'n'));
}

TEST_CASE("mlflow: an invocation is one run with the union of its jobs' metrics") {
  TempDir tmp;
  MlflowFakeServer fake;
  REQUIRE(fake.Start().ok());
  JobExportInput a = MakeJob(tmp.path(), "feed0001", 0, "gsm8k", SimpleResults("gsm8k", 0.5));
  JobExportInput b = MakeJob(tmp.path(), "feed0001", 1, "mmlu", SimpleResults("mmlu", 0.25));
  InvocationExportResult r = Exporter(fake).ExportInvocation({a, b});
  REQUIRE(r.success);
  const json run = fake.State()["runs"][r.metadata["run_id"].get<std::string>()];
  CHECK(run["info"]["run_name"] == "eval-feed0001");
  CHECK(run["metrics"] == json{{"gsm8k_accuracy", {0.5}}, {"mmlu_accuracy", {0.25}}});
  CHECK(run["params"]["jobs_count"] == "2");
  CHECK(run["tags"]["invocation_id"] == "feed0001");
  CHECK_FALSE(run["tags"].contains("job_id"));
  CHECK(fake.State()["artifacts"].size() == 4);
  REQUIRE(r.jobs.size() == 2);
  CHECK(r.jobs[1].metadata["run_url"] == r.metadata["run_url"]);
}

TEST_CASE("mlflow: config errors name the key") {
  absl::StatusOr<MlflowExporter> e = MlflowExporter::FromConfig(json::object(), "");
  REQUIRE_FALSE(e.ok());
  CHECK(e.status().message() == "export config mlflow.tracking_uri is required");
  e = MlflowExporter::FromConfig({{"tracking_uri", "file:///tmp/mlruns"}}, "");
  REQUIRE_FALSE(e.ok());
  CHECK(e.status().message().find("must be an http(s) URL") != std::string::npos);
  e = MlflowExporter::FromConfig({{"tracking_uri", "https://u:pw@mlflow.example/x"}}, "");
  REQUIRE_FALSE(e.ok());
  CHECK(e.status().message().find("must not hold credentials") != std::string::npos);
  CHECK(e.status().message().find("pw") == std::string::npos);
  CHECK(MlflowExporter::FromConfig({{"tracking_uri", "https://mlflow.example/a@b"}}, "").ok());
  e = MlflowExporter::FromConfig({{"tracking_uri", "http://x"}, {"tags", "a"}}, "");
  REQUIRE_FALSE(e.ok());
  CHECK(e.status().message() == "export config mlflow.tags must be a mapping");
}

}  // namespace
}  // namespace evald::daemon::exporters
