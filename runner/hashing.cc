#include "runner/hashing.h"

#include <openssl/evp.h>

#include <memory>

namespace evald::runner {
namespace {

// OpenSSL 3's one-shot SHA256() looks the algorithm up on every call; the runner hashes every
// request, so the digest and a context are fetched once per thread and reused.
struct Sha256State {
  EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  ~Sha256State() {
    EVP_MD_CTX_free(ctx);
    EVP_MD_free(md);
  }
};

}  // namespace

std::string Sha256Hex(absl::string_view data) {
  thread_local Sha256State state;
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestInit_ex(state.ctx, state.md, nullptr);
  EVP_DigestUpdate(state.ctx, data.data(), data.size());
  EVP_DigestFinal_ex(state.ctx, digest, &len);
  static const char kHex[] = "0123456789abcdef";
  std::string out(2 * len, '0');
  for (unsigned int i = 0; i < len; ++i) {
    out[2 * i] = kHex[digest[i] >> 4];
    out[2 * i + 1] = kHex[digest[i] & 0xf];
  }
  return out;
}

}  // namespace evald::runner
