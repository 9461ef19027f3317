// File: secret_box.h
//
// Encrypts secret values (API keys, tokens) for storage with AES-256-GCM (OpenSSL EVP). Each value
// gets a fresh random 12-byte nonce; the invocation id and the secret name are authenticated
// additional data, so a ciphertext copied to another row does not decrypt. The 32-byte key lives
// in a key file that is created at first use (random bytes, mode 0600, published atomically) and
// must stay private: a key file readable by group/others, owned by another user, or of the wrong
// size is refused with a message saying what to do.
//
// Callers: Store::Open creates one; SecretRepository seals and opens values. Thread-safe (const
// methods only); the key is wiped from memory when the box is destroyed.
//
//   EVALD_ASSIGN_OR_RETURN(auto box, SecretBox::LoadOrCreate(dir + "/secrets.key"));
//   EVALD_ASSIGN_OR_RETURN(SealedSecret s, box->Seal("sk-123", SecretAad("3f9a0c1e", "API_KEY")));
//   EVALD_ASSIGN_OR_RETURN(std::string v, box->Open(s, SecretAad("3f9a0c1e", "API_KEY")));
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace evald::storage {

struct SealedSecret {
  std::string nonce;       // 12 bytes
  std::string ciphertext;  // encrypted value followed by the 16-byte GCM tag
};

// Additional authenticated data binding a value to its row: "<invocation_id>\0<name>".
std::string SecretAad(absl::string_view invocation_id, absl::string_view name);

class SecretBox {
 public:
  static constexpr size_t kKeySize = 32;
  static constexpr size_t kNonceSize = 12;
  static constexpr size_t kTagSize = 16;

  // Reads the key file at `key_path`, or creates it (and its folder) when missing.
  // FailedPrecondition for a key file that is not private, not a regular file, or not 32 bytes.
  static absl::StatusOr<std::unique_ptr<SecretBox>> LoadOrCreate(const std::string& key_path);

  ~SecretBox();
  SecretBox(const SecretBox&) = delete;
  SecretBox& operator=(const SecretBox&) = delete;

  absl::StatusOr<SealedSecret> Seal(absl::string_view plaintext, absl::string_view aad) const;
  // DataLoss when the value does not authenticate (tampered, wrong key file, or wrong row).
  absl::StatusOr<std::string> Open(const SealedSecret& sealed, absl::string_view aad) const;

  const std::string& key_path() const { return key_path_; }

 private:
  SecretBox(std::string key_path, const std::array<unsigned char, kKeySize>& key);

  std::string key_path_;
  std::array<unsigned char, kKeySize> key_;
};

}  // namespace evald::storage
