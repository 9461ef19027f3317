#include "daemon/systemd_notify.h"

#include <systemd/sd-daemon.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace evald::daemon {
namespace {

// STATUS= is refreshed at most this often: building it reads the active jobs.
constexpr absl::Duration kStatusEvery = absl::Seconds(5);

}  // namespace

SystemdNotifier::SystemdNotifier() {
  const char* socket = std::getenv("NOTIFY_SOCKET");
  enabled_ = socket != nullptr && socket[0] != '\0';
  uint64_t usec = 0;
  // > 0 only when WATCHDOG_USEC is set and WATCHDOG_PID (if set) is this process.
  if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) watchdog_ = absl::Microseconds(usec);
  if (const char* wedge = std::getenv("EVALD_TEST_WEDGE_RECONCILE"); wedge != nullptr) {
    double seconds = 0;
    if (absl::SimpleAtod(wedge, &seconds) && seconds >= 0) {
      wedge_after_ = absl::Seconds(seconds);
      spdlog::warn(
          "EVALD_TEST_WEDGE_RECONCILE={}: the reconcile loop will hang {} s after start (tests "
          "only: never set this in production)",
          wedge, seconds);
    }
  }
  if (enabled_) {
    spdlog::info("systemd notify socket set; watchdog {}",
                 watchdog_ > absl::ZeroDuration() ? absl::FormatDuration(watchdog_) : "off");
  }
}

absl::Duration SystemdNotifier::MaxTick() const {
  if (watchdog_ <= absl::ZeroDuration()) return absl::InfiniteDuration();
  return watchdog_ / 3;
}

void SystemdNotifier::Send(const std::string& message) {
  if (!enabled_) return;
  int rc = sd_notify(0, message.c_str());
  if (rc < 0) spdlog::warn("sd_notify failed: {}", std::strerror(-rc));
}

void SystemdNotifier::Ready(const std::string& status) {
  // last_status_ is the loop thread's: the jobs line follows within kStatusEvery.
  Send(absl::StrCat("READY=1\nSTATUS=", status));
}

void SystemdNotifier::Status(const std::string& status) { Send("STATUS=" + status); }

void SystemdNotifier::Stopping() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  Send("STOPPING=1\nSTATUS=stopping (running jobs keep running)");
}

void SystemdNotifier::MaybeWedge() {
  if (absl::Now() - started_ < wedge_after_) return;
  spdlog::warn("EVALD_TEST_WEDGE_RECONCILE: reconcile loop wedged on purpose until shutdown");
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(&stopping_));
  wedge_after_ = absl::InfiniteDuration();
}

void SystemdNotifier::OnPassDone(const std::function<std::string()>& status) {
  MaybeWedge();
  if (!enabled_) return;
  absl::Time now = absl::Now();
  if (watchdog_ > absl::ZeroDuration() && now - last_watchdog_ >= watchdog_ / 2) {
    last_watchdog_ = now;
    Send("WATCHDOG=1");
  }
  if (now - last_status_ >= kStatusEvery) {
    last_status_ = now;
    Status(status());
  }
}

std::function<void()> SystemdNotifier::PassDoneHook(storage::Store* store) {
  return [this, store] { OnPassDone([store] { return JobsStatusLine(*store, absl::Now()); }); };
}

std::string JobsStatusLine(storage::Store& store, absl::Time pass_end) {
  std::string when = absl::FormatTime("%H:%M:%S UTC", pass_end, absl::UTCTimeZone());
  absl::StatusOr<std::vector<JobRecord>> jobs = store.ListActiveJobs();
  if (!jobs.ok()) {
    return absl::StrCat("cannot list jobs (", jobs.status().message(), "); last reconcile ", when);
  }
  int running = 0;
  int pending = 0;
  for (const JobRecord& job : *jobs) {
    if (job.state == JobState::kRunning || job.state == JobState::kSubmitted) {
      ++running;
    } else if (job.state == JobState::kPending) {
      ++pending;
    }
  }
  return absl::StrCat(running, running == 1 ? " job" : " jobs", " running, ", pending,
                      " pending; last reconcile ", when);
}

}  // namespace evald::daemon
