// Group commit of CreateInvocation: calls that arrive while another is being committed are
// committed together, each keeping its own outcome (stored, refused, or the same invocation for a
// repeated idempotency key), and a failure of the shared transaction fails all of them with
// nothing stored.
#include <atomic>
#include <chrono>
#include <set>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "storage_test_util.h"

namespace evald::storage {
namespace {

using testing::Contains;
using testing::CountRows;
using testing::MakeInvocation;
using testing::MakeJobs;
using testing::OpenStore;
using testing::TempDir;

struct Call {
  std::string id;
  std::optional<SubmitKey> key;
  absl::Status status;
  std::vector<EventRecord> events;
};

void Run(Store& store, Call& c, const std::string& config_yaml = "") {
  InvocationRecord inv = MakeInvocation(c.id, 1000);
  if (!config_yaml.empty()) inv.config_yaml = config_yaml;
  c.status = store.CreateInvocation(inv, MakeJobs(inv), {}, {{"API_KEY", "sk-" + c.id}}, 2000,
                                    &c.events, c.key.has_value() ? &*c.key : nullptr);
}

// Waits (up to 10 s) until `n` calls are queued behind the leader.
bool WaitQueued(Store& store, size_t n) {
  for (int i = 0; i < 10000 && store.QueuedCreatesForTest() < n; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return store.QueuedCreatesForTest() == n;
}

TEST_CASE("Creates queued behind a commit are committed together, each with its own outcome") {
  TempDir dir;
  auto store = OpenStore(dir);
  const std::string db = dir / "state/evald.db";
  Call existing{.id = "000000e0"};
  Run(*store, existing);
  REQUIRE_OK(existing.status);
  Call keyed{.id = "000000d0", .key = SubmitKey{"k-other", "request X", ""}};
  Run(*store, keyed);
  REQUIRE_OK(keyed.status);

  std::vector<Call> calls = {
      {.id = "000000e1"},                                               // the leader
      {.id = "000000e2"},                                               // stored
      {.id = "000000e0"},                                               // id taken: AlreadyExists
      {.id = "000000e3", .key = SubmitKey{"k-same", "request R", ""}},  // one of these two is
      {.id = "000000e4",
       .key = SubmitKey{"k-same", "request R", ""}},  // stored, the other names it
      {.id = "000000e5", .key = SubmitKey{"k-other", "request Y", ""}},  // FailedPrecondition
      {.id = "000000e6"},                                                // stored
  };
  const size_t followers = calls.size() - 1;
  std::vector<size_t> batches;
  std::atomic<bool> leader_in_hook{false};
  bool all_queued = false;
  store->SetBeforeBatchHookForTest([&](size_t n) {
    batches.push_back(n);
    if (batches.size() == 1) {
      leader_in_hook = true;
      all_queued = WaitQueued(*store, followers);
    }
  });
  std::vector<std::thread> threads;
  threads.emplace_back([&] { Run(*store, calls[0]); });
  while (!leader_in_hook) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  for (size_t i = 1; i < calls.size(); ++i) threads.emplace_back([&, i] { Run(*store, calls[i]); });
  for (auto& t : threads) t.join();

  REQUIRE(all_queued);
  CHECK(batches == std::vector<size_t>{1, followers});
  REQUIRE_OK(calls[0].status);
  REQUIRE_OK(calls[1].status);
  REQUIRE_CODE(calls[2].status, absl::StatusCode::kAlreadyExists);
  REQUIRE_OK(calls[3].status);
  REQUIRE_OK(calls[4].status);
  REQUIRE_CODE(calls[5].status, absl::StatusCode::kFailedPrecondition);
  CHECK(Contains(std::string(calls[5].status.message()), "000000d0"));
  REQUIRE_OK(calls[6].status);

  // One of the two calls with one key was stored; the other names it and stored nothing.
  Call& first = calls[3].key->existing_invocation_id.empty() ? calls[3] : calls[4];
  Call& second = &first == &calls[3] ? calls[4] : calls[3];
  CHECK(first.key->existing_invocation_id.empty());
  CHECK(second.key->existing_invocation_id == first.id);
  CHECK(second.events.empty());
  CHECK_FALSE(store->GetInvocation(second.id).ok());

  // The refused calls left nothing behind; the others are stored whole with their events.
  for (const Call* c : {&calls[0], &calls[1], &first, &calls[6]}) {
    INFO(c->id);
    auto view = store->GetInvocation(c->id);
    REQUIRE_OK(view);
    CHECK(view->jobs.size() == 2);
    auto secrets = store->GetSecrets(c->id);
    REQUIRE_OK(secrets);
    CHECK(secrets->at("API_KEY") == "sk-" + c->id);
    REQUIRE(c->events.size() == 1);
    CHECK(c->events[0].kind == "invocation.submitted");
    CHECK(c->events[0].invocation_id == c->id);
  }
  CHECK(calls[2].events.empty());
  CHECK(calls[5].events.empty());
  CHECK_FALSE(store->GetInvocation("000000e5").ok());
  auto original = store->GetInvocation("000000e0");
  REQUIRE_OK(original);
  CHECK(original->invocation.created_ms == 1000);
  CHECK(CountRows(db, "invocations") == 2 + 4);
  CHECK(CountRows(db, "jobs") == 2 * (2 + 4));
  CHECK(CountRows(db, "events") == 2 + 4);
  CHECK(CountRows(db, "submit_keys") == 2);
  std::set<int64_t> seqs;
  for (const Call& c : calls) {
    for (const EventRecord& e : c.events) seqs.insert(e.seq);
  }
  CHECK(seqs.size() == 4);
}

TEST_CASE("Many threads creating at once all get their invocations stored") {
  TempDir dir;
  auto store = OpenStore(dir);
  constexpr int kThreads = 8;
  constexpr int kEach = 40;
  std::vector<std::size_t> batches;
  absl::Mutex batches_mu;
  store->SetBeforeBatchHookForTest([&](size_t n) {
    absl::MutexLock lock(&batches_mu);
    batches.push_back(n);
  });
  std::vector<std::vector<Call>> calls(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        Call c{.id = absl::StrCat(absl::Hex(0xa0000000 + t * 1000 + i, absl::kZeroPad8))};
        if (i % 2 == 0) c.key = SubmitKey{absl::StrCat("k-", c.id), "request", ""};
        Run(*store, c);
        calls[t].push_back(std::move(c));
      }
    });
  }
  for (auto& t : threads) t.join();
  size_t committed = 0;
  for (size_t n : batches) committed += n;
  CHECK(committed == kThreads * kEach);
  for (const auto& list : calls) {
    for (const Call& c : list) {
      INFO(c.id);
      REQUIRE_OK(c.status);
      REQUIRE(c.events.size() == 1);
    }
  }
  const std::string db = dir / "state/evald.db";
  CHECK(CountRows(db, "invocations") == kThreads * kEach);
  CHECK(CountRows(db, "events") == kThreads * kEach);
  CHECK(CountRows(db, "submit_keys") == kThreads * kEach / 2);
}

TEST_CASE("A group commit that fails fails every call in it and stores none of them") {
  if (geteuid() != 0) {
    WARN("FULL-DISK GROUP COMMIT TEST NOT RUN: it needs root to mount a small tmpfs");
    return;
  }
  TempDir dir;
  const std::string mnt = dir / "small";
  std::filesystem::create_directories(mnt);
  std::string error;
  auto mount = testing::ScopedMount::Tmpfs(mnt, "size=3m,mode=0700", &error);
  if (mount == nullptr) {
    WARN("FULL-DISK GROUP COMMIT TEST NOT RUN: cannot mount a tmpfs (" << error << ")");
    return;
  }
  const std::string filler = mnt + "/filler";
  {
    auto opened = Store::Open({.db_path = mnt + "/evald.db", .key_path = mnt + "/secrets.key"});
    REQUIRE_OK(opened);
    Store& store = **opened;
    std::vector<Call> calls = {{.id = "000000f1"},
                               {.id = "000000f2"},
                               {.id = "000000f3"},
                               {.id = "000000f4", .key = SubmitKey{"k", "request", ""}}};
    const size_t followers = calls.size() - 1;
    std::atomic<bool> leader_in_hook{false};
    bool all_queued = false;
    int batch = 0;
    store.SetBeforeBatchHookForTest([&](size_t) {
      if (++batch == 1) {
        leader_in_hook = true;
        all_queued = WaitQueued(store, followers);
        return;
      }
      // Fill the file system before the followers' batch.
      std::ofstream out(filler, std::ios::binary);
      const std::string chunk(64 * 1024, 'x');
      while (out.write(chunk.data(), chunk.size())) {
      }
      std::ofstream tail(filler + "-tail", std::ios::binary);
      while (tail.put('x')) tail.flush();
    });
    const std::string big(256 * 1024, 'y');
    std::vector<std::thread> threads;
    threads.emplace_back([&] { Run(store, calls[0]); });
    while (!leader_in_hook) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    for (size_t i = 1; i < calls.size(); ++i) {
      threads.emplace_back([&, i] { Run(store, calls[i], big); });
    }
    for (auto& t : threads) t.join();
    REQUIRE(all_queued);
    CHECK(batch == 2);
    REQUIRE_OK(calls[0].status);
    for (size_t i = 1; i < calls.size(); ++i) {
      INFO(calls[i].id);
      REQUIRE_CODE(calls[i].status, absl::StatusCode::kResourceExhausted);
      CHECK(calls[i].events.empty());
      REQUIRE_CODE(store.GetInvocation(calls[i].id), absl::StatusCode::kNotFound);
    }
    CHECK(calls[3].key->existing_invocation_id.empty());

    // Space comes back: the same calls succeed, and the key was not taken by the failed one.
    store.SetBeforeBatchHookForTest(nullptr);
    std::filesystem::remove(filler);
    std::filesystem::remove(filler + "-tail");
    for (size_t i = 1; i < calls.size(); ++i) {
      Run(store, calls[i], big);
      REQUIRE_OK(calls[i].status);
    }
    CHECK(calls[3].key->existing_invocation_id.empty());
    auto count = store.CountInvocations();
    REQUIRE_OK(count);
    CHECK(*count == 4);
  }
  REQUIRE(testing::Raw(mnt + "/evald.db")->execAndGet("PRAGMA integrity_check").getString() ==
          "ok");
}

}  // namespace
}  // namespace evald::storage
