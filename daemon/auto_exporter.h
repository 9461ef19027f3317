// File: auto_exporter.h
//
// Auto-export (execution.auto_export.destinations, docs/export.md): when a job succeeds, evald
// exports it to each destination of its invocation's config, on this worker's own thread so a
// slow or unreachable MLflow never stalls the Supervisor's reconcile loop. Each (job, dest) is a
// row in job_exports (pending -> succeeded | failed); a failed attempt on a transient error (5xx,
// 429, timeouts, I/O) is retried with exponential backoff until `execution.auto_export.
// retry_timeout` seconds (default 300) after the job succeeded; every attempt appends a
// `job.export` event ("export mlflow: ok, run_url ..." / "export mlflow: failed: ..."). An
// export never changes a job's or invocation's state. Pending rows survive a restart: Start()
// resumes them. The MLflow token is MLFLOW_TRACKING_TOKEN and the W&B key WANDB_API_KEY from
// evald's own environment; Google Sheets reads its service account key file.
//
// Owned by the Supervisor, which calls JobSucceeded() on its thread after recording a job's
// transition to succeeded (failed, killed and lost jobs are never exported).
#pragma once

#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/model.h"
#include "daemon/watch_hub.h"
#include "storage/store.h"

namespace evald::daemon {

class AutoExporter {
 public:
  struct Options {
    absl::Duration first_backoff = absl::Seconds(2);  // doubles per failed attempt
    absl::Duration max_backoff = absl::Seconds(30);
    absl::Duration default_retry_timeout = absl::Minutes(5);
    absl::Duration scan = absl::Seconds(1);  // how often due retries are looked for
  };

  AutoExporter(storage::Store* store, WatchHub* hub, Options options);
  ~AutoExporter();

  void Start();
  // Finishes the attempt in progress (bounded by the exporter's own timeouts) and joins.
  void Stop();
  // Records a pending export of `job` per destination of its invocation and wakes the worker.
  void JobSucceeded(const JobRecord& job);

 private:
  // An invocation's row and parsed config, read once per RunDue pass for all its due exports.
  struct InvocationContext;

  void Loop();
  void RunDue();
  void Attempt(storage::JobExportRecord r, const InvocationContext& context);
  bool Stopping();

  storage::Store* store_;
  WatchHub* hub_;
  Options options_;
  // Destinations per invocation (the Supervisor's thread only).
  std::map<std::string, std::vector<std::string>> destinations_;

  absl::Mutex mu_;
  bool wake_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace evald::daemon
