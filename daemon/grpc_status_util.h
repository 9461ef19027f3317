// File: grpc_status_util.h
//
// The one conversion from absl::Status (used everywhere in evald) to grpc::Status (used only by the
// thin service classes in daemon/services/). Codes map one to one. FinishRpc is what every
// service method returns through: it also logs evald's own failures (a corrupt or unwritable
// database, an internal error) at error level, once per failed call, and marks them for clients
// with trailing metadata, so a client can tell "evald failed" from "evald could not be reached"
// even when both are UNAVAILABLE.
#pragma once

#include <grpcpp/server_context.h>
#include <grpcpp/support/status.h>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace evald::daemon {

// Trailing metadata key (value "1") on a call that failed on evald's side. evalctl's client
// (cli/client.cc) reads it; docs/api.md documents it.
inline constexpr char kServerFailureMetadataKey[] = "evald-server-failure";

grpc::Status ToGrpcStatus(const absl::Status& status);

// Evald's own failure, not a refusal of the request: INTERNAL, DATA_LOSS, UNKNOWN, or any status
// the storage layer tagged as a database failure (storage::IsStorageFailure: I/O error, read-only
// or corrupt file, disk full, busy beyond the timeout).
bool IsServerFailure(const absl::Status& status);

// ToGrpcStatus, after logging a server failure as "<rpc> failed: <CODE>: <message>" at error
// level and adding kServerFailureMetadataKey to `ctx`'s trailing metadata.
grpc::Status FinishRpc(grpc::ServerContext* ctx, absl::string_view rpc, const absl::Status& status);

}  // namespace evald::daemon
