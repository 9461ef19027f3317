// File: migrations.h
//
// The schema of evald's database as an ordered, append-only list of SQL steps. Step N brings a
// database from `PRAGMA user_version` N-1 to N; Database::Open applies the missing steps, each in
// its own transaction. Never edit a released step: append a new one.
//
// Callers: Database::Open (storage/database.cc) and the migration tests.
//
//   for (const Migration& m : Migrations()) { if (m.version > current) Apply(m); }
#pragma once

#include <cstdint>

#include "absl/types/span.h"

namespace evald::storage {

struct Migration {
  int version;              // user_version after this step
  const char* description;  // one line, for error messages
  const char* sql;          // one or more statements, run in one transaction
};

// Written to `PRAGMA application_id` so evald never adopts some other program's SQLite file.
inline constexpr int32_t kEvaldApplicationId = 0x6576616c;  // "eval"

absl::Span<const Migration> Migrations();
int LatestSchemaVersion();

}  // namespace evald::storage
