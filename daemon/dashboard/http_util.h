// File: http_util.h
//
// The pure parts of the dashboard's HTTP API (dashboard_api.h), kept apart so unit tests reach
// them without a server: absl status -> HTTP status and JSON error body, query-string parsing for
// the invocation list, compare ids and log specs, and the session cookie.
//
//   res.status = HttpStatusOf(s.code());
//   res.set_content(ErrorJson(s), "application/json");
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "evald/v1/evald.pb.h"

namespace evald::daemon {

// The one mapping of absl codes to HTTP statuses (docs/dashboard-api.md, Errors).
int HttpStatusOf(absl::StatusCode code);
// {"error": "<message>", "code": "PERMISSION_DENIED"}.
std::string ErrorJson(const absl::Status& status);

// Query parameters as cpp-httplib gives them (httplib::Params is this multimap).
using QueryParams = std::multimap<std::string, std::string>;

// GET /api/v1/invocations: state (running or JOB_STATE_RUNNING), executor, owner, task, q,
// page_token, limit (1..1000). InvalidArgument names the bad parameter.
absl::StatusOr<v1::ListInvocationsRequest> ParseListQuery(const QueryParams& params);
// "A,B[,C...]": two or more distinct non-empty ids.
absl::StatusOr<std::vector<std::string>> ParseCompareIds(absl::string_view ids);
// A job state by its short name ("running") or enum name; nullopt when unknown.
std::optional<v1::JobState> ParseJobStateName(absl::string_view name);

// `log=<job id>:<stream>` of the event stream; stream is stdout, stderr or server.
struct LogSpec {
  std::string job_id;
  std::string stream;
};
absl::StatusOr<LogSpec> ParseLogSpec(absl::string_view spec);

// The value of cookie `name` in a Cookie header ("a=1; evald_session=evt_x"), or "".
std::string CookieValue(absl::string_view cookie_header, absl::string_view name);

}  // namespace evald::daemon
