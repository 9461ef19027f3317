// evald's durability promises, tested with real processes: kill -9 and restart, SIGTERM within
// 5 s without touching jobs, secrets never at rest in the clear, concurrent clients.
#include <signal.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <map>
#include <set>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "tests/integration/fixture.h"

namespace evald::testing {
namespace {

namespace fs = std::filesystem;

std::string SubmitJson(const Evald& evald, const std::string& cfg,
                       std::map<std::string, std::string> env = {}) {
  CommandResult r = evald.Ctl({"submit", cfg, "--json"}, std::move(env));
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  std::string inv = InvocationIdFromJson(r.out);
  REQUIRE(inv.size() == 8);
  return inv;
}

std::vector<v1::Event> AllEvents(const Evald& evald, const std::string& inv) {
  // Watch on a finished invocation returns only the snapshot; read the history through the
  // database the way a restarted watcher would: a Watch that starts at seq 0 is not offered, so
  // use sqlite3 on the state file.
  CommandResult r = Run({"sqlite3", "-json", evald.state_dir() + "/evald.db",
                         "SELECT seq, kind, job_id, from_state, to_state FROM events WHERE "
                         "invocation_id = '" + inv + "' ORDER BY seq"});
  REQUIRE(r.exit_code == 0);
  std::vector<v1::Event> out;
  if (r.out.empty()) return out;
  for (const auto& row : nlohmann::json::parse(r.out)) {
    v1::Event e;
    e.set_seq(row["seq"].get<int64_t>());
    e.set_kind(row["kind"].get<std::string>());
    e.set_job_id(row["job_id"].is_null() ? "" : row["job_id"].get<std::string>());
    e.set_from_state(row["from_state"].is_null() ? "" : row["from_state"].get<std::string>());
    e.set_to_state(row["to_state"].is_null() ? "" : row["to_state"].get<std::string>());
    out.push_back(e);
  }
  return out;
}

TEST_CASE("after kill -9 evald restarts, finishes every job once and loses no event") {
  TempDir dir;
  RefEndpoint model(dir, ArithModelFlags({"--latency-ms", "100"}));
  auto evald = std::make_unique<Evald>(dir);
  std::string cfg = WriteConfig(
      dir, "run.yaml", ArithConfig(dir, model, {.tasks = 3, .limit_samples = 12, .parallelism = 1}));
  std::string inv = SubmitJson(*evald, cfg);
  REQUIRE(WaitFor(
      [&] {
        v1::Invocation got = evald->Get(inv);
        for (const v1::Job& j : got.jobs()) {
          if (j.state() != v1::JOB_STATE_RUNNING) return false;
        }
        return true;
      },
      30));
  evald->Kill9();
  // Jobs keep running without evald; let one of them finish while it is down.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  evald->Start();
  v1::Invocation done = evald->WaitTerminal(inv, 60);
  REQUIRE(done.state() == v1::JOB_STATE_SUCCEEDED);
  std::vector<v1::Event> events = AllEvents(*evald, inv);
  for (const v1::Job& job : done.jobs()) {
    INFO("job " << job.job_id());
    CHECK(job.attempt() == 1);
    CHECK(Slurp(job.output_dir() + "/logs/attempt") == "1\n");
    CHECK(job.progress().done() == 12);
    // The job's history is one unbroken chain pending -> submitted -> running -> succeeded.
    std::vector<std::string> chain;
    std::string at = "pending";
    for (const v1::Event& e : events) {
      if (e.kind() != "job.state" || e.job_id() != job.job_id()) continue;
      CHECK(e.from_state() == at);
      at = e.to_state();
      chain.push_back(at);
    }
    CHECK(chain == std::vector<std::string>{"submitted", "running", "succeeded"});
  }
  // Sequence numbers only grow.
  for (size_t i = 1; i < events.size(); ++i) CHECK(events[i].seq() > events[i - 1].seq());
  CHECK(events.front().kind() == "invocation.submitted");
}

TEST_CASE("SIGTERM stops evald within 5 s and the running job is not touched") {
  TempDir dir;
  RefEndpoint model(dir, ArithModelFlags({"--latency-ms", "150"}));
  auto evald = std::make_unique<Evald>(dir);
  std::string cfg = WriteConfig(dir, "run.yaml",
                                ArithConfig(dir, model, {.limit_samples = 20, .parallelism = 1}));
  std::string inv = SubmitJson(*evald, cfg);
  REQUIRE(WaitFor([&] { return evald->Get(inv).jobs(0).state() == v1::JOB_STATE_RUNNING; }, 30));
  // A Watch stream is open while evald stops: shutdown must not wait for it.
  Process watcher({BinDir() + "/evalctl", "watch", inv}, {{"EVALD_ADDR", evald->address()}},
                  dir.path() + "/watch");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto start = std::chrono::steady_clock::now();
  int code = evald->Terminate(10);
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CHECK(code == 0);
  CHECK(seconds < 5.0);
  CHECK(watcher.Wait(10) == 3);  // the watcher says evald went away
  // The job is still running without evald, then finishes by itself.
  CHECK_FALSE(evald->process().Alive());
  evald->Start();
  v1::Invocation done = evald->WaitTerminal(inv, 60);
  CHECK(done.state() == v1::JOB_STATE_SUCCEEDED);
  CHECK(done.jobs(0).attempt() == 1);
}

TEST_CASE("a secret value never reaches the database, logs, scripts or dry-run output") {
  TempDir dir;
  const std::string canary = "sk-CANARY-7f3a9e1d55b2";
  RefEndpoint model(dir, ArithModelFlags({"--require-api-key", canary}));
  Evald evald(dir);
  std::string cfg = WriteConfig(
      dir, "run.yaml", ArithConfig(dir, model, {.tasks = 2, .api_key_name = "MY_MODEL_KEY"}));
  std::map<std::string, std::string> env = {{"MY_MODEL_KEY", canary}};

  CommandResult dry = evald.Ctl({"submit", cfg, "--dry-run"}, env);
  INFO(dry.out << dry.err);
  REQUIRE(dry.exit_code == 0);
  CHECK_FALSE(absl::StrContains(dry.out + dry.err, canary));
  CommandResult dry_json = evald.Ctl({"submit", cfg, "--dry-run", "--json"}, env);
  REQUIRE(dry_json.exit_code == 0);
  CHECK_FALSE(absl::StrContains(dry_json.out + dry_json.err, canary));

  std::string inv = SubmitJson(evald, cfg, env);
  // While the jobs run the secret is stored (encrypted) and the model sees the key.
  CommandResult w = evald.Ctl({"watch", inv});
  INFO(w.out << w.err);
  REQUIRE(w.exit_code == 0);  // the endpoint accepted the key: it reached the jobs
  CommandResult status = evald.Ctl({"status", inv, "--json"});
  CommandResult info = evald.Ctl({"info", inv});
  CHECK_FALSE(absl::StrContains(status.out + info.out, canary));

  evald.Terminate();
  std::vector<std::string> places = {evald.process().Stderr(), evald.process().Stdout()};
  for (const auto& entry : fs::recursive_directory_iterator(dir.path())) {
    if (entry.is_regular_file() && entry.path().filename() != "secrets.key") {
      places.push_back(Slurp(entry.path().string()));
    }
  }
  int checked = 0;
  for (const std::string& text : places) {
    CHECK_FALSE(absl::StrContains(text, canary));
    ++checked;
  }
  CHECK(checked > 10);  // db, wal, logs, run.sh, plan.yaml, results ... were all read
}

TEST_CASE("32 concurrent clients submitting 20 each lose no invocation") {
  TempDir dir;
  RefEndpoint model(dir, ArithModelFlags());
  // Jobs stay pending behind max_running_jobs 1; they are killed at the end.
  std::string server_cfg = WriteConfig(dir, "evald.yaml", "max_running_jobs: 1\n");
  Evald evald(dir, {"--config", server_cfg});
  std::string config_yaml = ArithConfig(dir, model, {.limit_samples = 1});
  std::atomic<int> failures{0};
  std::vector<std::vector<std::string>> ids(32);
  std::vector<std::thread> clients;
  for (int c = 0; c < 32; ++c) {
    clients.emplace_back([&, c] {
      auto stub = evald.Stub();
      for (int i = 0; i < 20; ++i) {
        v1::SubmitRequest req;
        req.set_config_yaml(config_yaml);
        req.set_working_dir(dir.path());
        req.set_client(absl::StrCat("client-", c));
        v1::SubmitResponse resp;
        grpc::ClientContext ctx;
        grpc::Status s = stub->Submit(&ctx, req, &resp);
        if (!s.ok()) {
          ++failures;
          continue;
        }
        ids[c].push_back(resp.invocation_id());
      }
    });
  }
  for (std::thread& t : clients) t.join();
  CHECK(failures == 0);
  std::set<std::string> submitted;
  for (const auto& list : ids) submitted.insert(list.begin(), list.end());
  CHECK(submitted.size() == 640);

  std::set<std::string> listed;
  std::string token;
  auto stub = evald.Stub();
  do {
    v1::ListInvocationsRequest req;
    req.set_limit(100);
    req.set_page_token(token);
    v1::ListInvocationsResponse resp;
    grpc::ClientContext ctx;
    REQUIRE(stub->ListInvocations(&ctx, req, &resp).ok());
    for (const v1::Invocation& inv : resp.invocations()) {
      CHECK(listed.insert(inv.invocation_id()).second);
      CHECK(inv.job_count() == 1);
    }
    token = resp.next_page_token();
  } while (!token.empty());
  CHECK(listed == submitted);

  for (const std::string& id : submitted) {
    v1::KillRequest req;
    req.set_id(id);
    v1::KillResponse resp;
    grpc::ClientContext ctx;
    stub->Kill(&ctx, req, &resp);
  }
  CHECK(WaitFor(
      [&] {
        v1::ListInvocationsRequest req;
        req.set_limit(1000);
        v1::ListInvocationsResponse resp;
        grpc::ClientContext ctx;
        if (!stub->ListInvocations(&ctx, req, &resp).ok()) return false;
        for (const v1::Invocation& inv : resp.invocations()) {
          if (!IsTerminalState(inv.state())) return false;
        }
        return resp.invocations_size() == 640;
      },
      60));
}

}  // namespace
}  // namespace evald::testing
