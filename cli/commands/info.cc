// info: everything evald knows about an invocation (or one job of it): paths, backend ids,
// deployments and the resolved config.
#include <algorithm>
#include <ostream>

#include "cli/commands/commands.h"
#include "cli/format.h"

namespace evald::cli {

int RunInfo(Context& ctx, const InfoOptions& options) {
  v1::GetInvocationRequest req;
  req.set_id(options.id);
  req.set_include_config(!options.no_config);
  v1::Invocation inv;
  absl::Status s = ctx.api->GetInvocation(req, &inv);
  if (!s.ok()) return ReportFailure(s, ctx.address, *ctx.err, options.id);
  if (IsJobId(options.id)) {
    // One job: drop the others and the deployments that serve only them.
    auto* jobs = inv.mutable_jobs();
    jobs->erase(std::remove_if(jobs->begin(), jobs->end(),
                               [&](const v1::Job& j) { return j.job_id() != options.id; }),
                jobs->end());
    if (jobs->empty()) {
      return ReportFailure(absl::NotFoundError(options.id), ctx.address, *ctx.err, options.id);
    }
    auto* deps = inv.mutable_deployments();
    deps->erase(std::remove_if(deps->begin(), deps->end(),
                               [&](const v1::Deployment& d) {
                                 return !d.job_id().empty() && d.job_id() != options.id;
                               }),
                deps->end());
  }
  if (options.json) {
    *ctx.out << InfoJson(inv).dump(2) << "\n";
  } else {
    *ctx.out << RenderInfo(inv, NowMs(ctx));
  }
  return kExitOk;
}

}  // namespace evald::cli
