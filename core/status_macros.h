// File: status_macros.h
//
// EVALD_RETURN_IF_ERROR and EVALD_ASSIGN_OR_RETURN: the two propagation macros Abseil 20220623
// does not ship yet. Every layer above storage/ and the config parsers returns absl::Status.
//
//   absl::StatusOr<Job> LoadJob(Store& s, absl::string_view id) {
//     EVALD_RETURN_IF_ERROR(s.CheckOpen());
//     EVALD_ASSIGN_OR_RETURN(JobRecord rec, s.jobs().Get(id));
//     return Job(rec);
//   }
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define EVALD_STATUS_CONCAT_INNER_(a, b) a##b
#define EVALD_STATUS_CONCAT_(a, b) EVALD_STATUS_CONCAT_INNER_(a, b)

#define EVALD_RETURN_IF_ERROR(expr)                          \
  do {                                                       \
    ::absl::Status evald_status_ = (expr);                   \
    if (!evald_status_.ok()) return evald_status_;           \
  } while (0)

#define EVALD_ASSIGN_OR_RETURN(lhs, rexpr) \
  EVALD_ASSIGN_OR_RETURN_IMPL_(EVALD_STATUS_CONCAT_(evald_statusor_, __LINE__), lhs, rexpr)

#define EVALD_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                 \
  if (!statusor.ok()) return std::move(statusor).status(); \
  lhs = std::move(statusor).value()
