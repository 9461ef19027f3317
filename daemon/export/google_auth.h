// File: google_auth.h
//
// A Google service account's OAuth2 access token without Google's client libraries: the key file
// (`client_email`, `private_key`, `private_key_id`, `token_uri`), a JWT signed RS256 with OpenSSL,
// and the jwt-bearer grant POSTed to `token_uri` (RFC 7523, Google's "OAuth 2.0 for Server to
// Server Applications"). Called by the Google Sheets exporter (gsheets_exporter.h). The private
// key, the JWT and the access token never appear in an error: parse errors name the file and the
// field, never its text.
//
//   EVALD_ASSIGN_OR_RETURN(ServiceAccountKey key, ReadServiceAccountKey(path));
//   EVALD_ASSIGN_OR_RETURN(std::string token, FetchAccessToken(key, kSheetsScopes, options));
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "daemon/export/rest_client.h"

namespace evald::daemon::exporters {

struct ServiceAccountKey {
  std::string client_email;
  std::string private_key;  // PEM (PKCS#8)
  std::string private_key_id;
  std::string token_uri = "https://oauth2.googleapis.com/token";
};

// Parses a key file's JSON; `source` names it in errors.
absl::StatusOr<ServiceAccountKey> ParseServiceAccountKey(const std::string& json_text,
                                                         const std::string& source);
absl::StatusOr<ServiceAccountKey> ReadServiceAccountKey(const std::string& path);

// header.claims.signature: {alg RS256, typ JWT, kid}, {iss, scope, aud = token_uri, iat, exp =
// iat + 1 h}, RSASSA-PKCS1-v1_5 SHA-256 over the first two, all base64url without padding.
absl::StatusOr<std::string> SignServiceAccountJwt(const ServiceAccountKey& key,
                                                  const std::string& scope, absl::Time now);

// The access token of a jwt-bearer grant; errors say the OAuth2 error and description.
absl::StatusOr<std::string> FetchAccessToken(const ServiceAccountKey& key, const std::string& scope,
                                             const RestClientOptions& options);

}  // namespace evald::daemon::exporters
