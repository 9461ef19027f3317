// `evalctl export` against a scripted API: what it sends (flags only when given, the MLflow token
// or W&B key as a secret), what it prints per job, and its exit codes.
#include <catch2/catch.hpp>

#include "absl/strings/match.h"
#include "nlohmann/json.hpp"
#include "tests/cli/fake_api.h"

namespace evald::cli::testing {
namespace {

constexpr char kToken[] = "mlflow-token-1234-secret";

// FakeApi plus a scripted Export that echoes the token into its messages, as a careless server
// might: evalctl must scrub it.
class ExportApi : public FakeApi {
 public:
  absl::Status export_status;
  v1::ExportResponse export_response;
  std::vector<v1::ExportRequest> export_requests;
  absl::Status Export(const v1::ExportRequest& request, v1::ExportResponse* response) override {
    export_requests.push_back(request);
    if (!export_status.ok()) return export_status;
    *response = export_response;
    return absl::OkStatus();
  }
};

v1::ExportResponse TwoJobs(bool second_ok) {
  v1::ExportResponse r;
  r.set_dest("mlflow");
  r.set_success(second_ok);
  v1::ExportInvocationResult* inv = r.add_invocations();
  inv->set_invocation_id("1a2b3c4d");
  inv->set_success(second_ok);
  v1::ExportJobResult* a = inv->add_jobs();
  a->set_job_id("1a2b3c4d.0");
  a->set_success(true);
  a->set_message("Exported 1 metrics, 3 params and 2 artifacts to MLflow run abc");
  a->set_run_url("http://mlflow:5000/#/experiments/1/runs/abc");
  a->set_metadata_json(R"({"run_id": "abc"})");
  v1::ExportJobResult* b = inv->add_jobs();
  b->set_job_id("1a2b3c4d.1");
  b->set_success(second_ok);
  b->set_message(second_ok ? "Exported" : std::string("HTTP 401 for token ") + kToken);
  inv->add_skipped("1a2b3c4d.2: failed");
  return r;
}

TEST_CASE("export sends only the flags given and the MLflow token as a secret") {
  ExportApi api;
  api.export_response = TwoJobs(true);
  Harness h(&api);
  h.env["MLFLOW_TRACKING_TOKEN"] = kToken;
  ExportOptions o;
  o.ids = {"1a2b3c4d", "5e6f7a8b.0"};
  o.dest = "mlflow";
  o.overrides = {"export.mlflow.tracking_uri=http://mlflow:5000"};
  o.format = "csv";  // local only: a note, not sent
  o.log_metrics = {"accuracy"};
  REQUIRE(RunExport(h.ctx, o) == kExitOk);
  REQUIRE(api.export_requests.size() == 1);
  const v1::ExportRequest& req = api.export_requests[0];
  CHECK(req.ids_size() == 2);
  CHECK(req.dest() == "mlflow");
  CHECK(req.secrets().at("MLFLOW_TRACKING_TOKEN") == kToken);
  CHECK_FALSE(req.has_format());
  CHECK_FALSE(req.has_copy_logs());
  CHECK_FALSE(req.has_only_required());
  CHECK_FALSE(req.has_output_dir());
  CHECK(req.log_metrics(0) == "accuracy");
  CHECK(req.working_dir() == "/work/dir");
  CHECK(absl::StrContains(h.err.str(), "--format is only used by --dest local"));
  CHECK(absl::StrContains(h.out.str(), "Export completed for 1a2b3c4d\n"));
  CHECK(absl::StrContains(h.out.str(), "  1a2b3c4d.0: Exported 1 metrics"));
  CHECK(absl::StrContains(h.out.str(), "    URL: http://mlflow:5000/#/experiments/1/runs/abc\n"));
  CHECK(absl::StrContains(h.out.str(), "  1a2b3c4d.2: failed (not exported)\n"));
}

TEST_CASE("export --dest wandb sends WANDB_API_KEY as a secret and scrubs it, gsheets sends none") {
  ExportApi api;
  api.export_response = TwoJobs(false);
  api.export_response.mutable_invocations(0)->mutable_jobs(1)->set_message(
      "W&B said no to wandb-key-canary-5678");
  Harness h(&api);
  h.env["WANDB_API_KEY"] = "wandb-key-canary-5678";
  h.env["MLFLOW_TRACKING_TOKEN"] = kToken;
  ExportOptions o;
  o.ids = {"1a2b3c4d"};
  o.dest = "wandb";
  CHECK(RunExport(h.ctx, o) == kExitFailed);
  REQUIRE(api.export_requests.size() == 1);
  CHECK(api.export_requests[0].dest() == "wandb");
  CHECK(api.export_requests[0].secrets().size() == 1);  // not the MLflow token
  CHECK(api.export_requests[0].secrets().at("WANDB_API_KEY") == "wandb-key-canary-5678");
  CHECK_FALSE(absl::StrContains(h.all(), "wandb-key-canary-5678"));
  o.dest = "gsheets";
  api.export_response = TwoJobs(true);
  CHECK(RunExport(h.ctx, o) == kExitOk);
  CHECK(api.export_requests[1].secrets().empty());  // the key file is read by evald
}

TEST_CASE("export: a failed job exits 1 and the token never shows") {
  ExportApi api;
  api.export_response = TwoJobs(false);
  Harness h(&api);
  h.env["MLFLOW_TRACKING_TOKEN"] = kToken;
  ExportOptions o;
  o.ids = {"1a2b3c4d"};
  o.dest = "mlflow";
  CHECK(RunExport(h.ctx, o) == kExitFailed);
  CHECK(absl::StrContains(h.out.str(), "  1a2b3c4d.1 failed: HTTP 401 for token <secret:"));
  CHECK_FALSE(absl::StrContains(h.all(), kToken));

  Harness j(&api);
  j.env["MLFLOW_TRACKING_TOKEN"] = kToken;
  o.json = true;
  CHECK(RunExport(j.ctx, o) == kExitFailed);
  nlohmann::json doc = nlohmann::json::parse(j.out.str());
  CHECK(doc["success"] == false);
  CHECK(doc["invocations"][0]["jobs"][0]["metadata"]["run_id"] == "abc");
  CHECK(doc["invocations"][0]["skipped"][0] == "1a2b3c4d.2: failed");
  CHECK_FALSE(absl::StrContains(j.all(), kToken));
}

TEST_CASE("export: bad destination or format exit 2 before sending, and RPC errors map as usual") {
  ExportApi api;
  Harness h(&api);
  ExportOptions o;
  o.ids = {"1a2b3c4d"};
  o.dest = "jet";  // a choice of the reference's CLI without an exporter
  CHECK(RunExport(h.ctx, o) == kExitBadInput);
  CHECK(absl::StrContains(h.err.str(), "--dest jet: use local, mlflow, wandb or gsheets"));
  o.dest = "local";
  o.format = "xml";
  CHECK(RunExport(h.ctx, o) == kExitBadInput);
  CHECK(api.export_requests.empty());
  o.format = "json";
  o.copy_logs = true;
  o.only_required = false;
  api.export_status = absl::FailedPreconditionError("job 1a2b3c4d.1 is failed");
  CHECK(RunExport(h.ctx, o) == kExitRefused);
  REQUIRE(api.export_requests.size() == 1);
  CHECK(api.export_requests[0].format() == "json");
  CHECK(api.export_requests[0].copy_logs());
  CHECK_FALSE(api.export_requests[0].only_required());
  CHECK(api.export_requests[0].secrets().empty());  // local: no token sent
  api.export_status = absl::NotFoundError("no invocation 1a2b3c4d");
  CHECK(RunExport(h.ctx, o) == kExitNotFound);
}

}  // namespace
}  // namespace evald::cli::testing
