#include "core/deployment/readiness.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace evald::deployment {

ReadinessOptions ReadinessOptionsOf(const DeploymentSpec& spec) {
  ReadinessOptions options;
  options.timeout_s = spec.readiness_timeout_s;
  options.interval_s = spec.readiness_interval_s;
  options.health_check = spec.endpoints.count("health") > 0;
  options.no_health_wait_s = spec.no_health_wait_s;
  return options;
}

std::string FormatSeconds(double seconds) {
  if (seconds == std::floor(seconds) && std::fabs(seconds) < 1e15) {
    return absl::StrCat(static_cast<int64_t>(seconds));
  }
  return absl::StrFormat("%.3g", seconds);
}

HealthWaiter::HealthWaiter(ReadinessOptions options, double start_s)
    : options_(options), start_s_(start_s) {}

bool HealthWaiter::ProbeDue(double now_s) const {
  if (state_ != Readiness::kWaiting || !options_.health_check) return false;
  return !last_probe_s_.has_value() || now_s - *last_probe_s_ >= options_.interval_s;
}

double HealthWaiter::ProbeTimeout() const { return std::clamp(options_.interval_s, 1.0, 10.0); }

Readiness HealthWaiter::Observe(double now_s, const ProcessState& process,
                                const ProbeResult* probe) {
  if (state_ != Readiness::kWaiting) return state_;
  const double elapsed = now_s - start_s_;

  if (probe != nullptr) {
    last_probe_s_ = now_s;
    last_answer_ = probe->http_status > 0 ? absl::StrCat("HTTP ", probe->http_status)
                   : probe->error.empty() ? std::string("no answer")
                                          : probe->error;
  }
  if (!process.alive) {
    state_ = Readiness::kFailed;
    if (process.signal > 0) {
      reason_ =
          absl::StrCat("server process was killed by signal ", process.signal, " during start-up");
    } else if (process.exit_code >= 0) {
      reason_ =
          absl::StrCat("server process exited with code ", process.exit_code, " during start-up");
    } else {
      reason_ = "server process exited during start-up";
    }
    return state_;
  }
  // The reference's readiness loop waits for exactly 200.
  if (options_.health_check && probe != nullptr && probe->http_status == 200) {
    state_ = Readiness::kHealthy;
    healthy_after_s_ = std::max(0.0, elapsed);
    return state_;
  }
  if (!options_.health_check && elapsed >= options_.no_health_wait_s) {
    state_ = Readiness::kHealthy;
    healthy_after_s_ = std::max(0.0, elapsed);
    return state_;
  }
  if (options_.health_check && elapsed >= options_.timeout_s) {
    state_ = Readiness::kFailed;
    const bool http_answer = absl::StartsWith(last_answer_, "HTTP ");
    reason_ = absl::StrCat("not healthy after ", FormatSeconds(options_.timeout_s),
                           " s: ", http_answer ? "last answer " : "", last_answer_);
    return state_;
  }
  return state_;
}

}  // namespace evald::deployment
