// File: store.h
//
// evald's durable state: one SQLite file (WAL mode) with tables invocations, jobs, events
// (append-only), results, secrets and deployments. Store owns the connection and one repository
// per table, and implements the operations that span tables, each in one IMMEDIATE transaction.
// SQLite and OpenSSL errors stop here and come out as absl::Status:
//   NotFound (unknown id), AlreadyExists, InvalidArgument (malformed record, id or page token),
//   Aborted (a transition lost a race: the row was not in `from`), Internal (an illegal transition
//   edge), FailedPrecondition (read-only or unopenable file, schema newer than this build, key file
//   not private; stopping something already finished), ResourceExhausted (disk full),
//   Unavailable (database busy, I/O error), DataLoss (corrupt file, undecryptable secret).
// A failed call changes nothing, and the Store stays usable (e.g. reads keep working on a full
// disk). docs/design/storage.md has the schema and the details.
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
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "core/model.h"
#include "storage/fifo_mutex.h"

namespace evald::storage {

class Database;
class SecretBox;

struct StoreOptions {
  std::string db_path;   // created if missing (with its folder)
  std::string key_path;  // AES-256 key file; created with mode 0600 at first open. Empty:
                         // secrets.key next to db_path.
  int busy_timeout_ms = 5000;
};

struct InvocationFilter {
  std::optional<JobState> state;
  std::string executor;     // empty = any; case-insensitive
  std::string owner;        // empty = any; exact
  int64_t since_ms = 0;     // created at or after
  std::string task;         // empty = any; an invocation with a task of exactly this name
  std::string id_contains;  // empty = any; substring of the invocation id
  int limit = 50;  // 0 = 50; at most 1000 (larger values are capped); negative = InvalidArgument
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
  int64_t last_event_seq = 0;  // events (of any invocation) up to this seq are reflected
};

struct ProgressUpdate {
  std::string job_id;
  int64_t done = 0;
  int64_t total = 0;
  int64_t errors = 0;
  double rate = 0;
  int64_t updated_ms = 0;
};

// True for a status that says the database failed (I/O error, read-only or corrupt file, disk
// full, busy beyond the timeout, an SQLite error), as opposed to a refusal of the request (unknown
// id, lost race, invalid record). The daemon logs these at error level and reports them to clients
// as evald's own failure.
bool IsStorageFailure(const absl::Status& status);

// Submit's idempotency key (SubmitRequest.idempotency_key), for CreateInvocation.
struct SubmitKey {
  std::string key;
  // What the Submit asked, in a canonical form built by the caller; only its SHA-256 is stored.
  std::string request;
  // Out: set when the key already named an invocation created for the same request.
  std::string existing_invocation_id;
};

// The auto-export of one job to one destination (table job_exports).
struct JobExportRecord {
  std::string job_id;
  std::string dest;  // local | mlflow
  std::string invocation_id;
  std::string state;  // pending | succeeded | failed
  int attempts = 0;
  std::string message;  // the last attempt's result
  std::string run_url;
  int64_t created_ms = 0;
  int64_t updated_ms = 0;
  int64_t next_attempt_ms = 0;  // pending: not before
};

// One API token (table tokens, daemon/auth/token.h). The token's value is never stored: `hash` is
// the lower-case hex SHA-256 of it.
struct TokenRecord {
  std::string id;  // public, for listing and revoking
  std::string hash;
  std::string user;
  std::string role;        // admin | user | viewer
  std::string created_by;  // the admin who created it
  int64_t created_ms = 0;
  int64_t expires_ms = 0;  // 0 = never
  int64_t revoked_ms = 0;  // 0 = not revoked
  int64_t last_used_ms = 0;
};

struct CreateRequest;  // one queued CreateInvocation (store.cc)

class Store {
 public:
  static absl::StatusOr<std::unique_ptr<Store>> Open(const StoreOptions& options);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  int schema_version() const;
  const std::string& path() const;

  // Inserts an invocation with its jobs and deployments, encrypts and stores `secrets`, and appends
  // one `invocation.submitted` event, all in one transaction. Appended events go to *events (may be
  // null). The stored invocation state is derived from the jobs; created_ms 0 becomes now_ms.
  // InvalidArgument unless: the id is 8 hex digits, there is at least one job, job ids are
  // JobId(id, index), deployment ids start with "<id>.d", and every job/deployment is pending.
  // With a `key`, the lookup and the insert are one transaction: a new key is stored with the
  // invocation; a key already stored for the same request stores nothing, appends no event and
  // sets key->existing_invocation_id; a key stored for another request is FailedPrecondition
  // naming the invocation it belongs to.
  // Concurrent calls are committed together (group commit): one caller commits every call queued
  // meanwhile in one transaction, each in its own savepoint, so one call's refusal undoes only its
  // own rows. Every call returns after the commit that holds its rows (or with its error).
  absl::Status CreateInvocation(const InvocationRecord& invocation,
                                const std::vector<JobRecord>& jobs,
                                const std::vector<DeploymentRecord>& deployments,
                                const std::map<std::string, std::string>& secrets, int64_t now_ms,
                                std::vector<EventRecord>* events, SubmitKey* key = nullptr);

  // THE way a job changes state. In one transaction: checks the job is in t.from (Aborted if not),
  // ValidateTransition(t.from, t.to) (Internal if illegal), writes state, reason, exit code,
  // message, handle and timestamps (submitted/started/ended), recomputes the invocation's derived
  // state, appends a `job.state` event (and `invocation.state` when that changed), and deletes the
  // invocation's secrets when it became terminal. A terminal -> pending transition (resume) clears
  // exit code/reason, message, handle, progress and timestamps (except created_ms), sets desired =
  // run on the job and the invocation, and increments nothing (the start does). Returns the
  // appended events.
  absl::StatusOr<std::vector<EventRecord>> TransitionJob(const JobTransition& t, int64_t now_ms);

  // Same for deployments (`deployment.state` events: job_id empty, message "<deployment id>" or
  // "<deployment id>: <t.message>"). Fields set in t are written alongside.
  absl::StatusOr<std::vector<EventRecord>> TransitionDeployment(const DeploymentTransition& t,
                                                                int64_t now_ms);

  // Desired state of one job, or of every non-terminal job (and deployment) of an invocation.
  // Appends one `job.kill_requested` / `invocation.kill_requested` event. Returns affected job ids
  // (deployments are not listed) and the appended events. NotFound for an unknown id;
  // FailedPrecondition when nothing (no job, no deployment) is non-terminal.
  // `actor` (the requesting user) is recorded on the event.
  absl::StatusOr<std::vector<std::string>> RequestStop(const std::string& id, int64_t now_ms,
                                                       std::vector<EventRecord>* events,
                                                       const std::string& actor = "");

  // Marks a job started by an executor: attempt += 1, handle = {executor = the invocation's
  // executor, state = ""} and the invocation's updated_ms. Called right before Executor::Start so
  // a crash between the two never starts a job twice unnoticed: a pending job with
  // handle.executor set and an empty handle.state may be running (recover it first). Aborted
  // when the job is not pending. The output dir comes with the pending -> submitted transition.
  // Appends a `job.starting` event (pending -> pending, "starting attempt N") in the same
  // transaction; Watch streams pick it up with the next change.
  absl::Status MarkStarting(const std::string& job_id, int64_t now_ms);

  // Secrets of an invocation (decrypted); empty map when none or deleted. NotFound for an unknown
  // invocation, DataLoss when a value does not authenticate (tampered row or another key file).
  absl::StatusOr<std::map<std::string, std::string>> GetSecrets(const std::string& invocation_id);
  // Replaces the stored secrets of an invocation (Resume resends them). Secrets of an invocation
  // that is terminal are deleted again by the next job transition that leaves it terminal.
  absl::Status PutSecrets(const std::string& invocation_id,
                          const std::map<std::string, std::string>& secrets);

  absl::StatusOr<InvocationView> GetInvocation(const std::string& invocation_id);
  // Only the invocation's own row: no jobs, deployments or event seq (the Supervisor's start
  // order reads owner and mode of every queued invocation).
  absl::StatusOr<InvocationRecord> GetInvocationRecord(const std::string& invocation_id);
  absl::StatusOr<JobRecord> GetJob(const std::string& job_id);
  absl::StatusOr<InvocationPage> ListInvocations(const InvocationFilter& filter);
  absl::StatusOr<int64_t> CountInvocations();
  // Jobs not terminal in invocations owned by `owner` (per-user limits).
  absl::StatusOr<int64_t> CountActiveJobsOfOwner(const std::string& owner);
  // How many invocations, jobs and deployments are in each state, by executor (for metrics).
  struct StateCount {
    std::string kind;  // invocation | job | deployment
    std::string executor;
    std::string state;
    int64_t count = 0;
  };
  absl::StatusOr<std::vector<StateCount>> CountStates();

  // Every job and every deployment not in a terminal state: the supervisor's work list, ordered
  // by invocation id, then job index / creation order. (A job that failed before it could start
  // is terminal and drops out; nothing else could start it.) Jobs are read a page at a time, so
  // the list is not one snapshot: a job changed meanwhile may show its old or its new state, and
  // an invocation submitted meanwhile may be missing (the supervisor's next pass sees it).
  absl::StatusOr<std::vector<JobRecord>> ListActiveJobs();
  absl::StatusOr<std::vector<DeploymentRecord>> ListActiveDeployments();
  // Deployments that ended (stopped or failed) at `ended_since_ms` or later, oldest first: the
  // supervisor's sweep for servers that outlived their records (executors::DeploymentBackend::
  // Sweep).
  absl::StatusOr<std::vector<DeploymentRecord>> ListEndedDeployments(int64_t ended_since_ms);

  // Progress is not an event: written on the job row only. Known jobs are updated even when some
  // ids are unknown; those are then named in a NotFound status.
  absl::Status UpdateProgress(const std::vector<ProgressUpdate>& updates);

  // Results of a finished job, replacing earlier ones (a resumed job's new results win). The
  // records' job_id/invocation_id may be empty (filled in); other values are InvalidArgument.
  absl::Status PutResults(const std::string& job_id, const std::vector<ResultRecord>& results);
  // A job id gives that job's results; an invocation id all of its jobs' (by job index).
  absl::StatusOr<std::vector<ResultRecord>> GetResults(const std::string& invocation_or_job_id);

  // Appends a free-form event (e.g. `job.info`). Returns it with its seq (any seq passed in is
  // ignored). InvalidArgument for an empty kind; NotFound for an unknown invocation.
  absl::StatusOr<EventRecord> AppendEvent(EventRecord event);
  // Events with seq > after_seq, oldest first, for one invocation (or all when empty); NotFound
  // for an unknown invocation. limit <= 0 means 1000; at most 10000.
  absl::StatusOr<std::vector<EventRecord>> ListEvents(const std::string& invocation_id,
                                                      int64_t after_seq, int limit);
  // The newest event's seq (of any invocation); 0 when there is none.
  absl::StatusOr<int64_t> LastEventSeq();

  // Auto-export state (the AutoExporter's). PutExport inserts or replaces the (job, dest) row;
  // NotFound for an unknown job. ListExports: one invocation's rows, by job id and destination.
  // ListDueExports: the pending rows whose next attempt is due at `now_ms`, oldest first.
  absl::Status PutExport(const JobExportRecord& record);
  absl::StatusOr<std::vector<JobExportRecord>> ListExports(const std::string& invocation_id);
  absl::StatusOr<std::vector<JobExportRecord>> ListDueExports(int64_t now_ms);

  // API tokens (token_repository.h). CreateToken: AlreadyExists when the id or hash is taken.
  // FindTokenByHash: nullopt for an unknown hash. ListTokens: oldest first, one user's when
  // `user` is set. RevokeToken: NotFound for an unknown id, FailedPrecondition when already
  // revoked. RevokeUserTokens: every unrevoked token of `user`; returns the revoked ones.
  // TouchToken: sets last_used_ms.
  absl::Status CreateToken(const TokenRecord& token);
  absl::StatusOr<std::optional<TokenRecord>> FindTokenByHash(const std::string& hash);
  absl::StatusOr<std::vector<TokenRecord>> ListTokens(const std::string& user);
  absl::StatusOr<TokenRecord> RevokeToken(const std::string& id, int64_t now_ms);
  absl::StatusOr<std::vector<TokenRecord>> RevokeUserTokens(const std::string& user,
                                                            int64_t now_ms);
  absl::Status TouchToken(const std::string& id, int64_t last_used_ms);

  // What Backup wrote.
  struct BackupInfo {
    int64_t bytes = 0;
    int64_t invocations = 0;  // counted in the copy
  };
  // A consistent copy of the database at `dest_path` (absolute), taken with SQLite's online
  // backup API on a second, read-only connection: one snapshot of the last commit before the
  // call, while writers go on committing. The copy is a self-contained file (journal_mode DELETE,
  // no -wal to go with it), mode 0600, written under a temporary name in the same folder and put in
  // place at the end, so `dest_path` never holds a partial copy. It does not include secrets.key.
  // InvalidArgument (relative path, the database itself), AlreadyExists (dest exists and not
  // `overwrite`), FailedPrecondition (folder missing or not writable), Unavailable/Internal from
  // SQLite.
  absl::StatusOr<BackupInfo> Backup(const std::string& dest_path, bool overwrite);

  // Tests only. The hook runs in a group commit's leader before each batch (outside the store's
  // lock) with the batch's size; set it before any concurrent use.
  void SetBeforeBatchHookForTest(std::function<void(size_t)> hook);
  // CreateInvocation calls queued and not yet taken into a batch.
  size_t QueuedCreatesForTest();

 private:
  Store(std::unique_ptr<Database> db, std::unique_ptr<SecretBox> box);

  // Group commit of CreateInvocation: queues `request` and returns when it is done. The caller
  // that finds no leader leads: it commits what is queued, batch by batch, while more arrives
  // (at most kMaxLeaderBatches, then the oldest waiter leads), so a queued call usually needs no
  // hand-over of the store's lock to its own thread, which on a busy machine waits for a core.
  void RunQueuedCreate(CreateRequest* request);
  // Commits `batch` in one transaction (takes mu_).
  void CommitCreates(const std::vector<CreateRequest*>& batch);

  // One connection serialized by one mutex, granted in arrival order (fifo_mutex.h): the daemon's
  // load is small transactions, and SQLite allows one writer at a time anyway (see
  // docs/design/storage.md, Concurrency).
  FifoMutex mu_;
  const std::string path_;
  const int schema_version_;
  std::unique_ptr<Database> db_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<SecretBox> box_;

  absl::Mutex create_mu_;
  std::vector<CreateRequest*> create_queue_ ABSL_GUARDED_BY(create_mu_);  // oldest first
  bool create_leader_ ABSL_GUARDED_BY(create_mu_) = false;            // someone commits the queue
  CreateRequest* next_leader_ ABSL_GUARDED_BY(create_mu_) = nullptr;  // asked to take over
  std::function<void(size_t)> before_batch_hook_;
};

}  // namespace evald::storage
