// File: fake_service.h
//
// An in-process evald.v1.EvalService on a private unix socket, for tests of the real gRPC client
// and of the evalctl binary: fixed answers, and the last Submit/Resume request it received.
//
//   Server s;                          // listens on unix:///tmp/evalctl-grpc-XXXXXX/evald.sock
//   ... evalctl --server s.address status 1a2b3c4d ...
//   CHECK(s.service.last_submit.dry_run());
#pragma once

#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "evald/v1/evald.grpc.pb.h"
#include "fake_api.h"
#include "grpcpp/grpcpp.h"

namespace evald::cli::testing {

class FakeService final : public v1::EvalService::Service {
 public:
  grpc::Status GetInvocation(grpc::ServerContext* ctx, const v1::GetInvocationRequest* req,
                             v1::Invocation* resp) override {
    RecordAuthorization(ctx);
    if (req->id().rfind("1a2b3c4d", 0) != 0) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "unknown id");
    }
    *resp = Invocation();
    return grpc::Status::OK;
  }
  grpc::Status Kill(grpc::ServerContext*, const v1::KillRequest*, v1::KillResponse*) override {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "every job already finished");
  }
  grpc::Status Submit(grpc::ServerContext*, const v1::SubmitRequest* req,
                      v1::SubmitResponse* resp) override {
    {
      std::lock_guard<std::mutex> lock(mu);
      last_submit = *req;
      ++submit_count;
    }
    resp->set_invocation_id("1a2b3c4d");
    v1::JobRef* j = resp->add_jobs();
    j->set_job_id("1a2b3c4d.0");
    j->set_task("gsm8k");
    if (req->dry_run()) {
      resp->set_dry_run(true);
      resp->set_config_yaml(req->config_yaml());
      j->set_script("#!/usr/bin/env bash\necho evaluating\n");
    }
    return grpc::Status::OK;
  }
  grpc::Status GetServerInfo(grpc::ServerContext* ctx, const v1::GetServerInfoRequest*,
                             v1::ServerInfo* resp) override {
    RecordAuthorization(ctx);
    resp->set_version("9.9.9");
    if (!LastAuthorization().empty()) {
      resp->set_caller_user("ci-bot");
      resp->set_caller_role("user");
    }
    resp->set_api_version("evald.v1");
    return grpc::Status::OK;
  }
  grpc::Status Watch(grpc::ServerContext* ctx, const v1::WatchRequest* req,
                     grpc::ServerWriter<v1::WatchEvent>* writer) override {
    v1::WatchEvent snap;
    *snap.mutable_snapshot() = Invocation();
    writer->Write(snap);
    if (req->id() == "1a2b3c4d") {
      v1::WatchEvent ev;
      ev.mutable_event()->set_job_id("1a2b3c4d.0");
      ev.mutable_event()->set_kind("job.state");
      ev.mutable_event()->set_from_state("running");
      ev.mutable_event()->set_to_state("succeeded");
      writer->Write(ev);
      return grpc::Status::OK;
    }
    // "1a2b3c4d.0": never ends on its own; only the client's cancellation stops it.
    while (!ctx->IsCancelled()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return grpc::Status::CANCELLED;
  }
  grpc::Status StreamLogs(grpc::ServerContext*, const v1::StreamLogsRequest* req,
                          grpc::ServerWriter<v1::LogChunk>* writer) override {
    v1::LogChunk c;
    c.set_job_id("1a2b3c4d.0");
    c.set_source(req->source());
    c.add_lines("line one");
    writer->Write(c);
    return grpc::Status::OK;
  }

  static v1::Invocation Invocation() {
    return MakeInvocation("1a2b3c4d", v1::JOB_STATE_RUNNING,
                          {MakeJob("1a2b3c4d.0", "gsm8k", v1::JOB_STATE_RUNNING)});
  }

  // The `authorization` metadata of the last GetInvocation/GetServerInfo ("" when none).
  std::string LastAuthorization() {
    std::lock_guard<std::mutex> lock(mu);
    return last_authorization;
  }
  void RecordAuthorizationForTest(const std::string& value) {
    std::lock_guard<std::mutex> lock(mu);
    last_authorization = value;
  }
  void RecordAuthorization(grpc::ServerContext* ctx) {
    auto it = ctx->client_metadata().find("authorization");
    std::lock_guard<std::mutex> lock(mu);
    last_authorization =
        it == ctx->client_metadata().end() ? "" : std::string(it->second.data(), it->second.size());
  }

  v1::SubmitRequest LastSubmit() {
    std::lock_guard<std::mutex> lock(mu);
    return last_submit;
  }

  std::mutex mu;
  v1::SubmitRequest last_submit;
  std::string last_authorization;
  int submit_count = 0;
};

struct Server {
  Server() {
    char tmpl[] = "/tmp/evalctl-grpc-XXXXXX";
    dir = mkdtemp(tmpl);
    address = "unix://" + dir + "/evald.sock";
    grpc::ServerBuilder b;
    b.AddListeningPort(address, grpc::InsecureServerCredentials());
    b.RegisterService(&service);
    server = b.BuildAndStart();
    REQUIRE(server != nullptr);
  }
  ~Server() {
    server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
    unlink((dir + "/evald.sock").c_str());
    rmdir(dir.c_str());
  }
  std::string dir;
  std::string address;
  FakeService service;
  std::unique_ptr<grpc::Server> server;
};

}  // namespace evald::cli::testing
