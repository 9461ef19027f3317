#include "daemon/auth/caller.h"

#include <pwd.h>
#include <unistd.h>

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "daemon/auth/token.h"
#include "daemon/fmt_absl.h"
#include "daemon/unix_listener.h"
#include "spdlog/spdlog.h"
#include "storage/store.h"

namespace evald::daemon {
namespace {

constexpr char kHowToAuthenticate[] =
    "send metadata 'authorization: Bearer <token>' (evalctl: EVALD_TOKEN or evalctl login); an "
    "admin creates tokens with 'evalctl admin tokens create --user NAME'";

std::string Describe(const Caller& c) {
  return absl::StrCat(c.user, " (", RoleName(c.role), ", ", c.via, ")");
}

}  // namespace

absl::string_view RoleName(Role role) {
  switch (role) {
    case Role::kAdmin:
      return "admin";
    case Role::kUser:
      return "user";
    case Role::kViewer:
      return "viewer";
  }
  return "viewer";
}

std::optional<Role> ParseRole(absl::string_view name) {
  if (name == "admin") return Role::kAdmin;
  if (name == "user") return Role::kUser;
  if (name == "viewer") return Role::kViewer;
  return std::nullopt;
}

absl::Status RequireRole(const Caller& caller, Role min, absl::string_view action) {
  if (caller.role >= min) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat(Describe(caller), " may not ", action,
                                                  ": that needs the ", RoleName(min), " role"));
}

absl::Status RequireOwnerOrAdmin(const Caller& caller, const std::string& owner,
                                 absl::string_view action, absl::string_view id) {
  if (caller.is_admin()) return absl::OkStatus();
  if (caller.role < Role::kUser) {
    return absl::PermissionDeniedError(
        absl::StrCat(Describe(caller), " may not ", action, " ", id, ": viewers only read"));
  }
  if (!owner.empty() && owner == caller.user) return absl::OkStatus();
  return absl::PermissionDeniedError(
      absl::StrCat(Describe(caller), " may not ", action, " ", id, ": it belongs to ",
                   owner.empty() ? "no recorded user" : owner, "; only its owner or an admin may"));
}

Caller LocalCaller(uid_t uid) {
  Caller c;
  c.uid = uid;
  c.via = absl::StrCat("uid ", uid);
  std::vector<char> buf(16384);
  passwd pw{};
  passwd* found = nullptr;
  if (getpwuid_r(uid, &pw, buf.data(), buf.size(), &found) == 0 && found != nullptr) {
    c.user = found->pw_name;
  } else {
    c.user = absl::StrCat("uid:", uid);
  }
  c.role = (uid == 0 || uid == geteuid()) ? Role::kAdmin : Role::kUser;
  return c;
}

absl::StatusOr<Caller> CallerResolver::Resolve(const std::string& peer,
                                               std::optional<absl::string_view> authorization) {
  const bool has_token = authorization.has_value() && !authorization->empty();
  // On the unix socket the uid identifies the caller; a token sent there is still checked and,
  // when valid, names the caller (a CI job on evald's host acts as its token's user).
  if (peers_ != nullptr && !has_token) {
    if (std::optional<PeerCred> cred = peers_->Lookup(peer)) return LocalCaller(cred->uid);
  }
  if (!has_token) {
    return absl::UnauthenticatedError(
        absl::StrCat("no token: calls over TCP must carry one; ", kHowToAuthenticate));
  }
  absl::string_view value = absl::StripAsciiWhitespace(*authorization);
  if (value.size() < 7 || !absl::EqualsIgnoreCase(value.substr(0, 7), "bearer ")) {
    return absl::UnauthenticatedError(
        absl::StrCat("the authorization metadata is not 'Bearer <token>'; ", kHowToAuthenticate));
  }
  value = absl::StripAsciiWhitespace(value.substr(7));
  const std::string hash = TokenHash(value);
  absl::StatusOr<std::optional<storage::TokenRecord>> found = store_->FindTokenByHash(hash);
  if (!found.ok()) {
    return absl::UnavailableError(
        absl::StrCat("cannot check the token: ", found.status().message()));
  }
  if (!found->has_value() || !SameHash((*found)->hash, hash)) {
    return absl::UnauthenticatedError(
        absl::StrCat("unknown token (mistyped, or never created here); ", kHowToAuthenticate));
  }
  const storage::TokenRecord& t = **found;
  const absl::Time now = absl::Now();
  if (t.revoked_ms != 0) {
    return absl::UnauthenticatedError(
        absl::StrCat("token ", t.id, " of ", t.user, " was revoked at ",
                     absl::FormatTime(absl::FromUnixMillis(t.revoked_ms), absl::UTCTimeZone())));
  }
  if (t.expires_ms != 0 && absl::ToUnixMillis(now) >= t.expires_ms) {
    return absl::UnauthenticatedError(
        absl::StrCat("token ", t.id, " of ", t.user, " expired at ",
                     absl::FormatTime(absl::FromUnixMillis(t.expires_ms), absl::UTCTimeZone())));
  }
  std::optional<Role> role = ParseRole(t.role);
  if (!role.has_value()) {
    return absl::UnauthenticatedError(absl::StrCat("token ", t.id, " has an unknown role"));
  }
  bool touch = false;
  {
    absl::MutexLock lock(&mu_);
    absl::Time& last = touched_[t.id];
    if (now - last >= kTouchInterval) {
      last = now;
      touch = true;
    }
  }
  if (touch) {
    // Best effort: a failed write leaves last_used older, and the call goes on.
    absl::Status s = store_->TouchToken(t.id, absl::ToUnixMillis(now));
    if (!s.ok()) spdlog::warn("cannot record the use of token {}: {}", t.id, s.message());
  }
  Caller c;
  c.user = t.user;
  c.role = *role;
  c.via = absl::StrCat("token ", t.id);
  c.token_id = t.id;
  return c;
}

}  // namespace evald::daemon
