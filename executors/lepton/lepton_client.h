// File: lepton_client.h
//
// A small REST client for one DGX Cloud Lepton workspace (lepton-api.md section (b)): jobs,
// deployments (endpoints), readiness and dedicated node groups under
// `<api url>/api/v2/workspaces/<workspace id>`, with a bearer token. Payloads stay
// nlohmann::json; the Lepton executor (issue 11) parses the fields it needs.
//
// Ids and names reach the URL as escaped path segments (an empty one, "." or ".." is refused).
//
// Robustness: each request has its own timeout (connect and total, never past the call's
// max_total); 429, 5xx, timeouts, dropped connections and
// malformed 2xx bodies are retried with exponential backoff and jitter (Retry-After wins when
// sent), bounded by max_attempts and max_total (one attempt, backoff and the token check:
// executors/common/http_attempt.h). A POST is never repeated blindly after an
// ambiguous failure (timeout, dropped connection, 5xx): the resource is looked up by name first
// and returned if the earlier attempt created it. Errors are absl::Status values whose message
// says the method, path, HTTP status and the body's message; the token never appears in them.
//
// Callers: the Lepton executor. Thread-safe (one curl handle per request).
//
//   LeptonClient client({.api_url = "https://gateway.dgxc-lepton.nvidia.com",
//                        .workspace_id = "ws1", .token = token});
//   absl::StatusOr<nlohmann::json> job = client.CreateJob(spec);   // spec.metadata.name set
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "executors/common/http_attempt.h"
#include "nlohmann/json.hpp"

namespace evald::executors::lepton {

// The HTTP status an error from LeptonClient carries (0 when no HTTP answer came back, or for
// errors not made by LeptonClient).
int HttpStatusOf(const absl::Status& status);

class LeptonClient {
 public:
  struct Options {
    std::string api_url;       // e.g. https://gateway.dgxc-lepton.nvidia.com (no /api/v2 suffix)
    std::string workspace_id;  // e.g. ws-test
    std::string token;         // the workspace token; sent only as the Authorization header
    absl::Duration request_timeout = absl::Seconds(60);  // one attempt, connect included
    // The TCP+TLS connect alone: an unreachable gateway fails fast and is retried.
    absl::Duration connect_timeout = absl::Seconds(10);
    int max_attempts = 5;  // per call, first attempt included
    absl::Duration backoff_base = absl::Milliseconds(500);
    absl::Duration backoff_max = absl::Seconds(30);
    absl::Duration max_total = absl::Minutes(3);  // a call gives up once this much time is spent
  };

  // ListJobs filters (lepton-api.md b.4). Empty fields are not sent.
  struct JobQuery {
    std::string query_mode;     // alive_only (server default), archive_only, alive_and_archive
    std::string name_contains;  // `q`
    std::vector<std::string> states;
  };

  explicit LeptonClient(Options options);

  const std::string& base_url() const { return base_url_; }

  // Jobs are addressed by id (`metadata.id`, which may differ from the name).
  absl::StatusOr<std::vector<nlohmann::json>> ListJobs(const JobQuery& query = {}) const;
  absl::StatusOr<nlohmann::json> GetJob(const std::string& id, bool include_archived = false) const;
  // `spec` is the whole LeptonJob ({metadata:{name,...}, spec:{...}}); metadata.name is required.
  // Set metadata.id too (as the lep CLI does): a POST that times out and lands on the server
  // only after the lookup found nothing then makes the re-POST a 409, which is resolved by
  // another lookup; without an id the server would accept both and run the job twice.
  absl::StatusOr<nlohmann::json> CreateJob(const nlohmann::json& spec) const;
  absl::Status StopJob(const std::string& id) const;
  // A job that is already gone (404) counts as deleted.
  absl::Status DeleteJob(const std::string& id) const;

  // Deployments are addressed by name.
  absl::StatusOr<std::vector<nlohmann::json>> ListDeployments() const;
  absl::StatusOr<nlohmann::json> GetDeployment(const std::string& name) const;
  absl::StatusOr<nlohmann::json> CreateDeployment(const nlohmann::json& spec) const;
  // A deployment that is already gone (404) counts as deleted.
  absl::Status DeleteDeployment(const std::string& name) const;
  // {"<replica id>": [{reason, message, creationTimestamp}], ...}
  absl::StatusOr<nlohmann::json> GetDeploymentReadiness(const std::string& name) const;
  // {"<replica id>": [{started_at, finished_at, exit_code, reason, message}], ...}
  absl::StatusOr<nlohmann::json> GetDeploymentTermination(const std::string& name) const;

  // Historical logs of a job (GET /logs?job=<id>, lepton-api.md b.5): the lines stamped in
  // (start_ns, end_ns] (0 leaves that side open), newest first, at most `limit`, all streams
  // (replicas) merged.
  struct LogLine {
    int64_t ns = 0;
    std::string line;
  };
  absl::StatusOr<std::vector<LogLine>> ListJobLogs(const std::string& job_id, int64_t start_ns,
                                                   int64_t end_ns, int limit) const;

  // Dedicated node groups: name -> id (affinity takes ids, users write names).
  absl::StatusOr<std::map<std::string, std::string>> ListNodeGroups() const;

 private:
  using Response = http::HttpAttempt;  // one HTTP exchange (executors/common/http_attempt.h)
  using Query = std::vector<std::pair<std::string, std::string>>;

  // One attempt: no retries, at most min(request_timeout, `deadline` - now). Transport failures
  // come back in the Response.
  Response Perform(const std::string& method, const std::string& path, const Query& query,
                   const std::string* body, absl::Time deadline) const;
  // GET/PATCH/DELETE with retries; returns the parsed body (null for an empty one).
  absl::StatusOr<nlohmann::json> Call(const std::string& method, const std::string& path,
                                      const Query& query = {},
                                      const nlohmann::json* body = nullptr) const;
  // POST with retries that looks the resource up (`lookup`: NotFound when absent) after every
  // ambiguous failure instead of re-posting blindly.
  template <typename Lookup>
  absl::StatusOr<nlohmann::json> CreateIdempotent(const std::string& path,
                                                  const nlohmann::json& body,
                                                  const Lookup& lookup) const;
  absl::Status ErrorFor(const std::string& method, const std::string& path,
                        const Response& response) const;
  // InvalidArgument when the token cannot go into an HTTP header as it is.
  absl::Status CheckToken() const;
  absl::Duration Backoff(int attempt, const Response& response) const;

  Options options_;
  std::string base_url_;
};

}  // namespace evald::executors::lepton
