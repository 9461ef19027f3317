// File: net.h
//
// Port helpers for co-located model servers: pick a free loopback port for `deployment.port:
// auto`, and check that a fixed port is free before a server starts, so a health check can never
// pass against somebody else's server.
//
// Callers: the local executor before it starts a deployment.
//
//   EVALD_ASSIGN_OR_RETURN(int port, spec.port_auto ? PickFreePort() : spec.port);
//   EVALD_RETURN_IF_ERROR(CheckPortFree(port));
//
// Both are best effort against races: another process may take the port between the check and
// the server's bind; the server then fails to bind and exits, which the readiness wait reports.
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace evald::executors {

// A port the kernel considers free on 127.0.0.1 (bind to port 0, read it back, close).
absl::StatusOr<int> PickFreePort();

// OK when nothing listens on `port` on 127.0.0.1 or 0.0.0.0 and both can be bound; else
// FailedPrecondition "port 8000 is already in use on 127.0.0.1 (another server?); set
// deployment.port to a free port or `auto`". InvalidArgument for a port outside 1..65535.
absl::Status CheckPortFree(int port);

}  // namespace evald::executors
