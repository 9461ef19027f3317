// File: commands.h
//
// evalctl's commands, one Run* function per verb (one .cc file each). main.cc parses the command
// line into these option structs and calls the matching function; tests call them directly with
// a fake EvalApi and string streams. Each returns evalctl's exit code (cli/client.h).
//
//   Context ctx;
//   ctx.api = api.get(); ctx.address = address; ctx.out = &std::cout; ctx.err = &std::cerr;
//   StatusOptions options;
//   options.ids = {"1a2b3c4d"};
//   return RunStatus(ctx, options);
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cli/client.h"
#include "cli/connection.h"
#include "cli/secrets.h"

namespace evald::cli {

// What every command needs. Defaults suit the real process; tests override them.
struct Context {
  EvalApi* api = nullptr;
  ServerAddress address;
  std::ostream* out = nullptr;
  std::ostream* err = nullptr;
  // stdout is a terminal: watch redraws progress bars in place.
  bool tty = false;
  int terminal_width = 100;
  EnvLookup env;                    // defaults to the process environment when empty
  std::function<int64_t()> now_ms;  // defaults to the system clock when empty
  std::string working_dir;          // defaults to the current directory when empty
  std::function<void(int64_t)> sleep_ms;  // defaults to a real sleep when empty
};

int64_t NowMs(const Context& ctx);
void SleepMs(const Context& ctx, int64_t ms);
EnvLookup Env(const Context& ctx);
std::string WorkingDir(const Context& ctx);

// ---- submit / run ------------------------------------------------------------------------------

// What a client-side composition hands to submit: the composed YAML, the host variables it needs
// and where each is used (for error messages).
struct ComposedConfig {
  std::string yaml;
  std::vector<std::string> secret_names;
  std::map<std::string, std::string> secret_uses;
};

struct ComposeInput {
  std::string primary_path;
  std::vector<std::string> search_path;  // --config-dir
  std::vector<std::string> overrides;    // -o
  std::string working_dir;
  EnvLookup env;
};

// Composition is injected: evalctl uses the config library (cli/config_compose.h); unit tests of
// the command use a stand-in. Errors are the library's (InvalidArgument/NotFound, naming the
// file and key path).
using ComposeFn = std::function<absl::StatusOr<ComposedConfig>(const ComposeInput&)>;

struct SubmitOptions {
  std::string config_path;               // submit <config.yaml>
  std::vector<std::string> config_dirs;  // --config-dir (submit) / -d (run)
  std::vector<std::string> overrides;    // -o k=v
  std::vector<std::string> tasks;        // -t
  bool dry_run = false;
  bool wait = false;
  bool json = false;
  // --idempotency-key; empty: a fresh random key per submit (NewIdempotencyKey). A submit whose
  // answer was lost (IsAmbiguousFailure) is sent once more with the same key, after
  // kSubmitRetryDelayMs.
  std::string idempotency_key;
};
inline constexpr int64_t kSubmitRetryDelayMs = 1000;
int RunSubmit(Context& ctx, const SubmitOptions& options, const ComposeFn& compose);

// `run --config-dir D --config-name N`: the primary config is D/N, or D/N.yaml when N has no
// extension and D/N does not exist; without -d, the packaged configs dir.
std::string RunPrimaryPath(const std::string& config_dir, const std::string& config_name);

// ---- status / watch / logs ---------------------------------------------------------------------

struct StatusOptions {
  std::vector<std::string> ids;
  bool json = false;
};
int RunStatus(Context& ctx, const StatusOptions& options);

struct WatchOptions {
  std::string id;
  bool logs = false;       // also print job log lines
  bool to_stderr = false;  // plain view on stderr (submit --wait --json keeps stdout pure JSON)
};
int RunWatch(Context& ctx, const WatchOptions& options);

struct LogsOptions {
  std::string id;
  bool follow = false;
  int tail = 0;
  std::string source = "stdout";  // stdout | stderr | server | all
};
int RunLogs(Context& ctx, const LogsOptions& options);

// ---- kill / resume / results -------------------------------------------------------------------

struct KillOptions {
  std::string id;
};
int RunKill(Context& ctx, const KillOptions& options);

struct ResumeOptions {
  std::string id;
  std::vector<std::string> job_ids;
  bool wait = false;
};
int RunResume(Context& ctx, const ResumeOptions& options);

struct ResultsOptions {
  std::string id;
  bool json = false;
  bool csv = false;
  // --fail-under TASK.METRIC[.SCORE]=VALUE, repeatable; TASK `*`: every task with that metric.
  // Each gated score must be >= VALUE in a job that succeeded with full results, else the command
  // exits kExitGateFailed. Unknown names: kExitBadInput; jobs still running: kExitRefused.
  std::vector<std::string> fail_under;
};
// Extends client.h's exit codes: a --fail-under gate failed (CI tells it from a broken run).
inline constexpr int kExitGateFailed = 7;
int RunResults(Context& ctx, const ResultsOptions& options);

// `compare A B`: every task.metric[.score] of both runs, b - a and its significance (evald
// computes it: the Compare RPC). Exit 0, or with fail_on_regression kExitFailed (1) when some
// metric is significantly lower in b.
struct CompareOptions {
  std::string id_a;
  std::string id_b;
  bool json = false;
  bool fail_on_regression = false;
};
int RunCompare(Context& ctx, const CompareOptions& options);

// ---- export ------------------------------------------------------------------------------------

// `export IDS... --dest local|mlflow` (docs/export.md). Unset optionals leave the key to the
// invocation's execution.auto_export.configs.<dest>, --config and -o. Exit: 0 every job exported,
// kExitFailed when some export failed (the others are done), else the RPC's exit code (a job
// that did not succeed: kExitRefused).
struct ExportOptions {
  std::vector<std::string> ids;
  std::string dest = "local";
  std::string config_path;             // --config FILE
  std::vector<std::string> overrides;  // -o export.<dest>.key=value
  std::string output_dir;              // relative: to evalctl's working dir (sent along)
  std::string output_filename;
  std::string format;  // json | csv (local)
  std::optional<bool> copy_logs;
  std::optional<bool> only_required;
  std::optional<bool> copy_artifacts;
  std::vector<std::string> log_metrics;
  bool json = false;
  // --retry: re-queue the failed auto-exports of `ids` (to `dest` when not empty, else to every
  // destination) instead of exporting; exit kExitRefused when none failed.
  bool retry = false;
};
int RunExport(Context& ctx, const ExportOptions& options);

// ---- ls / info / version -----------------------------------------------------------------------

struct LsRunsOptions {
  int limit = 20;
  std::string since;
  std::string state;
  std::string executor;
  bool mine = false;  // only the caller's own (evald knows who that is)
  std::string user;   // only this user's
};
int RunLsRuns(Context& ctx, const LsRunsOptions& options);

struct LsTasksOptions {
  bool json = false;
  std::string harness;
};
int RunLsTasks(Context& ctx, const LsTasksOptions& options);

struct InfoOptions {
  std::string id;
  bool json = false;
  bool no_config = false;
};
int RunInfo(Context& ctx, const InfoOptions& options);

int RunVersion(Context& ctx);

// ---- login -------------------------------------------------------------------------------------

struct LoginOptions {
  std::string token_file;  // --token-file; empty: the token is read from `in`
  bool no_token = false;   // --no-token: save the address only
};
// `evalctl --server ADDR [--ca-file F] [--cert-file C --key-file K] [--insecure] login`: reads
// the token (file, else `in`; a terminal `in_tty` is prompted on `err` with echo off), checks
// evald answers GetServerInfo with these settings, then writes evalctl's config file and a 0600
// token file (cli/connection.h) and says where. Nothing is written when the check fails. The
// token is never printed.
int RunLogin(const ConnectionFlags& flags, const LoginOptions& options, const EnvLookup& env,
             const std::string& state_dir, std::istream& in, bool in_tty, std::ostream& out,
             std::ostream& err);

struct BackupOptions {
  std::string path;  // relative paths are made absolute here, against evalctl's cwd
  bool overwrite = false;
  bool json = false;
};
int RunBackup(Context& ctx, const BackupOptions& options);

// `evalctl admin tokens create|ls|revoke` (cli/commands/admin_tokens.cc).
struct AdminTokensOptions {
  std::string user;
  std::string role = "user";  // admin | user | viewer
  std::string expires;        // e.g. 90d, 12h, 30m; empty = never
  std::string id;             // revoke: one token by id (else every token of --user)
  bool json = false;
};
// Prints the new token once, on its own line (or in --json), with how to use it.
int RunAdminTokensCreate(Context& ctx, const AdminTokensOptions& options);
int RunAdminTokensList(Context& ctx, const AdminTokensOptions& options);
int RunAdminTokensRevoke(Context& ctx, const AdminTokensOptions& options);
// "90d" -> seconds; InvalidArgument for anything but a positive number with s, m, h, d or w.
absl::StatusOr<int64_t> ParseExpiry(const std::string& text);

}  // namespace evald::cli
