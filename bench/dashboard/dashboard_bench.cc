// evald_dashboard_bench: how fast the dashboard's invocation list answers with many invocations
// stored (issue 15: the list page must load in < 300 ms with 100,000). Two steps, driven by
// bench/dashboard/run around a real evald:
//
//   evald_dashboard_bench populate --state-dir DIR [--invocations 100000]
//   evald_dashboard_bench measure --port PORT [--calls 200]
//
// `measure` prints p50/p99 of GET /api/v1/invocations for the first page and filtered pages.
#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "core/ids.h"
#include "nlohmann/json.hpp"
#include "storage/store.h"

namespace {

namespace fs = std::filesystem;

// `n` finished invocations of one job each, through the Store API; owners, tasks and end states
// vary so the filters have something to select (task "rare" is one invocation in 1000).
int Populate(const std::string& state_dir, int n) {
  fs::create_directories(state_dir);
  auto store = evald::storage::Store::Open(
      {.db_path = state_dir + "/evald.db", .key_path = state_dir + "/secrets.key"});
  if (!store.ok()) {
    std::fprintf(stderr, "%s\n", std::string(store.status().message()).c_str());
    return 2;
  }
  const int64_t t0 = 1'700'000'000'000;
  for (int i = 0; i < n; ++i) {
    evald::InvocationRecord inv;
    inv.id = absl::StrCat(absl::Hex(0x10000000 + i, absl::kZeroPad8));
    inv.executor = i % 3 == 0 ? "slurm" : "local";
    const std::string task = i % 1000 == 0 ? "rare" : (i % 2 == 0 ? "gsm8k" : "mmlu");
    inv.config_yaml = absl::StrCat("execution:\n  type: ", inv.executor,
                                   "\nevaluation:\n  tasks:\n    - name: ", task, "\n");
    inv.run_dir = "/tmp/out/" + inv.id;
    inv.mode = "parallel";
    inv.tasks = {task};
    inv.owner = absl::StrCat("user", i % 20);
    inv.created_ms = t0 + static_cast<int64_t>(i) * 1000;
    evald::JobRecord job;
    job.id = evald::JobId(inv.id, 0);
    job.invocation_id = inv.id;
    job.task = task;
    job.harness = "lm-evaluation-harness";
    job.output_dir = inv.run_dir + "/" + task;
    job.created_ms = inv.created_ms;
    absl::Status created = (*store)->CreateInvocation(inv, {job}, {}, {}, inv.created_ms, nullptr);
    if (!created.ok()) {
      std::fprintf(stderr, "%s\n", std::string(created.message()).c_str());
      return 3;
    }
    // As the supervisor would: started, then ended (succeeded, or failed one time in seven).
    evald::JobState end = i % 7 == 0 ? evald::JobState::kFailed : evald::JobState::kSucceeded;
    for (auto [from, to] : {std::pair{evald::JobState::kPending, evald::JobState::kRunning},
                            std::pair{evald::JobState::kRunning, end}}) {
      auto moved =
          (*store)->TransitionJob({.job_id = job.id, .from = from, .to = to}, inv.created_ms + 500);
      if (!moved.ok()) {
        std::fprintf(stderr, "%s\n", std::string(moved.status().message()).c_str());
        return 3;
      }
    }
  }
  return 0;
}

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

int Measure(int port, int calls) {
  httplib::Client cli("127.0.0.1", port);
  cli.set_keep_alive(true);
  cli.set_tcp_nodelay(true);  // as browsers do
  // The second page's token, so "page 2" is measured as the page asks for it.
  auto first = cli.Get("/api/v1/invocations?limit=50");
  if (!first || first->status != 200) {
    std::fprintf(stderr, "GET /api/v1/invocations failed\n");
    return 2;
  }
  const std::string token = nlohmann::json::parse(first->body)["nextPageToken"].get<std::string>();
  const std::vector<std::pair<std::string, std::string>> queries = {
      {"first page (50)", "/api/v1/invocations?limit=50"},
      {"page 2 (keyset)", "/api/v1/invocations?limit=50&page_token=" + token},
      {"state=failed", "/api/v1/invocations?limit=50&state=failed"},
      {"owner=user7", "/api/v1/invocations?limit=50&owner=user7"},
      {"executor=slurm", "/api/v1/invocations?limit=50&executor=slurm"},
      {"task=rare (1 in 1000)", "/api/v1/invocations?limit=50&task=rare"},
      {"q=100186 (id search)", "/api/v1/invocations?limit=50&q=100186"},
  };
  std::printf("%-24s %10s %10s %8s\n", "GET /api/v1/invocations", "p50 ms", "p99 ms", "rows");
  for (const auto& [name, path] : queries) {
    std::vector<double> ms;
    size_t rows = 0;
    for (int i = 0; i < calls; ++i) {
      auto t = std::chrono::steady_clock::now();
      auto r = cli.Get(path.c_str());
      ms.push_back(
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count());
      if (!r || r->status != 200) {
        std::fprintf(stderr, "%s failed\n", path.c_str());
        return 2;
      }
      if (i == 0) rows = nlohmann::json::parse(r->body)["invocations"].size();
    }
    std::printf("%-24s %10.2f %10.2f %8zu\n", name.c_str(), Percentile(ms, 0.5),
                Percentile(ms, 0.99), rows);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"evald dashboard list benchmark"};
  app.require_subcommand(1);
  std::string state_dir;
  int invocations = 100000;
  int port = 0;
  int calls = 200;
  CLI::App* populate = app.add_subcommand("populate", "fill a fresh state dir");
  populate->add_option("--state-dir", state_dir)->required();
  populate->add_option("--invocations", invocations);
  CLI::App* measure = app.add_subcommand("measure", "time GET /api/v1/invocations");
  measure->add_option("--port", port)->required();
  measure->add_option("--calls", calls);
  CLI11_PARSE(app, argc, argv);
  if (populate->parsed()) return Populate(state_dir, invocations);
  return Measure(port, calls);
}
