// File: sqlite_status.h
//
// The one place in evald that turns SQLite errors into absl::Status. SQLiteCpp throws
// SQLite::Exception; storage/ code runs every SQLite call through GuardSqlite() (usually via
// Database::Run / Database::InTransaction), so no exception ever leaves storage/.
//
// Mapping (by primary result code):
//   SQLITE_FULL, SQLITE_NOMEM            -> ResourceExhausted ("disk full while writing <path>")
//   SQLITE_CORRUPT, SQLITE_NOTADB        -> DataLoss ("<path> is not a valid evald database ...")
//   SQLITE_READONLY, SQLITE_CANTOPEN,
//   SQLITE_PERM, SQLITE_AUTH             -> FailedPrecondition ("<path> is read-only" / "cannot
//                                           open")
//   SQLITE_BUSY, SQLITE_LOCKED,
//   SQLITE_IOERR, SQLITE_PROTOCOL        -> Unavailable (retry later)
//   SQLITE_CONSTRAINT primary key/unique -> AlreadyExists; other constraints -> InvalidArgument
//   SQLITE_TOOBIG                        -> InvalidArgument
//   anything else                        -> Internal
// Every status but the constraint and TOOBIG ones is tagged as a storage failure
// (MarkStorageFailure), so callers can tell "the database failed" from "the request was refused"
// whatever the code.
//
//   absl::Status s = GuardSqlite(path, "insert job 3f9a0c1e.0", [&]() -> absl::Status {
//     stmt.exec();
//     return absl::OkStatus();
//   });
#pragma once

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace SQLite {
class Exception;
}  // namespace SQLite

namespace evald::storage {

// `extended_code` is an SQLite (extended) result code; `what` says what was being done, e.g.
// "create invocation 3f9a0c1e". The message always names `db_path`.
absl::Status SqliteCodeToStatus(int extended_code, absl::string_view sqlite_message,
                                absl::string_view db_path, absl::string_view what);

absl::Status SqliteExceptionToStatus(const SQLite::Exception& e, absl::string_view db_path,
                                     absl::string_view what);

// Maps the exception being handled (call only inside a catch block): SQLite::Exception by its
// code, std::bad_alloc to ResourceExhausted, anything else to Internal.
absl::Status CurrentExceptionToStatus(absl::string_view db_path, absl::string_view what);

// Tags `status` as a failure of the database itself (file, disk, SQLite), as opposed to a
// refusal of what was asked; IsStorageFailure (store.h) reads the tag. Every status above that
// comes from an SQLite error other than a constraint or a too-large value carries it.
absl::Status MarkStorageFailure(absl::Status status);

// Runs fn() (which returns absl::Status or absl::StatusOr<T>) and converts any exception it throws
// into a Status of the same type.
template <typename Fn>
auto GuardSqlite(absl::string_view db_path, absl::string_view what, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (...) {
    return CurrentExceptionToStatus(db_path, what);
  }
}

}  // namespace evald::storage
