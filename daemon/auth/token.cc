#include "daemon/auth/token.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <cstdlib>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace evald::daemon {
namespace {

std::string RandomBytes(size_t n) {
  std::string bytes(n, '\0');
  // Failure means the OS has no entropy to give; no token may be made from less.
  if (RAND_bytes(reinterpret_cast<unsigned char*>(bytes.data()), static_cast<int>(n)) != 1) {
    std::abort();
  }
  return bytes;
}

}  // namespace

std::string NewTokenValue() {
  return absl::StrCat("evt_", absl::WebSafeBase64Escape(RandomBytes(32)));
}

std::string NewTokenId() { return absl::BytesToHexString(RandomBytes(6)); }

std::string TokenHash(absl::string_view value) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(value.data()), value.size(), digest);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), sizeof(digest)));
}

bool SameHash(absl::string_view a, absl::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace evald::daemon
