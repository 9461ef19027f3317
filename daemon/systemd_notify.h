// File: systemd_notify.h
//
// evald's side of systemd's notify protocol (sd_notify(3), deploy/systemd/evald.service):
//   READY=1     once recovery is done: store open, Supervisor started, gRPC listening (main);
//   STATUS=...  jobs running and pending and the time of the last reconcile pass;
//   WATCHDOG=1  sent only from the end of a reconcile pass, at most every half WatchdogSec, so a
//               loop that stops completing passes stops the keep-alives and systemd restarts evald;
//   STOPPING=1  on SIGTERM/SIGINT (main).
// Without NOTIFY_SOCKET (a terminal, Type=simple) every call does nothing.
//
// Callers: daemon/main.cc (Ready, Stopping, MaxTick) and, through Supervisor::Options::on_pass_done
// wired in ServerCore::Create, the reconcile loop's thread (OnPassDone).
//
// Test only: EVALD_TEST_WEDGE_RECONCILE=<seconds> makes the first pass that ends that long after
// start block (until Stopping), i.e. wedges the real loop, so tests can see the keep-alives stop.
//
//   SystemdNotifier notifier;            // reads the environment
//   config.tick = std::min(config.tick, notifier.MaxTick());
//   ... core->StartSupervisor(); notifier.Ready("listening on ...");
//   ... sigwait ...; notifier.Stopping();
#pragma once

#include <functional>
#include <string>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "storage/store.h"

namespace evald::daemon {

class SystemdNotifier {
 public:
  SystemdNotifier();
  SystemdNotifier(const SystemdNotifier&) = delete;
  SystemdNotifier& operator=(const SystemdNotifier&) = delete;

  // NOTIFY_SOCKET is set: evald runs under a Type=notify unit (or a test's socket).
  bool enabled() const { return enabled_; }
  // WatchdogSec as systemd passed it (WATCHDOG_USEC); zero when nothing watches evald.
  absl::Duration watchdog_interval() const { return watchdog_; }
  // The longest supervisor tick that still feeds the watchdog in time: a third of the interval
  // (a pass ends at least every tick), or InfiniteDuration without a watchdog.
  absl::Duration MaxTick() const;

  void Ready(const std::string& status);
  void Status(const std::string& status);
  // Also releases a test wedge, so shutdown can join the loop.
  void Stopping();

  // End of one reconcile pass, on the loop thread: WATCHDOG=1 when half the interval has passed
  // since the last one, STATUS= (from `status`, called only then) at most every few seconds.
  void OnPassDone(const std::function<std::string()>& status);
  // The Supervisor's on_pass_done for this notifier, with a status line read from `store`.
  std::function<void()> PassDoneHook(storage::Store* store);

 private:
  void Send(const std::string& message);
  void MaybeWedge();

  bool enabled_ = false;
  absl::Duration watchdog_ = absl::ZeroDuration();
  absl::Time started_ = absl::Now();
  absl::Duration wedge_after_ = absl::InfiniteDuration();  // EVALD_TEST_WEDGE_RECONCILE
  // Only the loop thread touches these.
  absl::Time last_watchdog_ = absl::InfinitePast();
  absl::Time last_status_ = absl::InfinitePast();
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
};

// "3 jobs running, 2 pending; last reconcile 10:41:07 UTC" from the store's active jobs.
std::string JobsStatusLine(storage::Store& store, absl::Time pass_end);

}  // namespace evald::daemon
