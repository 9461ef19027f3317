// Tests of LeptonClient against an in-process loopback Lepton API (LeptonFakeServer) with a
// frozen virtual clock: happy paths, error mapping, retries (counted in the fake's request log),
// and the no-duplicate-create rule after ambiguous POST failures.
#include "executors/lepton/lepton_client.h"

#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "nlohmann/json.hpp"
#include "tests/fixtures/lepton_fake/server.h"

namespace evald::executors::lepton {
namespace {

using json = nlohmann::json;
using lepton_fake::FakeOptions;
using lepton_fake::LeptonFakeServer;

constexpr char kToken[] = "tok-secret-4711";

class Fake {
 public:
  Fake() {
    FakeOptions options;
    options.frozen_clock = true;
    options.tokens = {kToken, "tok-other=ws-other"};
    server_ = std::make_unique<LeptonFakeServer>(options, ref_endpoint::KeyIndex());
    absl::StatusOr<int> port = server_->Bind();
    REQUIRE(port.ok());
    port_ = *port;
    thread_ = std::thread([this] { server_->Run(); });
  }
  ~Fake() {
    server_->Stop();
    thread_.join();
  }

  void Faults(const json& faults) { REQUIRE(server_->ApplyScenario({{"faults", faults}}).ok()); }

  // Recorded requests with this method whose full path ends with `suffix`.
  json Requests() const { return server_->Requests(); }

  int Count(const std::string& method, const std::string& suffix) const {
    int n = 0;
    for (const json& r : server_->Requests()) {
      if (r["method"] == method && absl::EndsWith(r["path"].get<std::string>(), suffix)) ++n;
    }
    return n;
  }

  LeptonClient Client(const std::string& token = kToken, int max_attempts = 4,
                      absl::Duration timeout = absl::Seconds(5)) const {
    return LeptonClient(ClientOptions(token, max_attempts, timeout));
  }

  LeptonClient::Options ClientOptions(const std::string& token = kToken, int max_attempts = 4,
                                      absl::Duration timeout = absl::Seconds(5)) const {
    LeptonClient::Options o;
    o.api_url = "http://127.0.0.1:" + std::to_string(port_);
    o.workspace_id = "ws-test";
    o.token = token;
    o.request_timeout = timeout;
    o.max_attempts = max_attempts;
    o.backoff_base = absl::Milliseconds(10);
    o.max_total = absl::Seconds(20);
    return o;
  }

 private:
  std::unique_ptr<LeptonFakeServer> server_;
  std::thread thread_;
  int port_ = 0;
};

json JobSpec(const std::string& name) {
  return {{"metadata", {{"name", name}}},
          {"spec",
           {{"container", {{"image", "busybox"}, {"command", {"true"}}}},
            {"resource_shape", "cpu.small"},
            {"completions", 1},
            {"parallelism", 1}}}};
}

json DeploymentSpec(const std::string& name) {
  return {{"metadata", {{"name", name}}},
          {"spec",
           {{"container", {{"image", "vllm/vllm-openai"}}},
            {"resource_requirement",
             {{"resource_shape", "gpu.1xh200"}, {"min_replicas", 1}, {"max_replicas", 1}}}}}};
}

TEST_CASE("LeptonClient jobs: create, get, list, stop, delete", "[lepton_client]") {
  Fake fake;
  LeptonClient client = fake.Client();
  absl::StatusOr<json> job = client.CreateJob(JobSpec("eval-a"));
  REQUIRE(job.ok());
  std::string id = (*job)["metadata"]["id"];
  CHECK(id != "eval-a");
  CHECK((*job)["metadata"]["name"] == "eval-a");

  absl::StatusOr<json> got = client.GetJob(id);
  REQUIRE(got.ok());
  CHECK((*got)["metadata"]["id"] == id);
  CHECK((*got)["status"]["state"] == "Queueing");

  REQUIRE(client.CreateJob(JobSpec("eval-b")).ok());
  absl::StatusOr<std::vector<json>> jobs = client.ListJobs();
  REQUIRE(jobs.ok());
  CHECK(jobs->size() == 2);
  CHECK(fake.Count("GET", "/jobs") == 1);  // one page holds them all

  REQUIRE(client.StopJob(id).ok());
  got = client.GetJob(id);
  REQUIRE(got.ok());
  CHECK((*got)["status"]["state"] == "Stopping");
  CHECK(client.DeleteJob(id).ok());
  CHECK(client.DeleteJob("no-such-job").ok());  // already gone counts as deleted
  CHECK(fake.Count("POST", "/jobs") == 2);

  json first = fake.Requests().front();
  CHECK(first["headers"]["authorization"] == std::string("Bearer ") + kToken);
  CHECK(first["headers"]["content-type"] == "application/json");
  CHECK(first["json"] == JobSpec("eval-a"));
}

TEST_CASE("LeptonClient deployments, readiness and node groups", "[lepton_client]") {
  Fake fake;
  LeptonClient client = fake.Client();
  absl::StatusOr<json> dep = client.CreateDeployment(DeploymentSpec("vllm-ep"));
  REQUIRE(dep.ok());
  absl::StatusOr<json> got = client.GetDeployment("vllm-ep");
  REQUIRE(got.ok());
  CHECK((*got)["status"]["state"] == "Starting");
  absl::StatusOr<std::vector<json>> all = client.ListDeployments();
  REQUIRE(all.ok());
  REQUIRE(all->size() == 1);
  CHECK((*all)[0]["metadata"]["name"] == "vllm-ep");
  absl::StatusOr<json> readiness = client.GetDeploymentReadiness("vllm-ep");
  REQUIRE(readiness.ok());
  REQUIRE(readiness->is_object());
  CHECK(readiness->size() == 1);

  absl::StatusOr<std::map<std::string, std::string>> groups = client.ListNodeGroups();
  REQUIRE(groups.ok());
  CHECK(groups->at("ng-h200-01") == "ng-h200-01-abcd");
  CHECK(groups->at("default") == "default-x7k2q");

  CHECK(client.DeleteDeployment("vllm-ep").ok());
  CHECK(client.DeleteDeployment("never-existed").ok());
}

TEST_CASE("LeptonClient 401 and 403 never show the token", "[lepton_client]") {
  Fake fake;
  absl::StatusOr<std::vector<json>> jobs = fake.Client("tok-wrong-9999").ListJobs();
  REQUIRE(!jobs.ok());
  CHECK(absl::IsUnauthenticated(jobs.status()));
  CHECK(HttpStatusOf(jobs.status()) == 401);
  std::string msg(jobs.status().message());
  CHECK(absl::StrContains(msg, "GET /jobs"));
  CHECK(absl::StrContains(msg, "401"));
  CHECK(!absl::StrContains(msg, "tok-wrong-9999"));
  CHECK(fake.Count("GET", "/jobs") == 1);  // auth errors are not retried

  // A server that echoes the token back in its error body.
  fake.Faults({{{"path", "/deployments"},
                {"status", 401},
                {"body", "text"},
                {"body_text", std::string("bad bearer ") + kToken}}});
  absl::StatusOr<std::vector<json>> deps = fake.Client().ListDeployments();
  REQUIRE(absl::IsUnauthenticated(deps.status()));
  CHECK(!absl::StrContains(deps.status().message(), kToken));

  absl::StatusOr<json> other = fake.Client("tok-other").GetJob("x");
  CHECK(absl::IsPermissionDenied(other.status()));
  CHECK(!absl::StrContains(other.status().message(), "tok-other"));
}

TEST_CASE("LeptonClient 404 and 409", "[lepton_client]") {
  Fake fake;
  LeptonClient client = fake.Client();
  absl::StatusOr<json> missing = client.GetJob("nope-12345");
  REQUIRE(absl::IsNotFound(missing.status()));
  CHECK(HttpStatusOf(missing.status()) == 404);
  CHECK(absl::StrContains(missing.status().message(), "GET /jobs/nope-12345: HTTP 404"));
  CHECK(fake.Count("GET", "/jobs/nope-12345") == 1);

  REQUIRE(client.CreateDeployment(DeploymentSpec("dup")).ok());
  absl::StatusOr<json> again = client.CreateDeployment(DeploymentSpec("dup"));
  CHECK(absl::IsAlreadyExists(again.status()));
  CHECK(HttpStatusOf(again.status()) == 409);
  CHECK(fake.Count("POST", "/deployments") == 2);

  absl::StatusOr<json> bad = client.CreateJob(json{{"metadata", {{"name", "Bad_Name"}}}});
  CHECK(absl::IsInvalidArgument(bad.status()));
  CHECK(client.CreateJob(json{{"spec", json::object()}}).status().code() ==
        absl::StatusCode::kInvalidArgument);
}

TEST_CASE("LeptonClient 429 with and without Retry-After", "[lepton_client]") {
  Fake fake;
  LeptonClient client = fake.Client();
  fake.Faults({{{"method", "GET"},
                {"path", "/deployments"},
                {"status", 429},
                {"retry_after", "0"},
                {"count", 2}}});
  REQUIRE(client.ListDeployments().ok());
  CHECK(fake.Count("GET", "/deployments") == 3);

  fake.Faults({{{"method", "GET"},
                {"path", "/deployments"},
                {"status", 429},
                {"retry_after", "1"},
                {"count", 1}}});
  absl::Time start = absl::Now();
  REQUIRE(client.ListDeployments().ok());
  CHECK(absl::Now() - start >= absl::Milliseconds(950));
  CHECK(fake.Count("GET", "/deployments") == 5);

  fake.Faults({{{"method", "GET"}, {"path", "/jobs"}, {"status", 429}, {"count", -1}}});
  absl::StatusOr<std::vector<json>> jobs = client.ListJobs();
  REQUIRE(absl::IsUnavailable(jobs.status()));
  CHECK(HttpStatusOf(jobs.status()) == 429);
  CHECK(fake.Count("GET", "/jobs") == 4);  // max_attempts

  // 429 on a POST: the request was not processed, so it is simply sent again.
  fake.Faults({{{"method", "POST"}, {"path", "/jobs"}, {"status", 429}, {"retry_after", "0"}}});
  REQUIRE(client.CreateJob(JobSpec("eval-429")).ok());
  CHECK(fake.Count("POST", "/jobs") == 2);
}

TEST_CASE("LeptonClient 5xx with JSON, HTML and empty bodies", "[lepton_client]") {
  Fake fake;
  LeptonClient two = fake.Client(kToken, 2);

  fake.Faults({{{"path", "/jobs/j1"}, {"status", 500}, {"body", "json"}, {"count", -1}},
               {{"path", "/jobs/j2"}, {"status", 502}, {"body", "html"}, {"count", -1}},
               {{"path", "/jobs/j3"}, {"status", 503}, {"body", "empty"}, {"count", -1}}});
  absl::StatusOr<json> r = two.GetJob("j1");
  REQUIRE(absl::IsUnavailable(r.status()));
  CHECK(HttpStatusOf(r.status()) == 500);
  CHECK(absl::StrContains(r.status().message(),
                          "GET /jobs/j1: HTTP 500: injected 500 by lepton_fake"));
  CHECK(fake.Count("GET", "/jobs/j1") == 2);

  r = two.GetJob("j2");
  REQUIRE(absl::IsUnavailable(r.status()));
  CHECK(HttpStatusOf(r.status()) == 502);
  CHECK(absl::StrContains(r.status().message(), "HTTP 502: <html><head><title>502 Bad Gateway"));
  CHECK(!absl::StrContains(r.status().message(), "\n"));

  r = two.GetJob("j3");
  REQUIRE(absl::IsUnavailable(r.status()));
  CHECK(absl::StrContains(r.status().message(), "HTTP 503: (empty body)"));

  // One 5xx, then the real answer: retried transparently.
  fake.Faults({{{"method", "GET"}, {"path", "/deployments"}, {"status", 503}, {"body", "html"}}});
  CHECK(two.ListDeployments().ok());
  CHECK(fake.Count("GET", "/deployments") == 2);
}

TEST_CASE("LeptonClient never re-posts blindly after an ambiguous failure", "[lepton_client]") {
  Fake fake;
  LeptonClient client = fake.Client();

  SECTION("dropped POST that created the job") {
    fake.Faults({{{"method", "POST"}, {"path", "/jobs"}, {"kind", "drop"}, {"commit", true}}});
    absl::StatusOr<json> job = client.CreateJob(JobSpec("eval-drop"));
    REQUIRE(job.ok());
    CHECK((*job)["metadata"]["name"] == "eval-drop");
    CHECK(fake.Count("POST", "/jobs") == 1);
    absl::StatusOr<std::vector<json>> jobs = client.ListJobs();
    REQUIRE(jobs.ok());
    CHECK(jobs->size() == 1);
  }
  SECTION("503 on a POST that created the job") {
    fake.Faults({{{"method", "POST"}, {"path", "/jobs"}, {"status", 503}, {"commit", true}}});
    REQUIRE(client.CreateJob(JobSpec("eval-503")).ok());
    CHECK(fake.Count("POST", "/jobs") == 1);
  }
  SECTION("dropped POST that did not create the job is sent again once") {
    fake.Faults({{{"method", "POST"}, {"path", "/jobs"}, {"kind", "drop"}}});
    absl::StatusOr<json> job = client.CreateJob(JobSpec("eval-lost"));
    REQUIRE(job.ok());
    CHECK(fake.Count("POST", "/jobs") == 2);
    absl::StatusOr<std::vector<json>> jobs = client.ListJobs();
    REQUIRE(jobs.ok());
    CHECK(jobs->size() == 1);
  }
  SECTION("a job whose name only contains the wanted one is not adopted") {
    REQUIRE(client.CreateJob(JobSpec("eval-x-longer")).ok());
    fake.Faults({{{"method", "POST"}, {"path", "/jobs"}, {"kind", "drop"}}});
    absl::StatusOr<json> job = client.CreateJob(JobSpec("eval-x"));
    REQUIRE(job.ok());
    CHECK((*job)["metadata"]["name"] == "eval-x");
  }
  SECTION("dropped deployment POST that created it") {
    fake.Faults(
        {{{"method", "POST"}, {"path", "/deployments"}, {"kind", "drop"}, {"commit", true}}});
    absl::StatusOr<json> dep = client.CreateDeployment(DeploymentSpec("ep-drop"));
    REQUIRE(dep.ok());
    CHECK((*dep)["metadata"]["name"] == "ep-drop");
    CHECK(fake.Count("POST", "/deployments") == 1);
  }
  SECTION("malformed 200 on a POST reads the job back") {
    fake.Faults({{{"method", "POST"}, {"path", "/jobs"}, {"kind", "malformed"}}});
    absl::StatusOr<json> job = client.CreateJob(JobSpec("eval-mal"));
    REQUIRE(job.ok());
    CHECK((*job)["metadata"]["name"] == "eval-mal");
    CHECK(fake.Count("POST", "/jobs") == 1);
  }
}

TEST_CASE("LeptonClient POST that times out and lands late", "[lepton_client]") {
  Fake fake;
  LeptonClient client = fake.Client(kToken, 4, absl::Milliseconds(300));
  // The first POST is carried out only after the client gave up on it and found nothing.
  fake.Faults({{{"method", "POST"}, {"path", "/jobs"}, {"delay_ms", 1000}}});
  json spec = JobSpec("eval-late");
  spec["metadata"]["id"] = "eval-late";
  absl::StatusOr<json> job = client.CreateJob(spec);
  REQUIRE(job.ok());
  CHECK((*job)["metadata"]["id"] == "eval-late");
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  absl::StatusOr<std::vector<json>> jobs = client.ListJobs();
  REQUIRE(jobs.ok());
  CHECK(jobs->size() == 1);  // the late first POST met the id and got 409
  CHECK(fake.Count("POST", "/jobs") == 2);
}

TEST_CASE("LeptonClient malformed JSON, dropped GETs and slow answers", "[lepton_client]") {
  Fake fake;
  LeptonClient client = fake.Client(kToken, 3, absl::Milliseconds(400));
  REQUIRE(client.CreateDeployment(DeploymentSpec("ep")).ok());

  fake.Faults(
      {{{"method", "GET"}, {"path", "/deployments/ep"}, {"kind", "malformed"}, {"count", -1}}});
  absl::StatusOr<json> dep = client.GetDeployment("ep");
  REQUIRE(!dep.ok());
  CHECK(absl::IsUnavailable(dep.status()));
  CHECK(absl::StrContains(dep.status().message(),
                          "GET /deployments/ep: HTTP 200 with a body that is not valid JSON"));
  CHECK(fake.Count("GET", "/deployments/ep") == 3);

  fake.Faults({{{"method", "GET"}, {"path", "/deployments"}, {"kind", "malformed"}}});
  CHECK(client.ListDeployments().ok());  // one malformed answer is retried

  fake.Faults({{{"method", "GET"}, {"path", "/dedicated-node-groups"}, {"kind", "drop"}}});
  CHECK(client.ListNodeGroups().ok());
  CHECK(fake.Count("GET", "/dedicated-node-groups") == 2);

  fake.Faults({{{"method", "GET"}, {"path", "/jobs"}, {"delay_ms", 1500}, {"count", -1}}});
  absl::Time start = absl::Now();
  absl::StatusOr<std::vector<json>> jobs = client.ListJobs();
  absl::Duration took = absl::Now() - start;
  REQUIRE(!jobs.ok());
  CHECK(absl::IsUnavailable(jobs.status()));
  CHECK(HttpStatusOf(jobs.status()) == 0);
  CHECK(absl::StrContains(jobs.status().message(), "GET /jobs: timed out after 400ms"));
  CHECK(took < absl::Milliseconds(3 * 1500));
}

TEST_CASE("LeptonClient gives up within max_total", "[lepton_client]") {
  Fake fake;
  fake.Faults({{{"method", "GET"},
                {"path", "/deployments"},
                {"status", 429},
                {"retry_after", "30"},
                {"count", -1}}});
  absl::Time start = absl::Now();
  absl::StatusOr<std::vector<json>> deps = fake.Client().ListDeployments();
  CHECK(absl::IsUnavailable(deps.status()));
  CHECK(absl::Now() - start < absl::Seconds(5));  // a Retry-After past max_total: give up now
  CHECK(fake.Count("GET", "/deployments") == 1);
}

TEST_CASE("LeptonClient sends an id as one escaped path segment", "[lepton_client]") {
  Fake fake;
  LeptonClient client = fake.Client();
  // Unescaped, '/' and '?' would address /jobs/a/b with a query x=1.
  absl::StatusOr<json> job = client.GetJob("a/b?x=1");
  CHECK(absl::IsNotFound(job.status()));
  REQUIRE(fake.Requests().size() == 1);
  const json request = fake.Requests().back();
  CHECK(
      absl::EndsWith(request["path"].get<std::string>(), "/jobs/a/b?x=1"));  // decoded by the fake
  CHECK(request["query"].empty());
  // Empty and dot segments would address the collection or be resolved away: refused, unsent.
  CHECK(absl::IsInvalidArgument(client.DeleteJob("")));
  CHECK(absl::IsInvalidArgument(client.DeleteDeployment("..")));
  CHECK(absl::IsInvalidArgument(client.GetDeploymentReadiness(".").status()));
  CHECK(fake.Requests().size() == 1);
}

TEST_CASE("LeptonClient refuses a token with a line break, unsent and unshown", "[lepton_client]") {
  Fake fake;
  const std::string token = std::string(kToken) + "\r\nX-Injected: 1";
  LeptonClient client = fake.Client(token);
  absl::StatusOr<std::vector<json>> jobs = client.ListJobs();
  CHECK(absl::IsInvalidArgument(jobs.status()));
  CHECK(!absl::StrContains(jobs.status().message(), kToken));
  absl::StatusOr<json> created = client.CreateJob({{"metadata", {{"name", "j1"}}}});
  CHECK(absl::IsInvalidArgument(created.status()));
  CHECK(fake.Requests().empty());
}

TEST_CASE("LeptonClient cuts an attempt short at max_total", "[lepton_client]") {
  Fake fake;
  fake.Faults({{{"method", "GET"}, {"path", "/deployments"}, {"delay_ms", 3000}, {"count", -1}}});
  LeptonClient::Options o = fake.ClientOptions();
  o.request_timeout = absl::Seconds(10);
  o.max_total = absl::Milliseconds(500);
  absl::Time start = absl::Now();
  absl::StatusOr<std::vector<json>> deps = LeptonClient(o).ListDeployments();
  CHECK(absl::IsUnavailable(deps.status()));
  CHECK(absl::StrContains(deps.status().message(), "timed out after"));
  CHECK(absl::Now() - start < absl::Milliseconds(2000));
}

}  // namespace
}  // namespace evald::executors::lepton
