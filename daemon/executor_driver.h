// File: executor_driver.h
//
// Runs one executor's backend calls on a thread of its own, one at a time, in the order they were
// queued. The Supervisor queues calls and never waits for them: what a call returns is an
// `Apply` closure that the Supervisor runs on its own thread at its next pass (TakeResults), so
// every database write stays on the Supervisor's thread and in order, while a slow or hung backend
// (an ssh round trip of 10 s, a REST API that never answers) delays only its own jobs.
//
// A call cannot be cancelled; the Supervisor reports one that runs longer than the executor's
// CallTimeout, and executors bound their own I/O (ssh ConnectTimeout, HTTP timeouts).
//
// Who calls it: the Supervisor only (one driver per registered executor).
//
//   ExecutorDriver driver(&executor, [&] { supervisor.Wake(); });
//   driver.Queue("Poll", [refs](Executor& ex) { auto obs = ex.Poll(refs); return [obs] {...}; });
//   for (auto& apply : driver.TakeResults()) apply();   // on the Supervisor's thread
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "executors/executor.h"

namespace evald::daemon {

class ExecutorDriver {
 public:
  using Apply = std::function<void()>;
  using Call = std::function<Apply(executors::Executor&)>;

  // `done` is called on the driver's thread after each call (to wake the Supervisor); `observe`
  // (optional) gets each call's name (the first word of `what`: Start, Poll, ...) and duration.
  using Observe = std::function<void(const std::string& call, absl::Duration took)>;
  ExecutorDriver(executors::Executor* executor, std::function<void()> done,
                 Observe observe = nullptr);
  // Shutdown(5 s).
  ~ExecutorDriver();

  executors::Executor& executor() const { return *executor_; }

  // Queues `call` after the ones already queued. `what` names it in stall reports.
  void Queue(std::string what, Call call);
  // The results of the calls finished since the last TakeResults, in the order they finished.
  std::vector<Apply> TakeResults();
  // Calls queued or running.
  int Pending() const;
  // The running call's name and since when; nullopt when idle.
  std::optional<std::pair<std::string, absl::Time>> Running() const;
  // Runs `call` after the queued ones and waits at most `wait` for it; false when it did not
  // finish in time (it still runs later, its result is dropped). For shutdown.
  bool RunAndWait(std::string what, std::function<void(executors::Executor&)> call,
                  absl::Duration wait);
  // Stops taking calls and waits at most `wait` for the queued ones. A call still running then is
  // left to finish on a detached thread (which keeps what it needs alive) and false is returned.
  bool Shutdown(absl::Duration wait);

 private:
  struct Shared;
  static void Loop(std::shared_ptr<Shared> shared);

  executors::Executor* executor_;
  std::shared_ptr<Shared> shared_;
  std::thread thread_;
};

}  // namespace evald::daemon
