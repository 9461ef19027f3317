// FinishRpc end to end over real gRPC: evald's own failures (a database I/O error, a corrupt
// database) are logged once at error level and reach evalctl's real client marked as evald's, so
// evalctl prints them as what they are instead of "cannot reach evald"; refusals of the request
// and a shutdown are neither logged as errors nor marked.
#include "daemon/grpc_status_util.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <sstream>

#include "absl/strings/match.h"
#include "cli/client.h"
#include "evald/v1/evald.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "spdlog/sinks/ostream_sink.h"
#include "spdlog/spdlog.h"
#include "storage/sqlite_status.h"
#include "storage/store.h"

namespace evald::daemon {
namespace {

// Every Submit fails with `next`, through FinishRpc as the real service does.
class FailingService final : public v1::EvalService::Service {
 public:
  grpc::Status Submit(grpc::ServerContext* ctx, const v1::SubmitRequest*,
                      v1::SubmitResponse*) override {
    return FinishRpc(ctx, "Submit", next);
  }
  absl::Status next;
};

struct Fixture {
  Fixture() {
    char tmpl[] = "/tmp/evald-status-XXXXXX";
    dir = mkdtemp(tmpl);
    address = "unix://" + dir + "/evald.sock";
    grpc::ServerBuilder b;
    b.AddListeningPort(address, grpc::InsecureServerCredentials());
    b.RegisterService(&service);
    server = b.BuildAndStart();
    REQUIRE(server != nullptr);
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(log);
    previous = spdlog::default_logger();
    spdlog::set_default_logger(std::make_shared<spdlog::logger>("test", sink));
    spdlog::set_pattern("[%l] %v");
    auto resolved = cli::ResolveAddress(address, nullptr, dir);
    REQUIRE(resolved.ok());
    addr = *resolved;
    api = cli::NewGrpcEvalApi(addr);
  }
  ~Fixture() {
    spdlog::set_default_logger(previous);
    server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
    unlink((dir + "/evald.sock").c_str());
    rmdir(dir.c_str());
  }
  absl::Status Submit(absl::Status status) {
    service.next = std::move(status);
    v1::SubmitResponse resp;
    return api->Submit(v1::SubmitRequest(), &resp);
  }
  int ErrorLines() const {
    std::string text = log.str();
    int n = 0;
    for (size_t at = text.find("[error]"); at != std::string::npos;
         at = text.find("[error]", at + 1)) {
      ++n;
    }
    return n;
  }

  std::string dir;
  std::string address;
  FailingService service;
  std::unique_ptr<grpc::Server> server;
  std::ostringstream log;
  std::shared_ptr<spdlog::logger> previous;
  cli::ServerAddress addr;
  std::unique_ptr<cli::EvalApi> api;
};

TEST_CASE("a database I/O error is logged once and reaches evalctl as evald's failure") {
  Fixture f;
  absl::Status io = storage::MarkStorageFailure(absl::UnavailableError(
      "I/O error on /s/evald.db (create invocation 1a2b3c4d): disk I/O error"));
  absl::Status got = f.Submit(io);
  CHECK(got.code() == absl::StatusCode::kUnavailable);
  CHECK(cli::IsServerFailure(got));
  CHECK_FALSE(cli::IsAmbiguousFailure(got));
  CHECK(cli::ExitCodeFor(got) == cli::kExitServerError);
  std::string msg = cli::FailureMessage(got, f.addr);
  CHECK(msg ==
        "evald failed: UNAVAILABLE: I/O error on /s/evald.db (create invocation 1a2b3c4d): disk "
        "I/O error");
  CHECK_FALSE(absl::StrContains(msg, "cannot reach"));
  CHECK(f.ErrorLines() == 1);
  CHECK(absl::StrContains(f.log.str(), "[error] Submit failed: UNAVAILABLE: I/O error on"));
}

TEST_CASE("a corrupt database is DATA_LOSS and logged at error level") {
  Fixture f;
  absl::Status got = f.Submit(storage::SqliteCodeToStatus(
      11 /* SQLITE_CORRUPT */, "database disk image is malformed", "/s/evald.db", "insert"));
  CHECK(got.code() == absl::StatusCode::kDataLoss);
  CHECK(cli::ExitCodeFor(got) == cli::kExitServerError);
  CHECK(absl::StartsWith(cli::FailureMessage(got, f.addr), "evald failed: DATA_LOSS: /s/evald.db"));
  CHECK(f.ErrorLines() == 1);
}

TEST_CASE("refusals and a shutdown are not evald's failures: neither logged as errors nor marked") {
  Fixture f;
  for (const absl::Status& s :
       {absl::InvalidArgumentError("evaluation.tasks[0].name: unknown task"),
        absl::NotFoundError("no invocation 1a2b3c4d"),
        absl::FailedPreconditionError("invocation 1a2b3c4d already finished"),
        absl::ResourceExhaustedError("too many submits at once; retry later"),
        absl::UnavailableError("evald is shutting down")}) {
    INFO(s.ToString());
    absl::Status got = f.Submit(s);
    CHECK(got.code() == s.code());
    CHECK_FALSE(cli::IsServerFailure(got));
    CHECK_FALSE(IsServerFailure(s));
  }
  CHECK(f.ErrorLines() == 0);
}

}  // namespace
}  // namespace evald::daemon
