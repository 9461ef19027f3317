// File: secret_repository.h
//
// The `secrets` table: the secret values of an invocation (API keys, tokens), each encrypted by
// SecretBox with its own nonce and bound to (invocation id, name). Rows hold only
// (invocation_id, name, nonce, ciphertext); plaintext exists only in memory, in the caller's map.
//
// Callers: Store only, holding its mutex, inside Database::InTransaction.
//
//   SecretRepository secrets(db, box);
//   EVALD_RETURN_IF_ERROR(secrets.Replace("3f9a0c1e", {{"API_KEY", "sk-..."}}));
//   EVALD_ASSIGN_OR_RETURN(auto values, secrets.GetAll("3f9a0c1e"));
//   EVALD_RETURN_IF_ERROR(secrets.DeleteAll("3f9a0c1e"));  // when the invocation ends
#pragma once

#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "storage/database.h"
#include "storage/secret_box.h"

namespace evald::storage {

class SecretRepository {
 public:
  SecretRepository(Database& db, const SecretBox& box) : db_(db), box_(box) {}

  // Deletes the invocation's stored secrets, then stores `secrets` encrypted. InvalidArgument for
  // an empty name.
  absl::Status Replace(const std::string& invocation_id,
                       const std::map<std::string, std::string>& secrets);
  // Decrypted values; DataLoss naming the secret when one does not authenticate.
  absl::StatusOr<std::map<std::string, std::string>> GetAll(const std::string& invocation_id);
  absl::Status DeleteAll(const std::string& invocation_id);

 private:
  Database& db_;
  const SecretBox& box_;
};

}  // namespace evald::storage
