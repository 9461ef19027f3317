#include "storage/submit_key_repository.h"

#include <openssl/sha.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace evald::storage {

absl::Status SubmitKeyRepository::Insert(const SubmitKeyRow& row) {
  return db_.Run(absl::StrCat("insert submit key of invocation ", row.invocation_id),
                 [&]() -> absl::Status {
                   StatementRef s = db_.Prepare(
                       "INSERT INTO submit_keys (key, invocation_id, request_sha256, created_ms) "
                       "VALUES (?,?,?,?)");
                   s->bind(1, row.key);
                   s->bind(2, row.invocation_id);
                   s->bind(3, row.request_sha256);
                   s->bind(4, row.created_ms);
                   s->exec();
                   return absl::OkStatus();
                 });
}

absl::StatusOr<std::optional<SubmitKeyRow>> SubmitKeyRepository::Get(const std::string& key) {
  return db_.Run("look up submit key", [&]() -> absl::StatusOr<std::optional<SubmitKeyRow>> {
    StatementRef s = db_.Prepare(
        "SELECT invocation_id, request_sha256, created_ms FROM submit_keys WHERE key = ?");
    s->bind(1, key);
    if (!s->executeStep()) return std::nullopt;
    SubmitKeyRow row;
    row.key = key;
    row.invocation_id = s->getColumn(0).getString();
    row.request_sha256 = s->getColumn(1).getString();
    row.created_ms = s->getColumn(2).getInt64();
    return row;
  });
}

std::string SubmitKeyRepository::Sha256Hex(absl::string_view data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), sizeof(digest)));
}

}  // namespace evald::storage
