// File: token_repository.h
//
// The `tokens` table: evald's API tokens (daemon/auth/token.h makes and checks them). A row holds
// the SHA-256 of the token's value (lower-case hex), never the value, with the user it stands for,
// that user's role and the token's times. Rows are never deleted: a revoked token keeps its row
// so `evalctl admin tokens ls` shows who had access and when.
//
// Callers: Store only, holding its mutex.
//
//   TokenRepository tokens(db);
//   EVALD_RETURN_IF_ERROR(tokens.Insert(record));
//   EVALD_ASSIGN_OR_RETURN(std::optional<TokenRecord> t, tokens.FindByHash(hash_hex));
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "storage/database.h"
#include "storage/store.h"

namespace evald::storage {

class TokenRepository {
 public:
  explicit TokenRepository(Database& db) : db_(db) {}

  // AlreadyExists when the id or the hash is taken.
  absl::Status Insert(const TokenRecord& r);
  // nullopt when no token has this hash.
  absl::StatusOr<std::optional<TokenRecord>> FindByHash(const std::string& hash);
  absl::StatusOr<std::optional<TokenRecord>> Get(const std::string& id);
  // Oldest first; one user's when `user` is not empty.
  absl::StatusOr<std::vector<TokenRecord>> List(const std::string& user);
  // Sets revoked_ms on a token not yet revoked; false when it already was (or does not exist).
  absl::StatusOr<bool> Revoke(const std::string& id, int64_t now_ms);
  absl::Status SetLastUsed(const std::string& id, int64_t ms);

 private:
  Database& db_;
};

}  // namespace evald::storage
