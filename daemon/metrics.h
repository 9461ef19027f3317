// File: metrics.h
//
// evald's Prometheus metrics, kept with prometheus-cpp's core library and rendered in the text
// exposition format (0.0.4) by the HTTP endpoint (daemon/http_endpoint.h):
//   evald_rpc_requests_total{method,code}, evald_rpc_duration_seconds{method,code}  (interceptor)
//   evald_reconcile_pass_seconds                                                    (Supervisor)
//   evald_executor_call_seconds{executor,call}, evald_executor_call_errors_total{executor,call}
//   evald_job_duration_seconds{executor,state}        (submitted to terminal, by final state)
//   evald_invocations{executor,state}, evald_jobs{executor,state},
//   evald_deployments{executor,state}                  (read from the store at each scrape)
//   evald_db_size_bytes, evald_last_reconcile_timestamp_seconds, evald_up_since_timestamp_seconds
//
// Thread-safe: gRPC threads, the Supervisor and the HTTP thread use it at once.
// Callers: ServerCore owns it; main() installs RpcMetricsInterceptorFactory on the gRPC server.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/lifecycle.h"
#include "grpcpp/support/server_interceptor.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "storage/store.h"

namespace evald::daemon {

class Metrics {
 public:
  Metrics(storage::Store* store, std::string db_path);

  void ObserveRpc(const std::string& method, const std::string& code, absl::Duration took);
  void ObservePass(absl::Duration took);
  void ObserveExecutorCall(const std::string& executor, const std::string& call,
                           absl::Duration took);
  void CountExecutorError(const std::string& executor, const std::string& call);
  void ObserveJobEnded(const std::string& executor, JobState state, absl::Duration took);

  // The text exposition, with the store's counts read now.
  std::string Render();
  // When the last reconcile pass completed (InfinitePast before the first).
  absl::Time last_pass() const;

 private:
  storage::Store* store_;
  const std::string db_path_;
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& rpc_requests_;
  prometheus::Family<prometheus::Histogram>& rpc_duration_;
  prometheus::Family<prometheus::Histogram>& pass_;
  prometheus::Family<prometheus::Histogram>& executor_call_;
  prometheus::Family<prometheus::Counter>& executor_errors_;
  prometheus::Family<prometheus::Histogram>& job_duration_;
  prometheus::Family<prometheus::Gauge>& invocations_;
  prometheus::Family<prometheus::Gauge>& jobs_;
  prometheus::Family<prometheus::Gauge>& deployments_;
  prometheus::Family<prometheus::Gauge>& db_size_;
  prometheus::Family<prometheus::Gauge>& last_pass_;
  prometheus::Family<prometheus::Gauge>& up_since_;
  absl::Mutex counts_mu_;
  // Every (kind, executor, state) gauge set so far, zeroed before each scrape's counts.
  std::map<std::tuple<std::string, std::string, std::string>, prometheus::Gauge*> counted_
      ABSL_GUARDED_BY(counts_mu_);
};

// Counts and times every RPC by its full method name's last part ("Submit") and status code.
class RpcMetricsInterceptorFactory
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit RpcMetricsInterceptorFactory(Metrics* metrics) : metrics_(metrics) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;

 private:
  Metrics* metrics_;
};

}  // namespace evald::daemon
