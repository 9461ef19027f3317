#include "daemon/submit_policy.h"

#include <pwd.h>
#include <unistd.h>

#include <filesystem>
#include <system_error>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace evald::daemon {
namespace {

namespace fs = std::filesystem;

// `..` folded and every symlink of the part that exists resolved; "" when it cannot be.
std::string Resolved(const std::string& path) {
  std::error_code ec;
  fs::path p = fs::weakly_canonical(fs::path(path), ec);
  if (ec) return "";
  return p.lexically_normal().string();
}

bool Within(const std::string& path, const std::string& root) {
  if (root.empty() || path.empty()) return false;
  if (root == "/") return true;
  return path == root || (path.size() > root.size() && path.compare(0, root.size(), root) == 0 &&
                          path[root.size()] == '/');
}

std::string HomeOf(int64_t uid) {
  if (uid < 0) return "";
  struct passwd pw {};
  struct passwd* found = nullptr;
  std::vector<char> buf(16384);
  if (getpwuid_r(static_cast<uid_t>(uid), &pw, buf.data(), buf.size(), &found) != 0 ||
      found == nullptr || pw.pw_dir == nullptr) {
    return "";
  }
  return pw.pw_dir;
}

}  // namespace

std::vector<std::string> SubmitPolicy::AllowedRoots(const Caller& caller) const {
  std::vector<std::string> roots;
  auto add = [&](const std::string& path) {
    std::string r = Resolved(path);
    // A home of "/" (system users) or "/nonexistent" must not open the whole machine.
    if (!r.empty() && r != "/") roots.push_back(r);
  };
  if (!options_.state_dir.empty()) add(options_.state_dir + "/runs");
  for (const std::string& root : options_.output_roots) add(root);
  const std::string home = HomeOf(caller.uid);
  if (!home.empty() && home != "/nonexistent") add(home);
  return roots;
}

absl::Status SubmitPolicy::CheckOutputDir(const Caller& caller,
                                          const std::string& output_dir) const {
  if (caller.is_admin()) return absl::OkStatus();
  const std::string path = Resolved(output_dir);
  const std::vector<std::string> roots = AllowedRoots(caller);
  for (const std::string& root : roots) {
    if (Within(path, root)) return absl::OkStatus();
  }
  return absl::PermissionDeniedError(absl::StrCat(
      "execution.output_dir: '", output_dir, "'",
      path.empty() || path == output_dir ? "" : absl::StrCat(" (resolved: '", path, "')"),
      " is outside the folders ", caller.user, " may write to on this server: ",
      roots.empty() ? std::string("none") : absl::StrJoin(roots, ", "),
      " (server config output_roots)"));
}

absl::Status SubmitPolicy::CheckDeployment(const Caller& caller,
                                           deployment::DeploymentType type) const {
  if (type != deployment::DeploymentType::kCommand) return absl::OkStatus();
  switch (options_.command_deployments) {
    case CommandDeployments::kAll:
      return absl::OkStatus();
    case CommandDeployments::kAdmins:
      if (caller.is_admin()) return absl::OkStatus();
      return absl::PermissionDeniedError(absl::StrCat(
          "deployment.type: command runs its command as evald's user; on this server only admins "
          "may submit it (server config command_deployments: admins), and ",
          caller.user, " is not one. Use vllm, sglang, nim or none"));
    case CommandDeployments::kNone:
      return absl::PermissionDeniedError(
          "deployment.type: command is disabled on this server (server config "
          "command_deployments: none). Use vllm, sglang, nim or none");
  }
  return absl::OkStatus();
}

absl::Status SubmitPolicy::Admit(const Caller& caller, int64_t active_jobs, int new_jobs,
                                 absl::Time now) {
  if (options_.active_jobs > 0 && active_jobs + new_jobs > options_.active_jobs) {
    return absl::ResourceExhaustedError(absl::StrCat(
        caller.user, " has ", active_jobs, " job(s) not finished and this submit adds ", new_jobs,
        "; the limit per user is ", options_.active_jobs,
        " (server config limits.active_jobs). Wait for some to end or kill them"));
  }
  if (options_.submits_per_minute <= 0) return absl::OkStatus();
  absl::MutexLock lock(&mu_);
  std::deque<absl::Time>& recent = recent_[caller.user];
  while (!recent.empty() && now - recent.front() >= absl::Minutes(1)) recent.pop_front();
  if (static_cast<int>(recent.size()) >= options_.submits_per_minute) {
    const int64_t wait_s = absl::ToInt64Seconds(recent.front() + absl::Minutes(1) - now) + 1;
    return absl::ResourceExhaustedError(absl::StrCat(
        caller.user, " submitted ", recent.size(),
        " times in the last minute; the limit per user is ", options_.submits_per_minute,
        " (server config limits.submits_per_minute). Try again in ", wait_s, " s"));
  }
  recent.push_back(now);
  return absl::OkStatus();
}

}  // namespace evald::daemon
