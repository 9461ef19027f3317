// The real gRPC client against an in-process EvalService over a unix socket: what evalctl's
// commands do end to end while the daemon itself is not needed (its own tests drive evalctl).
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "cli/client.h"
#include "cli/commands/commands.h"
#include "cli/format.h"
#include "evald/v1/evald.grpc.pb.h"
#include "fake_api.h"
#include "fake_service.h"
#include "grpcpp/grpcpp.h"

namespace evald::cli {
namespace {

using testing::Server;

struct Client {
  // Through EVALD_ADDR when `via_env`, else --server.
  Client(const std::string& address, bool via_env) {
    auto a = via_env ? ResolveAddress(std::nullopt, address.c_str(), "/nonexistent")
                     : ResolveAddress(address, nullptr, "/nonexistent");
    REQUIRE(a.ok());
    api = NewGrpcEvalApi(*a);
    ctx.api = api.get();
    ctx.address = *a;
    ctx.out = &out;
    ctx.err = &err;
    ctx.env = [](const std::string& n) -> std::optional<std::string> {
      if (n == "HF_TOKEN") return std::string("hf_value_from_env");
      return std::nullopt;
    };
  }
  std::unique_ptr<EvalApi> api;
  Context ctx;
  std::ostringstream out, err;
};

TEST_CASE("status --json over a unix socket, through --server and EVALD_ADDR") {
  Server s;
  for (bool via_env : {false, true}) {
    Client c(s.address, via_env);
    StatusOptions o;
    o.ids = {"1a2b3c4d"};
    o.json = true;
    REQUIRE(RunStatus(c.ctx, o) == 0);
    Json j = Json::parse(c.out.str());
    CHECK(j["invocation_id"] == "1a2b3c4d");
    CHECK(j["jobs"][0]["state"] == "running");
  }
}

TEST_CASE("gRPC errors become evalctl's exit codes") {
  Server s;
  Client c(s.address, false);
  StatusOptions st;
  st.ids = {"ffffffff"};
  CHECK(RunStatus(c.ctx, st) == kExitNotFound);
  CHECK(c.err.str() == "evalctl: no invocation or job with id ffffffff\n");
  Client k(s.address, false);
  KillOptions ko;
  ko.id = "1a2b3c4d";
  CHECK(RunKill(k.ctx, ko) == kExitRefused);
  CHECK(k.err.str() == "evalctl: every job already finished\n");
}

TEST_CASE("submit sends secrets only in the secrets map") {
  Server s;
  Client c(s.address, false);
  SubmitOptions o;
  o.config_path = "cfg.yaml";
  ComposeFn compose = [](const ComposeInput&) -> absl::StatusOr<ComposedConfig> {
    ComposedConfig cc;
    cc.yaml = "evaluation: {tasks: [{name: gsm8k}]}\n";
    cc.secret_names = {"HF_TOKEN"};
    return cc;
  };
  REQUIRE(RunSubmit(c.ctx, o, compose) == 0);
  CHECK(s.service.LastSubmit().secrets().at("HF_TOKEN") == "hf_value_from_env");
  CHECK_FALSE(absl::StrContains(s.service.LastSubmit().config_yaml(), "hf_value_from_env"));
  CHECK_FALSE(absl::StrContains(c.out.str() + c.err.str(), "hf_value_from_env"));
}

TEST_CASE("watch and logs stream over gRPC") {
  Server s;
  Client c(s.address, false);
  WatchOptions w;
  w.id = "1a2b3c4d";
  CHECK(RunWatch(c.ctx, w) == 0);
  CHECK(absl::StrContains(c.out.str(), "1a2b3c4d.0 gsm8k: running -> succeeded"));

  Client l(s.address, false);
  LogsOptions lo;
  lo.id = "1a2b3c4d";
  REQUIRE(RunLogs(l.ctx, lo) == 0);
  CHECK(l.out.str() == "1a2b3c4d.0: line one\n");
}

TEST_CASE("Ctrl-C cancels a watch stream that would never end: exit 130") {
  Server s;
  Client c(s.address, false);
  // The fake API of this test is the real one; interrupt once the snapshot has arrived.
  struct Interrupting : EvalApi {
    EvalApi* real;
    explicit Interrupting(EvalApi* r) : real(r) {}
    absl::Status Submit(const v1::SubmitRequest& a, v1::SubmitResponse* b) override {
      return real->Submit(a, b);
    }
    absl::Status GetInvocation(const v1::GetInvocationRequest& a, v1::Invocation* b) override {
      return real->GetInvocation(a, b);
    }
    absl::Status ListInvocations(const v1::ListInvocationsRequest& a,
                                 v1::ListInvocationsResponse* b) override {
      return real->ListInvocations(a, b);
    }
    absl::Status Kill(const v1::KillRequest& a, v1::KillResponse* b) override {
      return real->Kill(a, b);
    }
    absl::Status Resume(const v1::ResumeRequest& a, v1::ResumeResponse* b) override {
      return real->Resume(a, b);
    }
    absl::Status ListTasks(const v1::ListTasksRequest& a, v1::ListTasksResponse* b) override {
      return real->ListTasks(a, b);
    }
    absl::Status GetResults(const v1::GetResultsRequest& a, v1::GetResultsResponse* b) override {
      return real->GetResults(a, b);
    }
    absl::Status GetServerInfo(bool q, v1::ServerInfo* b) override {
      return real->GetServerInfo(q, b);
    }
    absl::Status StreamLogs(const v1::StreamLogsRequest& a,
                            const std::function<bool(const v1::LogChunk&)>& b) override {
      return real->StreamLogs(a, b);
    }
    absl::Status Watch(const v1::WatchRequest& req,
                       const std::function<bool(const v1::WatchEvent&)>& on) override {
      return real->Watch(req, [&](const v1::WatchEvent& ev) {
        bool more = on(ev);
        SetInterruptedForTest(true);  // as if the user pressed Ctrl-C now
        return more;
      });
    }
  } interrupting(c.api.get());
  c.ctx.api = &interrupting;
  WatchOptions w;
  w.id = "1a2b3c4d.0";
  int rc = RunWatch(c.ctx, w);
  SetInterruptedForTest(false);
  CHECK(rc == kExitInterrupted);
  CHECK(absl::StrContains(c.err.str(), "stopped watching 1a2b3c4d.0; the jobs keep running"));
}

TEST_CASE("version reports the daemon it reached") {
  Server s;
  Client c(s.address, false);
  CHECK(RunVersion(c.ctx) == 0);
  CHECK(absl::StrContains(c.out.str(), "evald 9.9.9 (api evald.v1) at " + s.address + "\n"));
}

}  // namespace
}  // namespace evald::cli
