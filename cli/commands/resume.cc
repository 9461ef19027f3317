// resume: re-runs the failed, killed and lost jobs of an invocation, resending the secrets the
// invocation needs from this environment.
#include <ostream>

#include "absl/strings/match.h"
#include "cli/commands/commands.h"
#include "cli/format.h"

namespace evald::cli {

int RunResume(Context& ctx, const ResumeOptions& options) {
  v1::GetInvocationRequest greq;
  greq.set_id(options.id);
  v1::Invocation inv;
  absl::Status s = ctx.api->GetInvocation(greq, &inv);
  if (!s.ok()) return ReportFailure(s, ctx.address, *ctx.err, options.id);

  std::vector<std::string> job_ids = options.job_ids;
  if (job_ids.empty() && IsJobId(options.id)) job_ids.push_back(options.id);

  // Missing ones are fine here: evald may still hold them.
  std::vector<std::string> missing;
  std::vector<std::string> names(inv.secret_names().begin(), inv.secret_names().end());
  std::map<std::string, std::string> secrets = CollectPresentSecrets(names, Env(ctx), &missing);
  Redactor redact(secrets);

  v1::ResumeRequest req;
  req.set_invocation_id(inv.invocation_id());
  req.mutable_secrets()->insert(secrets.begin(), secrets.end());
  for (const std::string& j : job_ids) req.add_job_ids(j);
  v1::ResumeResponse resp;
  s = ctx.api->Resume(req, &resp);
  if (!s.ok()) {
    std::string msg = redact(FailureMessage(s, ctx.address, options.id));
    if (s.code() == absl::StatusCode::kFailedPrecondition) {
      for (const std::string& name : missing) {
        if (absl::StrContains(s.message(), name)) {
          msg += "; export " + name + " and run evalctl resume " + options.id + " again";
          break;
        }
      }
    }
    *ctx.err << "evalctl: " << msg << "\n";
    return ExitCodeFor(s);
  }

  std::ostream& out = *ctx.out;
  out << "Resumed " << resp.job_ids_size() << (resp.job_ids_size() == 1 ? " job" : " jobs")
      << " of invocation " << inv.invocation_id() << ":\n";
  for (const std::string& j : resp.job_ids()) out << "  " << j << "\n";
  out << "follow with: evalctl watch " << inv.invocation_id() << "\n";
  out.flush();
  if (!options.wait) return kExitOk;
  out << "\n";
  WatchOptions watch;
  watch.id = inv.invocation_id();
  return RunWatch(ctx, watch);
}

}  // namespace evald::cli
