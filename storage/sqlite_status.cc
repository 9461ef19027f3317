#include "storage/sqlite_status.h"

#include <SQLiteCpp/Exception.h>
#include <sqlite3.h>

#include <exception>
#include <new>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "storage/store.h"

namespace evald::storage {
namespace {

constexpr char kStorageFailureUrl[] = "type.evald.dev/evald.storage.StorageFailure";

std::string Context(absl::string_view what) {
  return what.empty() ? std::string() : absl::StrCat(" (", what, ")");
}

// The status for an SQLite primary result code (see the mapping in sqlite_status.h).
absl::Status Classified(int primary, int extended_code, absl::string_view sqlite_message,
                        absl::string_view db_path, absl::string_view what) {
  const std::string ctx = Context(what);
  switch (primary) {
    case SQLITE_FULL:
      return absl::ResourceExhaustedError(
          absl::StrCat("disk full while writing ", db_path, ctx, ": ", sqlite_message,
                       "; free space on that file system, then retry (nothing was written)"));
    case SQLITE_NOMEM:
      return absl::ResourceExhaustedError(
          absl::StrCat("out of memory while using ", db_path, ctx, ": ", sqlite_message));
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::DataLossError(absl::StrCat(
          db_path, " is not a valid evald database (corrupt or not SQLite): ", sqlite_message, ctx,
          "; the file was left untouched: restore it from a backup or move it away"));
    case SQLITE_READONLY:
      return absl::FailedPreconditionError(absl::StrCat(
          db_path, " is read-only", ctx, ": ", sqlite_message,
          "; evald needs write access to the file and its folder (for the -wal and -shm files)"));
    case SQLITE_CANTOPEN:
      return absl::FailedPreconditionError(
          absl::StrCat("cannot open ", db_path, ctx, ": ", sqlite_message,
                       "; check that the folder exists and is writable by evald's user"));
    case SQLITE_PERM:
    case SQLITE_AUTH:
      return absl::FailedPreconditionError(
          absl::StrCat("permission denied on ", db_path, ctx, ": ", sqlite_message));
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::UnavailableError(absl::StrCat(
          db_path, " is busy (locked by another connection)", ctx, ": ", sqlite_message,
          "; retry later, and make sure only one evald uses this database"));
    case SQLITE_IOERR:
    case SQLITE_PROTOCOL:
      return absl::UnavailableError(absl::StrCat(
          "I/O error on ", db_path, ctx, ": ", sqlite_message, " (extended code ", extended_code,
          "); nothing was written: check that the file and its -wal are writable (not read-only "
          "or immutable) and that the disk is healthy"));
    case SQLITE_CONSTRAINT:
      if (extended_code == SQLITE_CONSTRAINT_PRIMARYKEY ||
          extended_code == SQLITE_CONSTRAINT_UNIQUE) {
        return absl::AlreadyExistsError(absl::StrCat("already exists", ctx, ": ", sqlite_message));
      }
      return absl::InvalidArgumentError(
          absl::StrCat("rejected by the database", ctx, ": ", sqlite_message));
    case SQLITE_TOOBIG:
      return absl::InvalidArgumentError(
          absl::StrCat("value too large for ", db_path, ctx, ": ", sqlite_message));
    default:
      return absl::InternalError(absl::StrCat("SQLite error on ", db_path, ctx, ": ",
                                              sqlite_message, " (extended code ", extended_code,
                                              ")"));
  }
}

}  // namespace

absl::Status MarkStorageFailure(absl::Status status) {
  if (!status.ok()) status.SetPayload(kStorageFailureUrl, absl::Cord("1"));
  return status;
}

bool IsStorageFailure(const absl::Status& status) {
  return !status.ok() && status.GetPayload(kStorageFailureUrl).has_value();
}

absl::Status SqliteCodeToStatus(int extended_code, absl::string_view sqlite_message,
                                absl::string_view db_path, absl::string_view what) {
  const int primary = extended_code & 0xff;
  absl::Status status = Classified(primary, extended_code, sqlite_message, db_path, what);
  // A constraint or a too-large value is the request's fault; everything else is the database's.
  if (primary == SQLITE_CONSTRAINT || primary == SQLITE_TOOBIG) return status;
  return MarkStorageFailure(std::move(status));
}

absl::Status SqliteExceptionToStatus(const SQLite::Exception& e, absl::string_view db_path,
                                     absl::string_view what) {
  // SQLiteCpp uses code -1 for its own misuse errors (bad column index, double commit).
  if (e.getErrorCode() < 0) {
    return MarkStorageFailure(absl::InternalError(
        absl::StrCat("SQLiteCpp error on ", db_path, Context(what), ": ", e.what())));
  }
  const int code = e.getExtendedErrorCode() >= 0 ? e.getExtendedErrorCode() : e.getErrorCode();
  return SqliteCodeToStatus(code, e.what(), db_path, what);
}

absl::Status CurrentExceptionToStatus(absl::string_view db_path, absl::string_view what) {
  try {
    throw;
  } catch (const SQLite::Exception& e) {
    return SqliteExceptionToStatus(e, db_path, what);
  } catch (const std::bad_alloc&) {
    return MarkStorageFailure(absl::ResourceExhaustedError(
        absl::StrCat("out of memory while using ", db_path, Context(what))));
  } catch (const std::exception& e) {
    return MarkStorageFailure(absl::InternalError(
        absl::StrCat("unexpected error on ", db_path, Context(what), ": ", e.what())));
  } catch (...) {
    return MarkStorageFailure(absl::InternalError(
        absl::StrCat("unexpected non-standard exception on ", db_path, Context(what))));
  }
}

}  // namespace evald::storage
