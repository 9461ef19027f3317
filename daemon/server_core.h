// File: server_core.h
//
// The logic behind every RPC of evald.v1.EvalService, free of gRPC types so it can be called and
// tested directly: it owns the Store, the task catalog, the executor registry, the job planner,
// the watch hub and the Supervisor. The service class in daemon/services/ only decodes, calls the
// method of the same name, and converts the returned absl::Status.
//
// RPCs change desired state and records; the Supervisor (woken by them) does the work. Streaming
// methods run on the calling gRPC thread until the stream ends, the client goes away (`cancelled`
// returns true) or the server shuts down.
//
//   EVALD_ASSIGN_OR_RETURN(std::unique_ptr<ServerCore> core, ServerCore::Create(config));
//   core->StartSupervisor();
//   v1::SubmitResponse resp;
//   EVALD_RETURN_IF_ERROR(core->Submit(request, &resp));
#pragma once

#include <functional>
#include <memory>
#include <vector>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/config/task_catalog.h"
#include "daemon/auth/caller.h"
#include "daemon/job_planner.h"
#include "daemon/request_gate.h"
#include "daemon/server_config.h"
#include "daemon/metrics.h"
#include "daemon/submit_policy.h"
#include "daemon/supervisor.h"
#include "daemon/systemd_notify.h"
#include "daemon/watch_hub.h"
#include "evald/v1/evald.pb.h"
#include "executors/registry.h"
#include "storage/store.h"

namespace evald::daemon {

// A streaming method's link to its client: `cancelled` says the client went away, `write` sends
// one message and returns false when the stream broke.
template <typename T>
struct StreamSink {
  std::function<bool()> cancelled;
  std::function<bool(const T&)> write;
};

class ServerCore {
 public:
  // `may_start_jobs` (optional) is asked before each job or model server start; main() passes
  // the state dir lock's check (process_lock.h), so an evald that lost it starts nothing.
  // `extra_executors` are registered after the built-in ones (tests: fake executors).
  // `notifier` (optional, outlives the core) is told of every reconcile pass (systemd watchdog).
  static absl::StatusOr<std::unique_ptr<ServerCore>> Create(
      const ServerConfig& config, std::function<absl::Status()> may_start_jobs = nullptr,
      std::vector<std::unique_ptr<executors::Executor>> extra_executors = {},
      SystemdNotifier* notifier = nullptr);
  ~ServerCore();

  void StartSupervisor();
  // Stops the Supervisor and ends open streams. Running jobs are not touched.
  void Shutdown();

  // Methods that change something or depend on who asks take the Caller (daemon/auth/caller.h,
  // resolved by the service class) and check its role and ownership before changing anything.
  // Submit: users and admins; the invocation is owned by caller.user.
  absl::Status Submit(const Caller& caller, const v1::SubmitRequest& request,
                      v1::SubmitResponse* response);
  absl::Status GetInvocation(const v1::GetInvocationRequest& request, v1::Invocation* response);
  absl::Status ListInvocations(const Caller& caller, const v1::ListInvocationsRequest& request,
                               v1::ListInvocationsResponse* response);
  absl::Status Watch(const v1::WatchRequest& request, const StreamSink<v1::WatchEvent>& sink);
  // Kill, Resume, Export: the invocation's owner (a user) or an admin.
  absl::Status Kill(const Caller& caller, const v1::KillRequest& request,
                    v1::KillResponse* response);
  absl::Status Resume(const Caller& caller, const v1::ResumeRequest& request,
                      v1::ResumeResponse* response);
  absl::Status StreamLogs(const v1::StreamLogsRequest& request,
                          const StreamSink<v1::LogChunk>& sink);
  absl::Status ListTasks(const v1::ListTasksRequest& request, v1::ListTasksResponse* response);
  absl::Status GetResults(const v1::GetResultsRequest& request, v1::GetResultsResponse* response);
  absl::Status GetServerInfo(const Caller& caller, const v1::GetServerInfoRequest& request,
                             v1::ServerInfo* response);
  // Online copy of the database (Store::Backup); evald writes the file. Admins only.
  absl::Status Backup(const Caller& caller, const v1::BackupRequest& request,
                      v1::BackupResponse* response);
  // Exports succeeded jobs to local or MLflow on the calling thread (server_core_export.cc).
  absl::Status Export(const Caller& caller, const v1::ExportRequest& request,
                      v1::ExportResponse* response);
  // API tokens (admins only). The value is in the response once and nowhere else: not in the
  // database (only its SHA-256), logs or events.
  absl::Status CreateToken(const Caller& caller, const v1::CreateTokenRequest& request,
                           v1::CreateTokenResponse* response);
  absl::Status ListTokens(const Caller& caller, const v1::ListTokensRequest& request,
                          v1::ListTokensResponse* response);
  absl::Status RevokeToken(const Caller& caller, const v1::RevokeTokenRequest& request,
                           v1::RevokeTokenResponse* response);
  // Compares two runs' metrics (server_core_compare.cc, daemon/compare.h). Any role.
  absl::Status Compare(const Caller& caller, const v1::CompareRequest& request,
                       v1::CompareResponse* response);

  Supervisor& supervisor() { return *supervisor_; }
  Metrics& metrics() { return *metrics_; }
  // The dashboard's event stream (daemon/dashboard/) waits on it like Watch does.
  WatchHub& hub() { return hub_; }
  storage::Store& store() { return *store_; }

 private:
  ServerCore() = default;
  void FillInvocation(const storage::InvocationView& view, bool include_config,
                      v1::Invocation* out) const;

  ServerConfig config_;
  int64_t started_ms_ = 0;
  std::unique_ptr<storage::Store> store_;
  std::unique_ptr<Metrics> metrics_;
  config::TaskCatalog catalog_;
  executors::ExecutorRegistry registry_;
  std::unique_ptr<JobPlanner> planner_;
  WatchHub hub_;
  std::unique_ptr<Supervisor> supervisor_;
  std::unique_ptr<SubmitPolicy> submit_policy_;  // output roots, command deployments, limits
  // At most 4 Submits parse and plan at once; more wait up to 2 s (docs/api.md, limits).
  RequestGate submit_gate_{4, absl::Seconds(2)};
};

}  // namespace evald::daemon
