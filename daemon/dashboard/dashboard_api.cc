#include "daemon/dashboard/dashboard_api.h"

#include <google/protobuf/util/json_util.h>
#include <httplib.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "daemon/dashboard/assets.h"
#include "daemon/dashboard/http_util.h"
#include "daemon/dashboard/list_html.h"
#include "daemon/log_tail.h"
#include "daemon/proto_convert.h"
#include "daemon/server_core.h"
#include "nlohmann/json.hpp"
#include "storage/store.h"

namespace evald::daemon {
namespace {

constexpr char kSessionCookie[] = "evald_session";
constexpr char kJson[] = "application/json";
// How often an idle stream wakes to notice a closed evald; the hub wakes it at once on a change.
constexpr absl::Duration kStreamWake = absl::Milliseconds(250);
constexpr absl::Duration kPing = absl::Seconds(15);
constexpr absl::Duration kProbe = absl::Seconds(1);
constexpr int kEventBatch = 200;
constexpr int kLogBatch = 500;
// The list page's rows per page when its URL has no ?limit= (LIMIT in web/src/list.jsx).
constexpr int kListPageRows = 50;
// Where GET / puts the data of its first screen (the page reads #evald-boot before it renders).
constexpr absl::string_view kAppDiv = R"(<div id="app">)";

std::string ToJson(const google::protobuf::Message& m) {
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  std::string out;
  if (!google::protobuf::util::MessageToJsonString(m, &out, options).ok()) return "{}";
  return out;
}

std::string Dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void SendError(httplib::Response& res, const absl::Status& status) {
  res.status = HttpStatusOf(status.code());
  res.set_content(ErrorJson(status), kJson);
}

void SendResult(httplib::Response& res, const absl::Status& status,
                const google::protobuf::Message& message) {
  if (!status.ok()) return SendError(res, status);
  res.set_content(ToJson(message), kJson);
}

nlohmann::json WhoamiJson(const Caller& caller, bool anonymous) {
  return {{"user", caller.user},
          {"role", std::string(RoleName(caller.role))},
          {"anonymous", anonymous}};
}

std::string Param(const httplib::Request& req, const char* name) {
  return req.has_param(name) ? req.get_param_value(name) : "";
}

// An optional non-negative integer parameter within [0, max]; `fallback` when absent.
absl::StatusOr<int64_t> IntParam(const httplib::Request& req, const char* name, int64_t fallback,
                                 int64_t max) {
  std::string text = Param(req, name);
  if (text.empty()) return fallback;
  int64_t n = 0;
  if (!absl::SimpleAtoi(text, &n) || n < 0 || n > max) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, " '", text, "' is not a number from 0 to ", max));
  }
  return n;
}

// Token values are "evt_" + base64url: anything else is not echoed into a Set-Cookie header.
bool CookieSafe(absl::string_view token) {
  if (token.empty() || token.size() > 256) return false;
  for (char c : token) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') return false;
  }
  return true;
}

std::string ProgressJson(const std::string& invocation_id, const std::string& job_id,
                         const ProgressSnapshot& p) {
  nlohmann::json j = {{"invocationId", invocation_id},
                      {"jobId", job_id},
                      {"done", p.done},
                      {"total", p.total},
                      {"errors", p.errors},
                      {"rate", p.rate},
                      {"etaSeconds", nullptr}};
  if (p.total > p.done && p.rate > 0) j["etaSeconds"] = (p.total - p.done) / p.rate;
  return Dump(j);
}

// With SameSite=Strict this header is the CSRF guard: a cross-site form cannot set it, and a
// cross-site fetch that sets it needs a CORS preflight evald never grants. False (and the 403
// written) when a state-changing request lacks it.
bool HasCsrfHeader(const httplib::Request& req, httplib::Response& res) {
  if (req.get_header_value("X-Evald-Request") == "1") return true;
  SendError(res, absl::PermissionDeniedError(
                     "state-changing requests must carry the header 'X-Evald-Request: 1'"));
  return false;
}

// The Host header names a loopback address: localhost, [::1] or a 127.x.y.z literal (not a name
// that merely starts with "127."), with or without a port.
bool LoopbackHost(const httplib::Request& req) {
  std::string host = absl::AsciiStrToLower(req.get_header_value("Host"));
  if (absl::StartsWith(host, "[")) {
    return host == "[::1]" || absl::StartsWith(host, "[::1]:");
  }
  host = host.substr(0, host.find(':'));
  if (host == "localhost") return true;
  if (!absl::StartsWith(host, "127.")) return false;
  int dots = 0;
  for (char c : host) {
    if (c == '.') {
      ++dots;
    } else if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) {
      return false;
    }
  }
  return dots == 3;
}

}  // namespace

DashboardApi::DashboardApi(ServerCore* core, CallerResolver* resolver, Options options)
    : core_(core), resolver_(resolver), options_(options) {}

absl::StatusOr<Caller> DashboardApi::Authenticate(const httplib::Request& req, bool* anonymous) {
  *anonymous = false;
  std::string token;
  if (req.has_header("Authorization")) {
    const std::string header = req.get_header_value("Authorization");
    absl::string_view v = absl::StripAsciiWhitespace(header);
    if (v.size() < 7 || !absl::EqualsIgnoreCase(v.substr(0, 7), "bearer ")) {
      return absl::UnauthenticatedError("the Authorization header is not 'Bearer <token>'");
    }
    token = std::string(absl::StripAsciiWhitespace(v.substr(7)));
  } else if (req.has_header("Cookie")) {
    token = CookieValue(req.get_header_value("Cookie"), kSessionCookie);
  }
  if (token.empty()) {
    // A page on another site can reach a loopback port by rebinding its own name to 127.0.0.1;
    // its requests then carry that name as Host. Anonymous reads are for loopback names only.
    if (options_.loopback && !options_.require_tokens && LoopbackHost(req)) {
      Caller c;
      c.user = "anonymous";
      c.role = Role::kViewer;
      c.via = "http loopback, no token";
      *anonymous = true;
      return c;
    }
    return absl::UnauthenticatedError(
        "no token: send 'Authorization: Bearer <token>' or log in (POST /api/v1/login); an admin "
        "creates tokens with 'evalctl admin tokens create --user NAME'");
  }
  // The peer never names a unix-socket connection, so only the token can identify the caller.
  return resolver_->Resolve(absl::StrCat("http:", req.remote_addr), absl::StrCat("Bearer ", token));
}

std::optional<Caller> DashboardApi::ReadCaller(const httplib::Request& req,
                                               httplib::Response& res) {
  bool anonymous = false;
  absl::StatusOr<Caller> caller = Authenticate(req, &anonymous);
  if (!caller.ok()) {
    SendError(res, caller.status());
    return std::nullopt;
  }
  return *caller;
}

std::optional<Caller> DashboardApi::ActionCaller(const httplib::Request& req,
                                                 httplib::Response& res) {
  if (!HasCsrfHeader(req, res)) return std::nullopt;
  bool anonymous = false;
  absl::StatusOr<Caller> caller = Authenticate(req, &anonymous);
  if (caller.ok() && anonymous) {
    caller = absl::UnauthenticatedError(
        "actions need a token: log in (POST /api/v1/login) or send 'Authorization: Bearer "
        "<token>'");
  }
  if (!caller.ok()) {
    SendError(res, caller.status());
    return std::nullopt;
  }
  return *caller;
}

bool DashboardApi::MetricsAllowed(const httplib::Request& req) {
  if (!options_.require_tokens) return true;
  bool anonymous = false;
  absl::StatusOr<Caller> caller = Authenticate(req, &anonymous);
  return caller.ok() && !anonymous;
}

void DashboardApi::Register(httplib::Server& server) {
  using httplib::Request;
  using httplib::Response;
  server.Get("/api/v1/whoami", [this](const Request& req, Response& res) {
    bool anonymous = false;
    absl::StatusOr<Caller> caller = Authenticate(req, &anonymous);
    if (!caller.ok()) return SendError(res, caller.status());
    res.set_content(Dump(WhoamiJson(*caller, anonymous)), kJson);
  });
  server.Get("/api/v1/invocations", [this](const Request& req, Response& res) {
    std::optional<Caller> caller = ReadCaller(req, res);
    if (!caller) return;
    absl::StatusOr<v1::ListInvocationsRequest> request = ParseListQuery(req.params);
    if (!request.ok()) return SendError(res, request.status());
    v1::ListInvocationsResponse response;
    SendResult(res, core_->ListInvocations(*caller, *request, &response), response);
  });
  server.Get(R"(/api/v1/invocations/([^/]+))", [this](const Request& req, Response& res) {
    if (!ReadCaller(req, res)) return;
    v1::GetInvocationRequest request;
    request.set_id(req.matches[1]);
    request.set_include_config(true);  // masked: secrets are never in the stored config
    v1::Invocation response;
    SendResult(res, core_->GetInvocation(request, &response), response);
  });
  server.Get(R"(/api/v1/invocations/([^/]+)/events)",
             [this](const Request& req, Response& res) { Events(req, res); });
  server.Get(R"(/api/v1/invocations/([^/]+)/results)", [this](const Request& req, Response& res) {
    if (!ReadCaller(req, res)) return;
    v1::GetResultsRequest request;
    request.set_id(req.matches[1]);
    v1::GetResultsResponse response;
    SendResult(res, core_->GetResults(request, &response), response);
  });
  server.Get(R"(/api/v1/invocations/([^/]+)/logs)",
             [this](const Request& req, Response& res) { Logs(req, res); });
  server.Get("/api/v1/compare", [this](const Request& req, Response& res) { Compare(req, res); });
  server.Get("/api/v1/tasks", [this](const Request& req, Response& res) {
    if (!ReadCaller(req, res)) return;
    v1::ListTasksRequest request;
    request.set_harness(Param(req, "harness"));
    v1::ListTasksResponse response;
    SendResult(res, core_->ListTasks(request, &response), response);
  });
  server.Get("/api/v1/stream", [this](const Request& req, Response& res) { Stream(req, res); });

  server.Post(R"(/api/v1/invocations/([^/]+)/kill)", [this](const Request& req, Response& res) {
    std::optional<Caller> caller = ActionCaller(req, res);
    if (!caller) return;
    v1::KillRequest request;
    request.set_id(req.matches[1]);
    v1::KillResponse response;
    SendResult(res, core_->Kill(*caller, request, &response), response);
  });
  server.Post(R"(/api/v1/invocations/([^/]+)/resume)", [this](const Request& req, Response& res) {
    std::optional<Caller> caller = ActionCaller(req, res);
    if (!caller) return;
    v1::ResumeRequest request;
    request.set_invocation_id(req.matches[1]);
    // Optional body {"jobIds": [...]}; secrets are not taken from a browser.
    if (!req.body.empty()) {
      nlohmann::json body = nlohmann::json::parse(req.body, nullptr, false);
      if (body.is_discarded() || !body.is_object()) {
        return SendError(res, absl::InvalidArgumentError("the body is not a JSON object"));
      }
      if (body.contains("jobIds")) {
        if (!body["jobIds"].is_array()) {
          return SendError(res, absl::InvalidArgumentError("jobIds is not a list of job ids"));
        }
        for (const nlohmann::json& id : body["jobIds"]) {
          if (!id.is_string()) {
            return SendError(res, absl::InvalidArgumentError("jobIds is not a list of job ids"));
          }
          request.add_job_ids(id.get<std::string>());
        }
      }
    }
    v1::ResumeResponse response;
    SendResult(res, core_->Resume(*caller, request, &response), response);
  });
  server.Post(R"(/api/v1/invocations/([^/]+)/export)", [this](const Request& req, Response& res) {
    std::optional<Caller> caller = ActionCaller(req, res);
    if (!caller) return;
    nlohmann::json body = nlohmann::json::parse(req.body, nullptr, false);
    if (body.is_discarded() || !body.is_object() || !body.contains("dest") ||
        !body["dest"].is_string()) {
      return SendError(res, absl::InvalidArgumentError(
                                "the body must be {\"dest\": \"local|mlflow|wandb|gsheets\"}"));
    }
    // Only the destination: paths and exporter configs come from the invocation's own config.
    v1::ExportRequest request;
    request.add_ids(req.matches[1]);
    request.set_dest(body["dest"].get<std::string>());
    request.set_client("evald-dashboard");
    v1::ExportResponse response;
    SendResult(res, core_->Export(*caller, request, &response), response);
  });
  server.Post("/api/v1/login", [this](const Request& req, Response& res) { Login(req, res); });
  server.Post("/api/v1/logout", [](const Request& req, Response& res) {
    if (!HasCsrfHeader(req, res)) return;
    res.set_header("Set-Cookie",
                   absl::StrCat(kSessionCookie, "=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"));
    res.set_content("{}", kJson);
  });
  server.Get(R"(/api/.*)", [](const Request& req, Response& res) {
    SendError(res, absl::NotFoundError(absl::StrCat("no API call GET ", req.path)));
  });
  server.Post(R"(/.*)", [](const Request& req, Response& res) {
    SendError(res, absl::NotFoundError(absl::StrCat("no API call POST ", req.path)));
  });
  server.Get(R"(/.*)", [this](const Request& req, Response& res) { Static(req, res); });
}

void DashboardApi::Static(const httplib::Request& req, httplib::Response& res) {
  const bool hashed = absl::StartsWith(req.path, "/assets/");
  const Asset* asset = FindDashboardAsset(req.path == "/" ? "/index.html" : req.path);
  // Deep links (/invocations/abc, /compare?ids=...) are the page's own routes.
  if (asset == nullptr && !hashed) asset = FindDashboardAsset("/index.html");
  if (asset == nullptr) {
    res.status = 404;
    res.set_content("not found\n", "text/plain");
    return;
  }
  // Hashed file names change with their content; everything else is revalidated.
  res.set_header("Cache-Control", hashed ? "public, max-age=31536000, immutable" : "no-cache");
  const std::string content_type(asset->content_type);
  absl::string_view body(asset->body.data(), asset->body.size());
  const size_t app = body.find(kAppDiv);
  if (req.path == "/" && app != absl::string_view::npos) {
    std::string list_html;
    std::string boot = BootData(req, &list_html);
    if (!boot.empty()) {
      // The list's first screen also as markup inside #app (list_html.h says why).
      const size_t inside = app + kAppDiv.size();
      res.set_content(
          absl::StrCat(body.substr(0, app), R"(<script type="application/json" id="evald-boot">)",
                       boot, "</script>", body.substr(app, inside - app), list_html,
                       body.substr(inside)),
          content_type);
      return;
    }
  }
  res.set_content(body.data(), body.size(), content_type.c_str());
}

std::string DashboardApi::BootData(const httplib::Request& req, std::string* list_html) {
  bool anonymous = false;
  absl::StatusOr<Caller> caller = Authenticate(req, &anonymous);
  if (!caller.ok()) return "";  // the page asks again and shows the login box
  std::string out = absl::StrCat(R"({"whoami":)", Dump(WhoamiJson(*caller, anonymous)));
  absl::StatusOr<v1::ListInvocationsRequest> request = ParseListQuery(req.params);
  // Read before the list: the page's event stream resumes after it, so a change that lands
  // between this list and the stream's start is sent, not lost.
  absl::StatusOr<int64_t> seq = core_->store().LastEventSeq();
  if (request.ok() && seq.ok()) {
    if (!req.has_param("limit")) request->set_limit(kListPageRows);
    v1::ListInvocationsResponse response;
    if (core_->ListInvocations(*caller, *request, &response).ok()) {
      const size_t q = req.target.find('?');
      nlohmann::json search = q == std::string::npos ? std::string() : req.target.substr(q);
      absl::StrAppend(&out, R"(,"search":)", Dump(search), R"(,"seq":)", *seq, R"(,"list":)",
                      ToJson(response));
      *list_html = ListPageHtml(response, req.params);
    }
  }
  out += "}";
  // '<' only occurs inside JSON strings, where \u003c reads the same and cannot end the script.
  return absl::StrReplaceAll(out, {{"<", "\\u003c"}});
}

void DashboardApi::Login(const httplib::Request& req, httplib::Response& res) {
  if (!HasCsrfHeader(req, res)) return;
  nlohmann::json body = nlohmann::json::parse(req.body, nullptr, false);
  if (body.is_discarded() || !body.is_object() || !body.contains("token") ||
      !body["token"].is_string()) {
    return SendError(res, absl::InvalidArgumentError("the body must be {\"token\": \"evt_...\"}"));
  }
  const std::string token(absl::StripAsciiWhitespace(body["token"].get<std::string>()));
  if (!CookieSafe(token)) {
    return SendError(res, absl::UnauthenticatedError("that is not an evald token (evt_...)"));
  }
  absl::StatusOr<Caller> caller =
      resolver_->Resolve(absl::StrCat("http:", req.remote_addr), absl::StrCat("Bearer ", token));
  if (!caller.ok()) return SendError(res, caller.status());
  // evald's HTTP port is plain HTTP; behind a TLS proxy that says so the cookie is Secure, so a
  // browser never sends it over plain HTTP.
  const bool https = absl::EqualsIgnoreCase(
      absl::StripAsciiWhitespace(req.get_header_value("X-Forwarded-Proto")), "https");
  res.set_header("Set-Cookie",
                 absl::StrCat(kSessionCookie, "=", token, "; HttpOnly; SameSite=Strict; Path=/",
                              https ? "; Secure" : ""));
  res.set_content(Dump(WhoamiJson(*caller, /*anonymous=*/false)), kJson);
}

void DashboardApi::Events(const httplib::Request& req, httplib::Response& res) {
  if (!ReadCaller(req, res)) return;
  absl::StatusOr<int64_t> after = IntParam(req, "after_seq", 0, INT64_MAX);
  if (!after.ok()) return SendError(res, after.status());
  absl::StatusOr<int64_t> limit = IntParam(req, "limit", 1000, 10000);
  if (!limit.ok()) return SendError(res, limit.status());
  absl::StatusOr<std::vector<EventRecord>> events =
      core_->store().ListEvents(std::string(req.matches[1]), *after, static_cast<int>(*limit));
  if (!events.ok()) return SendError(res, events.status());
  std::string body = "{\"events\":[";
  for (size_t i = 0; i < events->size(); ++i) {
    v1::Event e;
    ToProto((*events)[i], &e);
    absl::StrAppend(&body, i == 0 ? "" : ",", ToJson(e));
  }
  body += "]}";
  res.set_content(body, kJson);
}

void DashboardApi::Logs(const httplib::Request& req, httplib::Response& res) {
  if (!ReadCaller(req, res)) return;
  const std::string id = req.matches[1];
  v1::StreamLogsRequest request;
  std::string job = Param(req, "job");
  if (!job.empty() && job != id && !absl::StartsWith(job, id + ".")) {
    return SendError(
        res, absl::InvalidArgumentError(absl::StrCat("job ", job, " is not a job of ", id)));
  }
  request.set_job_id(job.empty() ? id : job);
  std::string stream = Param(req, "stream");
  request.set_source(stream.empty() ? "stdout" : stream);
  if (request.source() == "all") {
    return SendError(res, absl::InvalidArgumentError("stream is one of stdout, stderr, server"));
  }
  absl::StatusOr<int64_t> tail = IntParam(req, "tail", 200, 10000);
  if (!tail.ok()) return SendError(res, tail.status());
  request.set_tail_lines(static_cast<int>(*tail == 0 ? 200 : *tail));
  std::string text;
  StreamSink<v1::LogChunk> sink{[] { return false; },
                                [&text](const v1::LogChunk& chunk) {
                                  for (const std::string& line : chunk.lines()) {
                                    absl::StrAppend(&text, line, "\n");
                                  }
                                  return true;
                                }};
  absl::Status status = core_->StreamLogs(request, sink);
  if (!status.ok()) return SendError(res, status);
  res.set_content(text, "text/plain; charset=utf-8");
}

void DashboardApi::Compare(const httplib::Request& req, httplib::Response& res) {
  std::optional<Caller> caller = ReadCaller(req, res);
  if (!caller) return;
  absl::StatusOr<std::vector<std::string>> ids = ParseCompareIds(Param(req, "ids"));
  if (!ids.ok()) return SendError(res, ids.status());
  double alpha = 0;
  if (std::string text = Param(req, "alpha"); !text.empty() && !absl::SimpleAtod(text, &alpha)) {
    return SendError(
        res, absl::InvalidArgumentError(absl::StrCat("alpha '", text, "' is not a number")));
  }
  std::vector<std::string> parts;
  for (size_t i = 1; i < ids->size(); ++i) {
    v1::CompareRequest request;
    request.set_id_a((*ids)[0]);
    request.set_id_b((*ids)[i]);
    request.set_alpha(alpha);
    v1::CompareResponse response;
    absl::Status status = core_->Compare(*caller, request, &response);
    if (!status.ok()) return SendError(res, status);
    if (ids->size() == 2) return res.set_content(ToJson(response), kJson);
    parts.push_back(ToJson(response));
  }
  // Three or more runs: each candidate against the first (docs/dashboard-api.md).
  std::string body = absl::StrCat("{\"baseline\":", Dump((*ids)[0]), ",\"comparisons\":[");
  for (size_t i = 0; i < parts.size(); ++i) absl::StrAppend(&body, i == 0 ? "" : ",", parts[i]);
  body += "]}";
  res.set_content(body, kJson);
}

// One open event stream's position. Lives as long as the HTTP response.
struct StreamState {
  std::string invocation_id;  // "" = every invocation
  uint64_t seen = 0;          // hub generation already looked at
  int64_t last_seq = 0;       // events up to this seq were sent (or predate the stream)
  std::optional<FileTailer> log;
  std::string log_job;
  std::string log_stream;
};

void DashboardApi::Stream(const httplib::Request& req, httplib::Response& res) {
  if (!ReadCaller(req, res)) return;
  if (stopping_) return SendError(res, absl::UnavailableError("evald is shutting down"));
  auto state = std::make_shared<StreamState>();
  state->invocation_id = Param(req, "invocation");
  WatchHub& hub = core_->hub();
  // Before reading the position: a change in between is then seen twice, never missed.
  state->seen = hub.generation();

  // Without Last-Event-ID the stream starts after the newest event (of any invocation); an
  // invocation's stream also checks that the invocation exists.
  storage::Store& store = core_->store();
  absl::StatusOr<int64_t> newest = store.LastEventSeq();
  if (!state->invocation_id.empty()) {
    absl::StatusOr<storage::InvocationView> view = store.GetInvocation(state->invocation_id);
    newest = view.ok() ? absl::StatusOr<int64_t>(view->last_event_seq) : view.status();
  }
  if (!newest.ok()) return SendError(res, newest.status());
  state->last_seq = *newest;
  std::string resume_from = req.get_header_value("Last-Event-ID");
  if (resume_from.empty()) resume_from = Param(req, "lastEventId");
  if (!resume_from.empty() && !absl::SimpleAtoi(resume_from, &state->last_seq)) {
    return SendError(res, absl::InvalidArgumentError(
                              absl::StrCat("Last-Event-ID '", resume_from, "' is not a number")));
  }

  if (std::string spec = Param(req, "log"); !spec.empty()) {
    absl::StatusOr<LogSpec> log = ParseLogSpec(spec);
    if (!log.ok()) return SendError(res, log.status());
    v1::GetInvocationRequest get;
    get.set_id(log->job_id);
    v1::Invocation inv;
    if (absl::Status s = core_->GetInvocation(get, &inv); !s.ok()) return SendError(res, s);
    std::string path;
    for (const v1::Job& job : inv.jobs()) {
      if (job.job_id() != log->job_id) continue;
      path = absl::StrCat(job.output_dir(), "/logs/", log->stream, ".log");
      if (log->stream == "server") {
        path.clear();
        for (const v1::Deployment& d : inv.deployments()) {
          if (d.job_id().empty() || d.job_id() == job.job_id()) path = d.log_path();
        }
      }
    }
    if (path.empty()) {
      return SendError(
          res, absl::NotFoundError(absl::StrCat("no ", log->stream, " log of job ", log->job_id)));
    }
    state->log.emplace(path);
    state->log->SkipToEnd();  // the page reads the tail with GET .../logs first
    state->log_job = log->job_id;
    state->log_stream = log->stream;
  }

  if (open_streams_.fetch_add(1) >= options_.max_streams) {
    --open_streams_;
    return SendError(
        res, absl::UnavailableError(absl::StrCat("too many open event streams (http_max_streams: ",
                                                 options_.max_streams, "); try again later")));
  }
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  res.set_chunked_content_provider(
      "text/event-stream",
      [this, state](size_t, httplib::DataSink& sink) {
        RunStream(*state, sink);
        sink.done();
        return true;
      },
      [this](bool) { --open_streams_; });
}

void DashboardApi::RunStream(StreamState& st, httplib::DataSink& sink) {
  WatchHub& hub = core_->hub();
  storage::Store& store = core_->store();
  absl::Time last_write = absl::Now();
  auto send = [&sink, &last_write](const std::string& text) {
    last_write = absl::Now();
    return sink.write(text.data(), text.size());
  };
  if (!send("retry: 1000\n: open\n\n")) return;
  absl::Time next_ping = absl::Now() + kPing;
  // The first pass does not wait: events after Last-Event-ID go out at once.
  bool first = true;
  while (!stopping_ && !hub.shut_down()) {
    const uint64_t now_gen = first ? hub.generation() : hub.WaitForChange(st.seen, kStreamWake);
    if (stopping_ || hub.shut_down()) return;
    if (now_gen != st.seen || first) {
      // Progress first: the supervisor publishes a job's final count before its transition.
      // A new stream gets every running job's current progress.
      const uint64_t since = first ? 0 : st.seen;
      first = false;
      std::vector<WatchHub::JobProgressEntry> progress;
      if (st.invocation_id.empty()) {
        progress = hub.AllProgressSince(since);
      } else {
        for (auto& [job, p] : hub.ProgressSince(st.invocation_id, since)) {
          progress.push_back({st.invocation_id, job, p});
        }
      }
      for (const WatchHub::JobProgressEntry& e : progress) {
        if (!send(absl::StrCat("event: progress\ndata: ",
                               ProgressJson(e.invocation_id, e.job_id, e.progress), "\n\n"))) {
          return;
        }
      }
      st.seen = now_gen;
      // Events in batches; each batch's invocations are sent once after it, as list rows.
      while (true) {
        absl::StatusOr<std::vector<EventRecord>> events =
            store.ListEvents(st.invocation_id, st.last_seq, kEventBatch);
        if (!events.ok()) break;  // retried on the next wake
        std::set<std::string> changed;
        for (const EventRecord& record : *events) {
          v1::Event e;
          ToProto(record, &e);
          if (!send(
                  absl::StrCat("id: ", record.seq, "\nevent: event\ndata: ", ToJson(e), "\n\n"))) {
            return;
          }
          st.last_seq = record.seq;
          changed.insert(record.invocation_id);
        }
        for (const std::string& id : changed) {
          v1::GetInvocationRequest get;
          get.set_id(id);
          v1::Invocation inv;
          if (!core_->GetInvocation(get, &inv).ok()) continue;
          inv.clear_jobs();  // a list row: job_count stays
          inv.clear_deployments();
          if (!send(absl::StrCat("event: invocation\ndata: ", ToJson(inv), "\n\n"))) return;
        }
        if (static_cast<int>(events->size()) < kEventBatch) break;
      }
    }
    // Log files grow without telling the hub: read on every wake, as Watch does.
    if (st.log.has_value()) {
      std::vector<std::string> lines = st.log->ReadLines(kLogBatch);
      for (std::string& line : lines) {
        // A CR would end the SSE line early.
        line.erase(std::remove(line.begin(), line.end(), '\r'), line.end());
        if (!send(absl::StrCat("event: log\ndata: ", line, "\n\n"))) return;
      }
    }
    if (absl::Now() >= next_ping) {
      if (!send(": ping\n\n")) return;
      next_ping = absl::Now() + kPing;
    } else if (absl::Now() - last_write >= kProbe) {
      // A closed tab is only noticed when a write fails; without this its slot (and worker
      // thread) would stay taken until the next ping. A bare comment line dispatches nothing.
      if (!send(":\n")) return;
    }
  }
}

}  // namespace evald::daemon
