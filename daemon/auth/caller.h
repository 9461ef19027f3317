// File: caller.h
//
// Who is calling, and what they may do. Every RPC's caller is derived in one place,
// CallerResolver::Resolve (the service class calls it first thing, then passes the Caller to the
// ServerCore method):
//   - on the unix socket, from the connection's uid (SO_PEERCRED, unix_listener.h): no token
//     needed; uid 0 and evald's own uid are admins, any other uid is a `user` named by its
//     passwd entry. A token sent there anyway is checked as on TCP and names the caller;
//   - on TCP, from the bearer token (metadata `authorization: Bearer <token>`): missing, unknown,
//     revoked or expired is UNAUTHENTICATED. The token's value is only hashed, never kept,
//     logged or put in a message.
// Roles: viewers read everything; users also submit, and kill, resume and export their own
// invocations; admins do everything, including Backup and token administration. Denials are
// PERMISSION_DENIED from the Require* functions below, checked before anything changes.
//
//   EVALD_ASSIGN_OR_RETURN(Caller caller, resolver.Resolve(ctx->peer(), authorization));
//   EVALD_RETURN_IF_ERROR(RequireOwnerOrAdmin(caller, inv.owner, "kill", inv.id));
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace evald::storage {
class Store;
}

namespace evald::daemon {

class UnixPeers;

// Ordered: a higher role may do everything a lower one may.
enum class Role { kViewer = 0, kUser = 1, kAdmin = 2 };

absl::string_view RoleName(Role role);  // "viewer", "user", "admin"
std::optional<Role> ParseRole(absl::string_view name);

struct Caller {
  std::string user;  // passwd name (unix socket) or the token's user
  Role role = Role::kViewer;
  // How the caller was identified, for logs and messages: "uid 1000" or "token 3fa9c2d01b7e".
  std::string via;
  int64_t uid = -1;      // unix socket only
  std::string token_id;  // TCP only

  bool is_admin() const { return role == Role::kAdmin; }
};

// PERMISSION_DENIED unless caller.role >= `min`. `action` reads "submit", "back up the database".
absl::Status RequireRole(const Caller& caller, Role min, absl::string_view action);
// PERMISSION_DENIED unless the caller is an admin, or a user (not a viewer) who owns `id`.
absl::Status RequireOwnerOrAdmin(const Caller& caller, const std::string& owner,
                                 absl::string_view action, absl::string_view id);

// The Caller of a local uid: admin for 0 and evald's own uid, else a user named after passwd.
Caller LocalCaller(uid_t uid);

class CallerResolver {
 public:
  // `store` and `peers` outlive the resolver. `peers` may be null (no unix socket).
  CallerResolver(storage::Store* store, const UnixPeers* peers) : store_(store), peers_(peers) {}

  // `peer` is ServerContext::peer(); `authorization` the value of the `authorization` metadata
  // (nullopt when absent). UNAUTHENTICATED for a TCP call without a valid token; UNAVAILABLE when
  // the database cannot be read.
  absl::StatusOr<Caller> Resolve(const std::string& peer,
                                 std::optional<absl::string_view> authorization);

  // last_used_ms is written at most this often per token (never on every call).
  static constexpr absl::Duration kTouchInterval = absl::Minutes(1);

 private:
  storage::Store* store_;
  const UnixPeers* peers_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, absl::Time> touched_ ABSL_GUARDED_BY(mu_);  // by token id
};

}  // namespace evald::daemon
