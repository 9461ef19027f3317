#include "storage/token_repository.h"

#include "absl/strings/str_cat.h"

namespace evald::storage {
namespace {

constexpr char kTokenColumns[] =
    "id, hash, user, role, created_by, created_ms, expires_ms, revoked_ms, last_used_ms";

TokenRecord ReadRow(const SQLite::Statement& s) {
  TokenRecord r;
  r.id = s.getColumn(0).getString();
  r.hash = s.getColumn(1).getString();
  r.user = s.getColumn(2).getString();
  r.role = s.getColumn(3).getString();
  r.created_by = s.getColumn(4).getString();
  r.created_ms = s.getColumn(5).getInt64();
  r.expires_ms = s.getColumn(6).getInt64();
  r.revoked_ms = s.getColumn(7).getInt64();
  r.last_used_ms = s.getColumn(8).getInt64();
  return r;
}

}  // namespace

absl::Status TokenRepository::Insert(const TokenRecord& r) {
  return db_.Run(absl::StrCat("insert token ", r.id), [&]() -> absl::Status {
    StatementRef s = db_.Prepare(
        absl::StrCat("INSERT INTO tokens (", kTokenColumns, ") VALUES (?,?,?,?,?,?,?,?,?)"));
    s->bind(1, r.id);
    s->bind(2, r.hash);
    s->bind(3, r.user);
    s->bind(4, r.role);
    s->bind(5, r.created_by);
    s->bind(6, r.created_ms);
    s->bind(7, r.expires_ms);
    s->bind(8, r.revoked_ms);
    s->bind(9, r.last_used_ms);
    s->exec();
    return absl::OkStatus();
  });
}

absl::StatusOr<std::optional<TokenRecord>> TokenRepository::FindByHash(const std::string& hash) {
  return db_.Run("look up token", [&]() -> absl::StatusOr<std::optional<TokenRecord>> {
    StatementRef s =
        db_.Prepare(absl::StrCat("SELECT ", kTokenColumns, " FROM tokens WHERE hash = ?"));
    s->bind(1, hash);
    if (!s->executeStep()) return std::optional<TokenRecord>();
    return std::optional<TokenRecord>(ReadRow(*s));
  });
}

absl::StatusOr<std::optional<TokenRecord>> TokenRepository::Get(const std::string& id) {
  return db_.Run(
      absl::StrCat("read token ", id), [&]() -> absl::StatusOr<std::optional<TokenRecord>> {
        StatementRef s =
            db_.Prepare(absl::StrCat("SELECT ", kTokenColumns, " FROM tokens WHERE id = ?"));
        s->bind(1, id);
        if (!s->executeStep()) return std::optional<TokenRecord>();
        return std::optional<TokenRecord>(ReadRow(*s));
      });
}

absl::StatusOr<std::vector<TokenRecord>> TokenRepository::List(const std::string& user) {
  return db_.Run("list tokens", [&]() -> absl::StatusOr<std::vector<TokenRecord>> {
    StatementRef s = db_.Prepare(absl::StrCat("SELECT ", kTokenColumns, " FROM tokens",
                                              user.empty() ? "" : " WHERE user = ?",
                                              " ORDER BY created_ms, id"));
    if (!user.empty()) s->bind(1, user);
    std::vector<TokenRecord> out;
    while (s->executeStep()) out.push_back(ReadRow(*s));
    return out;
  });
}

absl::StatusOr<bool> TokenRepository::Revoke(const std::string& id, int64_t now_ms) {
  return db_.Run(absl::StrCat("revoke token ", id), [&]() -> absl::StatusOr<bool> {
    StatementRef s =
        db_.Prepare("UPDATE tokens SET revoked_ms = ? WHERE id = ? AND revoked_ms = 0");
    s->bind(1, now_ms);
    s->bind(2, id);
    return s->exec() == 1;
  });
}

absl::Status TokenRepository::SetLastUsed(const std::string& id, int64_t ms) {
  return db_.Run(absl::StrCat("update token ", id), [&]() -> absl::Status {
    StatementRef s = db_.Prepare("UPDATE tokens SET last_used_ms = ? WHERE id = ?");
    s->bind(1, ms);
    s->bind(2, id);
    s->exec();
    return absl::OkStatus();
  });
}

}  // namespace evald::storage
