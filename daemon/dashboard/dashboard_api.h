// File: dashboard_api.h
//
// The web dashboard's server side (docs/dashboard-api.md): JSON under /api/v1/ over ServerCore,
// a Server-Sent Events stream fed by the WatchHub, login/logout with the API token in an
// HttpOnly cookie, and the page's static assets (assets.h) for every other GET. Served on evald's
// HTTP port next to /metrics and /healthz (http_endpoint.h). Like the gRPC service class it only
// decodes, resolves the Caller (same CallerResolver and token store), calls ServerCore and
// encodes; the rules (roles, ownership) stay in ServerCore and caller.h.
//
// Caller: main() builds it and hands it to HttpEndpoint::Start, which registers its routes and
// calls Stop() before stopping the server so open event streams end.
//
//   DashboardApi dashboard(core.get(), &resolver, {.loopback = true});
//   HttpEndpoint::Start(addr, &core->metrics(), stale, &dashboard);
#pragma once

#include <atomic>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "daemon/auth/caller.h"

namespace httplib {
class DataSink;
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace evald::daemon {

class ServerCore;
struct StreamState;  // dashboard_api.cc

class DashboardApi {
 public:
  struct Options {
    // The HTTP listener is bound to a loopback address: without a token, /api/ reads are
    // allowed as an anonymous viewer (actions still need one). Ignored when require_tokens.
    bool loopback = false;
    // http_auth: tokens: every /api/ call and /metrics need a token, even on loopback.
    bool require_tokens = false;
    // Open event streams at once; more get 503. Each holds one HTTP worker thread.
    int max_streams = 64;
  };

  // `core` and `resolver` outlive this object.
  DashboardApi(ServerCore* core, CallerResolver* resolver, Options options);

  // Adds the /api/v1/ routes and the static fallback to `server` (after /metrics and /healthz).
  void Register(httplib::Server& server);
  // Worker threads the HTTP server needs: every stream plus room for ordinary requests.
  int worker_threads() const { return options_.max_streams + 8; }
  // May this request read /metrics? (Always, unless http_auth is tokens.)
  bool MetricsAllowed(const httplib::Request& req);
  // Ends open event streams (within ~250 ms) and refuses new ones.
  void Stop() { stopping_ = true; }

 private:
  // The caller of a request: a bearer token (Authorization header or the session cookie), or on
  // loopback without a token an anonymous viewer (`anonymous` set).
  absl::StatusOr<Caller> Authenticate(const httplib::Request& req, bool* anonymous);
  // Authenticate for an action: a POST must carry X-Evald-Request: 1 (403 otherwise) and a
  // token (401 for anonymous). On failure the response is filled and nullopt returned.
  std::optional<Caller> ActionCaller(const httplib::Request& req, httplib::Response& res);
  std::optional<Caller> ReadCaller(const httplib::Request& req, httplib::Response& res);

  void Stream(const httplib::Request& req, httplib::Response& res);
  // Writes one event stream until the client goes, evald stops or Stop() is called.
  void RunStream(StreamState& state, httplib::DataSink& sink);
  void Logs(const httplib::Request& req, httplib::Response& res);
  void Events(const httplib::Request& req, httplib::Response& res);
  void Compare(const httplib::Request& req, httplib::Response& res);
  void Login(const httplib::Request& req, httplib::Response& res);
  void Static(const httplib::Request& req, httplib::Response& res);
  // GET /'s first screen as JSON (whoami, and the list page the URL asks for), so the page draws
  // it without waiting for its own API calls; empty when the caller may not read. With the list
  // in it, `list_html` gets the same page as markup (list_html.h).
  std::string BootData(const httplib::Request& req, std::string* list_html);

  ServerCore* core_;
  CallerResolver* resolver_;
  Options options_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> open_streams_{0};
};

}  // namespace evald::daemon
