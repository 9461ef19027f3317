// File: submit_policy.h
//
// The team server's rules on what a caller may submit, beyond the config being valid: where its
// jobs may write (they run as evald's user), who may start `command` deployments (an arbitrary
// server command, also run as evald's user), and per-user limits on submits per minute and on
// unfinished jobs. Built once from the server config; ServerCore::Submit asks it after the
// config parses and before anything is stored. Thread-safe.
//
//   SubmitPolicy policy({.state_dir = "/var/lib/evald", .submits_per_minute = 30});
//   EVALD_RETURN_IF_ERROR(policy.CheckOutputDir(caller, "/home/alice/runs"));
//   EVALD_RETURN_IF_ERROR(policy.Admit(caller, active_jobs, new_jobs, absl::Now()));
#pragma once

#include <deque>
#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/deployment/deployment_spec.h"
#include "daemon/auth/caller.h"

namespace evald::daemon {

// Who may submit a `command` deployment (server config `command_deployments`).
enum class CommandDeployments { kAll, kAdmins, kNone };

struct SubmitPolicyOptions {
  std::string state_dir;
  // Where non-admin callers' output_dir may be, besides <state_dir>/runs and, for a caller known
  // by uid, that user's home directory (server config `output_roots`).
  std::vector<std::string> output_roots;
  CommandDeployments command_deployments = CommandDeployments::kAdmins;
  int submits_per_minute = 0;  // per user; 0 = no limit
  int active_jobs = 0;         // per user: jobs pending, submitted or running; 0 = no limit
};

class SubmitPolicy {
 public:
  explicit SubmitPolicy(SubmitPolicyOptions options) : options_(std::move(options)) {}

  // PERMISSION_DENIED when a non-admin caller's output_dir, with `..` and symlinks resolved, is
  // outside every allowed root. Admins (root and evald's own user) may write anywhere evald can.
  absl::Status CheckOutputDir(const Caller& caller, const std::string& output_dir) const;
  // PERMISSION_DENIED when `command_deployments` does not allow this caller a command deployment.
  absl::Status CheckDeployment(const Caller& caller, deployment::DeploymentType type) const;
  // RESOURCE_EXHAUSTED when the caller's submits of the last minute reached the limit, or its
  // `active_jobs` plus the submit's `new_jobs` would pass that limit; otherwise counts the submit.
  absl::Status Admit(const Caller& caller, int64_t active_jobs, int new_jobs, absl::Time now);

  bool limits_active_jobs() const { return options_.active_jobs > 0; }
  // The roots a caller may write under, resolved (for messages and tests).
  std::vector<std::string> AllowedRoots(const Caller& caller) const;

 private:
  const SubmitPolicyOptions options_;
  absl::Mutex mu_;
  std::map<std::string, std::deque<absl::Time>> recent_ ABSL_GUARDED_BY(mu_);  // user -> submits
};

}  // namespace evald::daemon
