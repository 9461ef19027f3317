// File: readiness.h
//
// When is a freshly started model server ready? A pure policy object: the caller feeds it, once
// per supervisor tick, what it observed (is the server process alive, and the health probe's
// answer when one was due) and gets back waiting / healthy / failed with a reason a user can act
// on. It never sleeps, probes or reads a clock itself, so the daemon's loop stays non-blocking
// and every rule is unit-tested with made-up times.
//
// Callers: the local executor's deployment supervision (probes with executors/common/
// http_probe.h); later the SLURM and Lepton executors with their own probes.
//
//   HealthWaiter waiter(ReadinessOptionsOf(spec), now_s);
//   // each tick:
//   std::optional<ProbeResult> probe;
//   if (waiter.ProbeDue(now_s)) probe = HttpGet(health_url, waiter.ProbeTimeout());
//   switch (waiter.Observe(now_s, process_state, probe ? &*probe : nullptr)) { ... }
#pragma once

#include <optional>
#include <string>

#include "core/deployment/deployment_spec.h"

namespace evald::deployment {

// One answer of a health URL.
struct ProbeResult {
  int http_status = 0;  // 0 when no HTTP answer came back
  std::string error;    // transport error, e.g. "connection refused"; "" with an HTTP answer
  double seconds = 0;   // how long the probe took
};

// What the executor knows about the server process at one tick.
struct ProcessState {
  bool alive = true;
  int exit_code = -1;  // when !alive: the exit code, or -1 when unknown (not our child)
  int signal = 0;      // when !alive and a signal ended it
};

struct ReadinessOptions {
  double timeout_s = 600;
  double interval_s = 5;
  // false when the deployment has no health path (endpoints.health: null): the server counts as
  // ready once it stayed alive for no_health_wait_s.
  bool health_check = true;
  double no_health_wait_s = 60;
};

ReadinessOptions ReadinessOptionsOf(const DeploymentSpec& spec);

enum class Readiness { kWaiting, kHealthy, kFailed };

class HealthWaiter {
 public:
  // `start_s`: when the server was started, on the same clock as every `now_s` below. After an
  // evald restart pass the stored start time (wall clock) so the timeout keeps counting.
  HealthWaiter(ReadinessOptions options, double start_s);

  // True when a probe should be made now: at the first tick, then every interval_s.
  bool ProbeDue(double now_s) const;
  // The timeout to give one probe: the interval, clamped to 1..10 s.
  double ProbeTimeout() const;

  // Feeds one tick. `probe` is the answer of a probe made this tick, or nullptr. A dead process
  // fails the wait even when the probe answered 200 (that answer came from someone else's
  // server). Once healthy or failed, the result no longer changes.
  Readiness Observe(double now_s, const ProcessState& process, const ProbeResult* probe);

  Readiness state() const { return state_; }
  // Why the wait failed, e.g. "server process exited with code 3 during start-up",
  // "not healthy after 600 s: last answer HTTP 503"; "" unless failed.
  const std::string& reason() const { return reason_; }
  // Seconds from start to the healthy answer; 0 unless healthy.
  double healthy_after_s() const { return healthy_after_s_; }
  // The last probe's answer in words: "HTTP 503", "connection refused", "no answer yet".
  const std::string& last_answer() const { return last_answer_; }

 private:
  ReadinessOptions options_;
  double start_s_;
  std::optional<double> last_probe_s_;
  Readiness state_ = Readiness::kWaiting;
  std::string reason_;
  std::string last_answer_ = "no answer yet";
  double healthy_after_s_ = 0;
};

// "600" for whole seconds, "0.5" otherwise: how durations appear in messages.
std::string FormatSeconds(double seconds);

}  // namespace evald::deployment
