// File: row_codec.h
//
// Conversions between record fields (core/model.h) and SQLite column values, shared by the
// repositories: string lists as JSON arrays, doubles with NaN kept as NULL, lifecycle enums as
// their lower-case names. A value that does not decode is reported as DataLoss naming the table,
// row and column, never guessed.
//
//   EVALD_ASSIGN_OR_RETURN(std::string tasks, EncodeStringList(inv.tasks, "tasks"));
//   EVALD_ASSIGN_OR_RETURN(inv.tasks, DecodeStringList(stmt.getColumn(5).getString(), where));
#pragma once

#include <SQLiteCpp/Column.h>
#include <SQLiteCpp/Statement.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/lifecycle.h"

namespace evald::storage {

// InvalidArgument when a value is not valid UTF-8 (`what` names the field, e.g. "tasks").
absl::StatusOr<std::string> EncodeStringList(const std::vector<std::string>& values,
                                             absl::string_view what);
// `where` names the value in errors, e.g. "evald.db: invocations 3f9a0c1e column tasks".
absl::StatusOr<std::vector<std::string>> DecodeStringList(absl::string_view json,
                                                          absl::string_view where);

// SQLite turns NaN into NULL; these keep NaN round-tripping as NULL.
void BindDouble(SQLite::Statement& stmt, int index, double value);
double ColumnDouble(const SQLite::Statement& stmt, int index);

void BindOptionalInt(SQLite::Statement& stmt, int index, const std::optional<int>& value);
std::optional<int> ColumnOptionalInt(const SQLite::Statement& stmt, int index);

// absl::string_view is not std::string_view here, so bind through a std::string.
void BindText(SQLite::Statement& stmt, int index, absl::string_view value);

absl::StatusOr<JobState> DecodeJobState(absl::string_view s, absl::string_view where);
absl::StatusOr<DesiredState> DecodeDesiredState(absl::string_view s, absl::string_view where);
absl::StatusOr<ExitReason> DecodeExitReason(absl::string_view s, absl::string_view where);
absl::StatusOr<DeploymentState> DecodeDeploymentState(absl::string_view s, absl::string_view where);

}  // namespace evald::storage
