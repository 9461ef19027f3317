#include "daemon/services/eval_service_impl.h"

#include "daemon/grpc_status_util.h"

namespace evald::daemon {
namespace {

template <typename T>
StreamSink<T> SinkFor(grpc::ServerContext* ctx, grpc::ServerWriter<T>* writer) {
  return {[ctx] { return ctx->IsCancelled(); },
          [writer](const T& msg) { return writer->Write(msg); }};
}

}  // namespace

grpc::Status EvalServiceImpl::Submit(grpc::ServerContext* ctx, const v1::SubmitRequest* req,
                                     v1::SubmitResponse* resp) {
  return FinishRpc(ctx, "Submit", core_->Submit(*req, resp));
}

grpc::Status EvalServiceImpl::GetInvocation(grpc::ServerContext* ctx,
                                            const v1::GetInvocationRequest* req,
                                            v1::Invocation* resp) {
  return FinishRpc(ctx, "GetInvocation", core_->GetInvocation(*req, resp));
}

grpc::Status EvalServiceImpl::ListInvocations(grpc::ServerContext* ctx,
                                              const v1::ListInvocationsRequest* req,
                                              v1::ListInvocationsResponse* resp) {
  return FinishRpc(ctx, "ListInvocations", core_->ListInvocations(*req, resp));
}

grpc::Status EvalServiceImpl::Watch(grpc::ServerContext* ctx, const v1::WatchRequest* req,
                                    grpc::ServerWriter<v1::WatchEvent>* writer) {
  return FinishRpc(ctx, "Watch", core_->Watch(*req, SinkFor(ctx, writer)));
}

grpc::Status EvalServiceImpl::Kill(grpc::ServerContext* ctx, const v1::KillRequest* req,
                                   v1::KillResponse* resp) {
  return FinishRpc(ctx, "Kill", core_->Kill(*req, resp));
}

grpc::Status EvalServiceImpl::Resume(grpc::ServerContext* ctx, const v1::ResumeRequest* req,
                                     v1::ResumeResponse* resp) {
  return FinishRpc(ctx, "Resume", core_->Resume(*req, resp));
}

grpc::Status EvalServiceImpl::StreamLogs(grpc::ServerContext* ctx,
                                         const v1::StreamLogsRequest* req,
                                         grpc::ServerWriter<v1::LogChunk>* writer) {
  return FinishRpc(ctx, "StreamLogs", core_->StreamLogs(*req, SinkFor(ctx, writer)));
}

grpc::Status EvalServiceImpl::ListTasks(grpc::ServerContext* ctx, const v1::ListTasksRequest* req,
                                        v1::ListTasksResponse* resp) {
  return FinishRpc(ctx, "ListTasks", core_->ListTasks(*req, resp));
}

grpc::Status EvalServiceImpl::GetResults(grpc::ServerContext* ctx, const v1::GetResultsRequest* req,
                                         v1::GetResultsResponse* resp) {
  return FinishRpc(ctx, "GetResults", core_->GetResults(*req, resp));
}

grpc::Status EvalServiceImpl::GetServerInfo(grpc::ServerContext* ctx,
                                            const v1::GetServerInfoRequest* req,
                                            v1::ServerInfo* resp) {
  return FinishRpc(ctx, "GetServerInfo", core_->GetServerInfo(*req, resp));
}

grpc::Status EvalServiceImpl::Backup(grpc::ServerContext* ctx, const v1::BackupRequest* req,
                                     v1::BackupResponse* resp) {
  return FinishRpc(ctx, "Backup", core_->Backup(*req, resp));
}

grpc::Status EvalServiceImpl::Export(grpc::ServerContext* ctx, const v1::ExportRequest* req,
                                     v1::ExportResponse* resp) {
  return FinishRpc(ctx, "Export", core_->Export(*req, resp));
}

}  // namespace evald::daemon
