// File: token.h
//
// API token values: made from 32 bytes of OpenSSL's RAND_bytes, shown to the admin once, and
// known to evald afterwards only by their SHA-256 (storage's tokens table). Callers: ServerCore's
// CreateToken (NewTokenValue, NewTokenId) and CallerResolver (TokenHash, SameHash).
//
//   std::string value = NewTokenValue();   // "evt_" + 43 base64url characters
//   record.hash = TokenHash(value);         // 64 lower-case hex digits
#pragma once

#include <string>

#include "absl/strings/string_view.h"

namespace evald::daemon {

// "evt_" + the unpadded base64url of 32 random bytes. The prefix lets secret scanners spot one.
std::string NewTokenValue();
// 12 random hex digits: a token's public id.
std::string NewTokenId();
// Lower-case hex SHA-256 of `value`.
std::string TokenHash(absl::string_view value);
// Constant-time comparison of two hashes (CRYPTO_memcmp), false when the sizes differ.
bool SameHash(absl::string_view a, absl::string_view b);

}  // namespace evald::daemon
