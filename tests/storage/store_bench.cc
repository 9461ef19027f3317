// evald_storage_bench: latency of the Store operations behind the daemon's targets (Submit p99
// < 20 ms with 8 concurrent clients; GetInvocation p99 < 2 ms and ListInvocations(limit 50) p99
// < 10 ms with 100,000 invocations). Prints numbers; asserts nothing.
//
//   evald_storage_bench [invocations=100000] [dir=/tmp/evald-bench]
//
// A database left in `dir` by an earlier run with at least that many invocations is reused.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/ids.h"
#include "storage/invocation_repository.h"
#include "storage/store.h"

namespace {

using evald::InvocationRecord;
using evald::JobRecord;
using evald::JobState;
using evald::storage::InvocationFilter;
using evald::storage::InvocationRepository;
using evald::storage::Store;
using Clock = std::chrono::steady_clock;

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

void Report(const char* what, std::vector<double> ms) {
  std::sort(ms.begin(), ms.end());
  auto pct = [&](double p) { return ms[static_cast<size_t>(p * (ms.size() - 1))]; };
  std::printf("%-44s n=%-6zu p50=%7.3f ms  p99=%7.3f ms  max=%7.3f ms\n", what, ms.size(), pct(0.5),
              pct(0.99), ms.back());
}

std::string Id(int i) { return absl::StrFormat("%08x", i); }

void Make(int i, int64_t created_ms, const std::string& config, InvocationRecord* inv,
          std::vector<JobRecord>* jobs) {
  *inv = InvocationRecord{};
  inv->id = Id(i);
  inv->executor = i % 3 == 0 ? "slurm" : "local";
  inv->config_yaml = config;
  inv->run_dir = "/runs/" + inv->id;
  inv->mode = "parallel";
  inv->tasks = {"gsm8k", "mmlu", "ifeval"};
  inv->secret_names = {"API_KEY"};
  inv->client = "bench";
  inv->created_ms = created_ms;
  jobs->clear();
  for (int j = 0; j < 3; ++j) {
    JobRecord r;
    r.id = evald::JobId(inv->id, j);
    r.invocation_id = inv->id;
    r.index = j;
    r.task = inv->tasks[j];
    r.harness = "native";
    r.endpoint_type = "chat";
    r.spec_yaml = config.substr(0, 1024);
    jobs->push_back(r);
  }
}

long RssKb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return -1;
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 100000;
  const std::string dir = argc > 2 ? argv[2] : "/tmp/evald-bench";
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  const bool reuse = std::filesystem::exists(dir + "/evald.db");
  // Fresh ids for the submit measurements, so a reused database never collides.
  const int fresh = n + 1000 + static_cast<int>(std::random_device{}() % 1'000'000'000u);
  auto opened = Store::Open({.db_path = dir + "/evald.db", .key_path = dir + "/secrets.key"});
  if (!opened.ok()) {
    std::fprintf(stderr, "%s\n", opened.status().ToString().c_str());
    return 1;
  }
  Store& store = **opened;
  const std::string config(4096, 'c');
  const std::map<std::string, std::string> secrets = {{"API_KEY", "sk-bench"}};

  auto t0 = Clock::now();
  InvocationRecord inv;
  std::vector<JobRecord> jobs;
  auto existing = store.CountInvocations();
  if (!existing.ok()) {
    std::fprintf(stderr, "%s\n", existing.status().ToString().c_str());
    return 1;
  }
  if (reuse && *existing < n) {
    std::fprintf(stderr, "%s/evald.db has %lld invocations, fewer than %d: remove it first\n",
                 dir.c_str(), static_cast<long long>(*existing), n);
    return 1;
  }
  for (int i = reuse ? n : 0; i < n; ++i) {
    Make(i, 1'700'000'000'000 + i * 1000LL, config, &inv, &jobs);
    absl::Status s = store.CreateInvocation(inv, jobs, {}, secrets, inv.created_ms, nullptr);
    if (!s.ok()) {
      std::fprintf(stderr, "populate: %s\n", s.ToString().c_str());
      return 1;
    }
    // Most old invocations are finished, as in a long-lived daemon.
    if (i < n - 200) {
      for (const JobRecord& j : jobs) {
        (void)store.MarkStarting(j.id, inv.created_ms + 1);
        (void)store.TransitionJob(
            {.job_id = j.id, .from = JobState::kPending, .to = JobState::kRunning},
            inv.created_ms + 1);
        (void)store.TransitionJob(
            {.job_id = j.id, .from = JobState::kRunning, .to = JobState::kSucceeded},
            inv.created_ms + 2);
      }
    }
  }
  std::printf("%s %d invocations (3 jobs, 4 KB config each) in %.1f s; db %.1f MB\n",
              reuse ? "reused" : "populated", n, Ms(Clock::now() - t0) / 1000,
              std::filesystem::file_size(dir + "/evald.db") / 1e6);

  std::mt19937 rng(42);
  std::vector<double> ms;
  // Scheduling noise of this machine: the same spin, no I/O, no SQLite. On a loaded shared
  // machine its p99 shows how much of every p99 below is waiting for a CPU.
  for (int k = 0; k < 2000; ++k) {
    auto t = Clock::now();
    while (Clock::now() - t < std::chrono::microseconds(100)) {
    }
    ms.push_back(Ms(Clock::now() - t));
  }
  Report("baseline: 0.1 ms of pure CPU", ms);
  ms.clear();
  for (int k = 0; k < 2000; ++k) {
    const std::string id = Id(static_cast<int>(rng() % n));
    auto t = Clock::now();
    auto v = store.GetInvocation(id);
    ms.push_back(Ms(Clock::now() - t));
    if (!v.ok()) return 2;
  }
  Report("GetInvocation (random id)", ms);

  auto list = [&](const char* what, InvocationFilter f, bool deep) {
    std::vector<double> out;
    for (int k = 0; k < 300; ++k) {
      InvocationFilter g = f;
      g.limit = 50;
      if (deep) {
        // A page at a random depth, with the token the previous page would have returned.
        const int at = static_cast<int>(rng() % n);
        g.page_token =
            InvocationRepository::EncodePageToken(1'700'000'000'000 + at * 1000LL, Id(at));
      }
      auto t = Clock::now();
      auto page = store.ListInvocations(g);
      out.push_back(Ms(Clock::now() - t));
      if (!page.ok()) {
        std::fprintf(stderr, "%s: %s\n", what, page.status().ToString().c_str());
        return;
      }
    }
    Report(what, out);
  };
  list("ListInvocations(limit 50) first page", {}, false);
  list("ListInvocations(limit 50) random depth", {}, true);
  list("ListInvocations(limit 50, state=running)", {.state = JobState::kRunning}, false);
  list("ListInvocations(limit 50, executor=SLURM)", {.executor = "SLURM"}, false);
  list("ListInvocations(limit 50, state=succeeded)", {.state = JobState::kSucceeded}, false);

  ms.clear();
  size_t active = 0;
  for (int k = 0; k < 200; ++k) {
    auto t = Clock::now();
    auto a = store.ListActiveJobs();
    ms.push_back(Ms(Clock::now() - t));
    if (!a.ok()) return 3;
    active = a->size();
  }
  Report(absl::StrCat("ListActiveJobs (", active, " jobs)").c_str(), ms);

  ms.clear();
  for (int k = 0; k < 1000; ++k) {
    const int i = fresh + 100000 + k;
    Make(i, 1'900'000'000'000 + i, config, &inv, &jobs);
    auto t = Clock::now();
    absl::Status s = store.CreateInvocation(inv, jobs, {}, secrets, inv.created_ms, nullptr);
    ms.push_back(Ms(Clock::now() - t));
    if (!s.ok()) std::fprintf(stderr, "submit: %s\n", s.ToString().c_str());
  }
  Report("CreateInvocation, 1 thread", ms);

  // 8 concurrent submitters.
  std::vector<std::vector<double>> per_thread(8);
  std::vector<std::thread> threads;
  for (int th = 0; th < 8; ++th) {
    threads.emplace_back([&, th] {
      InvocationRecord my;
      std::vector<JobRecord> my_jobs;
      for (int k = 0; k < 250; ++k) {
        const int i = fresh + th * 1000 + k;
        Make(i, 1'800'000'000'000 + i, config, &my, &my_jobs);
        auto t = Clock::now();
        absl::Status s = store.CreateInvocation(my, my_jobs, {}, secrets, my.created_ms, nullptr);
        per_thread[th].push_back(Ms(Clock::now() - t));
        if (!s.ok()) std::fprintf(stderr, "submit: %s\n", s.ToString().c_str());
      }
    });
  }
  for (std::thread& t : threads) t.join();
  std::vector<double> all;
  for (auto& v : per_thread) all.insert(all.end(), v.begin(), v.end());
  Report("CreateInvocation, 8 concurrent threads", all);

  // Finish what this run submitted, so a reused database keeps only the original active jobs.
  auto finish = [&](int i) {
    const std::string id = Id(i);
    (void)store.RequestStop(id, 1, nullptr);
    for (int j = 0; j < 3; ++j) {
      (void)store.TransitionJob(
          {.job_id = evald::JobId(id, j), .from = JobState::kPending, .to = JobState::kKilled}, 2);
    }
  };
  for (int k = 0; k < 1000; ++k) finish(fresh + 100000 + k);
  for (int th = 0; th < 8; ++th) {
    for (int k = 0; k < 250; ++k) finish(fresh + th * 1000 + k);
  }
  std::printf("process RSS: %.1f MB\n", RssKb() / 1024.0);
  return 0;
}
