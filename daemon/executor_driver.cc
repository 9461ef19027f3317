#include "daemon/executor_driver.h"

#include <atomic>

#include "spdlog/spdlog.h"

namespace evald::daemon {

struct ExecutorDriver::Shared {
  executors::Executor* executor = nullptr;
  std::function<void()> done;
  ExecutorDriver::Observe observe;
  absl::Mutex mu;
  std::deque<std::pair<std::string, Call>> queue ABSL_GUARDED_BY(mu);
  std::vector<Apply> results ABSL_GUARDED_BY(mu);
  std::optional<std::pair<std::string, absl::Time>> running ABSL_GUARDED_BY(mu);
  bool stop ABSL_GUARDED_BY(mu) = false;
};

ExecutorDriver::ExecutorDriver(executors::Executor* executor, std::function<void()> done,
                               Observe observe)
    : executor_(executor), shared_(std::make_shared<Shared>()) {
  shared_->executor = executor;
  shared_->done = std::move(done);
  shared_->observe = std::move(observe);
  thread_ = std::thread(&ExecutorDriver::Loop, shared_);
}

ExecutorDriver::~ExecutorDriver() { Shutdown(absl::Seconds(5)); }

void ExecutorDriver::Loop(std::shared_ptr<Shared> shared) {
  while (true) {
    std::pair<std::string, Call> next;
    {
      absl::MutexLock lock(&shared->mu);
      auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(shared->mu) {
        return shared->stop || !shared->queue.empty();
      };
      shared->mu.Await(absl::Condition(&ready));
      if (shared->queue.empty()) return;  // stopping, nothing left
      next = std::move(shared->queue.front());
      shared->queue.pop_front();
      shared->running = std::make_pair(next.first, absl::Now());
    }
    absl::Time started = absl::Now();
    Apply apply = next.second(*shared->executor);
    if (shared->observe) {
      shared->observe(next.first.substr(0, next.first.find(' ')), absl::Now() - started);
    }
    std::function<void()> done;
    {
      absl::MutexLock lock(&shared->mu);
      shared->running.reset();
      if (apply) shared->results.push_back(std::move(apply));
      if (!shared->stop) done = shared->done;
    }
    if (done) done();
  }
}

void ExecutorDriver::Queue(std::string what, Call call) {
  absl::MutexLock lock(&shared_->mu);
  if (shared_->stop) return;
  shared_->queue.emplace_back(std::move(what), std::move(call));
}

std::vector<ExecutorDriver::Apply> ExecutorDriver::TakeResults() {
  absl::MutexLock lock(&shared_->mu);
  std::vector<Apply> out;
  out.swap(shared_->results);
  return out;
}

int ExecutorDriver::Pending() const {
  absl::MutexLock lock(&shared_->mu);
  return static_cast<int>(shared_->queue.size()) + (shared_->running ? 1 : 0);
}

std::optional<std::pair<std::string, absl::Time>> ExecutorDriver::Running() const {
  absl::MutexLock lock(&shared_->mu);
  return shared_->running;
}

bool ExecutorDriver::RunAndWait(std::string what, std::function<void(executors::Executor&)> call,
                                absl::Duration wait) {
  auto finished = std::make_shared<std::atomic<bool>>(false);
  {
    absl::MutexLock lock(&shared_->mu);
    if (shared_->stop) return false;
    shared_->queue.emplace_back(std::move(what), [call, finished](executors::Executor& ex) {
      call(ex);
      *finished = true;
      return Apply();
    });
  }
  absl::MutexLock lock(&shared_->mu);
  auto done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(shared_->mu) {
    return *finished && !shared_->running;
  };
  return shared_->mu.AwaitWithTimeout(absl::Condition(&done), wait);
}

bool ExecutorDriver::Shutdown(absl::Duration wait) {
  if (!thread_.joinable()) return true;
  bool drained;
  {
    absl::MutexLock lock(&shared_->mu);
    shared_->stop = true;
    auto idle = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(shared_->mu) {
      return shared_->queue.empty() && !shared_->running;
    };
    drained = shared_->mu.AwaitWithTimeout(absl::Condition(&idle), wait);
    if (!drained) {
      spdlog::error("executor {}: a backend call ({}) is still running at shutdown; leaving it",
                    shared_->executor->name(),
                    shared_->running ? shared_->running->first : std::string("queued"));
      shared_->queue.clear();
    }
  }
  if (drained) {
    thread_.join();
  } else {
    thread_.detach();
  }
  return drained;
}

}  // namespace evald::daemon
