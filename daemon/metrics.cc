#include "daemon/metrics.h"

#include <sys/stat.h>


#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "prometheus/text_serializer.h"

namespace evald::daemon {
namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;
using prometheus::Histogram;

Histogram::BucketBoundaries Seconds(std::initializer_list<double> bounds) { return bounds; }

double FileSize(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 ? static_cast<double>(st.st_size) : 0;
}

}  // namespace

Metrics::Metrics(storage::Store* store, std::string db_path)
    : store_(store),
      db_path_(std::move(db_path)),
      registry_(std::make_shared<prometheus::Registry>()),
      rpc_requests_(BuildCounter()
                        .Name("evald_rpc_requests_total")
                        .Help("gRPC calls answered, by method and status code")
                        .Register(*registry_)),
      rpc_duration_(BuildHistogram()
                        .Name("evald_rpc_duration_seconds")
                        .Help("Time from a call's arrival to its status, by method and code")
                        .Register(*registry_)),
      pass_(BuildHistogram()
                .Name("evald_reconcile_pass_seconds")
                .Help("Wall time of one Supervisor reconcile pass")
                .Register(*registry_)),
      executor_call_(BuildHistogram()
                         .Name("evald_executor_call_seconds")
                         .Help("Time of one backend call (Start, Poll, Stop, Recover, "
                               "deployment calls) on its executor's thread")
                         .Register(*registry_)),
      executor_errors_(BuildCounter()
                           .Name("evald_executor_call_errors_total")
                           .Help("Backend calls that returned an error")
                           .Register(*registry_)),
      job_duration_(BuildHistogram()
                        .Name("evald_job_duration_seconds")
                        .Help("Time from a job's start to its end, by executor and final state")
                        .Register(*registry_)),
      invocations_(BuildGauge()
                       .Name("evald_invocations")
                       .Help("Invocations stored, by executor and state")
                       .Register(*registry_)),
      jobs_(BuildGauge().Name("evald_jobs").Help("Jobs stored, by executor and state").Register(
          *registry_)),
      deployments_(BuildGauge()
                       .Name("evald_deployments")
                       .Help("Model servers stored, by executor and state")
                       .Register(*registry_)),
      db_size_(BuildGauge()
                   .Name("evald_db_size_bytes")
                   .Help("Size of evald.db and its write-ahead log")
                   .Register(*registry_)),
      last_pass_(BuildGauge()
                     .Name("evald_last_reconcile_timestamp_seconds")
                     .Help("When the last reconcile pass completed (unix time)")
                     .Register(*registry_)),
      up_since_(BuildGauge()
                    .Name("evald_up_since_timestamp_seconds")
                    .Help("When this evald started (unix time)")
                    .Register(*registry_)) {
  up_since_.Add({}).Set(absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch()));
  last_pass_.Add({}).Set(0);
}

void Metrics::ObserveRpc(const std::string& method, const std::string& code, absl::Duration took) {
  rpc_requests_.Add({{"method", method}, {"code", code}}).Increment();
  rpc_duration_
      .Add({{"method", method}, {"code", code}},
           Seconds({0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1, 5}))
      .Observe(absl::ToDoubleSeconds(took));
}

void Metrics::ObservePass(absl::Duration took) {
  pass_.Add({}, Seconds({0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5}))
      .Observe(absl::ToDoubleSeconds(took));
  last_pass_.Add({}).Set(absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch()));
}

void Metrics::ObserveExecutorCall(const std::string& executor, const std::string& call,
                                  absl::Duration took) {
  executor_call_
      .Add({{"executor", executor}, {"call", call}},
           Seconds({0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60}))
      .Observe(absl::ToDoubleSeconds(took));
}

void Metrics::CountExecutorError(const std::string& executor, const std::string& call) {
  executor_errors_.Add({{"executor", executor}, {"call", call}}).Increment();
}

void Metrics::ObserveJobEnded(const std::string& executor, JobState state, absl::Duration took) {
  job_duration_
      .Add({{"executor", executor}, {"state", std::string(ToString(state))}},
           Seconds({1, 10, 30, 60, 300, 900, 1800, 3600, 7200, 14400, 43200, 86400}))
      .Observe(absl::ToDoubleSeconds(took));
}

absl::Time Metrics::last_pass() const {
  double at = last_pass_.Add({}).Value();
  return at > 0 ? absl::UnixEpoch() + absl::Seconds(at) : absl::InfinitePast();
}

std::string Metrics::Render() {
  absl::StatusOr<std::vector<storage::Store::StateCount>> counts = store_->CountStates();
  if (counts.ok()) {
    absl::MutexLock lock(&counts_mu_);
    // A state that emptied must read 0, not keep its last value.
    for (auto& [labels, gauge] : counted_) gauge->Set(0);
    for (const storage::Store::StateCount& c : *counts) {
      prometheus::Family<prometheus::Gauge>* family =
          c.kind == "invocation" ? &invocations_ : c.kind == "job" ? &jobs_ : &deployments_;
      prometheus::Gauge*& gauge = counted_[{c.kind, c.executor, c.state}];
      if (gauge == nullptr) gauge = &family->Add({{"executor", c.executor}, {"state", c.state}});
      gauge->Set(static_cast<double>(c.count));
    }
  }
  db_size_.Add({}).Set(FileSize(db_path_) + FileSize(db_path_ + "-wal"));
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

namespace {

class RpcMetricsInterceptor : public grpc::experimental::Interceptor {
 public:
  RpcMetricsInterceptor(Metrics* metrics, std::string method)
      : metrics_(metrics), method_(std::move(method)), start_(absl::Now()) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      grpc::Status status = methods->GetSendStatus();
      metrics_->ObserveRpc(
          method_,
          absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code())),
          absl::Now() - start_);
    }
    methods->Proceed();
  }

 private:
  Metrics* metrics_;
  std::string method_;
  absl::Time start_;
};

}  // namespace

grpc::experimental::Interceptor* RpcMetricsInterceptorFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  std::string method = info->method() == nullptr ? "" : info->method();
  size_t slash = method.rfind('/');
  if (slash != std::string::npos) method = method.substr(slash + 1);
  return new RpcMetricsInterceptor(metrics_, method);
}

}  // namespace evald::daemon
