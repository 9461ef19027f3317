// File: eval_service_impl.h
//
// The gRPC face of evald.v1.EvalService: each method first resolves who is calling (the one
// place is CallerResolver, daemon/auth/caller.h: UNAUTHENTICATED ends the call there), then calls
// the ServerCore method of the same name with that Caller and converts the returned status. No
// state, no SQL, no executor calls here (tf-serving's ModelServiceImpl is the model).
#pragma once

#include <optional>
#include <string>

#include "daemon/auth/caller.h"
#include "daemon/server_core.h"
#include "evald/v1/evald.grpc.pb.h"

namespace evald::daemon {

class EvalServiceImpl final : public v1::EvalService::Service {
 public:
  // `resolver` outlives the service.
  EvalServiceImpl(ServerCore* core, CallerResolver* resolver) : core_(core), resolver_(resolver) {}

  grpc::Status Submit(grpc::ServerContext* ctx, const v1::SubmitRequest* req,
                      v1::SubmitResponse* resp) override;
  grpc::Status GetInvocation(grpc::ServerContext* ctx, const v1::GetInvocationRequest* req,
                             v1::Invocation* resp) override;
  grpc::Status ListInvocations(grpc::ServerContext* ctx, const v1::ListInvocationsRequest* req,
                               v1::ListInvocationsResponse* resp) override;
  grpc::Status Watch(grpc::ServerContext* ctx, const v1::WatchRequest* req,
                     grpc::ServerWriter<v1::WatchEvent>* writer) override;
  grpc::Status Kill(grpc::ServerContext* ctx, const v1::KillRequest* req,
                    v1::KillResponse* resp) override;
  grpc::Status Resume(grpc::ServerContext* ctx, const v1::ResumeRequest* req,
                      v1::ResumeResponse* resp) override;
  grpc::Status StreamLogs(grpc::ServerContext* ctx, const v1::StreamLogsRequest* req,
                          grpc::ServerWriter<v1::LogChunk>* writer) override;
  grpc::Status ListTasks(grpc::ServerContext* ctx, const v1::ListTasksRequest* req,
                         v1::ListTasksResponse* resp) override;
  grpc::Status GetResults(grpc::ServerContext* ctx, const v1::GetResultsRequest* req,
                          v1::GetResultsResponse* resp) override;
  grpc::Status GetServerInfo(grpc::ServerContext* ctx, const v1::GetServerInfoRequest* req,
                             v1::ServerInfo* resp) override;
  grpc::Status Backup(grpc::ServerContext* ctx, const v1::BackupRequest* req,
                      v1::BackupResponse* resp) override;
  grpc::Status Export(grpc::ServerContext* ctx, const v1::ExportRequest* req,
                      v1::ExportResponse* resp) override;
  grpc::Status CreateToken(grpc::ServerContext* ctx, const v1::CreateTokenRequest* req,
                           v1::CreateTokenResponse* resp) override;
  grpc::Status ListTokens(grpc::ServerContext* ctx, const v1::ListTokensRequest* req,
                          v1::ListTokensResponse* resp) override;
  grpc::Status RevokeToken(grpc::ServerContext* ctx, const v1::RevokeTokenRequest* req,
                           v1::RevokeTokenResponse* resp) override;
  grpc::Status Compare(grpc::ServerContext* ctx, const v1::CompareRequest* req,
                       v1::CompareResponse* resp) override;

 private:
  absl::StatusOr<Caller> CallerOf(grpc::ServerContext* ctx);

  ServerCore* core_;
  CallerResolver* resolver_;
};

}  // namespace evald::daemon
