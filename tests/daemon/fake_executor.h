// File: fake_executor.h
//
// A scriptable executor for the daemon's tests: Start, Poll and Stop answer from a script, with
// latency, and Poll or Start can be made to hang until released, to prove a stuck backend delays
// only its own jobs. Thread-safe: the Supervisor calls it on the executor's driver thread while
// the test thread scripts it. Always Release() before the ServerCore that uses it is destroyed.
//
//   auto fake = std::make_unique<FakeExecutor>("fake");
//   FakeExecutor* f = fake.get();
//   f->ExitAfterPolls(2, 0);   // every job: running for 2 polls, then exit code 0
//   ... ServerCore::Create(config, nullptr, Executors(std::move(fake))) ...
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "executors/executor.h"

namespace evald::testing {

class FakeExecutor : public executors::Executor {
 public:
  explicit FakeExecutor(std::string name) : name_(std::move(name)) {}
  ~FakeExecutor() override { Release(); }

  // Every job runs for `polls` polls, then exits with `code`.
  void ExitAfterPolls(int polls, int code) {
    absl::MutexLock lock(&mu_);
    polls_to_exit_ = polls;
    exit_code_ = code;
  }
  // Every Poll takes `latency` (a slow backend).
  void SetPollLatency(absl::Duration latency) {
    absl::MutexLock lock(&mu_);
    poll_latency_ = latency;
  }
  // Poll (or Start) blocks until Release() (a hung backend).
  void HangPolls(bool hang) {
    absl::MutexLock lock(&mu_);
    hang_polls_ = hang;
  }
  void HangStarts(bool hang) {
    absl::MutexLock lock(&mu_);
    hang_starts_ = hang;
  }
  void Release() {
    absl::MutexLock lock(&mu_);
    hang_polls_ = hang_starts_ = false;
  }
  // The next Poll of `job_id` reports it vanished (the backend lost it).
  void Vanish(const std::string& job_id) {
    absl::MutexLock lock(&mu_);
    vanished_.insert({job_id, true});
  }
  // Start fails with `status` from now on.
  void FailStarts(absl::Status status) {
    absl::MutexLock lock(&mu_);
    start_error_ = std::move(status);
  }

  int starts() const {
    absl::MutexLock lock(&mu_);
    return starts_;
  }
  int polls() const {
    absl::MutexLock lock(&mu_);
    return polls_;
  }
  std::vector<std::string> stopped() const {
    absl::MutexLock lock(&mu_);
    return stopped_;
  }
  bool in_call() const {
    absl::MutexLock lock(&mu_);
    return in_call_ > 0;
  }

  std::string name() const override { return name_; }
  absl::Status Validate(const executors::JobSpec&) const override { return absl::OkStatus(); }
  absl::StatusOr<executors::RenderedJob> Render(const executors::JobSpec& spec) const override {
    return executors::RenderedJob{absl::StrCat("# fake job ", spec.job_id, "\n"), spec.plan_yaml};
  }

  absl::StatusOr<JobHandle> Start(const executors::JobSpec& spec,
                                  const std::map<std::string, std::string>&) override {
    absl::MutexLock lock(&mu_);
    Enter();
    mu_.Await(absl::Condition(
        +[](bool* hang) { return !*hang; }, &hang_starts_));
    ++starts_;
    Leave();
    if (!start_error_.ok()) return start_error_;
    std::string state = absl::StrCat(spec.job_id, "#", spec.attempt);
    remaining_[state] = polls_to_exit_;
    return JobHandle{1, name_, state};
  }

  std::vector<executors::Observation> Poll(const std::vector<executors::JobRef>& jobs) override {
    absl::MutexLock lock(&mu_);
    Enter();
    ++polls_;
    absl::Duration latency = poll_latency_;
    if (latency > absl::ZeroDuration()) {
      mu_.AwaitWithTimeout(absl::Condition(
                               +[](bool*) { return false; }, &hang_polls_),
                           latency);
    }
    mu_.Await(absl::Condition(
        +[](bool* hang) { return !*hang; }, &hang_polls_));
    std::vector<executors::Observation> out;
    for (const executors::JobRef& job : jobs) {
      executors::Observation obs;
      obs.job_id = job.job_id;
      auto vanished = vanished_.find(job.job_id);
      if (vanished != vanished_.end()) {
        obs.kind = executors::Observation::Kind::kVanished;
        obs.message = "the fake backend lost it";
        vanished_.erase(vanished);
      } else if (stop_requested_.count(job.handle.state) > 0) {
        obs.kind = executors::Observation::Kind::kExited;
        obs.exit_code = 143;
      } else if (int& left = remaining_[job.handle.state]; left > 0) {
        --left;
        obs.kind = executors::Observation::Kind::kRunning;
      } else {
        obs.kind = executors::Observation::Kind::kExited;
        obs.exit_code = exit_code_;
      }
      out.push_back(std::move(obs));
    }
    Leave();
    return out;
  }

  absl::Status Stop(const executors::JobRef& job, absl::Duration) override {
    absl::MutexLock lock(&mu_);
    stopped_.push_back(job.job_id);
    stop_requested_.insert({job.handle.state, true});
    return absl::OkStatus();
  }

  absl::StatusOr<std::optional<JobHandle>> Recover(const executors::JobRef&) override {
    return std::optional<JobHandle>();
  }

  executors::HandleInfo Describe(const JobHandle& handle) const override {
    return {absl::StrCat("fake ", handle.state), {{"backend", name_}}};
  }

 private:
  void Enter() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { ++in_call_; }
  void Leave() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { --in_call_; }

  const std::string name_;
  mutable absl::Mutex mu_;
  int polls_to_exit_ ABSL_GUARDED_BY(mu_) = 1;
  int exit_code_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Duration poll_latency_ ABSL_GUARDED_BY(mu_);
  bool hang_polls_ ABSL_GUARDED_BY(mu_) = false;
  bool hang_starts_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status start_error_ ABSL_GUARDED_BY(mu_);
  int starts_ ABSL_GUARDED_BY(mu_) = 0;
  int polls_ ABSL_GUARDED_BY(mu_) = 0;
  int in_call_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::string> stopped_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> remaining_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, bool> stop_requested_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, bool> vanished_ ABSL_GUARDED_BY(mu_);
};

}  // namespace evald::testing
