// File: submit_key_repository.h
//
// The `submit_keys` table: Submit's idempotency keys (SubmitRequest.idempotency_key). A row maps a
// client's key to the invocation its first Submit created, with the SHA-256 of what that Submit
// asked, so a retry returns the same invocation and a reuse of the key for another request is
// told apart. Rows are never deleted: a key lives as long as its invocation.
//
// Callers: Store::CreateInvocation only, holding its mutex, inside the transaction that inserts
// the invocation, so "key -> invocation" is written together with the invocation or not at all.
//
//   SubmitKeyRepository keys(db);
//   EVALD_ASSIGN_OR_RETURN(std::optional<SubmitKeyRow> row, keys.Get("ci-4711-2"));
//   if (!row) EVALD_RETURN_IF_ERROR(keys.Insert({"ci-4711-2", "3f9a0c1e", sha256_hex, now}));
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "storage/database.h"

namespace evald::storage {

struct SubmitKeyRow {
  std::string key;
  std::string invocation_id;
  std::string request_sha256;  // lower-case hex
  int64_t created_ms = 0;
};

class SubmitKeyRepository {
 public:
  explicit SubmitKeyRepository(Database& db) : db_(db) {}

  // AlreadyExists when the key (or the invocation) already has a row.
  absl::Status Insert(const SubmitKeyRow& row);
  // nullopt when the key is unknown.
  absl::StatusOr<std::optional<SubmitKeyRow>> Get(const std::string& key);

  // Lower-case hex SHA-256 of `data`.
  static std::string Sha256Hex(absl::string_view data);

 private:
  Database& db_;
};

}  // namespace evald::storage
