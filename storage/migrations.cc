#include "storage/migrations.h"

namespace evald::storage {
namespace {

// States are stored as the lower-case names of core/lifecycle.h (ToString), so the file reads well
// in the sqlite3 shell. Times are unix epoch milliseconds, 0 = unset. A REAL column that is NULL
// holds NaN (SQLite cannot store NaN).
constexpr const char kV1Initial[] = R"sql(
CREATE TABLE invocations (
  id           TEXT PRIMARY KEY NOT NULL,
  executor     TEXT NOT NULL,
  state        TEXT NOT NULL,
  desired      TEXT NOT NULL,
  config_yaml  TEXT NOT NULL,
  run_dir      TEXT NOT NULL,
  mode         TEXT NOT NULL,
  tasks        TEXT NOT NULL,
  secret_names TEXT NOT NULL,
  client       TEXT NOT NULL,
  created_ms   INTEGER NOT NULL,
  updated_ms   INTEGER NOT NULL,
  ended_ms     INTEGER NOT NULL
);
CREATE INDEX invocations_by_created ON invocations(created_ms, id);
CREATE INDEX invocations_by_state ON invocations(state, created_ms, id);
CREATE INDEX invocations_by_executor ON invocations(executor COLLATE NOCASE, created_ms, id);

CREATE TABLE jobs (
  id                  TEXT PRIMARY KEY NOT NULL,
  invocation_id       TEXT NOT NULL REFERENCES invocations(id),
  idx                 INTEGER NOT NULL,
  task                TEXT NOT NULL,
  harness             TEXT NOT NULL,
  endpoint_type       TEXT NOT NULL,
  container           TEXT NOT NULL,
  state               TEXT NOT NULL,
  desired             TEXT NOT NULL,
  exit_reason         TEXT NOT NULL,
  exit_code           INTEGER,
  message             TEXT NOT NULL,
  output_dir          TEXT NOT NULL,
  spec_yaml           TEXT NOT NULL,
  handle_version      INTEGER NOT NULL,
  handle_executor     TEXT NOT NULL,
  handle_state        TEXT NOT NULL,
  attempt             INTEGER NOT NULL,
  progress_done       INTEGER NOT NULL,
  progress_total      INTEGER NOT NULL,
  progress_errors     INTEGER NOT NULL,
  progress_rate       REAL,
  progress_updated_ms INTEGER NOT NULL,
  created_ms          INTEGER NOT NULL,
  submitted_ms        INTEGER NOT NULL,
  started_ms          INTEGER NOT NULL,
  ended_ms            INTEGER NOT NULL,
  UNIQUE (invocation_id, idx)
);
-- The supervisor's work list; the WHERE must match JobRepository::ListActive word for word.
CREATE INDEX jobs_active ON jobs(invocation_id, idx)
  WHERE state IN ('pending', 'submitted', 'running');

CREATE TABLE deployments (
  id              TEXT PRIMARY KEY NOT NULL,
  invocation_id   TEXT NOT NULL REFERENCES invocations(id),
  job_id          TEXT NOT NULL,
  type            TEXT NOT NULL,
  state           TEXT NOT NULL,
  desired         TEXT NOT NULL,
  spec_yaml       TEXT NOT NULL,
  command         TEXT NOT NULL,
  url             TEXT NOT NULL,
  health_url      TEXT NOT NULL,
  port            INTEGER NOT NULL,
  handle_version  INTEGER NOT NULL,
  handle_executor TEXT NOT NULL,
  handle_state    TEXT NOT NULL,
  log_path        TEXT NOT NULL,
  message         TEXT NOT NULL,
  created_ms      INTEGER NOT NULL,
  started_ms      INTEGER NOT NULL,
  healthy_ms      INTEGER NOT NULL,
  ended_ms        INTEGER NOT NULL
);
CREATE INDEX deployments_by_invocation ON deployments(invocation_id);
-- The WHERE must match DeploymentRepository::ListActive word for word.
CREATE INDEX deployments_active ON deployments(invocation_id)
  WHERE state IN ('pending', 'starting', 'healthy', 'stopping');

CREATE TABLE events (
  seq           INTEGER PRIMARY KEY AUTOINCREMENT,
  time_ms       INTEGER NOT NULL,
  invocation_id TEXT NOT NULL,
  job_id        TEXT NOT NULL,
  kind          TEXT NOT NULL,
  from_state    TEXT NOT NULL,
  to_state      TEXT NOT NULL,
  message       TEXT NOT NULL
);
CREATE INDEX events_by_invocation ON events(invocation_id, seq);
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
  BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
  BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;

CREATE TABLE results (
  job_id        TEXT NOT NULL REFERENCES jobs(id),
  ord           INTEGER NOT NULL,
  invocation_id TEXT NOT NULL,
  task          TEXT NOT NULL,
  metric        TEXT NOT NULL,
  score         TEXT NOT NULL,
  value         REAL,
  has_stats     INTEGER NOT NULL,
  count         INTEGER NOT NULL,
  mean          REAL,
  stderr        REAL,
  stddev        REAL,
  min           REAL,
  max           REAL,
  sum           REAL,
  PRIMARY KEY (job_id, ord)
) WITHOUT ROWID;
CREATE INDEX results_by_invocation ON results(invocation_id);

-- AES-256-GCM per value (secret_box.h): nonce is 12 bytes, ciphertext is the encrypted value
-- followed by the 16-byte tag. Plaintext values never touch the database.
CREATE TABLE secrets (
  invocation_id TEXT NOT NULL REFERENCES invocations(id),
  name          TEXT NOT NULL,
  nonce         BLOB NOT NULL,
  ciphertext    BLOB NOT NULL,
  PRIMARY KEY (invocation_id, name)
) WITHOUT ROWID;
)sql";

// Submit's idempotency keys (SubmitRequest.idempotency_key): the key names the invocation its
// first Submit created; request_sha256 (hex) says what that Submit asked, so a reuse of the key
// for another request is refused. Rows live as long as their invocation.
constexpr const char kV2SubmitKeys[] = R"sql(
CREATE TABLE submit_keys (
  key            TEXT PRIMARY KEY NOT NULL,
  invocation_id  TEXT NOT NULL UNIQUE REFERENCES invocations(id),
  request_sha256 TEXT NOT NULL,
  created_ms     INTEGER NOT NULL
) WITHOUT ROWID;
)sql";

// Auto-export (execution.auto_export): one row per succeeded job and destination, written by the
// AutoExporter. state: pending (to attempt at next_attempt_ms), succeeded or failed.
constexpr const char kV3JobExports[] = R"sql(
CREATE TABLE IF NOT EXISTS job_exports (
  job_id          TEXT NOT NULL REFERENCES jobs(id),
  dest            TEXT NOT NULL,
  invocation_id   TEXT NOT NULL,
  state           TEXT NOT NULL,
  attempts        INTEGER NOT NULL,
  message         TEXT NOT NULL,
  run_url         TEXT NOT NULL,
  created_ms      INTEGER NOT NULL,
  updated_ms      INTEGER NOT NULL,
  next_attempt_ms INTEGER NOT NULL,
  PRIMARY KEY (job_id, dest)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS job_exports_by_invocation ON job_exports(invocation_id);
CREATE INDEX IF NOT EXISTS job_exports_pending ON job_exports(next_attempt_ms) WHERE state = 'pending';
)sql";

// API tokens (daemon/auth): only the SHA-256 (hex) of a token's value is stored; the value is shown
// once at creation. Times are ms; expires_ms/revoked_ms 0 = never/not revoked. last_used_ms is
// written at most once a minute per token.
constexpr const char kV4Tokens[] = R"sql(
CREATE TABLE tokens (
  id           TEXT PRIMARY KEY NOT NULL,
  hash         TEXT NOT NULL UNIQUE,
  user         TEXT NOT NULL,
  role         TEXT NOT NULL,
  created_by   TEXT NOT NULL,
  created_ms   INTEGER NOT NULL,
  expires_ms   INTEGER NOT NULL,
  revoked_ms   INTEGER NOT NULL,
  last_used_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX tokens_by_user ON tokens(user);
)sql";

// Ownership: who submitted an invocation ('' for rows from before), and who asked for what an
// event records ('' for evald's own transitions).
constexpr const char kV5Owners[] = R"sql(
ALTER TABLE invocations ADD COLUMN owner TEXT NOT NULL DEFAULT '';
CREATE INDEX invocations_by_owner ON invocations(owner, created_ms, id);
ALTER TABLE events ADD COLUMN actor TEXT NOT NULL DEFAULT '';
)sql";

// The task filter of ListInvocations as an index: one row per distinct task name of an
// invocation, in list order, so a rare task is a seek and not a walk through every invocation.
// Rows from before are filled from invocations.tasks (a JSON array).
constexpr const char kV6InvocationTasks[] = R"sql(
CREATE TABLE invocation_tasks (
  task            TEXT NOT NULL,
  task_created_ms INTEGER NOT NULL,
  invocation_id   TEXT NOT NULL REFERENCES invocations(id),
  PRIMARY KEY (task, task_created_ms, invocation_id)
) WITHOUT ROWID;
INSERT OR IGNORE INTO invocation_tasks (task, task_created_ms, invocation_id)
  SELECT t.value, i.created_ms, i.id FROM invocations i, json_each(i.tasks) t;
)sql";

constexpr Migration kMigrations[] = {
    {1, "initial schema: invocations, jobs, deployments, events, results, secrets", kV1Initial},
    {2, "submit idempotency keys", kV2SubmitKeys},
    {3, "auto-export state per job and destination", kV3JobExports},
    {4, "API tokens (hashes only)", kV4Tokens},
    {5, "invocation owner and event actor", kV5Owners},
    {6, "an index of invocations by task name", kV6InvocationTasks},
};

}  // namespace

absl::Span<const Migration> Migrations() { return kMigrations; }

int LatestSchemaVersion() {
  return kMigrations[sizeof(kMigrations) / sizeof(kMigrations[0]) - 1].version;
}

}  // namespace evald::storage
