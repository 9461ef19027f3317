// File: lepton_client.cc
#include "executors/lepton/lepton_client.h"

#include <algorithm>
#include <cctype>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace evald::executors::lepton {

using json = nlohmann::json;

namespace {

constexpr char kHttpStatusPayload[] = "evald.lepton.http_status";
// The SDK's page size (lepton-api.md b.4); a page shorter than this is the last one, so 100
// live jobs cost one list call.
constexpr int kJobPageSize = 500;
constexpr int kMaxJobPages = 1000;

absl::StatusCode CodeForHttp(long status) {
  switch (status) {
    case 400:
    case 422:
      return absl::StatusCode::kInvalidArgument;
    case 401:
      return absl::StatusCode::kUnauthenticated;
    case 403:
      return absl::StatusCode::kPermissionDenied;
    case 404:
      return absl::StatusCode::kNotFound;
    case 409:
      return absl::StatusCode::kAlreadyExists;
    default:
      break;
  }
  if (status == 429 || status >= 500) return absl::StatusCode::kUnavailable;
  if (status >= 400) return absl::StatusCode::kFailedPrecondition;
  return absl::StatusCode::kInternal;
}

// The error text of a response body: the JSON `message` or `error` field when there is one,
// else the first 200 characters of the raw body on one line.
std::string BodyMessage(const std::string& body) {
  if (absl::StripAsciiWhitespace(body).empty()) return "(empty body)";
  json parsed = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_object()) {
    for (const char* key : {"message", "error"}) {
      auto it = parsed.find(key);
      if (it == parsed.end()) continue;
      if (it->is_string() && !it->get<std::string>().empty()) return it->get<std::string>();
      if (it->is_object() && it->contains("message") && (*it)["message"].is_string()) {
        return (*it)["message"].get<std::string>();
      }
    }
  }
  std::string text = body.substr(0, 200);
  for (char& c : text) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  return std::string(absl::StripAsciiWhitespace(text)) + (body.size() > 200 ? "..." : "");
}

std::vector<json> JsonList(const json& body, const char* key) {
  const json* list = &body;
  if (body.is_object() && body.contains(key)) list = &body[key];
  std::vector<json> out;
  if (list->is_array()) out.assign(list->begin(), list->end());
  return out;
}

std::string NameOf(const json& spec) {
  if (!spec.is_object() || !spec.contains("metadata") || !spec["metadata"].is_object()) return "";
  const json& md = spec["metadata"];
  if (md.contains("name") && md["name"].is_string()) return md["name"].get<std::string>();
  return "";
}

// `status` with `suffix` appended to its message, payloads (the HTTP status) kept.
absl::Status Annotated(const absl::Status& status, absl::string_view suffix) {
  absl::Status out(status.code(), absl::StrCat(status.message(), suffix));
  status.ForEachPayload(
      [&out](absl::string_view url, const absl::Cord& payload) { out.SetPayload(url, payload); });
  return out;
}

// "/<prefix>/<escaped segment><suffix>": an id or name is one path segment whatever it holds.
// "", "." and ".." are refused: the first would address the collection (DELETE /jobs/), the
// others are dot segments curl resolves away.
absl::StatusOr<std::string> SegmentPath(absl::string_view prefix, const std::string& segment,
                                        absl::string_view suffix = "") {
  if (segment.empty() || segment == "." || segment == "..") {
    return absl::InvalidArgumentError(absl::StrCat(
        "Lepton API ", prefix, ": '", absl::CHexEscape(segment), "' is not a usable id or name"));
  }
  std::string escaped = http::UrlEscape(segment);
  if (escaped.empty()) return absl::ResourceExhaustedError("curl_easy_escape failed");
  return absl::StrCat(prefix, "/", escaped, suffix);
}

}  // namespace

int HttpStatusOf(const absl::Status& status) {
  auto payload = status.GetPayload(kHttpStatusPayload);
  int code = 0;
  if (payload && absl::SimpleAtoi(std::string(*payload), &code)) return code;
  return 0;
}

LeptonClient::LeptonClient(Options options) : options_(std::move(options)) {
  base_url_ = absl::StrCat(absl::StripSuffix(options_.api_url, "/"), "/api/v2/workspaces/",
                           http::UrlEscape(options_.workspace_id));
  options_.max_attempts = std::max(options_.max_attempts, 1);
}

LeptonClient::Response LeptonClient::Perform(const std::string& method, const std::string& path,
                                             const Query& query, const std::string* body,
                                             absl::Time deadline) const {
  http::HttpRequest request;
  request.method = method;
  request.url = base_url_ + path;
  for (size_t i = 0; i < query.size(); ++i) {
    absl::StrAppend(&request.url, i == 0 ? "?" : "&", http::UrlEscape(query[i].first), "=",
                    http::UrlEscape(query[i].second));
  }
  request.bearer_token = &options_.token;
  // The SDK sends origin to the DGX Cloud gateway (lepton-api.md b.1).
  if (absl::StrContains(base_url_, "dgxc")) request.extra_headers.push_back("origin: " + base_url_);
  request.body = body;
  request.request_timeout = options_.request_timeout;
  request.connect_timeout = options_.connect_timeout;
  return http::PerformHttpAttempt(request, deadline);
}

absl::Status LeptonClient::ErrorFor(const std::string& method, const std::string& path,
                                    const Response& response) const {
  std::string message;
  absl::StatusCode code;
  if (response.http_status == 0) {
    code = absl::StatusCode::kUnavailable;
    message = absl::StrCat("Lepton API ", method, " ", path, ": ", response.transport_error);
  } else {
    code = CodeForHttp(response.http_status);
    message = absl::StrCat("Lepton API ", method, " ", path, ": HTTP ", response.http_status, ": ",
                           BodyMessage(response.body));
    if (response.http_status == 401) {
      absl::StrAppend(&message, " (the workspace token is missing, invalid or expired)");
    } else if (response.http_status == 403) {
      absl::StrAppend(&message, " (the token may belong to another workspace)");
    }
  }
  // A server that echoes the request back must not leak the token into our errors.
  if (!options_.token.empty()) {
    message = absl::StrReplaceAll(message, {{options_.token, "<redacted>"}});
  }
  absl::Status status(code, message);
  status.SetPayload(kHttpStatusPayload, absl::Cord(absl::StrCat(response.http_status)));
  return status;
}

absl::Status LeptonClient::CheckToken() const {
  return http::CheckHeaderToken(options_.token, "the Lepton API token");
}

absl::Duration LeptonClient::Backoff(int attempt, const Response& response) const {
  if (response.retry_after) return *response.retry_after;
  return http::JitteredBackoff(options_.backoff_base, options_.backoff_max, attempt);
}

absl::StatusOr<json> LeptonClient::Call(const std::string& method, const std::string& path,
                                        const Query& query, const json* body) const {
  if (absl::Status s = CheckToken(); !s.ok()) return s;
  const absl::Time deadline = absl::Now() + options_.max_total;
  std::string payload = body != nullptr ? body->dump() : "";
  absl::Status last;
  int attempt = 1;
  for (;; ++attempt) {
    Response response =
        Perform(method, path, query, body != nullptr ? &payload : nullptr, deadline);
    bool retryable = false;
    if (response.http_status >= 200 && response.http_status < 300) {
      if (absl::StripAsciiWhitespace(response.body).empty()) return json();
      json parsed = json::parse(response.body, nullptr, /*allow_exceptions=*/false);
      if (!parsed.is_discarded()) return parsed;
      last = absl::UnavailableError(
          absl::StrCat("Lepton API ", method, " ", path, ": HTTP ", response.http_status,
                       " with a body that is not valid JSON: ", BodyMessage(response.body)));
      last.SetPayload(kHttpStatusPayload, absl::Cord(absl::StrCat(response.http_status)));
      retryable = true;
    } else {
      last = ErrorFor(method, path, response);
      retryable = response.http_status == 0 || http::IsRetryableHttpStatus(response.http_status);
    }
    if (!retryable || attempt >= options_.max_attempts) break;
    absl::Duration wait = Backoff(attempt, response);
    if (absl::Now() + wait > deadline) break;
    absl::SleepFor(wait);
  }
  if (!absl::IsUnavailable(last)) return last;
  return Annotated(last, absl::StrCat(" (gave up after ", attempt, " attempt(s))"));
}

template <typename Lookup>
absl::StatusOr<json> LeptonClient::CreateIdempotent(const std::string& path, const json& body,
                                                    const Lookup& lookup) const {
  if (absl::Status s = CheckToken(); !s.ok()) return s;
  const std::string name = NameOf(body);
  if (name.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("Lepton API POST ", path, ": metadata.name is required"));
  }
  const absl::Time deadline = absl::Now() + options_.max_total;
  const std::string payload = body.dump();
  bool ambiguous = false;  // an earlier attempt may have created the resource
  absl::Status last;
  int attempt = 1;
  for (;; ++attempt) {
    Response response = Perform("POST", path, {}, &payload, deadline);
    long http = response.http_status;
    if (http >= 200 && http < 300) {
      json parsed = json::parse(response.body, nullptr, /*allow_exceptions=*/false);
      if (!parsed.is_discarded() && parsed.is_object() && parsed.contains("metadata")) {
        return parsed;
      }
      // Created, but the answer is unusable: read the resource back instead.
      ambiguous = true;
      last = absl::UnavailableError(
          absl::StrCat("Lepton API POST ", path, ": HTTP ", http,
                       " with a body that is not a valid resource: ", BodyMessage(response.body)));
    } else if (http == 409 && ambiguous) {
      // Our own earlier attempt won: fall through to the lookup.
      last = ErrorFor("POST", path, response);
    } else {
      last = ErrorFor("POST", path, response);
      if (http != 0 && !http::IsRetryableHttpStatus(http)) return last;
      // A 429 means not processed; a 5xx, timeout or drop may have created it.
      if (http != 429 && response.maybe_sent) ambiguous = true;
    }
    if (ambiguous) {
      absl::StatusOr<json> found = lookup(name);
      if (found.ok()) return found;
      if (!absl::IsNotFound(found.status())) {
        return Annotated(found.status(),
                         absl::StrCat(" (looking up '", name, "' after: ", last.message(), ")"));
      }
      if (http == 409) return last;  // exists, but we cannot see it: do not loop
    }
    if (attempt >= options_.max_attempts) break;
    absl::Duration wait = Backoff(attempt, response);
    if (absl::Now() + wait > deadline) break;
    absl::SleepFor(wait);
  }
  return Annotated(last, absl::StrCat(" (gave up after ", attempt, " attempt(s))"));
}

absl::StatusOr<std::vector<json>> LeptonClient::ListJobs(const JobQuery& query) const {
  std::vector<json> jobs;
  for (int page = 1; page <= kMaxJobPages; ++page) {
    Query q;
    if (!query.query_mode.empty()) q.emplace_back("job_query_mode", query.query_mode);
    if (!query.name_contains.empty()) q.emplace_back("q", query.name_contains);
    for (const std::string& s : query.states) q.emplace_back("status", s);
    q.emplace_back("page", absl::StrCat(page));
    q.emplace_back("page_size", absl::StrCat(kJobPageSize));
    absl::StatusOr<json> body = Call("GET", "/jobs", q);
    if (!body.ok()) return body.status();
    std::vector<json> items = JsonList(*body, "jobs");
    const size_t n = items.size();
    for (json& item : items) jobs.push_back(std::move(item));
    if (n < static_cast<size_t>(kJobPageSize)) break;
  }
  return jobs;
}

absl::StatusOr<json> LeptonClient::GetJob(const std::string& id, bool include_archived) const {
  absl::StatusOr<std::string> path = SegmentPath("/jobs", id);
  if (!path.ok()) return path.status();
  Query q;
  if (include_archived) q.emplace_back("job_query_mode", "alive_and_archive");
  return Call("GET", *path, q);
}

absl::StatusOr<json> LeptonClient::CreateJob(const json& spec) const {
  return CreateIdempotent("/jobs", spec, [this](const std::string& name) -> absl::StatusOr<json> {
    JobQuery query;
    query.name_contains = name;  // `q` is a substring match: keep only the exact name
    absl::StatusOr<std::vector<json>> jobs = ListJobs(query);
    if (!jobs.ok()) return jobs.status();
    for (const json& job : *jobs) {
      if (NameOf(job) == name) return job;
    }
    return absl::NotFoundError(absl::StrCat("no job named ", name));
  });
}

absl::Status LeptonClient::StopJob(const std::string& id) const {
  absl::StatusOr<std::string> path = SegmentPath("/jobs", id);
  if (!path.ok()) return path.status();
  json patch = {{"spec", {{"stopped", true}}}};
  return Call("PATCH", *path, {}, &patch).status();
}

absl::Status LeptonClient::DeleteJob(const std::string& id) const {
  absl::StatusOr<std::string> path = SegmentPath("/jobs", id);
  if (!path.ok()) return path.status();
  absl::Status status = Call("DELETE", *path).status();
  return absl::IsNotFound(status) ? absl::OkStatus() : status;
}

absl::StatusOr<std::vector<json>> LeptonClient::ListDeployments() const {
  absl::StatusOr<json> body = Call("GET", "/deployments");
  if (!body.ok()) return body.status();
  return JsonList(*body, "deployments");
}

absl::StatusOr<json> LeptonClient::GetDeployment(const std::string& name) const {
  absl::StatusOr<std::string> path = SegmentPath("/deployments", name);
  if (!path.ok()) return path.status();
  return Call("GET", *path);
}

absl::StatusOr<json> LeptonClient::CreateDeployment(const json& spec) const {
  return CreateIdempotent("/deployments", spec,
                          [this](const std::string& name) { return GetDeployment(name); });
}

absl::Status LeptonClient::DeleteDeployment(const std::string& name) const {
  absl::StatusOr<std::string> path = SegmentPath("/deployments", name);
  if (!path.ok()) return path.status();
  absl::Status status = Call("DELETE", *path).status();
  return absl::IsNotFound(status) ? absl::OkStatus() : status;
}

absl::StatusOr<json> LeptonClient::GetDeploymentReadiness(const std::string& name) const {
  absl::StatusOr<std::string> path = SegmentPath("/deployments", name, "/readiness");
  if (!path.ok()) return path.status();
  return Call("GET", *path);
}

absl::StatusOr<json> LeptonClient::GetDeploymentTermination(const std::string& name) const {
  absl::StatusOr<std::string> path = SegmentPath("/deployments", name, "/termination");
  if (!path.ok()) return path.status();
  return Call("GET", *path);
}

absl::StatusOr<std::vector<LeptonClient::LogLine>> LeptonClient::ListJobLogs(
    const std::string& job_id, int64_t start_ns, int64_t end_ns, int limit) const {
  Query query = {{"job", job_id}, {"limit", std::to_string(limit)}};
  if (start_ns > 0) query.emplace_back("start", std::to_string(start_ns));
  if (end_ns > 0) query.emplace_back("end", std::to_string(end_ns));
  absl::StatusOr<json> body = Call("GET", "/logs", query);
  if (!body.ok()) return body.status();
  std::vector<LogLine> out;
  if (!body->is_object() || !body->contains("data") || !(*body)["data"].is_object()) return out;
  const json& data = (*body)["data"];
  if (!data.contains("result") || !data["result"].is_array()) return out;
  for (const json& stream : data["result"]) {
    if (!stream.is_object() || !stream.contains("values") || !stream["values"].is_array()) continue;
    for (const json& v : stream["values"]) {
      if (!v.is_array() || v.size() < 2 || !v[0].is_string() || !v[1].is_string()) continue;
      LogLine l;
      if (!absl::SimpleAtoi(v[0].get<std::string>(), &l.ns)) continue;
      l.line = v[1].get<std::string>();
      out.push_back(std::move(l));
    }
  }
  // Streams merged: newest first across all of them (stable, so one stream keeps its order).
  std::stable_sort(out.begin(), out.end(),
                   [](const LogLine& a, const LogLine& b) { return a.ns > b.ns; });
  return out;
}

absl::StatusOr<std::map<std::string, std::string>> LeptonClient::ListNodeGroups() const {
  absl::StatusOr<json> body = Call("GET", "/dedicated-node-groups");
  if (!body.ok()) return body.status();
  std::map<std::string, std::string> out;
  for (const json& group : JsonList(*body, "dedicated_node_groups")) {
    if (!group.is_object() || !group.contains("metadata")) continue;
    const json& md = group["metadata"];
    if (md.is_object() && md.contains("name") && md.contains("id") && md["name"].is_string() &&
        md["id"].is_string()) {
      out[md["name"].get<std::string>()] = md["id"].get<std::string>();
    }
  }
  return out;
}

}  // namespace evald::executors::lepton
