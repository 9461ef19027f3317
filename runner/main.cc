// evalrun: runs one native evaluation from a plan file (docs/runner.md).
#include <fcntl.h>
#include <signal.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runner/plan.h"
#include "runner/runner.h"
#include "runner/task.h"

#ifdef EVALD_WITH_MIMALLOC
#include <mimalloc.h>
#endif

namespace {

std::atomic<int> g_signal{0};
int g_wake_pipe[2] = {-1, -1};

// Async-signal-safe: an atomic store and a write to a non-blocking pipe.
void OnSignal(int sig) {
  int expected = 0;
  g_signal.compare_exchange_strong(expected, sig);
  if (g_wake_pipe[1] >= 0) {
    char c = 1;
    ssize_t ignored = ::write(g_wake_pipe[1], &c, 1);
    (void)ignored;
  }
}

void InstallSignalHandlers() {
  if (::pipe2(g_wake_pipe, O_NONBLOCK | O_CLOEXEC) != 0) {
    g_wake_pipe[0] = g_wake_pipe[1] = -1;
  }
  struct sigaction sa {};
  sa.sa_handler = &OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

constexpr char kFooter[] = R"(
Reads a plan (docs/design/job-contract.md), sends one request per sample (x repeats) to the
OpenAI-compatible endpoint it names, scores the answers and writes into config.output_dir:
  results.yml, eval_factory_metrics.json, samples.jsonl, run_config.yml, progress, progress.json,
  cache/ (responses, so a rerun sends only what is missing), request_log.jsonl and
  response_log.jsonl (when logging is on).
Environment: the API key from the variable target.api_endpoint.api_key names (API_KEY by
default); HF_TOKEN for gated dataset URLs; EVALD_DATASET_CACHE for downloaded datasets.
Built-in tasks: native_gsm8k, native_mmlu, native_mmlu_pro, native_gpqa_diamond, native_ifeval;
user tasks through config.task_file (docs/tasks.md).
Exit codes: 0 ok, 1 internal error, 2 bad input (plan, task file, dataset, template),
  3 endpoint unreachable / requests kept failing, 4 scoring or result writing failed,
  5 credentials refused (401/403), 143/130 stopped by SIGTERM/SIGINT (results and cache flushed).)";

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"evalrun: the native evaluation runner of evald", "evalrun"};
  app.footer(kFooter);
  std::string plan_path;
  bool dry_run = false;
  std::vector<std::string> overrides;
  std::string log_level = "info";
  app.add_option("--plan", plan_path, "Plan file written by the executor (plan.yaml)")->required();
  app.add_flag("--dry-run", dry_run,
               "Validate the plan, task and dataset, print the first request; send nothing");
  app.add_option("-o,--override", overrides,
                 "Dotted override applied to the plan, value parsed as YAML "
                 "(e.g. -o config.params.limit_samples=10); repeatable");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off (stderr)")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));
#ifdef EVALD_WITH_MIMALLOC
  // Also keeps the link to mimalloc (its malloc replaces glibc's for the whole process).
  const std::string version = absl::StrCat("evalrun 0.1.0 (mimalloc ", mi_version(), ")");
#else
  const std::string version = "evalrun 0.1.0";
#endif
  app.set_version_flag("--version", version);
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return evald::runner::kExitBadInput;
  }

  auto logger = spdlog::stderr_logger_mt("evalrun");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%l] %v");
  spdlog::set_level(spdlog::level::from_str(log_level));

  auto plan = evald::runner::LoadPlan(plan_path, overrides);
  if (!plan.ok()) {
    std::cerr << "evalrun: " << plan.status().message() << "\n";
    return evald::runner::ExitCodeForStatus(plan.status());
  }
  if (dry_run) {
    absl::Status s = evald::runner::DryRun(*plan, std::cout);
    if (!s.ok()) {
      std::cerr << "evalrun: " << s.message() << "\n";
      return evald::runner::ExitCodeForStatus(s);
    }
    return 0;
  }

  InstallSignalHandlers();
  evald::runner::RunnerOptions options;
  options.stop_signal = &g_signal;
  options.wake_fd = g_wake_pipe[0];
  options.command = absl::StrCat("evalrun --plan ", plan->path, overrides.empty() ? "" : " -o ",
                                 absl::StrJoin(overrides, " -o "));
  options.out = &std::cout;
  evald::runner::RunOutcome outcome = evald::runner::RunEvaluation(*plan, options);
  int code = evald::runner::ExitCode(outcome);
  if (!outcome.status.ok()) {
    std::cerr << "evalrun: " << outcome.status.message() << " (exit code " << code << ")\n";
  }
  spdlog::shutdown();
  return code;
}
