// File: http_endpoint.h
//
// evald's HTTP port of its own (`metrics_listen: 127.0.0.1:9464`): GET /metrics (Prometheus text
// format, daemon/metrics.h) and GET /healthz (200 "ok" while the reconcile loop completes passes
// and the database answers, else 503 with the reason), and, when given a DashboardApi, the web
// dashboard's /api/v1/ and page (daemon/dashboard/, docs/dashboard-api.md), whose authentication
// also decides who may read /metrics (http_auth). Served by cpp-httplib on its own threads.
//
// Caller: main(), after the gRPC server is listening.
//
//   EVALD_ASSIGN_OR_RETURN(auto http, HttpEndpoint::Start("127.0.0.1:9464", &metrics, tick));
//   ...  http->Stop();
#pragma once

#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "daemon/dashboard/dashboard_api.h"
#include "daemon/metrics.h"

namespace httplib {
class Server;
}

namespace evald::daemon {

class HttpEndpoint {
 public:
  // `host:port` (port 0 picks a free one). `stale_after`: /healthz fails when no pass completed
  // for that long.
  // `dashboard` (optional, outlives the endpoint) adds its routes; Stop() ends its streams.
  static absl::StatusOr<std::unique_ptr<HttpEndpoint>> Start(const std::string& address,
                                                             Metrics* metrics,
                                                             absl::Duration stale_after,
                                                             DashboardApi* dashboard = nullptr);
  ~HttpEndpoint();
  void Stop();
  int port() const { return port_; }

 private:
  HttpEndpoint() = default;
  std::unique_ptr<httplib::Server> server_;
  DashboardApi* dashboard_ = nullptr;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace evald::daemon
