#include "storage/row_codec.h"

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace evald::storage {
namespace {

template <typename T>
absl::StatusOr<T> DecodeEnum(std::optional<T> parsed, absl::string_view s, absl::string_view kind,
                             absl::string_view where) {
  if (parsed.has_value()) return *parsed;
  return absl::DataLossError(
      absl::StrCat(where, ": unknown ", kind, " '", s, "' (written by a newer evald?)"));
}

}  // namespace

absl::StatusOr<std::string> EncodeStringList(const std::vector<std::string>& values,
                                             absl::string_view what) {
  for (size_t i = 0; i < values.size(); ++i) {
    try {
      // The strict dump throws on invalid UTF-8; refuse it rather than silently replace it.
      (void)nlohmann::json(values[i]).dump();
    } catch (const nlohmann::json::exception&) {
      return absl::InvalidArgumentError(absl::StrCat(what, "[", i, "] is not valid UTF-8"));
    }
  }
  return nlohmann::json(values).dump();
}

absl::StatusOr<std::vector<std::string>> DecodeStringList(absl::string_view json,
                                                          absl::string_view where) {
  nlohmann::json parsed = nlohmann::json::parse(json.begin(), json.end(), nullptr,
                                                /*allow_exceptions=*/false);
  if (parsed.is_discarded() || !parsed.is_array()) {
    return absl::DataLossError(absl::StrCat(where, ": expected a JSON array of strings"));
  }
  std::vector<std::string> out;
  out.reserve(parsed.size());
  for (const nlohmann::json& v : parsed) {
    if (!v.is_string()) {
      return absl::DataLossError(absl::StrCat(where, ": expected a JSON array of strings"));
    }
    out.push_back(v.get<std::string>());
  }
  return out;
}

void BindDouble(SQLite::Statement& stmt, int index, double value) {
  if (std::isnan(value)) {
    stmt.bind(index);
  } else {
    stmt.bind(index, value);
  }
}

double ColumnDouble(const SQLite::Statement& stmt, int index) {
  if (stmt.isColumnNull(index)) return std::numeric_limits<double>::quiet_NaN();
  return stmt.getColumn(index).getDouble();
}

void BindOptionalInt(SQLite::Statement& stmt, int index, const std::optional<int>& value) {
  if (value.has_value()) {
    stmt.bind(index, *value);
  } else {
    stmt.bind(index);
  }
}

std::optional<int> ColumnOptionalInt(const SQLite::Statement& stmt, int index) {
  if (stmt.isColumnNull(index)) return std::nullopt;
  return stmt.getColumn(index).getInt();
}

void BindText(SQLite::Statement& stmt, int index, absl::string_view value) {
  stmt.bind(index, std::string(value));
}

absl::StatusOr<JobState> DecodeJobState(absl::string_view s, absl::string_view where) {
  return DecodeEnum(ParseJobState(s), s, "job state", where);
}
absl::StatusOr<DesiredState> DecodeDesiredState(absl::string_view s, absl::string_view where) {
  return DecodeEnum(ParseDesiredState(s), s, "desired state", where);
}
absl::StatusOr<ExitReason> DecodeExitReason(absl::string_view s, absl::string_view where) {
  return DecodeEnum(ParseExitReason(s), s, "exit reason", where);
}
absl::StatusOr<DeploymentState> DecodeDeploymentState(absl::string_view s,
                                                      absl::string_view where) {
  return DecodeEnum(ParseDeploymentState(s), s, "deployment state", where);
}

}  // namespace evald::storage
