// File: grpc_status_util.h
//
// The one conversion from absl::Status (used everywhere in evald) to grpc::Status (used only by the
// thin service classes in daemon/services/). Codes map one to one.
#pragma once

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace evald::daemon {

grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace evald::daemon
