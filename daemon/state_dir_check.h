// File: state_dir_check.h
//
// The start-up check that keeps evald from silently beginning a new, empty history when its
// database was lost. SQLite turns a missing or 0-byte file into a fresh empty database without a
// word, so main() calls this (under the state dir lock, before the database is opened): if
// evald.db is missing or empty but the state dir still holds files only an earlier evald leaves
// behind (secrets.key, evald.db-wal, evald.db-shm), evald refuses to start unless it was told to
// initialise (`--initialize-db`). A new, empty state dir needs no flag.
//
//   EVALD_RETURN_IF_ERROR(CheckDatabaseNotLost(state_dir, /*initialize_db=*/false));
#pragma once

#include <string>

#include "absl/status/status.h"

namespace evald::daemon {

// FailedPrecondition naming the database, the earlier files found and the flag that overrides.
// With `initialize_db`, a lost database is accepted instead: a leftover evald.db-wal and
// evald.db-shm (which SQLite would replay into the new database) are renamed to
// <name>.stale-<unix seconds> and a warning is logged. Otherwise nothing is changed.
absl::Status CheckDatabaseNotLost(const std::string& state_dir, bool initialize_db);

}  // namespace evald::daemon
