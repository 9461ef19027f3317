// ListInvocations: ordering, filters, keyset pagination, page tokens, and the query plans that
// keep it fast with many invocations.
#include <set>

#include "absl/strings/escaping.h"
#include "absl/strings/str_format.h"
#include "storage/deployment_repository.h"
#include "storage/event_repository.h"
#include "storage/invocation_repository.h"
#include "storage/job_repository.h"
#include "storage_test_util.h"

namespace evald::storage {
namespace {

using testing::Contains;
using testing::CreateSimple;
using testing::Move;
using testing::OpenStore;
using testing::TempDir;

std::vector<std::string> Ids(const InvocationPage& page) {
  std::vector<std::string> ids;
  for (const InvocationRecord& r : page.invocations) ids.push_back(r.id);
  return ids;
}

TEST_CASE("ListInvocations is newest first with ties broken by id") {
  TempDir dir;
  auto store = OpenStore(dir);
  CreateSimple(*store, "00000011", 1000, "local", 1);
  CreateSimple(*store, "00000033", 3000, "local", 3);
  CreateSimple(*store, "00000022", 3000, "local", 2);
  CreateSimple(*store, "00000044", 2000, "local", 4);
  auto page = store->ListInvocations({});
  REQUIRE_OK(page);
  REQUIRE(Ids(*page) == std::vector<std::string>{"00000033", "00000022", "00000044", "00000011"});
  REQUIRE(page->job_counts == std::vector<int>{3, 2, 4, 1});
  REQUIRE(page->next_page_token.empty());
  REQUIRE(page->invocations[0].tasks.size() == 3);
  REQUIRE_FALSE(page->invocations[0].config_yaml.empty());
}

TEST_CASE("ListInvocations filters by state executor and since") {
  TempDir dir;
  auto store = OpenStore(dir);
  CreateSimple(*store, "00000101", 1000, "local", 1);
  CreateSimple(*store, "00000102", 2000, "Slurm", 1);
  CreateSimple(*store, "00000103", 3000, "slurm", 1);
  CreateSimple(*store, "00000104", 4000, "lepton", 1);
  REQUIRE_OK(
      store->TransitionJob(Move("00000103.0", JobState::kPending, JobState::kRunning), 3100));
  REQUIRE_OK(
      store->TransitionJob(Move("00000101.0", JobState::kPending, JobState::kRunning), 3100));

  InvocationFilter f;
  f.state = JobState::kRunning;
  auto page = store->ListInvocations(f);
  REQUIRE_OK(page);
  REQUIRE(Ids(*page) == std::vector<std::string>{"00000103", "00000101"});

  f = {};
  f.executor = "SLURM";
  page = store->ListInvocations(f);
  REQUIRE_OK(page);
  REQUIRE(Ids(*page) == std::vector<std::string>{"00000103", "00000102"});

  f = {};
  f.since_ms = 2000;
  page = store->ListInvocations(f);
  REQUIRE_OK(page);
  REQUIRE(Ids(*page) == std::vector<std::string>{"00000104", "00000103", "00000102"});

  f = {};
  f.state = JobState::kRunning;
  f.executor = "slurm";
  f.since_ms = 2500;
  page = store->ListInvocations(f);
  REQUIRE_OK(page);
  REQUIRE(Ids(*page) == std::vector<std::string>{"00000103"});

  f = {};
  f.state = JobState::kSucceeded;
  page = store->ListInvocations(f);
  REQUIRE_OK(page);
  REQUIRE(page->invocations.empty());
  REQUIRE(page->next_page_token.empty());
}

TEST_CASE("Pagination walks every invocation once with no gaps") {
  TempDir dir;
  auto store = OpenStore(dir);
  std::set<std::string> created;
  for (int i = 0; i < 23; ++i) {
    const std::string id = absl::StrFormat("%08x", 0x500 + i);
    // Several invocations share a created_ms, so the id must break ties across pages.
    CreateSimple(*store, id, 1000 + (i / 4) * 10, i % 2 ? "local" : "slurm", 1);
    created.insert(id);
  }
  for (int limit : {1, 4, 5, 23, 50}) {
    INFO("limit " << limit);
    InvocationFilter f;
    f.limit = limit;
    std::vector<std::string> seen;
    int pages = 0;
    int64_t last_created = INT64_MAX;
    std::string last_id = "~";
    while (true) {
      auto page = store->ListInvocations(f);
      REQUIRE_OK(page);
      ++pages;
      REQUIRE(static_cast<int>(page->invocations.size()) <= limit);
      for (const InvocationRecord& r : page->invocations) {
        // Strictly decreasing (created_ms, id) across all pages.
        REQUIRE((r.created_ms < last_created || (r.created_ms == last_created && r.id < last_id)));
        last_created = r.created_ms;
        last_id = r.id;
        seen.push_back(r.id);
      }
      if (page->next_page_token.empty()) break;
      REQUIRE(static_cast<int>(page->invocations.size()) == limit);
      f.page_token = page->next_page_token;
      REQUIRE(pages < 100);
    }
    REQUIRE(seen.size() == created.size());
    REQUIRE(std::set<std::string>(seen.begin(), seen.end()) == created);
    REQUIRE(pages == (23 + limit - 1) / limit);  // no extra empty page at the end
  }

  // Pagination with a filter.
  InvocationFilter f;
  f.executor = "slurm";
  f.limit = 5;
  std::vector<std::string> slurm;
  while (true) {
    auto page = store->ListInvocations(f);
    REQUIRE_OK(page);
    for (const InvocationRecord& r : page->invocations) {
      REQUIRE(r.executor == "slurm");
      slurm.push_back(r.id);
    }
    if (page->next_page_token.empty()) break;
    f.page_token = page->next_page_token;
  }
  REQUIRE(slurm.size() == 12);
}

TEST_CASE("Limits default cap and reject negatives") {
  TempDir dir;
  auto store = OpenStore(dir);
  for (int i = 0; i < 3; ++i) CreateSimple(*store, absl::StrFormat("%08x", 0x900 + i), 1000 + i);
  InvocationFilter f;
  f.limit = 0;
  auto page = store->ListInvocations(f);
  REQUIRE_OK(page);
  REQUIRE(page->invocations.size() == 3);
  f.limit = 1000000;
  page = store->ListInvocations(f);
  REQUIRE_OK(page);
  REQUIRE(page->invocations.size() == 3);
  f.limit = -1;
  REQUIRE_CODE(store->ListInvocations(f), absl::StatusCode::kInvalidArgument);
  REQUIRE(InvocationRepository::kDefaultLimit == 50);
  REQUIRE(InvocationRepository::kMaxLimit == 1000);
}

TEST_CASE("A malformed page token is InvalidArgument") {
  TempDir dir;
  auto store = OpenStore(dir);
  CreateSimple(*store, "00000a01", 1000);
  for (const std::string& token :
       {std::string("not base64 !!"), absl::WebSafeBase64Escape("v2:1000:00000a01"),
        absl::WebSafeBase64Escape("v1:abc:00000a01"), absl::WebSafeBase64Escape("v1:1000"),
        absl::WebSafeBase64Escape("v1:1000:NOT-AN-ID")}) {
    INFO(token);
    InvocationFilter f;
    f.page_token = token;
    auto page = store->ListInvocations(f);
    REQUIRE_CODE(page, absl::StatusCode::kInvalidArgument);
    REQUIRE(Contains(std::string(page.status().message()), "page token"));
  }
  InvocationFilter ok;
  ok.page_token = InvocationRepository::EncodePageToken(5000, "00000a01");
  auto page = store->ListInvocations(ok);
  REQUIRE_OK(page);
  REQUIRE(page->invocations.size() == 1);
}

// EXPLAIN QUERY PLAN of the exact SQL the repositories run.
std::string Plan(SQLite::Database& db, const std::string& sql) {
  SQLite::Statement q(db, "EXPLAIN QUERY PLAN " + sql);
  std::string plan;
  while (q.executeStep()) plan += q.getColumn(3).getString() + "\n";
  return plan;
}

TEST_CASE("The list and lookup queries use their indexes") {
  TempDir dir;
  { OpenStore(dir); }
  auto raw = testing::Raw(dir / "state/evald.db");

  InvocationFilter none;
  std::string plan = Plan(*raw, InvocationRepository::ListSql(none));
  INFO(plan);
  CHECK(Contains(plan, "invocations_by_created"));
  CHECK_FALSE(Contains(plan, "TEMP B-TREE"));

  InvocationFilter paged;
  paged.page_token = "x";
  plan = Plan(*raw, InvocationRepository::ListSql(paged));
  INFO(plan);
  CHECK(Contains(plan,
                 "SEARCH invocations USING INDEX invocations_by_created ((created_ms,id)<(?,?))"));
  CHECK_FALSE(Contains(plan, "TEMP B-TREE"));

  InvocationFilter by_state;
  by_state.state = JobState::kRunning;
  by_state.page_token = "x";
  plan = Plan(*raw, InvocationRepository::ListSql(by_state));
  INFO(plan);
  CHECK(Contains(plan,
                 "SEARCH invocations USING INDEX invocations_by_state (state=? AND (created_ms,"));
  CHECK_FALSE(Contains(plan, "TEMP B-TREE"));

  InvocationFilter by_executor;
  by_executor.executor = "slurm";
  plan = Plan(*raw, InvocationRepository::ListSql(by_executor));
  INFO(plan);
  CHECK(Contains(plan, "invocations_by_executor (executor=?)"));
  CHECK_FALSE(Contains(plan, "TEMP B-TREE"));

  // The task filter seeks its own index in list order, whichever task it is.
  InvocationFilter by_task;
  by_task.task = "gsm8k";
  by_task.page_token = "x";
  plan = Plan(*raw, InvocationRepository::ListSql(by_task));
  INFO(plan);
  CHECK(Contains(plan, "SEARCH invocation_tasks USING PRIMARY KEY (task=? AND (task_created_ms,"));
  CHECK(Contains(plan, "SEARCH invocations USING INDEX sqlite_autoindex_invocations_1 (id=?)"));
  CHECK_FALSE(Contains(plan, "TEMP B-TREE"));

  // The per-row job count is an index lookup, not a scan of jobs.
  CHECK(Contains(plan, "SEARCH j USING COVERING INDEX sqlite_autoindex_jobs_2 (invocation_id=?)"));

  plan = Plan(*raw, JobRepository::ListActiveSql());
  INFO(plan);
  CHECK(Contains(plan, "jobs_active"));
  CHECK_FALSE(Contains(plan, "TEMP B-TREE"));
  // Each page starts where the last ended: a seek in the index, not a scan from its start.
  plan = Plan(*raw, JobRepository::ListActiveAfterSql());
  INFO(plan);
  CHECK(Contains(plan, "jobs_active ((invocation_id,idx)>(?,?))"));
  CHECK_FALSE(Contains(plan, "TEMP B-TREE"));
  plan = Plan(*raw, JobRepository::ListByInvocationSql());
  INFO(plan);
  CHECK(Contains(plan, "SEARCH jobs USING INDEX sqlite_autoindex_jobs_2 (invocation_id=?)"));
  CHECK_FALSE(Contains(plan, "TEMP B-TREE"));
  plan = Plan(*raw, DeploymentRepository::ListActiveSql());
  INFO(plan);
  CHECK(Contains(plan, "deployments_active"));
  CHECK_FALSE(Contains(plan, "TEMP B-TREE"));
  plan = Plan(*raw, EventRepository::ListSql(true));
  INFO(plan);
  CHECK(Contains(plan, "events_by_invocation (invocation_id=? AND seq>?)"));
  CHECK_FALSE(Contains(plan, "TEMP B-TREE"));
}

TEST_CASE("ListInvocations filters by exact task name and id substring, and pages with them") {
  TempDir dir;
  auto store = OpenStore(dir);
  CreateSimple(*store, "00000201", 1000, "local", 1);  // task_0
  CreateSimple(*store, "00000202", 2000, "local", 3);  // task_0, task_1, task_2
  CreateSimple(*store, "00000303", 3000, "local", 3);
  InvocationFilter f;
  f.task = "task_2";
  auto page = store->ListInvocations(f);
  REQUIRE_OK(page);
  REQUIRE(Ids(*page) == std::vector<std::string>{"00000303", "00000202"});
  f.task = "task_";  // a prefix is not a task name
  page = store->ListInvocations(f);
  REQUIRE_OK(page);
  REQUIRE(page->invocations.empty());
  f = {};
  f.id_contains = "0002";
  page = store->ListInvocations(f);
  REQUIRE_OK(page);
  REQUIRE(Ids(*page) == std::vector<std::string>{"00000202", "00000201"});
  // Keyset paging keeps the filters.
  f = {};
  f.task = "task_0";
  f.limit = 2;
  page = store->ListInvocations(f);
  REQUIRE_OK(page);
  REQUIRE(Ids(*page) == std::vector<std::string>{"00000303", "00000202"});
  f.page_token = page->next_page_token;
  page = store->ListInvocations(f);
  REQUIRE_OK(page);
  REQUIRE(Ids(*page) == std::vector<std::string>{"00000201"});
  REQUIRE(page->next_page_token.empty());
}

TEST_CASE("A version 5 database gets its task index filled from the invocations it holds") {
  TempDir dir;
  {
    auto store = OpenStore(dir);
    CreateSimple(*store, "00000201", 1000, "local", 1);  // task_0
    CreateSimple(*store, "00000202", 2000, "local", 3);  // task_0, task_1, task_2
  }
  {
    auto raw = testing::Raw(dir / "state/evald.db");
    raw->exec("DROP TABLE invocation_tasks");
    raw->exec("PRAGMA user_version=5");
  }
  auto store = OpenStore(dir);
  CHECK(store->schema_version() == 6);
  InvocationFilter f;
  f.task = "task_0";
  auto page = store->ListInvocations(f);
  REQUIRE_OK(page);
  CHECK(Ids(*page) == std::vector<std::string>{"00000202", "00000201"});
  f.task = "task_2";
  page = store->ListInvocations(f);
  REQUIRE_OK(page);
  CHECK(Ids(*page) == std::vector<std::string>{"00000202"});
  CHECK(page->job_counts == std::vector<int>{3});
}

}  // namespace
}  // namespace evald::storage
