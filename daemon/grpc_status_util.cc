#include "daemon/grpc_status_util.h"

#include <string>

#include "daemon/fmt_absl.h"
#include "spdlog/spdlog.h"
#include "storage/store.h"

namespace evald::daemon {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  // absl and gRPC share the canonical code numbering.
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

bool IsServerFailure(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return false;
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kDataLoss:
    case absl::StatusCode::kUnknown:
      return true;
    default:
      return storage::IsStorageFailure(status);
  }
}

grpc::Status FinishRpc(grpc::ServerContext* ctx, absl::string_view rpc,
                       const absl::Status& status) {
  if (IsServerFailure(status)) {
    spdlog::error("{} failed: {}: {}", rpc, absl::StatusCodeToString(status.code()),
                  status.message());
    if (ctx != nullptr) ctx->AddTrailingMetadata(kServerFailureMetadataKey, "1");
  }
  return ToGrpcStatus(status);
}

}  // namespace evald::daemon
