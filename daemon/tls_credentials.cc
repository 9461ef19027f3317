#include "daemon/tls_credentials.h"

#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cstdio>
#include <memory>

#include "absl/strings/str_cat.h"

namespace evald::daemon {
namespace {

using FilePtr = std::unique_ptr<FILE, int (*)(FILE*)>;

std::string Setting(const ServerConfig& config, const char* key, const char* flag,
                    const std::string& file) {
  return absl::StrCat(key, " (", flag, config.config_file.empty() ? "" : ", server config ",
                      config.config_file, ") ", file);
}

absl::Status Bad(const std::string& setting, const std::string& what) {
  ERR_clear_error();
  return absl::InvalidArgumentError(absl::StrCat(setting, ": ", what));
}

}  // namespace

absl::Status CheckTlsFiles(const ServerConfig& config) {
  const std::string cert_setting = Setting(config, "tls.cert", "--tls-cert", config.tls_cert);
  const std::string key_setting = Setting(config, "tls.key", "--tls-key", config.tls_key);
  FilePtr cert_file(fopen(config.tls_cert.c_str(), "r"), fclose);
  if (!cert_file) return Bad(cert_setting, "cannot be read by evald");
  std::unique_ptr<X509, void (*)(X509*)> cert(
      PEM_read_X509(cert_file.get(), nullptr, nullptr, nullptr), X509_free);
  if (!cert) {
    return Bad(cert_setting, "is not a PEM certificate (expected -----BEGIN CERTIFICATE-----)");
  }
  FilePtr key_file(fopen(config.tls_key.c_str(), "r"), fclose);
  if (!key_file) return Bad(key_setting, "cannot be read by evald");
  std::unique_ptr<EVP_PKEY, void (*)(EVP_PKEY*)> key(
      PEM_read_PrivateKey(key_file.get(), nullptr, nullptr, nullptr), EVP_PKEY_free);
  if (!key) {
    return Bad(key_setting,
               "is not an unencrypted PEM private key (expected -----BEGIN PRIVATE KEY-----)");
  }
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    return Bad(key_setting, absl::StrCat("is not the key of the certificate ", config.tls_cert));
  }
  if (!config.tls_client_ca.empty()) {
    const std::string ca_setting =
        Setting(config, "tls.client_ca", "--tls-client-ca", config.tls_client_ca);
    FilePtr ca_file(fopen(config.tls_client_ca.c_str(), "r"), fclose);
    if (!ca_file) return Bad(ca_setting, "cannot be read by evald");
    std::unique_ptr<X509, void (*)(X509*)> ca(
        PEM_read_X509(ca_file.get(), nullptr, nullptr, nullptr), X509_free);
    if (!ca) {
      return Bad(ca_setting, "is not a PEM CA certificate (expected -----BEGIN CERTIFICATE-----)");
    }
  }
  ERR_clear_error();
  return absl::OkStatus();
}

std::shared_ptr<grpc::ServerCredentials> ServerTlsCredentials(const ServerConfig& config) {
  auto refresh =
      static_cast<unsigned int>(std::max<int64_t>(1, absl::ToInt64Seconds(config.tls_refresh)));
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      config.tls_key, config.tls_cert, config.tls_client_ca, refresh);
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_identity_key_cert_pairs();
  if (config.tls_client_ca.empty()) {
    options.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  } else {
    options.watch_root_certs();
    options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  }
  return grpc::experimental::TlsServerCredentials(options);
}

}  // namespace evald::daemon
