// evalctl: the command-line client of evald. Parses the command line (CLI11), finds the daemon
// and its credentials (cli/connection.h: flag > environment > config file > the default socket)
// and runs one command from cli/commands/. The
// gRPC channel is only created by the first call a command makes.
#include <grpc/grpc.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>

#include "CLI/CLI.hpp"
#include "cli/client.h"
#include "cli/commands/commands.h"
#include "cli/config_compose.h"
#include "cli/connection.h"
#include "core/paths.h"

namespace evald::cli {
namespace {

constexpr char kFooter[] =
    R"(Server address: --server ADDR, else $EVALD_ADDR, else `server` in
${XDG_CONFIG_HOME:-$HOME/.config}/evalctl/config.yaml (written by `evalctl login`), else the
default socket ${XDG_STATE_HOME:-$HOME/.local/state}/evald/evald.sock. ADDR: unix:///abs/path,
unix:rel/path, /abs/path or host:port (TLS unless --insecure). Token: $EVALD_TOKEN, else the
config file's token_file.

Exit codes:
  0    success
  1    the evaluation failed (watch, --wait), an export of some job failed, or evald reported
       an unexpected error
  2    bad input: usage, config, unset environment variable, invalid --since, config too large
  3    evald is not reachable (or went away while watching or following logs)
  4    unknown invocation or job id
  5    refused in the current state (e.g. kill of a finished job)
  6    evald failed on its side (database I/O error or corrupt, internal error); see its log
  7    results --fail-under: a gated score is under its threshold, partial or missing
  130  interrupted (Ctrl-C); running jobs are not affected

Docs: docs/cli.md)";

// Repeatable one-value option: `-o a=1 -o b=2`; never swallows the positional after it.
CLI::Option* AddRepeated(CLI::App* app, const std::string& name, std::vector<std::string>* into,
                         const std::string& help) {
  return app->add_option(name, *into, help)->allow_extra_args(false);
}

int TerminalWidth() {
  struct winsize ws {};
  if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 100;
}

}  // namespace

int Main(int argc, char** argv) {
  CLI::App app{"evalctl: submit, follow and inspect LLM evaluations run by evald", "evalctl"};
  app.footer(kFooter);
  app.set_version_flag("--version", std::string("evalctl ") + EvalctlVersion());
  app.fallthrough();  // global flags are accepted after the command too
  app.require_subcommand(0, 1);
  std::string server, ca_file, cert_file, key_file;
  bool insecure = false;
  CLI::Option* server_opt =
      app.add_option("--server", server,
                     "evald address (default: $EVALD_ADDR, then config.yaml, then the socket)");
  CLI::Option* ca_opt =
      app.add_option("--ca-file", ca_file,
                     "PEM CA of evald's TLS certificate (default: $EVALD_CA_FILE, config.yaml, "
                     "the system's roots)");
  CLI::Option* cert_opt =
      app.add_option("--cert-file", cert_file, "client certificate (PEM) for mutual TLS");
  CLI::Option* key_opt = app.add_option("--key-file", key_file, "its private key (PEM)");
  app.add_flag("--insecure", insecure, "host:port without TLS (only to an evald that has no TLS)");

  // submit / run
  SubmitOptions submit;
  CLI::App* submit_cmd =
      app.add_subcommand("submit", "Compose a config here and submit it: one job per task");
  submit_cmd->add_option("config", submit.config_path, "the config YAML")->required();
  AddRepeated(submit_cmd, "-o,--override", &submit.overrides,
              "override, repeatable: a.b=v, +a.b=v, ~a.b, execution=slurm/default");
  AddRepeated(submit_cmd, "-t,--task", &submit.tasks,
              "run only this task (name or name.N), repeatable");
  AddRepeated(submit_cmd, "--config-dir", &submit.config_dirs,
              "folder searched for config groups before the packaged ones, repeatable");
  submit_cmd->add_flag("-n,--dry-run", submit.dry_run,
                       "render the config and every job script; store and start nothing");
  submit_cmd->add_flag("--wait", submit.wait, "then follow it like `watch` and exit as it does");
  submit_cmd->add_flag("--json", submit.json, "print one JSON object");
  submit_cmd->add_option("--idempotency-key", submit.idempotency_key,
                         "the same key twice gives one invocation (CI: $CI_PIPELINE_ID-$CI_JOB_ID);"
                         " default: a random key per submit");

  SubmitOptions run;
  std::string run_dir, run_name = "default";
  CLI::App* run_cmd = app.add_subcommand(
      "run", "The reference launcher's spelling: run -d DIR -c NAME [-o k=v]... [-n]");
  run_cmd->add_option("-d,--config-dir", run_dir, "folder of the config (default: packaged)");
  run_cmd->add_option("-c,--config-name", run_name, "config name in that folder")
      ->capture_default_str();
  AddRepeated(run_cmd, "-o,--override", &run.overrides, "override, repeatable");
  AddRepeated(run_cmd, "-t,--task", &run.tasks, "run only this task, repeatable");
  run_cmd->add_flag("-n,--dry-run", run.dry_run, "render only; store and start nothing");
  run_cmd->add_flag("--wait", run.wait, "then follow it like `watch`");
  run_cmd->add_flag("--json", run.json, "print one JSON object");
  run_cmd->add_option("--idempotency-key", run.idempotency_key,
                      "the same key twice gives one invocation; default: random per run");

  // status / watch / logs
  StatusOptions status;
  CLI::App* status_cmd = app.add_subcommand(
      "status", "State of invocations and jobs (no id: active ones and the 10 most recent)");
  status_cmd->add_option("ids", status.ids, "invocation or job ids (a `.` marks a job)");
  status_cmd->add_flag("--json", status.json, "one id: an object; several: an array");

  WatchOptions watch;
  CLI::App* watch_cmd = app.add_subcommand(
      "watch", "Follow an invocation or job live; exit 0 only if every job succeeded");
  watch_cmd->add_option("id", watch.id, "invocation or job id")->required();
  watch_cmd->add_flag("--logs", watch.logs, "also print the jobs' log lines");

  LogsOptions logs;
  CLI::App* logs_cmd = app.add_subcommand("logs", "Print a job's logs (an invocation: all jobs)");
  logs_cmd->add_option("id", logs.id, "job or invocation id")->required();
  logs_cmd->add_flag("-f,--follow", logs.follow, "keep printing until the job ends");
  logs_cmd->add_option("--tail", logs.tail, "only the last N lines (0: all)");
  logs_cmd->add_option("--source", logs.source, "stdout, stderr, server or all")
      ->capture_default_str();

  // kill / resume / results
  KillOptions kill;
  CLI::App* kill_cmd = app.add_subcommand("kill", "Stop an invocation or one job");
  kill_cmd->add_option("id", kill.id, "invocation or job id")->required();

  ResumeOptions resume;
  CLI::App* resume_cmd =
      app.add_subcommand("resume", "Re-run the failed, killed and lost jobs of an invocation");
  resume_cmd->add_option("id", resume.id, "invocation id (or a job id: that job)")->required();
  AddRepeated(resume_cmd, "--job", &resume.job_ids, "resume only this job, repeatable");
  resume_cmd->add_flag("--wait", resume.wait, "then follow it like `watch`");

  ResultsOptions results;
  CLI::App* results_cmd = app.add_subcommand("results", "Metrics of finished jobs");
  results_cmd->add_option("id", results.id, "invocation or job id")->required();
  CLI::Option* results_json = results_cmd->add_flag(
      "--json", results.json, "JSON array (with --fail-under: {results, gates, passed})");
  results_cmd->add_flag("--csv", results.csv, "CSV with a header row")->excludes(results_json);
  AddRepeated(results_cmd, "--fail-under", &results.fail_under,
              "TASK.METRIC[.SCORE]=VALUE (TASK may be *): exit 7 if a score is under it;"
              " repeatable");

  CompareOptions compare;
  CLI::App* compare_cmd = app.add_subcommand(
      "compare", "Per task and metric: both runs' values, b - a, and whether it is significant");
  compare_cmd->add_option("id-a", compare.id_a, "baseline invocation or job id")->required();
  compare_cmd->add_option("id-b", compare.id_b, "candidate invocation or job id")->required();
  compare_cmd->add_flag("--json", compare.json, "one JSON object");
  compare_cmd->add_flag("--fail-on-regression", compare.fail_on_regression,
                        "exit 1 when a metric is significantly lower in id-b");

  // ls
  CLI::App* ls_cmd = app.add_subcommand("ls", "List tasks (default) or runs");
  ls_cmd->require_subcommand(0, 1);
  LsTasksOptions ls_tasks;
  ls_cmd->add_flag("--json", ls_tasks.json, "same as `ls tasks --json`");
  CLI::App* ls_tasks_cmd = ls_cmd->add_subcommand("tasks", "Tasks evald can run");
  ls_tasks_cmd->add_flag("--json", ls_tasks.json, R"({"tasks": [{task, endpoint_type, ...}]})");
  ls_tasks_cmd->add_option("--harness", ls_tasks.harness, "only this harness");
  LsRunsOptions ls_runs;
  CLI::App* ls_runs_cmd = ls_cmd->add_subcommand("runs", "Invocations, newest first");
  ls_runs_cmd->add_option("--limit", ls_runs.limit, "at most N rows")->capture_default_str();
  ls_runs_cmd->add_option("--since", ls_runs.since,
                          "YYYY-MM-DD, YYYY-MM-DDTHH:MM:SS (local time), Nd or Nh");
  ls_runs_cmd->add_option("--state", ls_runs.state, "only invocations in this state");
  ls_runs_cmd->add_option("--executor", ls_runs.executor, "only this executor");
  ls_runs_cmd->add_flag("--mine", ls_runs.mine, "only runs I submitted");
  ls_runs_cmd->add_option("--user", ls_runs.user, "only runs this user submitted");

  InfoOptions info;
  CLI::App* info_cmd = app.add_subcommand(
      "info", "Paths, backend ids, deployments and resolved config of an invocation or job");
  info_cmd->add_option("id", info.id, "invocation or job id")->required();
  info_cmd->add_flag("--json", info.json, "one JSON object");
  info_cmd->add_flag("--no-config", info.no_config, "leave the resolved config out");

  ExportOptions export_opts;
  CLI::App* export_cmd = app.add_subcommand(
      "export",
      "Send the results of succeeded jobs to local files, MLflow, W&B or Google Sheets (run by "
      "evald)");
  export_cmd->add_option("ids", export_opts.ids, "invocation or job ids")->required();
  export_cmd->add_option("--dest", export_opts.dest, "local, mlflow, wandb or gsheets")
      ->capture_default_str();
  export_cmd->add_option("--config", export_opts.config_path,
                         "exporter config YAML (the destination's keys, or export.<dest>)");
  AddRepeated(export_cmd, "-o,--override", &export_opts.overrides,
              "export.<dest>.KEY=VALUE, repeatable");
  export_cmd->add_option("--output-dir", export_opts.output_dir,
                         "local: where files go (on evald's machine; default: this directory)");
  export_cmd->add_option("--output-filename", export_opts.output_filename,
                         "local: summary file name (default processed_results.<format>)");
  export_cmd->add_option("--format", export_opts.format, "local: summary format, json or csv");
  CLI::Option* copy_logs =
      export_cmd->add_flag("--copy-logs")->description("local: also copy the jobs' logs");
  CLI::Option* only_required =
      export_cmd->add_flag("--only-required")
          ->description("local: copy only the required artifacts (the default)");
  CLI::Option* all_artifacts =
      export_cmd->add_flag("--no-only-required")
          ->description("local: copy the whole artifacts tree and the logs");
  all_artifacts->excludes(only_required);
  CLI::Option* copy_artifacts =
      export_cmd->add_flag("--copy-artifacts")
          ->description(
              "copy the artifacts (local, the default) or log them as run files (mlflow, wandb)");
  CLI::Option* no_artifacts =
      export_cmd->add_flag("--no-copy-artifacts")
          ->description(
              "local: write the job metadata and summary only; mlflow, wandb: log no files");
  no_artifacts->excludes(copy_artifacts);
  AddRepeated(export_cmd, "--log-metrics", &export_opts.log_metrics,
              "export only metrics whose key contains NAME, repeatable");
  export_cmd->add_flag("--json", export_opts.json, "one JSON object");
  export_cmd->add_flag("--retry", export_opts.retry,
                       "re-queue the failed auto-exports of the ids (to --dest only when given)");

  CLI::App* version_cmd = app.add_subcommand("version", "evalctl's and evald's versions");

  LoginOptions login;
  CLI::App* login_cmd = app.add_subcommand(
      "login",
      "Save --server (with --ca-file, --cert-file/--key-file, --insecure) and a token in "
      "evalctl's config file, after checking evald answers");
  login_cmd->add_option("--token-file", login.token_file,
                        "read the token from this file (default: stdin; a terminal is asked)");
  login_cmd->add_flag("--no-token", login.no_token,
                      "save no token (a unix socket, where evald knows you by your uid)");

  // admin
  CLI::App* admin_cmd = app.add_subcommand("admin", "Server administration");
  admin_cmd->require_subcommand(1);
  BackupOptions backup;
  CLI::App* backup_cmd = admin_cmd->add_subcommand(
      "backup", "Consistent online copy of evald's database, written by evald to FILE");
  backup_cmd->add_option("file", backup.path, "where evald writes the copy (on its machine)")
      ->required();
  backup_cmd->add_flag("--overwrite", backup.overwrite, "replace FILE if it exists");
  backup_cmd->add_flag("--json", backup.json, "one JSON object");
  AdminTokensOptions tokens;
  CLI::App* tokens_cmd = admin_cmd->add_subcommand("tokens", "API tokens for TCP clients");
  tokens_cmd->require_subcommand(1);
  CLI::App* tokens_create = tokens_cmd->add_subcommand("create", "New token, printed once");
  tokens_create->add_option("--user", tokens.user, "who the token stands for")->required();
  tokens_create->add_option("--role", tokens.role, "admin, user or viewer")->capture_default_str();
  tokens_create->add_option("--expires", tokens.expires, "lifetime, e.g. 90d, 12h (default never)");
  tokens_create->add_flag("--json", tokens.json, "one JSON object (with the token)");
  CLI::App* tokens_ls = tokens_cmd->add_subcommand("ls", "Tokens (never their values)");
  tokens_ls->add_option("--user", tokens.user, "only this user's");
  tokens_ls->add_flag("--json", tokens.json, R"({"tokens": [...]})");
  CLI::App* tokens_revoke = tokens_cmd->add_subcommand("revoke", "Revoke a token or a user's");
  tokens_revoke->add_option("id", tokens.id, "token id (from ls)");
  tokens_revoke->add_option("--user", tokens.user, "revoke every token of this user");

  if (argc <= 1) {
    std::cout << app.help();
    return kExitOk;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitBadInput;
  }
  if (app.get_subcommands().empty()) {
    std::cout << app.help();
    return kExitOk;
  }

  auto given = [](CLI::Option* opt, const std::string& value) {
    return opt->count() > 0 ? std::optional<std::string>(value) : std::nullopt;
  };
  ConnectionFlags flags;
  flags.server = given(server_opt, server);
  flags.ca_file = given(ca_opt, ca_file);
  flags.cert_file = given(cert_opt, cert_file);
  flags.key_file = given(key_opt, key_file);
  flags.insecure = insecure;
  if (login_cmd->parsed()) {
    return RunLogin(flags, login, ProcessEnvLookup(), DefaultStateDir(), std::cin,
                    ::isatty(STDIN_FILENO) == 1, std::cout, std::cerr);
  }
  absl::StatusOr<Connection> connection =
      ResolveConnection(flags, ProcessEnvLookup(), DefaultStateDir());
  if (!connection.ok()) {
    std::cerr << "evalctl: " << connection.status().message() << "\n";
    return kExitBadInput;
  }
  for (const std::string& w : connection->warnings) std::cerr << "evalctl: warning: " << w << "\n";
  std::unique_ptr<EvalApi> api = NewGrpcEvalApi(*connection);
  Context ctx;
  ctx.api = api.get();
  ctx.address = connection->address;
  ctx.out = &std::cout;
  ctx.err = &std::cerr;
  const char* term = std::getenv("TERM");
  ctx.tty = ::isatty(STDOUT_FILENO) == 1 && !(term != nullptr && std::strcmp(term, "dumb") == 0);
  if (ctx.tty) ctx.terminal_width = TerminalWidth();

  if (submit_cmd->parsed()) return RunSubmit(ctx, submit, ComposeWithConfigLibrary);
  if (run_cmd->parsed()) {
    std::string dir = run_dir.empty() ? PackagedConfigsDir() : run_dir;
    run.config_path = RunPrimaryPath(dir, run_name);
    if (!run_dir.empty()) run.config_dirs.push_back(run_dir);
    return RunSubmit(ctx, run, ComposeWithConfigLibrary);
  }
  if (status_cmd->parsed()) return RunStatus(ctx, status);
  if (watch_cmd->parsed()) return RunWatch(ctx, watch);
  if (logs_cmd->parsed()) return RunLogs(ctx, logs);
  if (kill_cmd->parsed()) return RunKill(ctx, kill);
  if (resume_cmd->parsed()) return RunResume(ctx, resume);
  if (results_cmd->parsed()) return RunResults(ctx, results);
  if (compare_cmd->parsed()) return RunCompare(ctx, compare);
  if (ls_cmd->parsed()) {
    if (ls_runs_cmd->parsed()) return RunLsRuns(ctx, ls_runs);
    return RunLsTasks(ctx, ls_tasks);
  }
  if (info_cmd->parsed()) return RunInfo(ctx, info);
  if (export_cmd->parsed()) {
    // Only flags given on the command line are sent; the rest is the config's.
    if (copy_logs->count() > 0) export_opts.copy_logs = true;
    if (only_required->count() > 0) export_opts.only_required = true;
    if (all_artifacts->count() > 0) export_opts.only_required = false;
    if (copy_artifacts->count() > 0) export_opts.copy_artifacts = true;
    if (no_artifacts->count() > 0) export_opts.copy_artifacts = false;
    if (export_opts.retry && export_cmd->get_option("--dest")->count() == 0) export_opts.dest = "";
    return RunExport(ctx, export_opts);
  }
  if (version_cmd->parsed()) return RunVersion(ctx);
  if (backup_cmd->parsed()) return RunBackup(ctx, backup);
  if (tokens_create->parsed()) return RunAdminTokensCreate(ctx, tokens);
  if (tokens_ls->parsed()) return RunAdminTokensList(ctx, tokens);
  if (tokens_revoke->parsed()) return RunAdminTokensRevoke(ctx, tokens);
  std::cout << app.help();
  return kExitOk;
}

}  // namespace evald::cli

int main(int argc, char** argv) {
#if defined(__SANITIZE_ADDRESS__)
  return evald::cli::Main(argc, argv);  // exit normally: LeakSanitizer checks at exit
#else
  // One extra reference keeps gRPC initialised when Main's channel goes away, and _Exit skips the
  // shutdown: joining gRPC's threads took ~4 ms of a ~20 ms `evalctl status`, after the output
  // was complete. Everything evalctl writes is flushed first; files it wrote are closed by then.
  grpc_init();
  const int code = evald::cli::Main(argc, argv);
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);
  std::_Exit(code);
#endif
}
