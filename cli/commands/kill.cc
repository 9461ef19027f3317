// kill: asks evald to stop an invocation or one job; evald stops them in the background.
#include <ostream>

#include "cli/commands/commands.h"
#include "cli/format.h"

namespace evald::cli {

int RunKill(Context& ctx, const KillOptions& options) {
  v1::KillRequest req;
  req.set_id(options.id);
  v1::KillResponse resp;
  absl::Status s = ctx.api->Kill(req, &resp);
  if (!s.ok()) return ReportFailure(s, ctx.address, *ctx.err, options.id);
  std::ostream& out = *ctx.out;
  if (resp.job_ids_size() == 0) {
    out << "Nothing to stop in " << options.id << ".\n";
    return kExitOk;
  }
  out << "Stopping " << resp.job_ids_size() << (resp.job_ids_size() == 1 ? " job" : " jobs")
      << ":\n";
  for (const std::string& j : resp.job_ids()) out << "  " << j << "\n";
  std::string inv = options.id.substr(0, options.id.find('.'));
  out << "evald stops them in the background; follow with: evalctl watch " << inv << "\n";
  return kExitOk;
}

}  // namespace evald::cli
