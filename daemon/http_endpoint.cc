#include "daemon/http_endpoint.h"

#include <httplib.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

namespace evald::daemon {
namespace {

// Accept-Encoding without brotli ("gzip, deflate, br" -> "gzip, deflate").
std::string WithoutBrotli(absl::string_view accept) {
  std::vector<absl::string_view> kept;
  for (absl::string_view coding : absl::StrSplit(accept, ',')) {
    absl::string_view name = absl::StripAsciiWhitespace(coding.substr(0, coding.find(';')));
    if (!absl::EqualsIgnoreCase(name, "br")) kept.push_back(absl::StripAsciiWhitespace(coding));
  }
  return absl::StrJoin(kept, ", ");
}

}  // namespace

absl::StatusOr<std::unique_ptr<HttpEndpoint>> HttpEndpoint::Start(const std::string& address,
                                                                  Metrics* metrics,
                                                                  absl::Duration stale_after,
                                                                  DashboardApi* dashboard) {
  size_t colon = address.rfind(':');
  int port = 0;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(address.substr(colon + 1), &port) || port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics listen address '", address, "' is not host:port"));
  }
  std::string host = address.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  std::unique_ptr<HttpEndpoint> endpoint(new HttpEndpoint());
  endpoint->server_ = std::make_unique<httplib::Server>();
  httplib::Server& server = *endpoint->server_;
  endpoint->dashboard_ = dashboard;
  // Every open dashboard event stream holds a worker thread: the pool has room for all of them
  // plus the scrapes, health checks and page requests beside them.
  const int threads = dashboard != nullptr ? dashboard->worker_threads() : 2;
  server.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  server.set_payload_max_length(1 << 20);
  // Headers and body go out in separate writes: with Nagle on, the body waited for the client's
  // delayed ACK, 40 ms on every keep-alive request (bench/dashboard).
  server.set_tcp_nodelay(true);
  // Debian's cpp-httplib compresses with brotli at its default quality (11) whenever the client
  // accepts it, as every browser does: 60-90 ms of CPU for the 42 kB list page and for each
  // dashboard JSON answer, against about 1 ms for gzip at a slightly larger size. The pre-routing
  // handler runs before the response is encoded, and the request is evald's own copy.
  server.set_pre_routing_handler([](const httplib::Request& req, httplib::Response&) {
    auto& headers = const_cast<httplib::Headers&>(req.headers);
    auto [begin, end] = headers.equal_range("Accept-Encoding");
    for (auto it = begin; it != end; ++it) it->second = WithoutBrotli(it->second);
    return httplib::Server::HandlerResponse::Unhandled;
  });
  server.set_default_headers({{"X-Content-Type-Options", "nosniff"},
                              {"Content-Security-Policy", "default-src 'self'"},
                              {"Referrer-Policy", "same-origin"}});
  server.Get("/metrics", [metrics, dashboard](const httplib::Request& req, httplib::Response& res) {
    if (dashboard != nullptr && !dashboard->MetricsAllowed(req)) {
      res.status = 401;
      res.set_header("WWW-Authenticate", "Bearer");
      res.set_content("a token is needed (http_auth: tokens)\n", "text/plain");
      return;
    }
    res.set_content(metrics->Render(), "text/plain; version=0.0.4; charset=utf-8");
  });
  server.Get("/healthz", [metrics, stale_after](const httplib::Request&, httplib::Response& res) {
    absl::Duration since = absl::Now() - metrics->last_pass();
    if (since > stale_after) {
      res.status = 503;
      res.set_content(
          metrics->last_pass() == absl::InfinitePast()
              ? std::string("not ready: no reconcile pass yet\n")
              : absl::StrCat("unhealthy: no reconcile pass for ",
                             absl::FormatDuration(absl::Trunc(since, absl::Seconds(1))), "\n"),
          "text/plain");
      return;
    }
    res.set_content("ok\n", "text/plain");
  });
  if (dashboard != nullptr) dashboard->Register(server);
  if (port == 0) {
    port = server.bind_to_any_port(host);
  } else if (!server.bind_to_port(host, port)) {
    port = -1;
  }
  if (port <= 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", address, " for metrics"));
  }
  endpoint->port_ = port;
  endpoint->thread_ = std::thread([&server] { server.listen_after_bind(); });
  // httplib's stop() does nothing before the listen loop runs: a Stop right after Start would
  // leave it serving and the join waiting forever.
  for (int i = 0; i < 5000 && !server.is_running(); ++i) absl::SleepFor(absl::Milliseconds(1));
  return endpoint;
}

HttpEndpoint::~HttpEndpoint() { Stop(); }

void HttpEndpoint::Stop() {
  // Open event streams hold worker threads that stop() waits for: end them first.
  if (dashboard_ != nullptr) dashboard_->Stop();
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace evald::daemon
