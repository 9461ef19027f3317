// File: eval_service_impl.h
//
// The gRPC face of evald.v1.EvalService: each method decodes nothing itself, calls the ServerCore
// method of the same name and converts the returned status. No state, no SQL, no executor calls
// here (tf-serving's ModelServiceImpl is the model).
#pragma once

#include "daemon/server_core.h"
#include "evald/v1/evald.grpc.pb.h"

namespace evald::daemon {

class EvalServiceImpl final : public v1::EvalService::Service {
 public:
  explicit EvalServiceImpl(ServerCore* core) : core_(core) {}

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

 private:
  ServerCore* core_;
};

}  // namespace evald::daemon
