#include "storage/store.h"

#include <algorithm>
#include <filesystem>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/ids.h"
#include "core/lifecycle.h"
#include "core/status_macros.h"
#include "storage/database.h"
#include "storage/deployment_repository.h"
#include "storage/event_repository.h"
#include "storage/export_repository.h"
#include "storage/invocation_repository.h"
#include "storage/job_repository.h"
#include "storage/result_repository.h"
#include "storage/secret_box.h"
#include "storage/secret_repository.h"
#include "storage/submit_key_repository.h"
#include "storage/token_repository.h"

namespace evald::storage {

// One CreateInvocation waiting for (or in) a group commit; lives on its caller's stack.
struct CreateRequest {
  InvocationRecord invocation;
  std::vector<JobRecord> jobs;
  std::vector<DeploymentRecord> deployments;
  const std::map<std::string, std::string>* secrets = nullptr;
  int64_t now_ms = 0;
  SubmitKey* key = nullptr;
  std::string request_sha256;
  // Out, set by the leader before `done`.
  absl::Status status;
  std::vector<EventRecord> events;
  bool done = false;  // guarded by Store::create_mu_
};

namespace {

constexpr int kDefaultEventLimit = 1000;
constexpr int kMaxEventLimit = 10000;
constexpr int kActiveJobsPage = 64;
// Group commit: invocations per transaction, and batches a leader commits before it hands over.
constexpr size_t kMaxBatch = 32;
constexpr int kMaxLeaderBatches = 4;

bool NamesJob(const std::string& id) { return id.find('.') != std::string::npos; }

EventRecord MakeEvent(int64_t now_ms, std::string invocation_id, std::string job_id,
                      std::string kind, absl::string_view from, absl::string_view to,
                      std::string message) {
  EventRecord e;
  e.time_ms = now_ms;
  e.invocation_id = std::move(invocation_id);
  e.job_id = std::move(job_id);
  e.kind = std::move(kind);
  e.from_state = std::string(from);
  e.to_state = std::string(to);
  e.message = std::move(message);
  return e;
}

// What a job row looks like after t: the timestamps and fields of the new state.
void ApplyJobTransition(const JobTransition& t, int64_t now_ms, JobRecord* job) {
  job->state = t.to;
  if (t.to == JobState::kPending) {
    // Resume: back to a fresh pending job; attempt, output dir, spec and created_ms stay.
    job->desired = DesiredState::kRun;
    job->exit_reason = ExitReason::kNone;
    job->exit_code.reset();
    job->message.clear();
    job->handle = JobHandle{};
    job->progress_done = job->progress_total = job->progress_errors = 0;
    job->progress_rate = 0;
    job->progress_updated_ms = 0;
    job->submitted_ms = job->started_ms = job->ended_ms = 0;
    return;
  }
  job->exit_reason = t.reason;
  job->exit_code = t.exit_code;
  job->message = t.message;
  if (t.handle.has_value()) job->handle = *t.handle;
  if (!t.output_dir.empty()) job->output_dir = t.output_dir;
  if (t.to == JobState::kSubmitted) job->submitted_ms = now_ms;
  if (t.to == JobState::kRunning) {
    job->started_ms = now_ms;
    if (job->submitted_ms == 0) job->submitted_ms = now_ms;
  }
  if (IsTerminal(t.to)) {
    job->ended_ms = now_ms;
    // A job that ran and ended between two observations never showed kRunning; it started
    // no earlier than its submission, so that is its start time.
    bool ran = t.to == JobState::kSucceeded || t.exit_code.has_value();
    if (ran && job->started_ms == 0) {
      job->started_ms = job->submitted_ms > 0 ? job->submitted_ms : now_ms;
    }
  }
}

void ApplyDeploymentTransition(const DeploymentTransition& t, int64_t now_ms, DeploymentRecord* d) {
  d->state = t.to;
  if (t.to == DeploymentState::kPending) {
    d->desired = DesiredState::kRun;
    d->handle = JobHandle{};
    d->message.clear();
    d->started_ms = d->healthy_ms = d->ended_ms = 0;
    return;
  }
  d->message = t.message;
  if (t.handle.has_value()) d->handle = *t.handle;
  if (t.port.has_value()) d->port = *t.port;
  if (t.url.has_value()) d->url = *t.url;
  if (t.health_url.has_value()) d->health_url = *t.health_url;
  if (t.command.has_value()) d->command = *t.command;
  if (t.to == DeploymentState::kStarting) d->started_ms = now_ms;
  if (t.to == DeploymentState::kHealthy) d->healthy_ms = now_ms;
  if (IsTerminal(t.to)) d->ended_ms = now_ms;
}

// Recomputes an invocation's derived state after one of its jobs changed; appends an
// `invocation.state` event when it changed and deletes the secrets once it is terminal. Runs
// inside the caller's transaction.
absl::Status RecomputeInvocation(Database& db, const SecretBox& box,
                                 const std::string& invocation_id, bool resumed, int64_t now_ms,
                                 std::vector<EventRecord>* events) {
  InvocationRepository invocations(db);
  JobRepository jobs(db);
  EVALD_ASSIGN_OR_RETURN(std::vector<JobState> states, jobs.ListStates(invocation_id));
  EVALD_ASSIGN_OR_RETURN(InvocationRecord inv, invocations.Get(invocation_id));
  const JobState derived = DeriveInvocationState(states);
  int64_t ended_ms = 0;
  if (IsTerminal(derived)) {
    ended_ms = (derived != inv.state || inv.ended_ms == 0) ? now_ms : inv.ended_ms;
  }
  EVALD_RETURN_IF_ERROR(invocations.UpdateState(invocation_id, derived, now_ms, ended_ms));
  if (resumed && inv.desired != DesiredState::kRun) {
    EVALD_RETURN_IF_ERROR(invocations.SetDesired(invocation_id, DesiredState::kRun, now_ms));
  }
  if (derived != inv.state) {
    EventRecord ev = MakeEvent(now_ms, invocation_id, "", "invocation.state", ToString(inv.state),
                               ToString(derived), "");
    EVALD_RETURN_IF_ERROR(EventRepository(db).Append(&ev));
    events->push_back(std::move(ev));
  }
  // Idempotent: also removes secrets re-sent by PutSecrets for a resume that did not happen.
  if (IsTerminal(derived))
    EVALD_RETURN_IF_ERROR(SecretRepository(db, box).DeleteAll(invocation_id));
  return absl::OkStatus();
}

// A call whose rows were not committed reports no events and no existing invocation.
void ClearOutcome(CreateRequest& r) {
  r.events.clear();
  if (r.key != nullptr) r.key->existing_invocation_id.clear();
}

// Inserts one queued invocation (rows prepared by CreateInvocation) inside the caller's
// transaction; fills r.events on success.
absl::Status InsertInvocation(Database& db, const SecretBox& box, CreateRequest& r) {
  const std::string& id = r.invocation.id;
  ClearOutcome(r);
  if (r.key != nullptr) {
    EVALD_ASSIGN_OR_RETURN(std::optional<SubmitKeyRow> row,
                           SubmitKeyRepository(db).Get(r.key->key));
    if (row.has_value()) {
      if (row->request_sha256 != r.request_sha256) {
        return absl::FailedPreconditionError(absl::StrCat(
            "idempotency key '", r.key->key, "' was already used by invocation ",
            row->invocation_id,
            " for a different request (config, overrides, tasks, environment or working "
            "dir differ); use a new key for a new submission"));
      }
      r.key->existing_invocation_id = row->invocation_id;
      return absl::OkStatus();
    }
  }
  if (absl::Status st = InvocationRepository(db).Insert(r.invocation); !st.ok()) {
    if (absl::IsAlreadyExists(st)) {
      return absl::AlreadyExistsError(absl::StrCat("invocation ", id, " already exists"));
    }
    return st;
  }
  if (r.key != nullptr) {
    EVALD_RETURN_IF_ERROR(
        SubmitKeyRepository(db).Insert({r.key->key, id, r.request_sha256, r.now_ms}));
  }
  JobRepository job_repo(db);
  for (const JobRecord& j : r.jobs) EVALD_RETURN_IF_ERROR(job_repo.Insert(j));
  DeploymentRepository dep_repo(db);
  for (const DeploymentRecord& d : r.deployments) EVALD_RETURN_IF_ERROR(dep_repo.Insert(d));
  EVALD_RETURN_IF_ERROR(SecretRepository(db, box).Replace(id, *r.secrets));
  EventRecord ev =
      MakeEvent(r.now_ms, id, "", "invocation.submitted", "", ToString(r.invocation.state),
                absl::StrCat(r.jobs.size(), " job(s) on executor ", r.invocation.executor));
  ev.actor = r.invocation.owner;
  EVALD_RETURN_IF_ERROR(EventRepository(db).Append(&ev));
  r.events.push_back(std::move(ev));
  return absl::OkStatus();
}

}  // namespace

Store::Store(std::unique_ptr<Database> db, std::unique_ptr<SecretBox> box)
    : path_(db->path()),
      schema_version_(db->schema_version()),
      db_(std::move(db)),
      box_(std::move(box)) {}

Store::~Store() = default;

absl::StatusOr<std::unique_ptr<Store>> Store::Open(const StoreOptions& options) {
  EVALD_ASSIGN_OR_RETURN(std::unique_ptr<Database> db,
                         Database::Open(options.db_path, options.busy_timeout_ms));
  std::string key_path = options.key_path;
  if (key_path.empty()) {
    key_path = (std::filesystem::path(options.db_path).parent_path() / "secrets.key").string();
  }
  EVALD_ASSIGN_OR_RETURN(std::unique_ptr<SecretBox> box, SecretBox::LoadOrCreate(key_path));
  return std::unique_ptr<Store>(new Store(std::move(db), std::move(box)));
}

int Store::schema_version() const { return schema_version_; }

const std::string& Store::path() const { return path_; }

absl::Status Store::CreateInvocation(const InvocationRecord& invocation,
                                     const std::vector<JobRecord>& jobs,
                                     const std::vector<DeploymentRecord>& deployments,
                                     const std::map<std::string, std::string>& secrets,
                                     int64_t now_ms, std::vector<EventRecord>* events,
                                     SubmitKey* key) {
  const std::string& id = invocation.id;
  if (!IsValidInvocationId(id)) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid invocation id '", id, "': expected 8 lower-case hex digits"));
  }
  if (jobs.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("invocation ", id, " has no jobs"));
  }
  InvocationRecord inv = invocation;
  if (inv.created_ms == 0) inv.created_ms = now_ms;
  inv.updated_ms = now_ms;
  inv.ended_ms = 0;

  std::vector<JobRecord> job_rows = jobs;
  std::vector<JobState> states;
  std::set<std::string> job_ids;
  for (JobRecord& j : job_rows) {
    if (j.id != JobId(id, j.index)) {
      return absl::InvalidArgumentError(absl::StrCat("job id '", j.id, "' does not match ",
                                                     JobId(id, j.index), " (invocation ", id,
                                                     ", index ", j.index, ")"));
    }
    if (!j.invocation_id.empty() && j.invocation_id != id) {
      return absl::InvalidArgumentError(
          absl::StrCat("job ", j.id, " names invocation ", j.invocation_id, ", expected ", id));
    }
    if (j.state != JobState::kPending) {
      return absl::InvalidArgumentError(
          absl::StrCat("job ", j.id, " must be created pending, not ", ToString(j.state)));
    }
    j.invocation_id = id;
    if (j.created_ms == 0) j.created_ms = now_ms;
    states.push_back(j.state);
    job_ids.insert(j.id);
  }
  inv.state = DeriveInvocationState(states);

  std::vector<DeploymentRecord> dep_rows = deployments;
  for (DeploymentRecord& d : dep_rows) {
    if (!absl::StartsWith(d.id, absl::StrCat(id, ".d")) || d.id.size() <= id.size() + 2) {
      return absl::InvalidArgumentError(
          absl::StrCat("deployment id '", d.id, "' must look like ", DeploymentId(id, 0)));
    }
    if (!d.invocation_id.empty() && d.invocation_id != id) {
      return absl::InvalidArgumentError(absl::StrCat("deployment ", d.id, " names invocation ",
                                                     d.invocation_id, ", expected ", id));
    }
    if (!d.job_id.empty() && job_ids.count(d.job_id) == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("deployment ", d.id, " names job ", d.job_id, ", which is not in ", id));
    }
    if (d.state != DeploymentState::kPending) {
      return absl::InvalidArgumentError(
          absl::StrCat("deployment ", d.id, " must be created pending, not ", ToString(d.state)));
    }
    d.invocation_id = id;
    if (d.created_ms == 0) d.created_ms = now_ms;
  }

  if (key != nullptr && key->key.empty()) {
    return absl::InvalidArgumentError("an idempotency key, when given, must not be empty");
  }
  CreateRequest request{
      .invocation = std::move(inv),
      .jobs = std::move(job_rows),
      .deployments = std::move(dep_rows),
      .secrets = &secrets,
      .now_ms = now_ms,
      .key = key,
      .request_sha256 = key != nullptr ? SubmitKeyRepository::Sha256Hex(key->request) : ""};
  RunQueuedCreate(&request);
  if (!request.status.ok()) return request.status;
  if (events != nullptr) {
    events->insert(events->end(), std::make_move_iterator(request.events.begin()),
                   std::make_move_iterator(request.events.end()));
  }
  return absl::OkStatus();
}

void Store::RunQueuedCreate(CreateRequest* request) {
  {
    absl::MutexLock lock(&create_mu_);
    create_queue_.push_back(request);
    if (create_leader_) {
      auto done_or_leads = [this, request]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(create_mu_) {
        return request->done || next_leader_ == request;
      };
      create_mu_.Await(absl::Condition(&done_or_leads));
      if (request->done) return;
      next_leader_ = nullptr;  // it leads now; create_leader_ stayed true
    } else {
      create_leader_ = true;
    }
  }
  // The leader's own call is first in the queue, so in its first batch.
  for (int batches = 0;; ++batches) {
    std::vector<CreateRequest*> batch;
    {
      absl::MutexLock lock(&create_mu_);
      if (create_queue_.empty()) {
        create_leader_ = false;
        return;
      }
      if (batches == kMaxLeaderBatches) {
        next_leader_ = create_queue_.front();
        return;
      }
      const size_t n = std::min(create_queue_.size(), kMaxBatch);
      batch.assign(create_queue_.begin(), create_queue_.begin() + static_cast<ptrdiff_t>(n));
      create_queue_.erase(create_queue_.begin(), create_queue_.begin() + static_cast<ptrdiff_t>(n));
    }
    if (before_batch_hook_) before_batch_hook_(batch.size());
    CommitCreates(batch);
    absl::MutexLock lock(&create_mu_);
    for (CreateRequest* r : batch) r->done = true;  // a waiter may return (and free r) from here
  }
}

void Store::SetBeforeBatchHookForTest(std::function<void(size_t)> hook) {
  before_batch_hook_ = std::move(hook);
}

size_t Store::QueuedCreatesForTest() {
  absl::MutexLock lock(&create_mu_);
  return create_queue_.size();
}

void Store::CommitCreates(const std::vector<CreateRequest*>& batch) {
  FifoLock lock(&mu_);
  auto insert = [&](CreateRequest& r) -> absl::Status { return InsertInvocation(*db_, *box_, r); };
  if (batch.size() == 1) {
    // Alone: its own transaction, no savepoint needed.
    CreateRequest& r = *batch[0];
    r.status = db_->InTransaction(absl::StrCat("create invocation ", r.invocation.id),
                                  [&] { return insert(r); });
    if (!r.status.ok()) ClearOutcome(r);
    return;
  }
  absl::Status whole = db_->InTransaction(
      absl::StrCat("create ", batch.size(), " invocations"), [&]() -> absl::Status {
        for (CreateRequest* r : batch) {
          r->status = db_->InSavepoint(absl::StrCat("create invocation ", r->invocation.id),
                                       [&] { return insert(*r); });
          if (r->status.ok()) continue;
          ClearOutcome(*r);
          // The error ended the whole transaction (I/O, disk full): nothing of it is kept.
          if (!db_->InOpenTransaction()) return r->status;
        }
        return absl::OkStatus();
      });
  if (whole.ok()) return;
  for (CreateRequest* r : batch) {
    if (r->status.ok()) r->status = whole;
    ClearOutcome(*r);
  }
}

absl::StatusOr<std::vector<EventRecord>> Store::TransitionJob(const JobTransition& t,
                                                              int64_t now_ms) {
  // An illegal edge is a bug in the caller, whatever the row says.
  EVALD_RETURN_IF_ERROR(ValidateTransition(t.from, t.to));
  FifoLock lock(&mu_);
  return db_->InTransaction(
      absl::StrCat("transition job ", t.job_id), [&]() -> absl::StatusOr<std::vector<EventRecord>> {
        JobRepository jobs(*db_);
        EVALD_ASSIGN_OR_RETURN(JobRecord job, jobs.Get(t.job_id));
        if (job.state != t.from) {
          return absl::AbortedError(absl::StrCat("job ", t.job_id, " is ", ToString(job.state),
                                                 ", not ", ToString(t.from), ": transition to ",
                                                 ToString(t.to), " not applied"));
        }
        ApplyJobTransition(t, now_ms, &job);
        EVALD_RETURN_IF_ERROR(jobs.Update(job, t.from));
        std::vector<EventRecord> events;
        EventRecord ev = MakeEvent(now_ms, job.invocation_id, job.id, "job.state", ToString(t.from),
                                   ToString(t.to), t.message);
        EVALD_RETURN_IF_ERROR(EventRepository(*db_).Append(&ev));
        events.push_back(std::move(ev));
        EVALD_RETURN_IF_ERROR(RecomputeInvocation(*db_, *box_, job.invocation_id,
                                                  t.to == JobState::kPending, now_ms, &events));
        return events;
      });
}

absl::StatusOr<std::vector<EventRecord>> Store::TransitionDeployment(const DeploymentTransition& t,
                                                                     int64_t now_ms) {
  EVALD_RETURN_IF_ERROR(ValidateTransition(t.from, t.to));
  FifoLock lock(&mu_);
  return db_->InTransaction(
      absl::StrCat("transition deployment ", t.deployment_id),
      [&]() -> absl::StatusOr<std::vector<EventRecord>> {
        DeploymentRepository deployments(*db_);
        EVALD_ASSIGN_OR_RETURN(DeploymentRecord d, deployments.Get(t.deployment_id));
        if (d.state != t.from) {
          return absl::AbortedError(
              absl::StrCat("deployment ", t.deployment_id, " is ", ToString(d.state), ", not ",
                           ToString(t.from), ": transition to ", ToString(t.to), " not applied"));
        }
        ApplyDeploymentTransition(t, now_ms, &d);
        EVALD_RETURN_IF_ERROR(deployments.Update(d, t.from));
        EventRecord ev = MakeEvent(now_ms, d.invocation_id, "", "deployment.state",
                                   ToString(t.from), ToString(t.to),
                                   t.message.empty() ? d.id : absl::StrCat(d.id, ": ", t.message));
        EVALD_RETURN_IF_ERROR(EventRepository(*db_).Append(&ev));
        EVALD_RETURN_IF_ERROR(InvocationRepository(*db_).Touch(d.invocation_id, now_ms));
        return std::vector<EventRecord>{std::move(ev)};
      });
}

absl::StatusOr<std::vector<std::string>> Store::RequestStop(const std::string& id, int64_t now_ms,
                                                            std::vector<EventRecord>* events,
                                                            const std::string& actor) {
  FifoLock lock(&mu_);
  std::vector<EventRecord> appended;
  absl::StatusOr<std::vector<std::string>> result = db_->InTransaction(
      absl::StrCat("request stop of ", id), [&]() -> absl::StatusOr<std::vector<std::string>> {
        appended.clear();
        JobRepository jobs(*db_);
        EventRepository event_repo(*db_);
        if (NamesJob(id)) {
          EVALD_ASSIGN_OR_RETURN(JobRecord job, jobs.Get(id));
          if (IsTerminal(job.state)) {
            return absl::FailedPreconditionError(
                absl::StrCat("job ", id, " already finished (", ToString(job.state), ")"));
          }
          EVALD_RETURN_IF_ERROR(jobs.SetDesired(id, DesiredState::kStop));
          EVALD_RETURN_IF_ERROR(InvocationRepository(*db_).Touch(job.invocation_id, now_ms));
          EventRecord ev = MakeEvent(now_ms, job.invocation_id, id, "job.kill_requested", "", "",
                                     "stop requested");
          ev.actor = actor;
          EVALD_RETURN_IF_ERROR(event_repo.Append(&ev));
          appended.push_back(std::move(ev));
          return std::vector<std::string>{id};
        }
        InvocationRepository invocations(*db_);
        DeploymentRepository deployments(*db_);
        EVALD_ASSIGN_OR_RETURN(InvocationRecord inv, invocations.Get(id));
        EVALD_ASSIGN_OR_RETURN(std::vector<JobRecord> job_rows, jobs.ListByInvocation(id));
        EVALD_ASSIGN_OR_RETURN(std::vector<DeploymentRecord> dep_rows,
                               deployments.ListByInvocation(id));
        std::vector<std::string> stopped_jobs;
        int stopped_deployments = 0;
        for (const JobRecord& j : job_rows) {
          if (IsTerminal(j.state)) continue;
          EVALD_RETURN_IF_ERROR(jobs.SetDesired(j.id, DesiredState::kStop));
          stopped_jobs.push_back(j.id);
        }
        for (const DeploymentRecord& d : dep_rows) {
          if (IsTerminal(d.state)) continue;
          EVALD_RETURN_IF_ERROR(deployments.SetDesired(d.id, DesiredState::kStop));
          ++stopped_deployments;
        }
        if (stopped_jobs.empty() && stopped_deployments == 0) {
          return absl::FailedPreconditionError(
              absl::StrCat("invocation ", id, " already finished (", ToString(inv.state), ")"));
        }
        EVALD_RETURN_IF_ERROR(invocations.SetDesired(id, DesiredState::kStop, now_ms));
        EventRecord ev =
            MakeEvent(now_ms, id, "", "invocation.kill_requested", "", "",
                      absl::StrCat("stop requested for ", stopped_jobs.size(), " job(s) and ",
                                   stopped_deployments, " deployment(s)"));
        ev.actor = actor;
        EVALD_RETURN_IF_ERROR(event_repo.Append(&ev));
        appended.push_back(std::move(ev));
        return stopped_jobs;
      });
  if (result.ok() && events != nullptr) {
    events->insert(events->end(), appended.begin(), appended.end());
  }
  return result;
}

absl::Status Store::MarkStarting(const std::string& job_id, int64_t now_ms) {
  FifoLock lock(&mu_);
  return db_->InTransaction(absl::StrCat("mark job ", job_id, " starting"), [&]() -> absl::Status {
    JobRepository jobs(*db_);
    EVALD_ASSIGN_OR_RETURN(JobRecord job, jobs.Get(job_id));
    if (job.state != JobState::kPending) {
      return absl::AbortedError(absl::StrCat("job ", job_id, " is ", ToString(job.state),
                                             ", not pending: it must not be started"));
    }
    InvocationRepository invocations(*db_);
    EVALD_ASSIGN_OR_RETURN(InvocationRecord inv, invocations.Get(job.invocation_id));
    ++job.attempt;
    // Executor known, state unknown: after a crash the daemon recovers rather than restarts.
    job.handle = JobHandle{};
    job.handle.executor = inv.executor;
    EVALD_RETURN_IF_ERROR(jobs.Update(job, JobState::kPending));
    // "starting" is a sub-state of pending, not a JobState: its event is pending -> pending.
    EventRecord ev =
        MakeEvent(now_ms, job.invocation_id, job.id, "job.starting", ToString(JobState::kPending),
                  ToString(JobState::kPending), absl::StrCat("starting attempt ", job.attempt));
    EVALD_RETURN_IF_ERROR(EventRepository(*db_).Append(&ev));
    return invocations.Touch(job.invocation_id, now_ms);
  });
}

absl::StatusOr<std::map<std::string, std::string>> Store::GetSecrets(
    const std::string& invocation_id) {
  FifoLock lock(&mu_);
  return db_->InReadTransaction(
      absl::StrCat("read secrets of ", invocation_id),
      [&]() -> absl::StatusOr<std::map<std::string, std::string>> {
        EVALD_ASSIGN_OR_RETURN(bool exists, InvocationRepository(*db_).Exists(invocation_id));
        if (!exists) return absl::NotFoundError(absl::StrCat("no invocation ", invocation_id));
        return SecretRepository(*db_, *box_).GetAll(invocation_id);
      });
}

absl::Status Store::PutSecrets(const std::string& invocation_id,
                               const std::map<std::string, std::string>& secrets) {
  FifoLock lock(&mu_);
  return db_->InTransaction(
      absl::StrCat("store secrets of ", invocation_id), [&]() -> absl::Status {
        EVALD_ASSIGN_OR_RETURN(bool exists, InvocationRepository(*db_).Exists(invocation_id));
        if (!exists) {
          return absl::NotFoundError(absl::StrCat("no invocation ", invocation_id));
        }
        return SecretRepository(*db_, *box_).Replace(invocation_id, secrets);
      });
}

absl::StatusOr<InvocationView> Store::GetInvocation(const std::string& invocation_id) {
  FifoLock lock(&mu_);
  return db_->InReadTransaction(
      absl::StrCat("read invocation ", invocation_id), [&]() -> absl::StatusOr<InvocationView> {
        InvocationView view;
        EVALD_ASSIGN_OR_RETURN(view.invocation, InvocationRepository(*db_).Get(invocation_id));
        EVALD_ASSIGN_OR_RETURN(view.jobs, JobRepository(*db_).ListByInvocation(invocation_id));
        EVALD_ASSIGN_OR_RETURN(view.deployments,
                               DeploymentRepository(*db_).ListByInvocation(invocation_id));
        EVALD_ASSIGN_OR_RETURN(view.last_event_seq, EventRepository(*db_).LastSeq());
        return view;
      });
}

absl::StatusOr<InvocationRecord> Store::GetInvocationRecord(const std::string& invocation_id) {
  FifoLock lock(&mu_);
  return InvocationRepository(*db_).Get(invocation_id);
}

absl::StatusOr<JobRecord> Store::GetJob(const std::string& job_id) {
  FifoLock lock(&mu_);
  return JobRepository(*db_).Get(job_id);
}

absl::StatusOr<InvocationPage> Store::ListInvocations(const InvocationFilter& filter) {
  FifoLock lock(&mu_);
  return InvocationRepository(*db_).List(filter);
}

absl::StatusOr<int64_t> Store::CountInvocations() {
  FifoLock lock(&mu_);
  return InvocationRepository(*db_).Count();
}

absl::StatusOr<int64_t> Store::CountActiveJobsOfOwner(const std::string& owner) {
  FifoLock lock(&mu_);
  return JobRepository(*db_).CountActiveOfOwner(owner);
}

absl::StatusOr<std::vector<Store::StateCount>> Store::CountStates() {
  FifoLock lock(&mu_);
  return db_->Run("count states", [&]() -> absl::StatusOr<std::vector<StateCount>> {
    std::vector<StateCount> out;
    const std::pair<const char*, const char*> queries[] = {
        {"invocation", "SELECT executor, state, count(*) FROM invocations GROUP BY 1, 2"},
        {"job",
         "SELECT i.executor, j.state, count(*) FROM jobs j JOIN invocations i "
         "ON i.id = j.invocation_id GROUP BY 1, 2"},
        {"deployment",
         "SELECT i.executor, d.state, count(*) FROM deployments d JOIN invocations i "
         "ON i.id = d.invocation_id GROUP BY 1, 2"}};
    for (const auto& [kind, sql] : queries) {
      StatementRef s = db_->Prepare(sql);
      while (s->executeStep()) {
        out.push_back({kind, s->getColumn(0).getString(), s->getColumn(1).getString(),
                       s->getColumn(2).getInt64()});
      }
    }
    return out;
  });
}

absl::StatusOr<std::vector<JobRecord>> Store::ListActiveJobs() {
  // In pages, each under the lock on its own: with hundreds of jobs queued, one read of them all
  // held the lock for 3-10 ms on every supervisor pass, and every Submit in flight waited.
  std::vector<JobRecord> all;
  while (true) {
    FifoLock lock(&mu_);
    EVALD_ASSIGN_OR_RETURN(
        std::vector<JobRecord> page,
        JobRepository(*db_).ListActiveAfter(all.empty() ? "" : all.back().invocation_id,
                                            all.empty() ? -1 : all.back().index, kActiveJobsPage));
    const bool last = static_cast<int>(page.size()) < kActiveJobsPage;
    all.insert(all.end(), std::make_move_iterator(page.begin()),
               std::make_move_iterator(page.end()));
    if (last) return all;
  }
}

absl::StatusOr<std::vector<DeploymentRecord>> Store::ListActiveDeployments() {
  FifoLock lock(&mu_);
  return DeploymentRepository(*db_).ListActive();
}

absl::StatusOr<std::vector<DeploymentRecord>> Store::ListEndedDeployments(int64_t ended_since_ms) {
  FifoLock lock(&mu_);
  return DeploymentRepository(*db_).ListEnded(ended_since_ms);
}

absl::Status Store::UpdateProgress(const std::vector<ProgressUpdate>& updates) {
  if (updates.empty()) return absl::OkStatus();
  FifoLock lock(&mu_);
  std::vector<std::string> unknown;
  EVALD_RETURN_IF_ERROR(db_->InTransaction("update progress", [&]() -> absl::Status {
    unknown.clear();
    JobRepository jobs(*db_);
    for (const ProgressUpdate& p : updates) {
      EVALD_ASSIGN_OR_RETURN(bool found, jobs.UpdateProgress(p));
      if (!found) unknown.push_back(p.job_id);
    }
    return absl::OkStatus();
  }));
  if (!unknown.empty()) {
    return absl::NotFoundError(
        absl::StrCat("progress for unknown job(s) ignored: ", absl::StrJoin(unknown, ", ")));
  }
  return absl::OkStatus();
}

absl::Status Store::PutResults(const std::string& job_id,
                               const std::vector<ResultRecord>& results) {
  FifoLock lock(&mu_);
  return db_->InTransaction(absl::StrCat("put results of ", job_id), [&]() -> absl::Status {
    EVALD_ASSIGN_OR_RETURN(JobRecord job, JobRepository(*db_).Get(job_id));
    for (const ResultRecord& r : results) {
      if ((!r.job_id.empty() && r.job_id != job_id) ||
          (!r.invocation_id.empty() && r.invocation_id != job.invocation_id)) {
        return absl::InvalidArgumentError(
            absl::StrCat("result ", r.task, "/", r.metric, " names job '", r.job_id,
                         "' of invocation '", r.invocation_id, "' but is put for job ", job_id));
      }
    }
    return ResultRepository(*db_).ReplaceForJob(job_id, job.invocation_id, results);
  });
}

absl::StatusOr<std::vector<ResultRecord>> Store::GetResults(
    const std::string& invocation_or_job_id) {
  FifoLock lock(&mu_);
  const std::string& id = invocation_or_job_id;
  return db_->InReadTransaction(
      absl::StrCat("read results of ", id), [&]() -> absl::StatusOr<std::vector<ResultRecord>> {
        if (NamesJob(id)) {
          EVALD_RETURN_IF_ERROR(JobRepository(*db_).Get(id).status());
          return ResultRepository(*db_).ListByJob(id);
        }
        EVALD_ASSIGN_OR_RETURN(bool exists, InvocationRepository(*db_).Exists(id));
        if (!exists) return absl::NotFoundError(absl::StrCat("no invocation ", id));
        return ResultRepository(*db_).ListByInvocation(id);
      });
}

absl::Status Store::PutExport(const JobExportRecord& record) {
  FifoLock lock(&mu_);
  return db_->InTransaction(absl::StrCat("put export of ", record.job_id), [&]() -> absl::Status {
    EVALD_ASSIGN_OR_RETURN(JobRecord job, JobRepository(*db_).Get(record.job_id));
    JobExportRecord r = record;
    r.invocation_id = job.invocation_id;
    return ExportRepository(*db_).Put(r);
  });
}

absl::StatusOr<std::vector<JobExportRecord>> Store::ListExports(const std::string& invocation_id) {
  FifoLock lock(&mu_);
  return ExportRepository(*db_).ListByInvocation(invocation_id);
}

absl::StatusOr<std::vector<JobExportRecord>> Store::ListDueExports(int64_t now_ms) {
  FifoLock lock(&mu_);
  return ExportRepository(*db_).ListDue(now_ms);
}

absl::StatusOr<EventRecord> Store::AppendEvent(EventRecord event) {
  if (event.kind.empty()) return absl::InvalidArgumentError("event kind is empty");
  event.seq = 0;
  FifoLock lock(&mu_);
  return db_->InTransaction(
      absl::StrCat("append event ", event.kind), [&]() -> absl::StatusOr<EventRecord> {
        if (!event.invocation_id.empty()) {
          EVALD_ASSIGN_OR_RETURN(bool exists,
                                 InvocationRepository(*db_).Exists(event.invocation_id));
          if (!exists) {
            return absl::NotFoundError(absl::StrCat("no invocation ", event.invocation_id));
          }
        }
        EventRecord e = event;
        EVALD_RETURN_IF_ERROR(EventRepository(*db_).Append(&e));
        return e;
      });
}

absl::StatusOr<int64_t> Store::LastEventSeq() {
  FifoLock lock(&mu_);
  return EventRepository(*db_).LastSeq();
}

absl::StatusOr<std::vector<EventRecord>> Store::ListEvents(const std::string& invocation_id,
                                                           int64_t after_seq, int limit) {
  if (limit <= 0) limit = kDefaultEventLimit;
  limit = std::min(limit, kMaxEventLimit);
  FifoLock lock(&mu_);
  return db_->InReadTransaction("list events", [&]() -> absl::StatusOr<std::vector<EventRecord>> {
    if (!invocation_id.empty()) {
      EVALD_ASSIGN_OR_RETURN(bool exists, InvocationRepository(*db_).Exists(invocation_id));
      if (!exists) return absl::NotFoundError(absl::StrCat("no invocation ", invocation_id));
    }
    return EventRepository(*db_).List(invocation_id, after_seq, limit);
  });
}

absl::Status Store::CreateToken(const TokenRecord& token) {
  FifoLock lock(&mu_);
  return TokenRepository(*db_).Insert(token);
}

absl::StatusOr<std::optional<TokenRecord>> Store::FindTokenByHash(const std::string& hash) {
  FifoLock lock(&mu_);
  return TokenRepository(*db_).FindByHash(hash);
}

absl::StatusOr<std::vector<TokenRecord>> Store::ListTokens(const std::string& user) {
  FifoLock lock(&mu_);
  return TokenRepository(*db_).List(user);
}

absl::StatusOr<TokenRecord> Store::RevokeToken(const std::string& id, int64_t now_ms) {
  FifoLock lock(&mu_);
  return db_->InTransaction(
      absl::StrCat("revoke token ", id), [&]() -> absl::StatusOr<TokenRecord> {
        TokenRepository tokens(*db_);
        EVALD_ASSIGN_OR_RETURN(std::optional<TokenRecord> t, tokens.Get(id));
        if (!t.has_value()) return absl::NotFoundError(absl::StrCat("no token ", id));
        EVALD_ASSIGN_OR_RETURN(bool revoked, tokens.Revoke(id, now_ms));
        if (!revoked) {
          return absl::FailedPreconditionError(
              absl::StrCat("token ", id, " of ", t->user, " is already revoked"));
        }
        t->revoked_ms = now_ms;
        return *t;
      });
}

absl::StatusOr<std::vector<TokenRecord>> Store::RevokeUserTokens(const std::string& user,
                                                                 int64_t now_ms) {
  FifoLock lock(&mu_);
  return db_->InTransaction(
      absl::StrCat("revoke tokens of ", user), [&]() -> absl::StatusOr<std::vector<TokenRecord>> {
        TokenRepository tokens(*db_);
        EVALD_ASSIGN_OR_RETURN(std::vector<TokenRecord> all, tokens.List(user));
        std::vector<TokenRecord> revoked;
        for (TokenRecord& t : all) {
          if (t.revoked_ms != 0) continue;
          EVALD_ASSIGN_OR_RETURN(bool done, tokens.Revoke(t.id, now_ms));
          if (!done) continue;
          t.revoked_ms = now_ms;
          revoked.push_back(std::move(t));
        }
        return revoked;
      });
}

absl::Status Store::TouchToken(const std::string& id, int64_t last_used_ms) {
  FifoLock lock(&mu_);
  return TokenRepository(*db_).SetLastUsed(id, last_used_ms);
}

}  // namespace evald::storage
