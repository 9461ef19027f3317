#include "executors/local/container_runtime.h"

#include <signal.h>

#include <cstdlib>
#include <map>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "executors/local/local_executor.h"
#include "executors/local/process.h"

namespace evald::executors {
namespace {

constexpr absl::Duration kKeepAnswer = absl::Minutes(1);

struct Cached {
  std::string path;
  absl::Time until;
};

}  // namespace

bool RuntimeAnswersInfo(const std::string& path, absl::Duration timeout) {
  absl::StatusOr<ProcessId> child = SpawnDetached({.argv = {path, "info"}});
  if (!child.ok()) return false;
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    ProcessState state = Inspect(*child);
    if (state.status != ProcessStatus::kAlive) {
      return state.status == ProcessStatus::kExited && state.exit_code == 0;
    }
    if (absl::Now() >= deadline) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  // A hung engine socket: give up on this runtime, and leave no probe behind.
  SignalGroup(child->pid, SIGKILL).IgnoreError();
  while (Inspect(*child).status == ProcessStatus::kAlive) absl::SleepFor(absl::Milliseconds(5));
  return false;
}

std::string DetectContainerRuntime(const std::function<bool(const std::string& path)>& answers) {
  for (const char* name : {"docker", "podman"}) {
    std::string path = FindOnPath(name);
    if (path.empty()) continue;
    if (answers(path)) return path;
  }
  return "";
}

std::string PickContainerRuntime(const std::string& configured, bool probe) {
  if (!configured.empty()) return FindOnPath(configured);
  static absl::Mutex mu(absl::kConstInit);
  // Keyed by PATH: tests and tools may call this with different environments.
  static auto* cache ABSL_GUARDED_BY(mu) = new std::map<std::string, Cached>();
  const char* path_env = std::getenv("PATH");
  const std::string key = path_env == nullptr ? "" : path_env;
  {
    absl::MutexLock lock(&mu);
    auto it = cache->find(key);
    if (it != cache->end() && absl::Now() < it->second.until) return it->second.path;
  }
  if (!probe) return DetectContainerRuntime([](const std::string&) { return true; });
  // Not under the lock: a probe of a hung engine takes up to its timeout, and a caller that
  // only reads the cache must not wait for it.
  std::string found =
      DetectContainerRuntime([](const std::string& p) { return RuntimeAnswersInfo(p); });
  absl::MutexLock lock(&mu);
  (*cache)[key] = {found, absl::Now() + kKeepAnswer};
  return found;
}

}  // namespace evald::executors
