// When the background checkpointer asks for a checkpoint, and the paged ListActiveJobs the
// supervisor reads (both matter to Submit's latency under load; see bench/daemon/README.md).
#include "storage/checkpointer.h"

#include "storage/store.h"
#include "storage_test_util.h"

namespace evald::storage {
namespace {

using testing::CreateSimple;
using testing::OpenStore;
using testing::TempDir;

constexpr int kPages = Checkpointer::kBackgroundPages;

TEST_CASE("the checkpointer runs once per kBackgroundPages new WAL pages, not once per commit") {
  TempDir dir;
  { OpenStore(dir); }  // creates and migrates the database
  absl::StatusOr<std::unique_ptr<Checkpointer>> cp = Checkpointer::Start(dir / "state/evald.db");
  REQUIRE_OK(cp);

  CHECK_FALSE((*cp)->Notify(kPages - 1));
  REQUIRE((*cp)->Notify(kPages));
  REQUIRE((*cp)->WaitForCompletedForTest(1, absl::Seconds(10)));
  // Under steady writes the WAL keeps growing past the checkpointed part: the commits right
  // after one checkpoint must not ask for another.
  for (int pages = kPages + 1; pages < 2 * kPages; pages += 7) {
    INFO(pages);
    CHECK_FALSE((*cp)->Notify(pages));
  }
  CHECK((*cp)->Notify(2 * kPages));
  REQUIRE((*cp)->WaitForCompletedForTest(2, absl::Seconds(10)));

  // A WAL that restarted from its beginning counts from zero again.
  CHECK_FALSE((*cp)->Notify(10));
  CHECK_FALSE((*cp)->Notify(kPages - 1));
  CHECK((*cp)->Notify(kPages));
  REQUIRE((*cp)->WaitForCompletedForTest(3, absl::Seconds(10)));
}

TEST_CASE("ListActiveJobs reads more jobs than one page holds, each once, in order") {
  TempDir dir;
  auto store = OpenStore(dir);
  // 3 invocations of 50 jobs: 150 jobs, more than two pages of 64.
  for (int i = 0; i < 3; ++i) {
    CreateSimple(*store, absl::StrCat("2000000", i), 1000 + i, "local", 50);
  }
  auto active = store->ListActiveJobs();
  REQUIRE_OK(active);
  REQUIRE(active->size() == 150);
  for (size_t k = 0; k < active->size(); ++k) {
    INFO(k);
    CHECK((*active)[k].invocation_id == absl::StrCat("2000000", k / 50));
    CHECK((*active)[k].index == static_cast<int>(k % 50));
  }
}

}  // namespace
}  // namespace evald::storage
