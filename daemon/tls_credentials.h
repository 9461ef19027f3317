// File: tls_credentials.h
//
// TLS for evald's TCP listen addresses. CheckTlsFiles reads the PEM files once at start so a bad
// path, a file that is not PEM or a key that does not match the certificate stops evald with a
// message naming the setting; ServerTlsCredentials builds the gRPC credentials that keep reading
// them (gRPC's experimental FileWatcherCertificateProvider, every config.tls_refresh), so a renewed
// certificate is served without a restart and without SIGHUP.
//
// Callers: FinalizeServerConfig (CheckTlsFiles) and main() (ServerTlsCredentials).
#pragma once

#include <grpcpp/security/server_credentials.h>

#include <memory>

#include "absl/status/status.h"
#include "daemon/server_config.h"

namespace evald::daemon {

// InvalidArgument naming the setting (tls.cert / --tls-cert ...), the file and what was expected.
absl::Status CheckTlsFiles(const ServerConfig& config);

// Credentials for a TCP port: server certificate and key from config.tls_cert/tls_key; with
// config.tls_client_ca, clients must present a certificate signed by it.
std::shared_ptr<grpc::ServerCredentials> ServerTlsCredentials(const ServerConfig& config);

}  // namespace evald::daemon
