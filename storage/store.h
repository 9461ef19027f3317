// File: store.h
//
// evald's durable state: one SQLite file (WAL mode) with tables invocations, jobs, events
// (append-only), results, secrets and deployments. Store owns the connection and one repository
// per table, and implements the operations that span tables, each in one IMMEDIATE transaction.
// SQLite and OpenSSL errors stop here and come out as absl::Status:
//   NotFound (unknown id), AlreadyExists, Aborted (a transition lost a race: the row was not in
//   `from`), Internal (an illegal transition edge), ResourceExhausted (disk full), Unavailable
//   (database busy or read-only), DataLoss (corrupt file).
//
// Callers: the daemon's ServerCore (RPCs) and Supervisor (reconcile loop). Thread-safe: every
// method takes the connection mutex. Timestamps and ids always come from the caller (storage never
// reads the clock or invents ids), so tests are deterministic.
//
//   EVALD_ASSIGN_OR_RETURN(auto store, Store::Open({.db_path = dir + "/evald.db",
//                                                  .key_path = dir + "/secrets.key"}));
//   EVALD_RETURN_IF_ERROR(store->CreateInvocation(inv, jobs, {}, secrets, now, &events));
//   EVALD_ASSIGN_OR_RETURN(auto ev, store->TransitionJob(
//       {.job_id = "3f9a0c1e.0", .from = JobState::kPending, .to = JobState::kSubmitted,
//        .handle = handle}, now));
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/model.h"

namespace evald::storage {

class Database;

struct StoreOptions {
  std::string db_path;   // created if missing (with its folder)
  std::string key_path;  // AES-256 key file; created with mode 0600 at first open
  int busy_timeout_ms = 5000;
};

struct InvocationFilter {
  std::optional<JobState> state;
  std::string executor;  // empty = any; case-insensitive
  int64_t since_ms = 0;  // created at or after
  int limit = 50;
  std::string page_token;  // opaque, from InvocationPage::next_page_token
};

struct InvocationPage {
  std::vector<InvocationRecord> invocations;  // newest first
  std::vector<int> job_counts;                // parallel to invocations
  std::string next_page_token;                // empty on the last page
};

struct InvocationView {
  InvocationRecord invocation;
  std::vector<JobRecord> jobs;  // by index
  std::vector<DeploymentRecord> deployments;
  int64_t last_event_seq = 0;   // events up to this seq are reflected in the view
};

struct ProgressUpdate {
  std::string job_id;
  int64_t done = 0;
  int64_t total = 0;
  int64_t errors = 0;
  double rate = 0;
  int64_t updated_ms = 0;
};

class Store {
 public:
  static absl::StatusOr<std::unique_ptr<Store>> Open(const StoreOptions& options);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  int schema_version() const;
  const std::string& path() const;

  // Inserts an invocation with its jobs and deployments, encrypts and stores `secrets`, and appends
  // one `invocation.submitted` event, all in one transaction. Appended events go to *events.
  absl::Status CreateInvocation(const InvocationRecord& invocation,
                                const std::vector<JobRecord>& jobs,
                                const std::vector<DeploymentRecord>& deployments,
                                const std::map<std::string, std::string>& secrets, int64_t now_ms,
                                std::vector<EventRecord>* events);

  // THE way a job changes state. In one transaction: checks the job is in t.from (Aborted if not),
  // ValidateTransition(t.from, t.to) (Internal if illegal), writes state, reason, exit code,
  // message, handle and timestamps (submitted/started/ended), recomputes the invocation's derived
  // state, appends a `job.state` event (and `invocation.state` when that changed), and deletes the
  // invocation's secrets when it became terminal. A terminal -> pending transition (resume) clears
  // exit code/reason, sets desired = run and increments nothing (the start does). Returns the
  // appended events.
  absl::StatusOr<std::vector<EventRecord>> TransitionJob(const JobTransition& t, int64_t now_ms);

  // Same for deployments (`deployment.state` events). Fields set in t are written alongside.
  absl::StatusOr<std::vector<EventRecord>> TransitionDeployment(const DeploymentTransition& t,
                                                                int64_t now_ms);

  // Desired state of one job, or of every non-terminal job (and deployment) of an invocation.
  // Appends one `job.kill_requested` / `invocation.kill_requested` event. Returns affected job ids
  // (FailedPrecondition when none is non-terminal) and the appended events.
  absl::StatusOr<std::vector<std::string>> RequestStop(const std::string& id, int64_t now_ms,
                                                       std::vector<EventRecord>* events);

  // Marks a job started by an executor: attempt += 1 and stores its output dir. Called right
  // before Executor::Start so a crash between the two never starts a job twice unnoticed.
  absl::Status MarkStarting(const std::string& job_id, int64_t now_ms);

  // Secrets of an invocation (decrypted); empty map when none or deleted.
  absl::StatusOr<std::map<std::string, std::string>> GetSecrets(const std::string& invocation_id);
  // Replaces the stored secrets of an invocation (Resume resends them).
  absl::Status PutSecrets(const std::string& invocation_id,
                          const std::map<std::string, std::string>& secrets);

  absl::StatusOr<InvocationView> GetInvocation(const std::string& invocation_id);
  absl::StatusOr<JobRecord> GetJob(const std::string& job_id);
  absl::StatusOr<InvocationPage> ListInvocations(const InvocationFilter& filter);
  int64_t CountInvocations();

  // Every job and deployment not in a terminal state, or terminal but with desired = run and
  // handle set (none today). The supervisor's work list.
  absl::StatusOr<std::vector<JobRecord>> ListActiveJobs();
  absl::StatusOr<std::vector<DeploymentRecord>> ListActiveDeployments();

  // Progress is not an event: written on the job row only.
  absl::Status UpdateProgress(const std::vector<ProgressUpdate>& updates);

  // Results of a finished job, replacing earlier ones (a resumed job's new results win).
  absl::Status PutResults(const std::string& job_id, const std::vector<ResultRecord>& results);
  absl::StatusOr<std::vector<ResultRecord>> GetResults(const std::string& invocation_or_job_id);

  // Appends a free-form event (e.g. `job.info`). Returns it with its seq.
  absl::StatusOr<EventRecord> AppendEvent(EventRecord event);
  // Events with seq > after_seq, oldest first, for one invocation (or all when empty).
  absl::StatusOr<std::vector<EventRecord>> ListEvents(const std::string& invocation_id,
                                                      int64_t after_seq, int limit);

 private:
  explicit Store(std::unique_ptr<Database> db);
  std::unique_ptr<Database> db_;
};

}  // namespace evald::storage
