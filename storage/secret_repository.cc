#include "storage/secret_repository.h"

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"

namespace evald::storage {

absl::Status SecretRepository::Replace(const std::string& invocation_id,
                                       const std::map<std::string, std::string>& secrets) {
  EVALD_RETURN_IF_ERROR(DeleteAll(invocation_id));
  for (const auto& [name, value] : secrets) {
    if (name.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("invocation ", invocation_id, ": a secret has an empty name"));
    }
    absl::StatusOr<SealedSecret> sealed = box_.Seal(value, SecretAad(invocation_id, name));
    if (!sealed.ok()) {
      // The name is fine to show; the value never appears in a message.
      return absl::Status(sealed.status().code(),
                          absl::StrCat("secret ", name, " of invocation ", invocation_id, ": ",
                                       sealed.status().message()));
    }
    EVALD_RETURN_IF_ERROR(
        db_.Run(absl::StrCat("store secret ", name, " of ", invocation_id), [&]() -> absl::Status {
          StatementRef s = db_.Prepare(
              "INSERT INTO secrets (invocation_id, name, nonce, ciphertext) VALUES (?,?,?,?)");
          s->bind(1, invocation_id);
          s->bind(2, name);
          s->bind(3, sealed->nonce.data(), static_cast<int>(sealed->nonce.size()));
          s->bind(4, sealed->ciphertext.data(), static_cast<int>(sealed->ciphertext.size()));
          s->exec();
          return absl::OkStatus();
        }));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::map<std::string, std::string>> SecretRepository::GetAll(
    const std::string& invocation_id) {
  return db_.Run(
      absl::StrCat("read secrets of ", invocation_id),
      [&]() -> absl::StatusOr<std::map<std::string, std::string>> {
        StatementRef s = db_.Prepare(
            "SELECT name, nonce, ciphertext FROM secrets WHERE invocation_id = ? ORDER BY name");
        s->bind(1, invocation_id);
        std::map<std::string, std::string> out;
        while (s->executeStep()) {
          const std::string name = s->getColumn(0).getString();
          SealedSecret sealed;
          // getString() keeps every byte of a BLOB, including NULs.
          sealed.nonce = s->getColumn(1).getString();
          sealed.ciphertext = s->getColumn(2).getString();
          absl::StatusOr<std::string> value = box_.Open(sealed, SecretAad(invocation_id, name));
          if (!value.ok()) {
            return absl::Status(value.status().code(),
                                absl::StrCat(db_.path(), ": secret ", name, " of invocation ",
                                             invocation_id, ": ", value.status().message()));
          }
          out.emplace(name, *std::move(value));
        }
        return out;
      });
}

absl::Status SecretRepository::DeleteAll(const std::string& invocation_id) {
  return db_.Run(absl::StrCat("delete secrets of ", invocation_id), [&]() -> absl::Status {
    StatementRef s = db_.Prepare("DELETE FROM secrets WHERE invocation_id = ?");
    s->bind(1, invocation_id);
    s->exec();
    return absl::OkStatus();
  });
}

}  // namespace evald::storage
