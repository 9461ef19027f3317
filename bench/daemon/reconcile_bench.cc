// Reconcile benchmark: the CPU one Supervisor pass costs with N live jobs spread over two
// executors (scriptable fakes that answer at once, so the figure is evald's own work: listing the
// active jobs, queueing one batched Poll per executor, applying the answers). Prints the CPU and
// wall time per pass next to the target (< 50 ms of CPU for 1,000 jobs).
//   bench/daemon/reconcile [--jobs N] [--passes N]
#include <sys/resource.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "daemon/server_core.h"
#include "tests/daemon/fake_executor.h"
#include "spdlog/spdlog.h"
#include "tests/executors/local/test_util.h"

namespace {

using evald::testing::FakeExecutor;

double CpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"evald reconcile benchmark"};
  int jobs = 1000;
  int passes = 50;
  std::string source_dir = EVALD_SOURCE_DIR;
  app.add_option("--jobs", jobs, "live jobs, half on each executor");
  app.add_option("--passes", passes, "passes measured");
  app.add_option("--source-dir", source_dir, "the evald source tree (packaged configs)");
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::warn);  // a line per job start would be the bulk of the CPU

  evald::testing::TempDir dir;
  evald::daemon::ServerConfig config;
  config.state_dir = dir.path() + "/state";
  config.configs_dir = source_dir + "/configs";
  config.runner_path = "/bin/true";
  config.max_running_jobs = 0;
  // Poll at every pass, so every measured pass observes every job.
  config.executor_poll = {{"fake_a", absl::Milliseconds(10)}, {"fake_b", absl::Milliseconds(10)}};
  if (!evald::daemon::FinalizeServerConfig(config).ok()) return 1;
  std::vector<std::unique_ptr<evald::executors::Executor>> fakes;
  for (const char* name : {"fake_a", "fake_b"}) {
    auto fake = std::make_unique<FakeExecutor>(name);
    fake->ExitAfterPolls(1 << 30, 0);
    fakes.push_back(std::move(fake));
  }
  auto core = evald::daemon::ServerCore::Create(config, nullptr, std::move(fakes));
  if (!core.ok()) {
    std::fprintf(stderr, "%s\n", core.status().ToString().c_str());
    return 1;
  }
  evald::daemon::Supervisor& supervisor = (*core)->supervisor();

  // Invocations of 100 tasks each, alternating between the two executors.
  const int per_invocation = 100;
  for (int made = 0, n = 0; made < jobs; made += per_invocation, ++n) {
    std::string yaml = absl::StrCat(
        "execution:\n  type: ", n % 2 == 0 ? "fake_a" : "fake_b", "\n  output_dir: ", dir.path(),
        "/out\ntarget:\n  api_endpoint:\n    url: http://127.0.0.1:9/v1/chat/completions\n"
        "    model_id: m\n    api_key_name: null\nevaluation:\n  tasks:\n");
    for (int i = 0; i < std::min(per_invocation, jobs - made); ++i) {
      absl::StrAppend(&yaml, "    - name: native_gsm8k\n");
    }
    evald::v1::SubmitRequest request;
    request.set_config_yaml(yaml);
    request.set_composed(true);
    evald::v1::SubmitResponse response;
    absl::Status s = (*core)->Submit(evald::daemon::LocalCaller(geteuid()), request, &response);
    if (!s.ok()) {
      std::fprintf(stderr, "submit: %s\n", s.ToString().c_str());
      return 1;
    }
  }
  // Start everything and let the first observations land.
  absl::Time started = absl::Now();
  for (int i = 0; i < 200; ++i) {
    supervisor.Settle(absl::Seconds(30));
    absl::SleepFor(absl::Milliseconds(10));
    auto live = (*core)->store().ListActiveJobs();
    if (!live.ok()) return 1;
    int running = 0;
    for (const evald::JobRecord& job : *live) running += job.state == evald::JobState::kRunning;
    if (running == jobs) break;
  }
  std::printf("%d jobs started and running in %.1f s\n", jobs,
              absl::ToDoubleSeconds(absl::Now() - started));

  // One measured pass in the steady state: list the active jobs, apply the answers of the polls
  // queued by the previous pass, queue the next Poll of each executor; plus that Poll's work on the
  // executors' threads (the fakes answer at once).
  double cpu = 0, wall = 0, worst_cpu = 0;
  supervisor.ReconcileOnce();
  for (int i = 0; i < passes; ++i) {
    while (!supervisor.Idle()) absl::SleepFor(absl::Milliseconds(1));
    absl::SleepFor(absl::Milliseconds(12));  // the poll interval has passed: every job is due
    double c0 = CpuSeconds();
    absl::Time w0 = absl::Now();
    supervisor.ReconcileOnce();
    while (!supervisor.Idle()) absl::SleepFor(absl::Microseconds(200));
    double c = CpuSeconds() - c0;
    cpu += c;
    worst_cpu = std::max(worst_cpu, c);
    wall += absl::ToDoubleSeconds(absl::Now() - w0);
  }
  std::printf("reconcile pass, %d live jobs on 2 executors: %.2f ms CPU (worst %.2f), %.2f ms wall "
              "per pass over %d passes  [target < 50 ms CPU]\n",
              jobs, 1e3 * cpu / passes, 1e3 * worst_cpu, 1e3 * wall / passes, passes);
  return 0;
}
