#include "daemon/export/google_auth.h"

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <memory>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "daemon/export/file_util.h"
#include "executors/common/http_attempt.h"
#include "nlohmann/json.hpp"

namespace evald::daemon::exporters {
namespace {

using json = nlohmann::json;

// `error: error_description` of an OAuth2 error body, or Google's API error message.
std::string OAuthErrorText(const std::string& body) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_object() && j["error"].is_string()) {
    std::string desc = j.value("error_description", std::string());
    return desc.empty() ? j["error"].get<std::string>()
                        : absl::StrCat(j["error"].get<std::string>(), ": ", desc);
  }
  return BodyStart(body);
}

}  // namespace

absl::StatusOr<ServiceAccountKey> ParseServiceAccountKey(const std::string& json_text,
                                                         const std::string& source) {
  json j = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("service account key ", source, " is not a JSON object"));
  }
  ServiceAccountKey key;
  for (auto [field, out] :
       {std::pair{"client_email", &key.client_email}, std::pair{"private_key", &key.private_key},
        std::pair{"private_key_id", &key.private_key_id}, std::pair{"token_uri", &key.token_uri}}) {
    if (!j.contains(field) || j[field].is_null()) continue;
    if (!j[field].is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat("service account key ", source, ": ", field, " must be a string"));
    }
    *out = j[field].get<std::string>();
  }
  if (j.contains("type") && j["type"] != "service_account") {
    return absl::InvalidArgumentError(absl::StrCat(
        "service account key ", source, ": type must be service_account (not a user credential)"));
  }
  for (auto [field, value] :
       {std::pair{"client_email", &key.client_email}, std::pair{"private_key", &key.private_key},
        std::pair{"token_uri", &key.token_uri}}) {
    if (value->empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("service account key ", source, ": ", field, " is required"));
    }
  }
  return key;
}

absl::StatusOr<ServiceAccountKey> ReadServiceAccountKey(const std::string& path) {
  absl::StatusOr<std::string> text = ReadWholeFile(path);
  if (!text.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot read the service account key ", path, ": ", text.status().message()));
  }
  return ParseServiceAccountKey(*text, path);
}

absl::StatusOr<std::string> SignServiceAccountJwt(const ServiceAccountKey& key,
                                                  const std::string& scope, absl::Time now) {
  const int64_t iat = absl::ToUnixSeconds(now);
  json header = {{"alg", "RS256"}, {"typ", "JWT"}};
  if (!key.private_key_id.empty()) header["kid"] = key.private_key_id;
  const json claims = {{"iss", key.client_email},
                       {"scope", scope},
                       {"aud", key.token_uri},
                       {"iat", iat},
                       {"exp", iat + 3600}};
  const std::string signing_input = absl::StrCat(absl::WebSafeBase64Escape(header.dump()), ".",
                                                 absl::WebSafeBase64Escape(claims.dump()));
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(key.private_key.data(), static_cast<int>(key.private_key.size())), BIO_free);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> pkey(
      bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr, EVP_PKEY_free);
  if (!pkey) {
    return absl::InvalidArgumentError("service account key: private_key is not a PEM private key");
  }
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  size_t size = 0;
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, pkey.get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &size,
                     reinterpret_cast<const unsigned char*>(signing_input.data()),
                     signing_input.size()) != 1) {
    return absl::InternalError("cannot sign the service account JWT (is private_key an RSA key?)");
  }
  std::string signature(size, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &size,
                     reinterpret_cast<const unsigned char*>(signing_input.data()),
                     signing_input.size()) != 1) {
    return absl::InternalError("cannot sign the service account JWT");
  }
  signature.resize(size);
  return absl::StrCat(signing_input, ".", absl::WebSafeBase64Escape(signature));
}

absl::StatusOr<std::string> FetchAccessToken(const ServiceAccountKey& key, const std::string& scope,
                                             const RestClientOptions& options) {
  absl::StatusOr<std::string> jwt = SignServiceAccountJwt(key, scope, absl::Now());
  if (!jwt.ok()) return jwt.status();
  const std::string body =
      absl::StrCat("grant_type=", http::UrlEscape("urn:ietf:params:oauth:grant-type:jwt-bearer"),
                   "&assertion=", http::UrlEscape(*jwt));
  RestClient client("Google OAuth2", options, {*jwt, key.private_key}, OAuthErrorText);
  std::string route = key.token_uri;
  if (size_t p = route.find("//"); p != std::string::npos) {
    size_t slash = route.find('/', p + 2);
    route = slash == std::string::npos ? "/" : route.substr(slash);
  }
  absl::StatusOr<json> r = client.CallJson({.method = "POST",
                                            .url = key.token_uri,
                                            .route = route,
                                            .body = &body,
                                            .content_type = "application/x-www-form-urlencoded"});
  if (!r.ok()) return r.status();
  if (!(*r)["access_token"].is_string() || (*r)["access_token"].get<std::string>().empty()) {
    return absl::InternalError("Google OAuth2 token answer without access_token");
  }
  return (*r)["access_token"].get<std::string>();
}

}  // namespace evald::daemon::exporters
