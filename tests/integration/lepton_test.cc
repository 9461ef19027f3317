// End to end through real processes for `execution.type: lepton` with `deployment: none`:
// evalctl -> gRPC -> evald -> the Lepton REST API of the loopback fake (tests/fixtures/lepton_fake,
// its own process on a free port). The fake runs no container: a test plays the job by writing
// its stage.exit and results.yml into the task dir (the "shared storage") and by moving the job's
// state through the fake's control API. Every request evald sends is in the fake's request log.
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "tests/integration/fixture.h"

namespace evald::testing {
namespace {

using Json = nlohmann::json;

constexpr char kToken[] = "lepton-token-5150-secret";
constexpr char kApiKey[] = "sk-endpoint-key-2718-secret";

// lepton_fake on a free port, its clock running in real time.
class LeptonFake {
 public:
  explicit LeptonFake(const TempDir& dir, const std::vector<std::string>& extra_flags = {}) {
    std::string port_file = dir.path() + "/lepton.port";
    std::vector<std::string> argv = {BinDir() + "/lepton_fake",
                                     "--port",
                                     "0",
                                     "--port-file",
                                     port_file,
                                     "--token",
                                     kToken,
                                     "--job-queue-s",
                                     "0.3",
                                     "--job-start-s",
                                     "0.3",
                                     "--delete-delay-s",
                                     "0.5"};
    argv.insert(argv.end(), extra_flags.begin(), extra_flags.end());
    process_ = std::make_unique<Process>(argv, std::map<std::string, std::string>{},
                                         dir.path() + "/lepton_fake");
    for (int i = 0; i < 200 && port_ == 0; ++i) {
      std::ifstream in(port_file);
      std::string text;
      if (std::getline(in, text)) (void)absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &port_);
      if (port_ == 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    REQUIRE(port_ > 0);
  }
  std::string url() const { return absl::StrCat("http://127.0.0.1:", port_); }

  Json Control(const std::string& method, const std::string& path, const Json& body = nullptr) {
    httplib::Client c("127.0.0.1", port_);
    httplib::Result r =
        method == "GET" ? c.Get(path) : c.Post(path, body.dump(), "application/json");
    REQUIRE(r);
    INFO(r->body);
    REQUIRE(r->status == 200);
    return Json::parse(r->body, nullptr, false);
  }
  void Scenario(const Json& s) { Control("POST", "/_fake/scenario", s); }
  // A new timeline for an existing job, starting now.
  void Script(const std::string& job_id, const Json& script) {
    Control("POST", "/_fake/jobs/" + job_id, script);
  }
  Json Requests() { return Control("GET", "/_fake/requests"); }
  int Count(const std::string& method, const std::string& path_suffix) {
    int n = 0;
    for (const Json& r : Requests()) {
      if (r["method"] == method && absl::EndsWith(r["path"].get<std::string>(), path_suffix)) ++n;
    }
    return n;
  }

 private:
  std::unique_ptr<Process> process_;
  int port_ = 0;
};

// `token_from_evalctl`: the token reaches evald as a secret of the submit (evaluation.env_vars);
// otherwise evald has it in its environment.
std::string LeptonConfig(const TempDir& dir, const LeptonFake& fake, bool token_from_evalctl) {
  return absl::StrCat(
      "defaults:\n  - execution: lepton/default\n  - deployment: none\n  - _self_\n"
      "execution:\n  output_dir: ",
      dir.path(), "/shared/out\n",
      "  evaluation_tasks:\n    runner_image: nvcr.io/evald/runner:test\n"
      "  lepton_platform:\n    api_url: ",
      fake.url(),
      "\n    workspace_id: ws-test\n"
      "    tasks:\n      node_group: default\n"
      "      env_vars:\n        API_KEY:\n          value_from:\n"
      "            secret_name_ref: ENDPOINT_API_KEY\n"
      "      mounts:\n        - from: node-nfs:lepton-shared-fs\n          path: /evals\n"
      "          mount_path: /workspace\n          local_path: ",
      dir.path(), "/shared\n",
      "target:\n  api_endpoint:\n    url: http://127.0.0.1:9/v1/chat/completions\n"
      "    model_id: ref-model\n    api_key_name: API_KEY\n"
      "evaluation:\n",
      token_from_evalctl ? "  env_vars:\n    LEPTON_API_TOKEN: LEPTON_API_TOKEN\n" : "",
      "  tasks:\n    - name: arith\n      task_file: ", DataDir(), "/arith_task.yaml\n");
}

std::vector<std::string> EvaldFlags(const TempDir& dir) {
  return {"--config", WriteConfig(dir, "evald.yaml", "executor_poll_ms:\n  lepton: 200\n")};
}

std::map<std::string, std::string> CtlEnv(bool with_token) {
  std::map<std::string, std::string> env = {{"API_KEY", kApiKey}};
  if (with_token) env["LEPTON_API_TOKEN"] = kToken;
  return env;
}

// evald's own environment: the token, unless only evalctl sends it.
std::map<std::string, std::string> TokenEnv(bool from_evalctl) {
  if (from_evalctl) return {};
  return {{"LEPTON_API_TOKEN", kToken}};
}

std::string Submit(const Evald& evald, const std::string& cfg, bool with_token) {
  CommandResult r = evald.Ctl({"submit", cfg, "--json"}, CtlEnv(with_token));
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  std::string inv = InvocationIdFromJson(r.out);
  REQUIRE(inv.size() == 8);
  return inv;
}

Json Status(const Evald& evald, const std::string& inv) {
  CommandResult s = evald.Ctl({"status", inv, "--json"});
  INFO(s.out << s.err);
  REQUIRE(s.exit_code == 0);
  return Json::parse(s.out);
}

// Waits until the invocation's first job is in `state`; returns its status entry.
Json WaitJobState(const Evald& evald, const std::string& inv, const std::string& state,
                  double timeout_s = 30) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  Json last;
  while (std::chrono::steady_clock::now() < deadline) {
    last = Status(evald, inv);
    if (!last["jobs"].empty() && last["jobs"][0]["state"] == state) return last["jobs"][0];
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  INFO(last.dump(2));
  FAIL("job never reached " << state);
  return last;
}

// The job's files as the Lepton job would have written them on the shared storage.
void PlayJobOutput(const std::string& task_dir, int exit_code) {
  std::filesystem::create_directories(task_dir + "/artifacts");
  std::filesystem::create_directories(task_dir + "/logs");
  std::ofstream(task_dir + "/artifacts/results.yml") << R"(command: evalrun
results:
  tasks:
    arith:
      metrics:
        exact_match:
          scores:
            exact_match:
              value: 0.9
)";
  std::ofstream(task_dir + "/artifacts/eval_factory_metrics.json") << "{}\n";
  std::ofstream(task_dir + "/logs/stage.exit") << "2026-01-01T00:00:00Z " << exit_code << "\n";
}

std::string JobName(const std::string& inv) { return absl::StrCat("evald-", inv, "-0-a1"); }

// No request carries a secret value, except the bearer token in its header.
void CheckNoSecretLeak(LeptonFake& fake) {
  int requests = 0;
  for (Json r : fake.Requests()) {
    ++requests;
    CHECK(r["headers"]["authorization"] == absl::StrCat("Bearer ", kToken));
    r["headers"].erase("authorization");
    std::string text = r.dump();
    CHECK(!absl::StrContains(text, kToken));
    CHECK(!absl::StrContains(text, kApiKey));
  }
  CHECK(requests > 0);
}

TEST_CASE("lepton: a job runs to success with deployment none, results read from shared storage") {
  TempDir dir;
  LeptonFake fake(dir);
  fake.Scenario({{"jobs", {{{"match", "*"}, {"scenario", "run_forever"}}}}});
  Evald evald(dir, EvaldFlags(dir));  // no token in evald's environment: evalctl sends it
  // With auto-export to local, as for the local executor: the Lepton job's results are exported.
  const std::string exported = dir.path() + "/exported";
  std::string cfg = WriteConfig(
      dir, "run.yaml",
      absl::StrCat(LeptonConfig(dir, fake, true), "export:\n  local:\n    output_dir: ", exported,
                   "\n    format: json\n"));
  CommandResult sub = evald.Ctl(
      {"submit", cfg, "--json", "-o", "+execution.auto_export.destinations=[local]"}, CtlEnv(true));
  INFO(sub.out << sub.err);
  REQUIRE(sub.exit_code == 0);
  const std::string inv = InvocationIdFromJson(sub.out);

  Json job = WaitJobState(evald, inv, "running");
  std::string task_dir = job["output_dir"];
  CHECK(absl::StartsWith(task_dir, dir.path() + "/shared/out/"));
  CHECK(std::filesystem::exists(task_dir + "/plan.yaml"));
  PlayJobOutput(task_dir, 0);
  fake.Script(JobName(inv), {{"timeline", {{{"state", "Completed"}}}}});
  v1::Invocation done = evald.WaitTerminal(inv, 30);
  REQUIRE(done.jobs_size() == 1);
  CHECK(done.jobs(0).state() == v1::JOB_STATE_SUCCEEDED);

  CommandResult results = evald.Ctl({"results", inv, "--json"});
  INFO(results.out << results.err);
  REQUIRE(results.exit_code == 0);
  Json rows = Json::parse(results.out);
  REQUIRE(rows.size() == 1);
  CHECK(rows[0]["value"].get<double>() == Approx(0.9));

  // Auto-export ran for the Lepton job: its state is in status, the files are where asked.
  Json export_state;
  for (int i = 0; i < 300; ++i) {
    Json st = Status(evald, inv);
    if (!st["jobs"][0]["exports"].empty()) export_state = st["jobs"][0]["exports"][0];
    if (export_state.is_object() && export_state["state"] != "pending") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  INFO(export_state.dump(2));
  CHECK(export_state["state"] == "succeeded");
  CHECK(std::filesystem::exists(exported + "/" + inv + "/" + inv + ".0/artifacts/results.yml"));
  Json summary = Json::parse(Slurp(exported + "/" + inv + "/processed_results.json"));
  CHECK(summary["benchmarks"]["arith"]["models"]["ref-model"][0]["executor"] == "lepton");

  // The posted job: resolved node group, secret ref, the in-job task dir under the mount.
  Json posted;
  for (const Json& r : fake.Requests()) {
    if (r["method"] == "POST" && absl::EndsWith(r["path"].get<std::string>(), "/jobs")) {
      posted = r["json"];
    }
  }
  REQUIRE(posted.is_object());
  CHECK(fake.Count("POST", "/jobs") == 1);
  CHECK(posted["metadata"]["name"] == JobName(inv));
  CHECK(posted["spec"]["affinity"]["allowed_dedicated_node_groups"][0] == "default-x7k2q");
  CHECK(posted["spec"]["envs"][0]["value_from"]["secret_name_ref"] == "ENDPOINT_API_KEY");
  std::string rel = task_dir.substr((dir.path() + "/shared").size());
  CHECK(absl::StrContains(posted["spec"]["container"]["command"][2].get<std::string>(),
                          "task_dir=/workspace" + rel));
  // `evalctl info` shows the Lepton job.
  CommandResult info = evald.Ctl({"info", inv + ".0"});
  INFO(info.out << info.err);
  CHECK(absl::StrContains(info.out, JobName(inv)));
  CheckNoSecretLeak(fake);
}

TEST_CASE("lepton: a failed job fails the invocation with the job's exit code") {
  TempDir dir;
  LeptonFake fake(dir);
  fake.Scenario({{"jobs", {{{"match", "*"}, {"scenario", "run_forever"}}}}});
  Evald evald(dir, EvaldFlags(dir), {{"LEPTON_API_TOKEN", kToken}});
  std::string cfg = WriteConfig(dir, "run.yaml", LeptonConfig(dir, fake, false));
  std::string inv = Submit(evald, cfg, false);
  Json job = WaitJobState(evald, inv, "running");
  std::ofstream(job["output_dir"].get<std::string>() + "/logs/stage.exit")
      << "2026-01-01T00:00:00Z 3\n";
  fake.Script(JobName(inv), {{"timeline", {{{"state", "Failed"}}}}});
  v1::Invocation done = evald.WaitTerminal(inv, 30);
  REQUIRE(done.jobs_size() == 1);
  CHECK(done.jobs(0).state() == v1::JOB_STATE_FAILED);
  CHECK(done.jobs(0).exit_code() == 3);
  CommandResult w = evald.Ctl({"watch", inv});
  CHECK(w.exit_code != 0);
  CheckNoSecretLeak(fake);
}

TEST_CASE("lepton: kill stops and deletes the Lepton job") {
  TempDir dir;
  LeptonFake fake(dir);
  fake.Scenario({{"jobs", {{{"match", "*"}, {"scenario", "run_forever"}}}}});
  Evald evald(dir, EvaldFlags(dir), {{"LEPTON_API_TOKEN", kToken}});
  std::string cfg = WriteConfig(dir, "run.yaml", LeptonConfig(dir, fake, false));
  std::string inv = Submit(evald, cfg, false);
  WaitJobState(evald, inv, "running");
  CommandResult k = evald.Ctl({"kill", inv});
  INFO(k.out << k.err);
  REQUIRE(k.exit_code == 0);
  v1::Invocation done = evald.WaitTerminal(inv, 30);
  REQUIRE(done.jobs_size() == 1);
  CHECK(done.jobs(0).state() == v1::JOB_STATE_KILLED);
  CHECK(fake.Count("PATCH", "/jobs/" + JobName(inv)) >= 1);
  CHECK(fake.Count("DELETE", "/jobs/" + JobName(inv)) >= 1);
  Json state = fake.Control("GET", "/_fake/state");
  for (const Json& j : state["jobs"]) {
    INFO(j.dump());
    CHECK(j["status"]["state"] != "Running");
  }
}

TEST_CASE("lepton: a job archived before the next poll ends with its outcome") {
  TempDir dir;
  LeptonFake fake(dir);
  fake.Scenario({{"jobs", {{{"match", "*"}, {"scenario", "run_forever"}}}}});
  // Polls far apart: the job finishes and is archived in between.
  Evald evald(dir,
              {"--config", WriteConfig(dir, "evald.yaml", "executor_poll_ms:\n  lepton: 3000\n")},
              {{"LEPTON_API_TOKEN", kToken}});
  std::string cfg = WriteConfig(dir, "run.yaml", LeptonConfig(dir, fake, false));
  std::string inv = Submit(evald, cfg, false);
  Json job = WaitJobState(evald, inv, "running");
  PlayJobOutput(job["output_dir"], 0);
  fake.Script(JobName(inv), {{"timeline", {{{"state", "Completed"}}}}, {"ttl_s", 0}});
  v1::Invocation done = evald.WaitTerminal(inv, 30);
  REQUIRE(done.jobs_size() == 1);
  CHECK(done.jobs(0).state() == v1::JOB_STATE_SUCCEEDED);
  bool archive_get = false;
  for (const Json& r : fake.Requests()) {
    if (r["method"] == "GET" &&
        absl::EndsWith(r["path"].get<std::string>(), "/jobs/" + JobName(inv)) &&
        r["query"].contains("job_query_mode")) {
      archive_get |= r["query"]["job_query_mode"][0] == "alive_and_archive";
    }
  }
  CHECK(archive_get);
}

TEST_CASE(
    "lepton: evald killed -9 during a running job re-attaches after restart, creating nothing "
    "twice") {
  // The token in evald's environment, or sent by evalctl with the submit only: then the restarted
  // evald knows it only from the invocation's stored secrets (Executor::Adopt).
  const bool from_evalctl = GENERATE(false, true);
  INFO((from_evalctl ? "token sent by evalctl only" : "token in evald's environment"));
  TempDir dir;
  LeptonFake fake(dir);
  fake.Scenario({{"jobs", {{{"match", "*"}, {"scenario", "run_forever"}}}}});
  Evald evald(dir, EvaldFlags(dir), TokenEnv(from_evalctl));
  std::string cfg = WriteConfig(dir, "run.yaml", LeptonConfig(dir, fake, from_evalctl));
  std::string inv = Submit(evald, cfg, from_evalctl);
  Json job = WaitJobState(evald, inv, "running");
  evald.Kill9();
  PlayJobOutput(job["output_dir"], 0);
  fake.Script(JobName(inv), {{"timeline", {{{"state", "Completed"}}}}});
  evald.Start();
  v1::Invocation done = evald.WaitTerminal(inv, 30);
  REQUIRE(done.jobs_size() == 1);
  CHECK(done.jobs(0).state() == v1::JOB_STATE_SUCCEEDED);
  CHECK(fake.Count("POST", "/jobs") == 1);
  CheckNoSecretLeak(fake);
}

TEST_CASE("lepton: evald killed -9 while its job POST is in flight adopts the job after restart") {
  // The token in evald's environment, or sent by evalctl with the submit only: then the restarted
  // evald knows it only from the invocation's stored secrets (Executor::Adopt).
  const bool from_evalctl = GENERATE(false, true);
  INFO((from_evalctl ? "token sent by evalctl only" : "token in evald's environment"));
  TempDir dir;
  LeptonFake fake(dir);
  // The create lands 3 s after it was sent; evald dies in between and never sees the answer.
  fake.Scenario({{"jobs", {{{"match", "*"}, {"scenario", "run_forever"}}}},
                 {"faults", {{{"method", "POST"}, {"path", "/jobs"}, {"delay_ms", 3000}}}}});
  Evald evald(dir, EvaldFlags(dir), TokenEnv(from_evalctl));
  std::string cfg = WriteConfig(dir, "run.yaml", LeptonConfig(dir, fake, from_evalctl));
  std::string inv = Submit(evald, cfg, from_evalctl);
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  evald.Kill9();
  std::this_thread::sleep_for(std::chrono::milliseconds(3000));
  REQUIRE(fake.Count("POST", "/jobs") == 1);
  evald.Start();
  Json job = WaitJobState(evald, inv, "running");
  PlayJobOutput(job["output_dir"], 0);
  fake.Script(JobName(inv), {{"timeline", {{{"state", "Completed"}}}}});
  v1::Invocation done = evald.WaitTerminal(inv, 30);
  REQUIRE(done.jobs_size() == 1);
  CHECK(done.jobs(0).state() == v1::JOB_STATE_SUCCEEDED);
  CHECK(fake.Count("POST", "/jobs") == 1);  // adopted by Recover, not posted again
  CommandResult watch = evald.Ctl({"watch", inv});
  INFO(watch.out << watch.err << evald.process().Stderr());
  CHECK(absl::StrContains(watch.out + watch.err + evald.process().Stderr(), "re-attached"));
  Json state = fake.Control("GET", "/_fake/state");
  CHECK(state["jobs"].size() == 1);
}

TEST_CASE("lepton: a dry run of the reference's lepton_none example renders the job spec") {
  TempDir dir;
  Evald evald(dir);  // no token, no workspace: rendering needs neither and sends nothing
  CommandResult r = evald.Ctl({"run", "--config-dir", SourceDir() + "/tests/fixtures/peer-examples",
                               "--config-name", "lepton_none_llama_3_1_8b_instruct", "--dry-run",
                               "-o", "execution.output_dir=" + dir.path() + "/out"},
                              {{"USER", "tester"}, {"API_KEY", kApiKey}});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  // The reference's job spec fields (lepton-api.md b.4) and its harness command.
  for (const char* field :
       {"\"resource_shape\": \"cpu.small\"", "\"allowed_dedicated_node_groups\"",
        "<id of node group nv-int-multiteam-nebius-h200-01>",
        "\"secret_name_ref\": \"ENDPOINT_API_KEY\"",
        "\"secret_name_ref\": \"HUGGING_FACE_HUB_TOKEN\"",
        "\"from\": \"node-nfs:lepton-shared-fs\"", "nemo-evaluator-launcher-workspace/",
        "\"image_pull_secrets\"", "\"lepton-nvidia\"", "\"shared_memory_size\": 1024",
        "\"/bin/bash\"", "nv_eval run_eval",
        "--model_url https://xfre17eu-nim-gpqa-d-2-f110e0.xenon.lepton.run/v1/chat/completions",
        "\"visibility\": \"private\"", "Dry run: nothing was stored or started"}) {
    CHECK(absl::StrContains(r.out, field));
  }
  CHECK(!absl::StrContains(r.out, kApiKey));
}

TEST_CASE(
    "lepton: faults on the way (503 after the create, 429 storm, unknown state) cost no job") {
  TempDir dir;
  LeptonFake fake(dir);
  fake.Scenario({{"jobs", {{{"match", "*"}, {"scenario", "run_forever"}}}},
                 {"faults",
                  {{{"method", "POST"},
                    {"path", "/jobs"},
                    {"status", 503},
                    {"body", "html"},
                    {"commit", true}},
                   {{"method", "GET"},
                    {"path", "/jobs"},
                    {"status", 429},
                    {"retry_after", "1"},
                    {"count", 2}},
                   {{"method", "GET"},
                    {"path", "/jobs"},
                    {"kind", "state"},
                    {"state", "Migrating"},
                    {"count", 2}}}}});
  Evald evald(dir, EvaldFlags(dir), {{"LEPTON_API_TOKEN", kToken}});
  std::string cfg = WriteConfig(dir, "run.yaml", LeptonConfig(dir, fake, false));
  std::string inv = Submit(evald, cfg, false);
  Json job = WaitJobState(evald, inv, "running");
  PlayJobOutput(job["output_dir"], 0);
  fake.Script(JobName(inv), {{"timeline", {{{"state", "Completed"}}}}});
  v1::Invocation done = evald.WaitTerminal(inv, 30);
  REQUIRE(done.jobs_size() == 1);
  CHECK(done.jobs(0).state() == v1::JOB_STATE_SUCCEEDED);
  CHECK(fake.Count("POST", "/jobs") == 1);  // the 503 was looked up, not re-posted
  Json state = fake.Control("GET", "/_fake/state");
  CHECK(state["jobs"].size() == 1);
  int faulted = 0;
  for (const Json& r : fake.Requests()) faulted += r["fault"].is_null() ? 0 : 1;
  CHECK(faulted == 5);  // every injected fault was met
  CheckNoSecretLeak(fake);
}

// ---- Deployments: Lepton endpoints -----------------------------------------------------------

// A vllm deployment as a Lepton endpoint (the reference's lepton_vllm example, pointed at the
// fake): readiness checked every 0.2 s, given up after `readiness_timeout_s`.
std::string EndpointConfig(const TempDir& dir, const LeptonFake& fake, bool token_from_evalctl,
                           const std::string& readiness_timeout_s = "20") {
  return absl::StrCat(
      "defaults:\n  - execution: lepton/default\n  - deployment: vllm\n  - _self_\n"
      "execution:\n  output_dir: ",
      dir.path(), "/shared/out\n",
      "  evaluation_tasks:\n    runner_image: nvcr.io/evald/runner:test\n"
      "  lepton_platform:\n    api_url: ",
      fake.url(),
      "\n    workspace_id: ws-test\n"
      "    deployment:\n      node_group: ng-h200-01\n      endpoint_readiness_timeout: ",
      readiness_timeout_s,
      "\n      platform_defaults:\n        image_pull_secrets: [lepton-nvidia]\n"
      "    tasks:\n      node_group: default\n"
      "      env_vars:\n        API_KEY:\n          value_from:\n"
      "            secret_name_ref: ENDPOINT_API_KEY\n"
      "      mounts:\n        - from: node-nfs:lepton-shared-fs\n          path: /evals\n"
      "          mount_path: /workspace\n          local_path: ",
      dir.path(), "/shared\n",
      "deployment:\n  checkpoint_path: meta-llama/Llama-3.1-8B-Instruct\n"
      "  served_model_name: ref-model\n  tensor_parallel_size: 1\n"
      "  extra_args: \"--gpu-memory-utilization 0.95 --trust-remote-code\"\n"
      "  endpoint_readiness_interval: 0.2\n"
      "  lepton_config:\n    endpoint_name: llama-3-1-8b\n    resource_shape: gpu.1xh200\n"
      "    min_replicas: 1\n    max_replicas: 2\n"
      "    api_tokens:\n      - value_from:\n          token_name_ref: ENDPOINT_API_KEY\n"
      "    auto_scaler:\n      scale_down:\n        no_traffic_timeout: 3600\n"
      "        scale_from_zero: false\n"
      "    envs:\n      OMPI_ALLOW_RUN_AS_ROOT: \"1\"\n      HF_TOKEN:\n        value_from:\n"
      "          secret_name_ref: HUGGING_FACE_HUB_TOKEN\n"
      "    mounts:\n      enabled: true\n      cache_path: /models/{{MODEL_CACHE_NAME}}\n"
      "      mount_path: /opt/nim/.cache\n"
      "target:\n  api_endpoint:\n    api_key_name: API_KEY\n"
      "evaluation:\n",
      token_from_evalctl ? "  env_vars:\n    LEPTON_API_TOKEN: LEPTON_API_TOKEN\n" : "",
      "  tasks:\n    - name: arith\n      task_file: ", DataDir(), "/arith_task.yaml\n");
}

// The deployments evald posted (their bodies), oldest first.
std::vector<Json> PostedEndpoints(LeptonFake& fake) {
  std::vector<Json> out;
  for (const Json& r : fake.Requests()) {
    if (r["method"] == "POST" && absl::EndsWith(r["path"].get<std::string>(), "/deployments")) {
      out.push_back(r["json"]);
    }
  }
  return out;
}

// Waits until evald has posted an endpoint; returns its name.
std::string WaitEndpointPosted(LeptonFake& fake, double timeout_s = 20) {
  std::string name;
  REQUIRE(WaitFor(
      [&] {
        std::vector<Json> posted = PostedEndpoints(fake);
        if (!posted.empty()) name = posted[0]["metadata"]["name"];
        return !name.empty();
      },
      timeout_s));
  return name;
}

// The endpoint is deleted: evald sent DELETE and the fake no longer lists it (or is deleting it).
void CheckEndpointDeleted(LeptonFake& fake, const std::string& name) {
  CHECK(WaitFor([&] { return fake.Count("DELETE", "/deployments/" + name) >= 1; }, 20));
  Json state = fake.Control("GET", "/_fake/state");
  for (const Json& d : state["deployments"]) {
    INFO(d.dump());
    if (d["metadata"]["name"] == name) CHECK(d["status"]["state"] == "Deleting");
  }
}

// No recorded request carries a secret value: API calls carry the workspace token only in their
// bearer header; probes of the endpoint's URL carry no token of evald's at all.
void CheckNoSecretLeakAnywhere(LeptonFake& fake) {
  int requests = 0;
  for (Json r : fake.Requests()) {
    ++requests;
    const bool api = absl::StartsWith(r["path"].get<std::string>(), "/api/");
    if (api) CHECK(r["headers"]["authorization"] == absl::StrCat("Bearer ", kToken));
    if (!api) CHECK(!r["headers"].contains("authorization"));  // probes carry no token
    r["headers"].erase("authorization");
    std::string text = r.dump();
    INFO(text);
    CHECK(!absl::StrContains(text, kToken));
    CHECK(!absl::StrContains(text, kApiKey));
  }
  CHECK(requests > 0);
}

v1::Invocation WaitDeployment(const Evald& evald, const std::string& inv, v1::DeploymentState want,
                              double timeout_s = 20) {
  v1::Invocation got;
  bool reached = WaitFor(
      [&] {
        got = evald.Get(inv);
        return got.deployments_size() == 1 && got.deployments(0).state() == want;
      },
      timeout_s);
  INFO(got.DebugString());
  REQUIRE(reached);
  return got;
}

TEST_CASE("lepton: a vllm deployment is a Lepton endpoint the jobs use, deleted when they end") {
  TempDir dir;
  LeptonFake fake(dir, {"--endpoint-ready-after-s", "0.5", "--warmup-503", "2"});
  fake.Scenario({{"jobs", {{{"match", "*"}, {"scenario", "run_forever"}}}}});
  Evald evald(dir, EvaldFlags(dir));  // no token in evald's environment: evalctl sends it
  std::string cfg = WriteConfig(dir, "run.yaml", EndpointConfig(dir, fake, true));
  const std::string inv = Submit(evald, cfg, true);

  Json job = WaitJobState(evald, inv, "running", 30);
  std::vector<Json> posted = PostedEndpoints(fake);
  REQUIRE(posted.size() == 1);
  const Json& body = posted[0];
  const std::string name = body["metadata"]["name"];
  INFO(body.dump(2));
  // Name: within Lepton's limits, unique per invocation, as metadata.id too.
  CHECK(name == absl::StrCat("llama-3-1-8b-", inv, "-0"));
  CHECK(name.size() <= 36);
  CHECK(body["metadata"]["id"] == name);
  // The reference's spec fields (lepton-api.md b.2, peer-launcher.md 3.4).
  const Json& spec = body["spec"];
  CHECK(spec["resource_requirement"]["resource_shape"] == "gpu.1xh200");
  CHECK(spec["resource_requirement"]["min_replicas"] == 1);
  CHECK(spec["resource_requirement"]["max_replicas"] == 2);
  CHECK(spec["resource_requirement"]["affinity"]["allowed_dedicated_node_groups"][0] ==
        "ng-h200-01-abcd");  // the name resolved to its id
  CHECK(spec["container"]["image"] == "vllm/vllm-openai:latest");
  CHECK(spec["container"]["ports"][0]["container_port"] == 8000);
  CHECK(spec["container"]["command"] ==
        Json::array({"vllm", "serve", "meta-llama/Llama-3.1-8B-Instruct",
                     "--tensor-parallel-size=1", "--pipeline-parallel-size=1",
                     "--data-parallel-size=1", "--port=8000", "--served-model-name=ref-model",
                     "--gpu-memory-utilization", "0.95", "--trust-remote-code"}));
  CHECK(spec["api_tokens"] ==
        Json::parse(R"([{"value_from":{"token_name_ref":"ENDPOINT_API_KEY"}}])"));
  CHECK(spec["auto_scaler"] == Json::parse(R"({"scale_down":{"no_traffic_timeout":3600}})"));
  CHECK(spec["mounts"] ==
        Json::parse(R"([{"path":"/models/vllm-openai","from":"node-nfs:lepton-shared-fs",
                         "mount_path":"/opt/nim/.cache","mount_options":{}}])"));
  CHECK(spec["image_pull_secrets"] == Json::array({"lepton-nvidia"}));
  CHECK(spec["queue_config"]["priority_class"] == "mid-4000");
  CHECK(spec["health"].is_object());
  CHECK(spec["log"]["enable_collection"] == true);
  CHECK(!spec.contains("enable_rdma"));
  std::map<std::string, Json> envs;
  for (const Json& e : spec["envs"]) envs[e["name"]] = e;
  CHECK(envs["OMPI_ALLOW_RUN_AS_ROOT"]["value"] == "1");
  CHECK(envs["HF_TOKEN"]["value_from"]["secret_name_ref"] == "HUGGING_FACE_HUB_TOKEN");
  CHECK(envs["SERVED_MODEL_NAME"]["value"] == "ref-model");
  CHECK(envs["MODEL_PORT"]["value"] == "8000");
  CHECK(envs["MODEL_PATH"]["value"] == "meta-llama/Llama-3.1-8B-Instruct");
  CHECK(envs["TENSOR_PARALLEL_SIZE"]["value"] == "1");
  CHECK(!absl::StrContains(body.dump(), "null"));
  // Ready, then probed: the endpoint's token is a workspace secret evald does not hold, so its
  // 401 shows the endpoint answers.
  CHECK(fake.Count("GET", "/_ep/" + name + "/health") >= 1);

  // The job calls the endpoint's external URL, with the endpoint's token from the secret.
  const std::string task_dir = job["output_dir"];
  const std::string url = fake.url() + "/_ep/" + name;
  CHECK(absl::StrContains(Slurp(task_dir + "/plan.yaml"), url + "/v1/chat/completions"));
  CHECK(!absl::StrContains(Slurp(task_dir + "/plan.yaml"), "127.0.0.1:8000"));
  v1::Invocation serving = evald.Get(inv);
  REQUIRE(serving.deployments_size() == 1);
  CHECK(serving.deployments(0).state() == v1::DEPLOYMENT_STATE_HEALTHY);
  CHECK(serving.deployments(0).url() == url);
  CHECK(serving.deployments(0).backend_id() == "lepton endpoint " + name);

  PlayJobOutput(task_dir, 0);
  fake.Script(JobName(inv), {{"timeline", {{{"state", "Completed"}}}}});
  v1::Invocation done = evald.WaitTerminal(inv, 30);
  REQUIRE(done.jobs_size() == 1);
  CHECK(done.jobs(0).state() == v1::JOB_STATE_SUCCEEDED);
  WaitDeployment(evald, inv, v1::DEPLOYMENT_STATE_STOPPED);
  CheckEndpointDeleted(fake, name);
  CHECK(PostedEndpoints(fake).size() == 1);
  CheckNoSecretLeakAnywhere(fake);
}

TEST_CASE("lepton: an endpoint never ready fails the invocation and is deleted") {
  TempDir dir;
  LeptonFake fake(dir, {"--endpoint-ready-after-s", "0.3"});
  fake.Scenario({{"deployments",
                  {{{"match", "*"},
                    {"scenario", "no_capacity"},
                    {"readiness_message", "no h200 node is free"}}}}});
  Evald evald(dir, EvaldFlags(dir), {{"LEPTON_API_TOKEN", kToken}});
  std::string cfg = WriteConfig(dir, "run.yaml", EndpointConfig(dir, fake, false, "2"));
  const std::string inv = Submit(evald, cfg, false);
  const std::string name = WaitEndpointPosted(fake);
  v1::Invocation done = evald.WaitTerminal(inv, 30);
  REQUIRE(done.jobs_size() == 1);
  CHECK(done.jobs(0).state() == v1::JOB_STATE_FAILED);
  INFO(done.DebugString());
  REQUIRE(done.deployments_size() == 1);
  CHECK(done.deployments(0).state() == v1::DEPLOYMENT_STATE_FAILED);
  const std::string message = done.deployments(0).message();
  CHECK(absl::StrContains(message, "was not ready within 2 s"));
  CHECK(absl::StrContains(message, "NoCapacity"));
  CHECK(absl::StrContains(message, "no h200 node is free"));
  CHECK(absl::StrContains(done.jobs(0).message(), "not ready within 2 s"));
  CheckEndpointDeleted(fake, name);
  CHECK(fake.Count("POST", "/jobs") == 0);
  CheckNoSecretLeakAnywhere(fake);
}

TEST_CASE("lepton: an endpoint in state Error fails at once with Lepton's reason and is deleted") {
  TempDir dir;
  LeptonFake fake(dir, {"--endpoint-ready-after-s", "0.5"});
  fake.Scenario({{"deployments",
                  {{{"match", "*"},
                    {"scenario", "error"},
                    {"readiness_reason", "SystemError"},
                    {"readiness_message", "image pull failed: unauthorized"}}}}});
  Evald evald(dir, EvaldFlags(dir), {{"LEPTON_API_TOKEN", kToken}});
  // A long readiness timeout: the failure must not wait for it.
  std::string cfg = WriteConfig(dir, "run.yaml", EndpointConfig(dir, fake, false, "600"));
  const std::string inv = Submit(evald, cfg, false);
  const std::string name = WaitEndpointPosted(fake);
  v1::Invocation done = evald.WaitTerminal(inv, 20);
  INFO(done.DebugString());
  REQUIRE(done.deployments_size() == 1);
  CHECK(done.deployments(0).state() == v1::DEPLOYMENT_STATE_FAILED);
  CHECK(absl::StrContains(done.deployments(0).message(), "is in state Error"));
  CHECK(absl::StrContains(done.deployments(0).message(),
                          "SystemError: image pull failed: unauthorized"));
  CHECK(done.jobs(0).state() == v1::JOB_STATE_FAILED);
  CHECK(absl::StrContains(done.jobs(0).message(), "image pull failed: unauthorized"));
  CheckEndpointDeleted(fake, name);
}

TEST_CASE("lepton: kill while the endpoint is starting deletes it") {
  TempDir dir;
  LeptonFake fake(dir, {"--endpoint-ready-after-s", "600"});
  Evald evald(dir, EvaldFlags(dir), {{"LEPTON_API_TOKEN", kToken}});
  std::string cfg = WriteConfig(dir, "run.yaml", EndpointConfig(dir, fake, false));
  const std::string inv = Submit(evald, cfg, false);
  const std::string name = WaitEndpointPosted(fake);
  WaitDeployment(evald, inv, v1::DEPLOYMENT_STATE_STARTING);
  CommandResult k = evald.Ctl({"kill", inv});
  INFO(k.out << k.err);
  REQUIRE(k.exit_code == 0);
  v1::Invocation done = evald.WaitTerminal(inv, 20);
  CHECK(done.jobs(0).state() == v1::JOB_STATE_KILLED);
  WaitDeployment(evald, inv, v1::DEPLOYMENT_STATE_STOPPED);
  CheckEndpointDeleted(fake, name);
  CHECK(fake.Count("POST", "/jobs") == 0);
}

TEST_CASE(
    "lepton: evald killed -9 during the endpoint wait re-attaches to it after restart, creating "
    "nothing twice and deleting it at the end") {
  TempDir dir;
  LeptonFake fake(dir, {"--endpoint-ready-after-s", "3"});
  fake.Scenario({{"jobs", {{{"match", "*"}, {"scenario", "run_forever"}}}}});
  // The token comes only with the submit: after the restart evald knows it from the stored
  // secrets alone (DeploymentBackend::Adopt).
  Evald evald(dir, EvaldFlags(dir));
  std::string cfg = WriteConfig(dir, "run.yaml", EndpointConfig(dir, fake, true));
  const std::string inv = Submit(evald, cfg, true);
  const std::string name = WaitEndpointPosted(fake);
  WaitDeployment(evald, inv, v1::DEPLOYMENT_STATE_STARTING);
  evald.Kill9();
  evald.Start();
  Json job = WaitJobState(evald, inv, "running", 30);
  PlayJobOutput(job["output_dir"], 0);
  fake.Script(JobName(inv), {{"timeline", {{{"state", "Completed"}}}}});
  v1::Invocation done = evald.WaitTerminal(inv, 30);
  REQUIRE(done.jobs_size() == 1);
  CHECK(done.jobs(0).state() == v1::JOB_STATE_SUCCEEDED);
  WaitDeployment(evald, inv, v1::DEPLOYMENT_STATE_STOPPED);
  CHECK(PostedEndpoints(fake).size() == 1);
  CHECK(fake.Count("POST", "/jobs") == 1);
  CheckEndpointDeleted(fake, name);
  CheckNoSecretLeakAnywhere(fake);
}

TEST_CASE("lepton: evald killed -9 before the endpoint was recorded adopts it after restart") {
  TempDir dir;
  LeptonFake fake(dir, {"--endpoint-ready-after-s", "0.5"});
  fake.Scenario({{"jobs", {{{"match", "*"}, {"scenario", "run_forever"}}}},
                 {"faults", {{{"method", "POST"}, {"path", "/deployments"}, {"delay_ms", 3000}}}}});
  Evald evald(dir, EvaldFlags(dir), {{"LEPTON_API_TOKEN", kToken}});
  std::string cfg = WriteConfig(dir, "run.yaml", EndpointConfig(dir, fake, false));
  const std::string inv = Submit(evald, cfg, false);
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  evald.Kill9();
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  REQUIRE(PostedEndpoints(fake).size() == 1);
  evald.Start();
  Json job = WaitJobState(evald, inv, "running", 30);
  PlayJobOutput(job["output_dir"], 0);
  fake.Script(JobName(inv), {{"timeline", {{{"state", "Completed"}}}}});
  v1::Invocation done = evald.WaitTerminal(inv, 30);
  CHECK(done.jobs(0).state() == v1::JOB_STATE_SUCCEEDED);
  CHECK(PostedEndpoints(fake).size() == 1);  // re-attached by Recover, not posted again
  WaitDeployment(evald, inv, v1::DEPLOYMENT_STATE_STOPPED);
  CheckEndpointDeleted(fake, PostedEndpoints(fake)[0]["metadata"]["name"]);
}

TEST_CASE("lepton: a dry run of a vllm deployment renders the endpoint spec and creates nothing") {
  TempDir dir;
  LeptonFake fake(dir);
  Evald evald(dir);
  std::string cfg = WriteConfig(dir, "run.yaml", EndpointConfig(dir, fake, false));
  CommandResult r = evald.Ctl({"submit", cfg, "--dry-run"}, CtlEnv(false));
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  for (const char* field :
       {"/deployments", "\"resource_shape\": \"gpu.1xh200\"",
        "\"token_name_ref\": \"ENDPOINT_API_KEY\"", "<id of node group ng-h200-01>",
        "\"container_port\": 8000", "\"vllm\"", "\"secret_name_ref\": \"HUGGING_FACE_HUB_TOKEN\"",
        "\"SERVED_MODEL_NAME\"", "Dry run: nothing was stored or started"}) {
    CHECK(absl::StrContains(r.out, field));
  }
  CHECK(!absl::StrContains(r.out, kApiKey));
  CHECK(fake.Requests().empty());
}

TEST_CASE("lepton: an endpoint without a token is probed through its warm-up 503s") {
  TempDir dir;
  LeptonFake fake(dir, {"--endpoint-ready-after-s", "0.3", "--warmup-503", "3"});
  fake.Scenario({{"jobs", {{{"match", "*"}, {"scenario", "run_forever"}}}}});
  Evald evald(dir, EvaldFlags(dir), {{"LEPTON_API_TOKEN", kToken}});
  std::string yaml = EndpointConfig(dir, fake, false);
  const std::string tokens =
      "    api_tokens:\n      - value_from:\n          token_name_ref: ENDPOINT_API_KEY\n";
  REQUIRE(absl::StrContains(yaml, tokens));
  yaml = absl::StrReplaceAll(yaml, {{tokens, ""}});
  const std::string inv = Submit(evald, WriteConfig(dir, "run.yaml", yaml), false);
  const std::string name = WaitEndpointPosted(fake);
  WaitJobState(evald, inv, "running", 30);
  // Three 503s, then the answer that made it healthy; no job before that.
  int probes = 0;
  int first_job = 0;
  int healthy_at = 0;
  for (const Json& r : fake.Requests()) {
    const std::string path = r["path"];
    if (path == "/_ep/" + name + "/health") {
      ++probes;
      if (r["status"] == 200 && healthy_at == 0) healthy_at = r["seq"];
    }
    if (r["method"] == "POST" && absl::EndsWith(path, "/jobs") && first_job == 0) {
      first_job = r["seq"];
    }
  }
  CHECK(probes == 4);
  CHECK(healthy_at > 0);
  CHECK(first_job > healthy_at);
  CHECK(!PostedEndpoints(fake)[0]["spec"].contains("api_tokens"));
  CHECK(evald.Ctl({"kill", inv}).exit_code == 0);
  evald.WaitTerminal(inv, 20);
  CheckEndpointDeleted(fake, name);
}

TEST_CASE("lepton: a literal endpoint token is refused at submit") {
  TempDir dir;
  LeptonFake fake(dir);
  Evald evald(dir, EvaldFlags(dir), {{"LEPTON_API_TOKEN", kToken}});
  std::string yaml =
      absl::StrReplaceAll(EndpointConfig(dir, fake, false),
                          {{"      - value_from:\n          token_name_ref: ENDPOINT_API_KEY\n",
                            "      - value: ep-literal-token-4096\n"}});
  CommandResult r = evald.Ctl({"submit", WriteConfig(dir, "run.yaml", yaml)}, CtlEnv(false));
  INFO(r.out << r.err);
  CHECK(r.exit_code != 0);
  CHECK(absl::StrContains(r.err, "token_name_ref"));
  CHECK(fake.Requests().empty());
}

TEST_CASE("lepton: a dry run of the reference's lepton_vllm example renders its endpoint spec") {
  TempDir dir;
  Evald evald(dir);  // no token, no workspace: nothing is sent
  CommandResult r = evald.Ctl({"run", "--config-dir", SourceDir() + "/tests/fixtures/peer-examples",
                               "--config-name", "lepton_vllm_llama_3_1_8b_instruct", "--dry-run",
                               "-o", "execution.output_dir=" + dir.path() + "/out"},
                              {{"USER", "tester"}, {"API_KEY", kApiKey}});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  // The endpoint spec the reference's generate_lepton_spec builds (lepton-api.md b.4 example).
  for (const char* field :
       {"/deployments", "\"resource_shape\": \"gpu.1xh200\"", "\"max_replicas\": 3",
        "<id of node group nv-int-multiteam-nebius-h200-01-mjgbgffo>",
        "\"token_name_ref\": \"ENDPOINT_API_KEY\"", "\"no_traffic_timeout\": 3600",
        "\"image\": \"vllm/vllm-openai:latest\"", "\"container_port\": 8000",
        "\"meta-llama/Llama-3.1-8B-Instruct\"", "\"--served-model-name=llama-3.1-8b-instruct\"",
        "\"--gpu-memory-utilization\"", "\"MODEL_PATH\"", "\"TENSOR_PARALLEL_SIZE\"",
        "\"mount_path\": \"/opt/nim/.cache\"", "\"priority_class\": \"mid-4000\"",
        "\"lepton-nvidia\"", "Dry run: nothing was stored or started"}) {
    CHECK(absl::StrContains(r.out, field));
  }
  CHECK(!absl::StrContains(r.out, "scale_from_zero\": "));
  CHECK(!absl::StrContains(r.out, "enable_rdma\": "));
  CHECK(!absl::StrContains(r.out, kApiKey));
}

TEST_CASE("lepton: deployment.shared false gives each task its own endpoint, each deleted") {
  TempDir dir;
  LeptonFake fake(dir, {"--endpoint-ready-after-s", "0.3", "--warmup-503", "0"});
  fake.Scenario({{"jobs", {{{"match", "*"}, {"scenario", "run_forever"}}}}});
  Evald evald(dir, EvaldFlags(dir), {{"LEPTON_API_TOKEN", kToken}});
  std::string yaml =
      absl::StrCat(absl::StrReplaceAll(EndpointConfig(dir, fake, false),
                                       {{"  endpoint_readiness_interval: 0.2\n",
                                         "  endpoint_readiness_interval: 0.2\n  shared: false\n"}}),
                   "    - name: arith\n      task_file: ", DataDir(), "/arith_task.yaml\n");
  const std::string inv = Submit(evald, WriteConfig(dir, "run.yaml", yaml), false);
  REQUIRE(WaitFor([&] { return PostedEndpoints(fake).size() == 2; }, 20));
  std::set<std::string> names;
  for (const Json& p : PostedEndpoints(fake)) names.insert(p["metadata"]["name"]);
  CHECK(names == std::set<std::string>{absl::StrCat("llama-3-1-8b-", inv, "-0"),
                                       absl::StrCat("llama-3-1-8b-", inv, "-1")});
  REQUIRE(WaitFor([&] { return fake.Count("POST", "/jobs") == 2; }, 20));
  CHECK(evald.Ctl({"kill", inv}).exit_code == 0);
  evald.WaitTerminal(inv, 20);
  for (const std::string& name : names) CheckEndpointDeleted(fake, name);
}

TEST_CASE("lepton: an endpoint in a crash loop fails at once with its reasons and is deleted") {
  TempDir dir;
  LeptonFake fake(dir, {"--endpoint-ready-after-s", "0.3"});
  fake.Scenario({{"deployments",
                  {{{"match", "*"},
                    {"scenario", "crashloop"},
                    {"crash", true},
                    {"readiness_message", "vllm: CUDA out of memory"}}}}});
  Evald evald(dir, EvaldFlags(dir), {{"LEPTON_API_TOKEN", kToken}});
  std::string cfg = WriteConfig(dir, "run.yaml", EndpointConfig(dir, fake, false, "600"));
  const std::string inv = Submit(evald, cfg, false);
  const std::string name = WaitEndpointPosted(fake);
  v1::Invocation done = evald.WaitTerminal(inv, 20);
  INFO(done.DebugString());
  REQUIRE(done.deployments_size() == 1);
  const std::string message = done.deployments(0).message();
  CHECK(absl::StrContains(message, "keeps failing"));
  CHECK(absl::StrContains(message, "ConfigError: vllm: CUDA out of memory"));
  CHECK(absl::StrContains(message, "container exited with code 1"));
  CHECK(done.jobs(0).state() == v1::JOB_STATE_FAILED);
  CheckEndpointDeleted(fake, name);
}

// ---- Sweeping endpoints that outlived their invocation; job logs from /logs ------------------

// An endpoint created directly in the workspace (not by evald).
void CreateForeignEndpoint(LeptonFake& fake, const std::string& name) {
  httplib::Client c(fake.url());
  httplib::Headers headers = {{"Authorization", absl::StrCat("Bearer ", kToken)}};
  Json body = {{"metadata", {{"id", name}, {"name", name}}},
               {"spec",
                {{"container", {{"image", "vllm/vllm-openai:latest"}}},
                 {"resource_requirement",
                  {{"resource_shape", "gpu.1xh200"}, {"min_replicas", 1}, {"max_replicas", 1}}}}}};
  httplib::Result r =
      c.Post("/api/v2/workspaces/ws-test/deployments", headers, body.dump(), "application/json");
  REQUIRE(r);
  INFO(r->body);
  REQUIRE(r->status == 200);
}

// The fake's deployments by name, with their states.
std::map<std::string, std::string> FakeEndpoints(LeptonFake& fake) {
  std::map<std::string, std::string> out;
  const Json state = fake.Control("GET", "/_fake/state");
  for (const Json& d : state["deployments"]) {
    out[d["metadata"]["name"].get<std::string>()] = d["status"]["state"].get<std::string>();
  }
  return out;
}

TEST_CASE(
    "lepton: an endpoint that outlived its finished invocation is deleted after an evald restart, "
    "with an event, and a foreign endpoint is left alone") {
  TempDir dir;
  LeptonFake fake(dir, {"--endpoint-ready-after-s", "0.3"});
  // The endpoint's POST is carried out but answered 400, so the deployment fails; every DELETE
  // of it fails with 503: the invocation ends with its endpoint still running.
  fake.Scenario(
      {{"faults",
        {{{"method", "POST"}, {"path", "/deployments"}, {"status", 400}, {"commit", true}},
         {{"method", "DELETE"}, {"path", "/deployments/*"}, {"status", 503}, {"count", -1}}}}});
  Evald evald(dir, EvaldFlags(dir), {{"LEPTON_API_TOKEN", kToken}});
  std::string cfg = WriteConfig(dir, "run.yaml", EndpointConfig(dir, fake, false));
  const std::string inv = Submit(evald, cfg, false);
  const std::string name = WaitEndpointPosted(fake);
  v1::Invocation done = evald.WaitTerminal(inv, 90);
  INFO(done.DebugString());
  REQUIRE(done.deployments_size() == 1);
  CHECK(done.deployments(0).state() == v1::DEPLOYMENT_STATE_FAILED);
  CHECK(done.jobs(0).state() == v1::JOB_STATE_FAILED);
  REQUIRE(fake.Count("DELETE", "/deployments/" + name) >= 1);  // tried, and failed
  REQUIRE(FakeEndpoints(fake).count(name) == 1);
  CHECK(FakeEndpoints(fake)[name] != "Deleting");

  evald.Kill9();
  {
    httplib::Client c(fake.url());
    REQUIRE(c.Delete("/_fake/faults"));
  }
  // Endpoints evald did not create: one of another user, one named like evald's.
  CreateForeignEndpoint(fake, "my-own-llama");
  CreateForeignEndpoint(
      fake, absl::StrCat("llama-3-1-8b-", inv == "aaaaaaaa" ? "bbbbbbbb" : "aaaaaaaa", "-0"));
  const int deletes_before = fake.Count("DELETE", "/deployments/" + name);
  evald.Start();
  CHECK(WaitFor([&] { return fake.Count("DELETE", "/deployments/" + name) > deletes_before; }, 20));
  CHECK(WaitFor([&] { return FakeEndpoints(fake).count(name) == 0; }, 20));
  // One list call for the sweep; the foreign endpoints are neither deleted nor touched.
  CHECK(fake.Count("GET", "/deployments") >= 1);
  for (const Json& r : fake.Requests()) {
    if (r["method"] == "DELETE") {
      CHECK(absl::EndsWith(r["path"].get<std::string>(), "/deployments/" + name));
    }
  }
  std::map<std::string, std::string> left = FakeEndpoints(fake);
  CHECK(left.count("my-own-llama") == 1);
  CHECK(left.size() == 2);
  // The event on the invocation says what happened (a finished invocation's watch shows only
  // its snapshot: read the history from the database, as durability_test does).
  std::string events;
  CHECK(WaitFor(
      [&] {
        CommandResult r =
            Run({"sqlite3", evald.state_dir() + "/evald.db",
                 "SELECT kind || ': ' || message FROM events WHERE invocation_id = '" + inv +
                     "' ORDER BY seq"});
        events = r.out;
        return absl::StrContains(events, "deployment.swept");
      },
      10));
  INFO(events);
  CHECK(absl::StrContains(
      events, absl::StrCat("deployment.swept: deployment ", inv, ".d0: lepton endpoint ", name,
                           " of a finished invocation was still running: "
                           "deleted")));
  // The deployment's own log says it too.
  CommandResult server = evald.Ctl({"logs", inv, "--source", "server"});
  CHECK(absl::StrContains(server.out, "of a finished invocation was still running: deleted"));
  CheckNoSecretLeakAnywhere(fake);
}

TEST_CASE("lepton: evalctl logs shows a Lepton job's lines from /logs, paged, in order, once") {
  TempDir dir;
  LeptonFake fake(dir);
  // More lines than one /logs page (1000): three pages, none lost or shown twice.
  Json lines = Json::array();
  for (int i = 0; i < 2500; ++i) lines.push_back(absl::StrCat("eval line ", i));
  fake.Scenario({{"jobs", {{{"match", "*"}, {"scenario", "run_forever"}, {"log_lines", lines}}}}});
  Evald evald(dir, EvaldFlags(dir), {{"LEPTON_API_TOKEN", kToken}});
  std::string cfg = WriteConfig(dir, "run.yaml", LeptonConfig(dir, fake, false));
  const std::string inv = Submit(evald, cfg, false);
  Json job = WaitJobState(evald, inv, "running");
  // No stdout.log on the shared storage: the lines come from Lepton.
  REQUIRE_FALSE(std::filesystem::exists(job["output_dir"].get<std::string>() + "/logs/stdout.log"));
  const std::string job_id = inv + ".0";
  auto check_all = [&](const std::string& out, const std::string& prefix) {
    std::vector<std::string> got = absl::StrSplit(out, '\n', absl::SkipEmpty());
    REQUIRE(got.size() == 2500);
    for (int i = 0; i < 2500; ++i) {
      INFO(i);
      REQUIRE(got[i] == absl::StrCat(prefix, "eval line ", i));
    }
  };
  // Follow from now on, while the job runs.
  Process follower({BinDir() + "/evalctl", "logs", "-f", job_id}, {{"EVALD_ADDR", evald.address()}},
                   dir.path() + "/follow");
  {
    CommandResult r = evald.Ctl({"logs", inv});
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    check_all(r.out, job_id + ": ");
  }
  int log_calls = 0;
  for (const Json& r : fake.Requests()) {
    if (r["method"] == "GET" && absl::EndsWith(r["path"].get<std::string>(), "/logs")) {
      ++log_calls;
      CHECK(r["query"]["job"][0] == JobName(inv));
    }
  }
  CHECK(log_calls >= 3);
  {
    CommandResult r = evald.Ctl({"logs", job_id, "--tail", "3"});
    REQUIRE(r.exit_code == 0);
    CHECK(r.out == "eval line 2497\neval line 2498\neval line 2499\n");
  }
  // The job ends: the follower stops, having printed every line once.
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  PlayJobOutput(job["output_dir"], 0);
  fake.Script(JobName(inv), {{"timeline", {{{"state", "Completed"}}}}, {"log_lines", lines}});
  evald.WaitTerminal(inv, 30);
  CHECK(follower.Wait(20) == 0);
  check_all(follower.Stdout(), "");
  CheckNoSecretLeak(fake);
}

}  // namespace
}  // namespace evald::testing
