// File: storage_test_util.h
//
// Helpers for the storage tests: a temp folder per test, record factories with every field set,
// raw file/SQLite access to check what is really on disk, and scoped mounts (tmpfs, read-only
// bind) for the full-disk and read-only tests, which need root.
#pragma once

#include <SQLiteCpp/Database.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "core/ids.h"
#include "core/model.h"
#include "storage/store.h"

namespace evald::storage::testing {

inline const absl::Status& StatusOf(const absl::Status& s) { return s; }
template <typename T>
absl::Status StatusOf(const absl::StatusOr<T>& s) {
  return s.status();
}

#define REQUIRE_OK(expr)                                                               \
  do {                                                                                 \
    const absl::Status evald_test_status_ = ::evald::storage::testing::StatusOf(expr); \
    INFO("status: " << evald_test_status_.ToString());                                 \
    REQUIRE(evald_test_status_.ok());                                                  \
  } while (0)

#define REQUIRE_CODE(expr, want_code)                                                  \
  do {                                                                                 \
    const absl::Status evald_test_status_ = ::evald::storage::testing::StatusOf(expr); \
    INFO("status: " << evald_test_status_.ToString());                                 \
    REQUIRE(evald_test_status_.code() == (want_code));                                 \
  } while (0)

// A fresh folder under $TMPDIR (or /tmp), removed with everything in it.
class TempDir {
 public:
  TempDir() {
    const char* base = getenv("TMPDIR");
    std::string tmpl = absl::StrCat(base != nullptr && *base != '\0' ? base : "/tmp",
                                    "/evald-storage-test-XXXXXX");
    char* made = mkdtemp(tmpl.data());
    REQUIRE(made != nullptr);
    path_ = made;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline std::string ReadFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline void WriteFileBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

// The database file and its WAL, as they are on disk right now.
inline std::string DatabaseBytes(const std::string& db_path) {
  return ReadFileBytes(db_path) + ReadFileBytes(db_path + "-wal");
}

inline bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// A second, raw connection to the same file: sees what really got committed.
inline std::unique_ptr<SQLite::Database> Raw(const std::string& db_path) {
  return std::make_unique<SQLite::Database>(db_path, SQLite::OPEN_READWRITE, 5000);
}

inline int64_t CountRows(const std::string& db_path, const std::string& table) {
  return Raw(db_path)->execAndGet("SELECT count(*) FROM " + table).getInt64();
}

inline std::unique_ptr<Store> OpenStore(const TempDir& dir, int busy_timeout_ms = 5000) {
  StoreOptions options;
  options.db_path = dir / "state/evald.db";
  options.key_path = dir / "state/secrets.key";
  options.busy_timeout_ms = busy_timeout_ms;
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(options);
  REQUIRE_OK(store);
  return *std::move(store);
}

inline InvocationRecord MakeInvocation(const std::string& id, int64_t created_ms,
                                       const std::string& executor = "local", int n_jobs = 2) {
  InvocationRecord inv;
  inv.id = id;
  inv.executor = executor;
  inv.config_yaml = absl::StrCat("execution:\n  type: ", executor, "\ntarget:\n  url: x\n");
  inv.run_dir = absl::StrCat("/runs/20260101_000000-", id);
  inv.mode = "parallel";
  for (int i = 0; i < n_jobs; ++i) inv.tasks.push_back(absl::StrCat("task_", i));
  inv.secret_names = {"API_KEY"};
  inv.client = "evalctl/test";
  inv.created_ms = created_ms;
  return inv;
}

inline std::vector<JobRecord> MakeJobs(const InvocationRecord& inv) {
  std::vector<JobRecord> jobs;
  for (size_t i = 0; i < inv.tasks.size(); ++i) {
    JobRecord j;
    j.index = static_cast<int>(i);
    j.id = JobId(inv.id, j.index);
    j.invocation_id = inv.id;
    j.task = inv.tasks[i];
    j.harness = "native";
    j.endpoint_type = "chat";
    j.spec_yaml = absl::StrCat("task: ", j.task, "\n");
    jobs.push_back(j);
  }
  return jobs;
}

inline DeploymentRecord MakeDeployment(const std::string& inv, int index,
                                       const std::string& job_id = "") {
  DeploymentRecord d;
  d.id = DeploymentId(inv, index);
  d.invocation_id = inv;
  d.job_id = job_id;
  d.type = "vllm";
  d.spec_yaml = "type: vllm\nport: auto\n";
  d.command = "vllm serve model --port {port}";
  d.log_path = "/runs/x/server.log";
  return d;
}

// Creates an invocation with MakeInvocation/MakeJobs and returns it as stored.
inline InvocationRecord CreateSimple(Store& store, const std::string& id, int64_t created_ms,
                                     const std::string& executor = "local", int n_jobs = 2,
                                     const std::map<std::string, std::string>& secrets = {}) {
  InvocationRecord inv = MakeInvocation(id, created_ms, executor, n_jobs);
  REQUIRE_OK(store.CreateInvocation(inv, MakeJobs(inv), {}, secrets, created_ms, nullptr));
  return inv;
}

inline JobTransition Move(const std::string& job_id, JobState from, JobState to) {
  JobTransition t;
  t.job_id = job_id;
  t.from = from;
  t.to = to;
  return t;
}

// A mount point that is unmounted (lazily) when the object goes away. Mounting needs root (or
// CAP_SYS_ADMIN); `error` says why it failed otherwise.
class ScopedMount {
 public:
  static std::unique_ptr<ScopedMount> Tmpfs(const std::string& dir, const std::string& options,
                                            std::string* error) {
    if (mount("tmpfs", dir.c_str(), "tmpfs", 0, options.c_str()) != 0) {
      *error = absl::StrCat("mount -t tmpfs -o ", options, " ", dir, ": ", strerror(errno));
      return nullptr;
    }
    return std::unique_ptr<ScopedMount>(new ScopedMount(dir));
  }

  // Makes `dst` a read-only view of `src`.
  static std::unique_ptr<ScopedMount> ReadOnlyBind(const std::string& src, const std::string& dst,
                                                   std::string* error) {
    if (mount(src.c_str(), dst.c_str(), nullptr, MS_BIND, nullptr) != 0) {
      *error = absl::StrCat("mount --bind ", src, " ", dst, ": ", strerror(errno));
      return nullptr;
    }
    auto m = std::unique_ptr<ScopedMount>(new ScopedMount(dst));
    if (mount(nullptr, dst.c_str(), nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr) != 0) {
      *error = absl::StrCat("mount -o remount,ro,bind ", dst, ": ", strerror(errno));
      return nullptr;
    }
    return m;
  }

  ~ScopedMount() { umount2(dir_.c_str(), MNT_DETACH); }
  ScopedMount(const ScopedMount&) = delete;
  ScopedMount& operator=(const ScopedMount&) = delete;

 private:
  explicit ScopedMount(std::string dir) : dir_(std::move(dir)) {}
  std::string dir_;
};

}  // namespace evald::storage::testing
