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

absl::StatusOr<Caller> EvalServiceImpl::CallerOf(grpc::ServerContext* ctx) {
  std::optional<absl::string_view> authorization;
  const auto& md = ctx->client_metadata();
  if (auto it = md.find("authorization"); it != md.end()) {
    authorization = absl::string_view(it->second.data(), it->second.size());
  }
  return resolver_->Resolve(ctx->peer(), authorization);
}

// The caller, or the end of the call with the resolver's status.
#define EVALD_CALLER_OR_FINISH(caller, ctx, rpc)                      \
  absl::StatusOr<Caller> caller##_or = CallerOf(ctx);                 \
  if (!caller##_or.ok()) return FinishRpc(ctx, rpc, caller##_or.status()); \
  [[maybe_unused]] const Caller& caller = *caller##_or

grpc::Status EvalServiceImpl::Submit(grpc::ServerContext* ctx, const v1::SubmitRequest* req,
                                     v1::SubmitResponse* resp) {
  EVALD_CALLER_OR_FINISH(caller, ctx, "Submit");
  return FinishRpc(ctx, "Submit", core_->Submit(caller, *req, resp));
}

grpc::Status EvalServiceImpl::GetInvocation(grpc::ServerContext* ctx,
                                            const v1::GetInvocationRequest* req,
                                            v1::Invocation* resp) {
  EVALD_CALLER_OR_FINISH(caller, ctx, "GetInvocation");
  return FinishRpc(ctx, "GetInvocation", core_->GetInvocation(*req, resp));
}

grpc::Status EvalServiceImpl::ListInvocations(grpc::ServerContext* ctx,
                                              const v1::ListInvocationsRequest* req,
                                              v1::ListInvocationsResponse* resp) {
  EVALD_CALLER_OR_FINISH(caller, ctx, "ListInvocations");
  return FinishRpc(ctx, "ListInvocations", core_->ListInvocations(caller, *req, resp));
}

grpc::Status EvalServiceImpl::Watch(grpc::ServerContext* ctx, const v1::WatchRequest* req,
                                    grpc::ServerWriter<v1::WatchEvent>* writer) {
  EVALD_CALLER_OR_FINISH(caller, ctx, "Watch");
  return FinishRpc(ctx, "Watch", core_->Watch(*req, SinkFor(ctx, writer)));
}

grpc::Status EvalServiceImpl::Kill(grpc::ServerContext* ctx, const v1::KillRequest* req,
                                   v1::KillResponse* resp) {
  EVALD_CALLER_OR_FINISH(caller, ctx, "Kill");
  return FinishRpc(ctx, "Kill", core_->Kill(caller, *req, resp));
}

grpc::Status EvalServiceImpl::Resume(grpc::ServerContext* ctx, const v1::ResumeRequest* req,
                                     v1::ResumeResponse* resp) {
  EVALD_CALLER_OR_FINISH(caller, ctx, "Resume");
  return FinishRpc(ctx, "Resume", core_->Resume(caller, *req, resp));
}

grpc::Status EvalServiceImpl::StreamLogs(grpc::ServerContext* ctx,
                                         const v1::StreamLogsRequest* req,
                                         grpc::ServerWriter<v1::LogChunk>* writer) {
  EVALD_CALLER_OR_FINISH(caller, ctx, "StreamLogs");
  return FinishRpc(ctx, "StreamLogs", core_->StreamLogs(*req, SinkFor(ctx, writer)));
}

grpc::Status EvalServiceImpl::ListTasks(grpc::ServerContext* ctx, const v1::ListTasksRequest* req,
                                        v1::ListTasksResponse* resp) {
  EVALD_CALLER_OR_FINISH(caller, ctx, "ListTasks");
  return FinishRpc(ctx, "ListTasks", core_->ListTasks(*req, resp));
}

grpc::Status EvalServiceImpl::GetResults(grpc::ServerContext* ctx, const v1::GetResultsRequest* req,
                                         v1::GetResultsResponse* resp) {
  EVALD_CALLER_OR_FINISH(caller, ctx, "GetResults");
  return FinishRpc(ctx, "GetResults", core_->GetResults(*req, resp));
}

grpc::Status EvalServiceImpl::GetServerInfo(grpc::ServerContext* ctx,
                                            const v1::GetServerInfoRequest* req,
                                            v1::ServerInfo* resp) {
  EVALD_CALLER_OR_FINISH(caller, ctx, "GetServerInfo");
  return FinishRpc(ctx, "GetServerInfo", core_->GetServerInfo(caller, *req, resp));
}

grpc::Status EvalServiceImpl::Backup(grpc::ServerContext* ctx, const v1::BackupRequest* req,
                                     v1::BackupResponse* resp) {
  EVALD_CALLER_OR_FINISH(caller, ctx, "Backup");
  return FinishRpc(ctx, "Backup", core_->Backup(caller, *req, resp));
}

grpc::Status EvalServiceImpl::Export(grpc::ServerContext* ctx, const v1::ExportRequest* req,
                                     v1::ExportResponse* resp) {
  EVALD_CALLER_OR_FINISH(caller, ctx, "Export");
  return FinishRpc(ctx, "Export", core_->Export(caller, *req, resp));
}

grpc::Status EvalServiceImpl::CreateToken(grpc::ServerContext* ctx,
                                          const v1::CreateTokenRequest* req,
                                          v1::CreateTokenResponse* resp) {
  EVALD_CALLER_OR_FINISH(caller, ctx, "CreateToken");
  return FinishRpc(ctx, "CreateToken", core_->CreateToken(caller, *req, resp));
}

grpc::Status EvalServiceImpl::ListTokens(grpc::ServerContext* ctx,
                                         const v1::ListTokensRequest* req,
                                         v1::ListTokensResponse* resp) {
  EVALD_CALLER_OR_FINISH(caller, ctx, "ListTokens");
  return FinishRpc(ctx, "ListTokens", core_->ListTokens(caller, *req, resp));
}

grpc::Status EvalServiceImpl::RevokeToken(grpc::ServerContext* ctx,
                                          const v1::RevokeTokenRequest* req,
                                          v1::RevokeTokenResponse* resp) {
  EVALD_CALLER_OR_FINISH(caller, ctx, "RevokeToken");
  return FinishRpc(ctx, "RevokeToken", core_->RevokeToken(caller, *req, resp));
}

grpc::Status EvalServiceImpl::Compare(grpc::ServerContext* ctx, const v1::CompareRequest* req,
                                      v1::CompareResponse* resp) {
  EVALD_CALLER_OR_FINISH(caller, ctx, "Compare");
  return FinishRpc(ctx, "Compare", core_->Compare(caller, *req, resp));
}

}  // namespace evald::daemon
