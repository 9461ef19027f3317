// File: invocation_repository.h
//
// The `invocations` table: one row per Submit, with the derived state stored for listing. Pure
// data access: ids and timestamps come from the caller, no clock, no events (Store adds those in
// the same transaction).
//
// Callers: Store only, holding its mutex, usually inside Database::InTransaction.
//
//   InvocationRepository invocations(db);
//   EVALD_RETURN_IF_ERROR(invocations.Insert(inv));
//   EVALD_ASSIGN_OR_RETURN(InvocationRecord r, invocations.Get("3f9a0c1e"));
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/model.h"
#include "storage/database.h"
#include "storage/store.h"

namespace evald::storage {

class InvocationRepository {
 public:
  explicit InvocationRepository(Database& db) : db_(db) {}

  // AlreadyExists when the id is taken; InvalidArgument for a non-UTF-8 task or secret name.
  absl::Status Insert(const InvocationRecord& r);
  // NotFound when there is no such invocation.
  absl::StatusOr<InvocationRecord> Get(const std::string& id);
  absl::StatusOr<bool> Exists(const std::string& id);
  absl::Status UpdateState(const std::string& id, JobState state, int64_t updated_ms,
                           int64_t ended_ms);
  absl::Status SetDesired(const std::string& id, DesiredState desired, int64_t updated_ms);
  absl::Status Touch(const std::string& id, int64_t updated_ms);

  // Newest first by (created_ms, id), keyset-paginated. InvalidArgument for a malformed page
  // token or a negative limit.
  absl::StatusOr<InvocationPage> List(const InvocationFilter& filter);
  absl::StatusOr<int64_t> Count();

  // The opaque page token: the (created_ms, id) of the last row of the previous page.
  static std::string EncodePageToken(int64_t created_ms, const std::string& id);
  static absl::Status DecodePageToken(const std::string& token, int64_t* created_ms,
                                      std::string* id);

  // The SELECT that List runs for `filter` (tests check its query plan).
  static std::string ListSql(const InvocationFilter& filter);

  static constexpr int kDefaultLimit = 50;
  static constexpr int kMaxLimit = 1000;

 private:
  absl::StatusOr<InvocationRecord> ReadRow(const SQLite::Statement& stmt);

  Database& db_;
};

}  // namespace evald::storage
