#include "daemon/dashboard/http_util.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "nlohmann/json.hpp"

namespace evald::daemon {
namespace {

std::string Param(const QueryParams& params, const std::string& name) {
  auto it = params.find(name);
  return it == params.end() ? "" : it->second;
}

}  // namespace

int HttpStatusOf(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return 200;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      return 400;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kAborted:
      return 409;
    case absl::StatusCode::kResourceExhausted:
      return 429;
    case absl::StatusCode::kUnimplemented:
      return 501;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kCancelled:
      return 503;
    case absl::StatusCode::kDeadlineExceeded:
      return 504;
    default:
      return 500;
  }
}

std::string ErrorJson(const absl::Status& status) {
  nlohmann::json j = {{"error", std::string(status.message())},
                      {"code", absl::StatusCodeToString(status.code())}};
  // Messages come from the core and may quote user input: replace invalid UTF-8, do not throw.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::optional<v1::JobState> ParseJobStateName(absl::string_view name) {
  std::string upper = absl::AsciiStrToUpper(name);
  if (!absl::StartsWith(upper, "JOB_STATE_")) upper = absl::StrCat("JOB_STATE_", upper);
  v1::JobState state;
  if (!v1::JobState_Parse(upper, &state) || state == v1::JOB_STATE_UNSPECIFIED) {
    return std::nullopt;
  }
  return state;
}

absl::StatusOr<v1::ListInvocationsRequest> ParseListQuery(const QueryParams& params) {
  v1::ListInvocationsRequest req;
  if (std::string state = Param(params, "state"); !state.empty()) {
    std::optional<v1::JobState> parsed = ParseJobStateName(state);
    if (!parsed) {
      return absl::InvalidArgumentError(
          absl::StrCat("state '", state,
                       "' is not one of pending, submitted, running, succeeded, failed, "
                       "killed, lost"));
    }
    req.set_state(*parsed);
  }
  req.set_executor(Param(params, "executor"));
  req.set_owner(Param(params, "owner"));
  req.set_task(Param(params, "task"));
  req.set_query(std::string(absl::StripAsciiWhitespace(Param(params, "q"))));
  req.set_page_token(Param(params, "page_token"));
  if (std::string limit = Param(params, "limit"); !limit.empty()) {
    int n = 0;
    if (!absl::SimpleAtoi(limit, &n) || n < 1 || n > 1000) {
      return absl::InvalidArgumentError(
          absl::StrCat("limit '", limit, "' is not a number from 1 to 1000"));
    }
    req.set_limit(n);
  }
  if (std::string since = Param(params, "since_ms"); !since.empty()) {
    int64_t ms = 0;
    if (!absl::SimpleAtoi(since, &ms) || ms < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("since_ms '", since, "' is not a unix time in milliseconds"));
    }
    req.set_since_ms(ms);
  }
  return req;
}

absl::StatusOr<std::vector<std::string>> ParseCompareIds(absl::string_view ids) {
  std::vector<std::string> out;
  for (absl::string_view part : absl::StrSplit(ids, ',')) {
    part = absl::StripAsciiWhitespace(part);
    if (part.empty()) {
      return absl::InvalidArgumentError("ids must be two or more comma-separated ids (ids=A,B)");
    }
    for (const std::string& seen : out) {
      if (seen == part) {
        return absl::InvalidArgumentError(absl::StrCat("id ", part, " is given twice"));
      }
    }
    out.emplace_back(part);
  }
  if (out.size() < 2) {
    return absl::InvalidArgumentError("ids must be two or more comma-separated ids (ids=A,B)");
  }
  return out;
}

absl::StatusOr<LogSpec> ParseLogSpec(absl::string_view spec) {
  size_t colon = spec.rfind(':');
  LogSpec out;
  out.job_id = std::string(spec.substr(0, colon == absl::string_view::npos ? spec.size() : colon));
  out.stream = colon == absl::string_view::npos ? "stdout" : std::string(spec.substr(colon + 1));
  if (out.job_id.empty()) {
    return absl::InvalidArgumentError("log must be <job id>:<stdout|stderr|server>");
  }
  if (out.stream != "stdout" && out.stream != "stderr" && out.stream != "server") {
    return absl::InvalidArgumentError(
        absl::StrCat("log stream '", out.stream, "' is not stdout, stderr or server"));
  }
  return out;
}

std::string CookieValue(absl::string_view cookie_header, absl::string_view name) {
  for (absl::string_view part : absl::StrSplit(cookie_header, ';')) {
    part = absl::StripAsciiWhitespace(part);
    if (absl::ConsumePrefix(&part, name) && absl::ConsumePrefix(&part, "=")) {
      return std::string(part);
    }
  }
  return "";
}

}  // namespace evald::daemon
