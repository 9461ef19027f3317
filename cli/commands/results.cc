// results: the metrics of an invocation's (or one job's) finished jobs.
#include <ostream>

#include "cli/commands/commands.h"
#include "cli/format.h"

namespace evald::cli {

int RunResults(Context& ctx, const ResultsOptions& options) {
  if (options.json && options.csv) {
    *ctx.err << "evalctl: --json and --csv exclude each other\n";
    return kExitBadInput;
  }
  v1::GetResultsRequest req;
  req.set_id(options.id);
  v1::GetResultsResponse resp;
  absl::Status s = ctx.api->GetResults(req, &resp);
  if (!s.ok()) return ReportFailure(s, ctx.address, *ctx.err, options.id);
  if (options.json) {
    *ctx.out << ResultsJson(resp).dump(2) << "\n";
  } else if (options.csv) {
    *ctx.out << ResultsCsv(resp);
  } else {
    *ctx.out << RenderResultsTable(resp);
  }
  return kExitOk;
}

}  // namespace evald::cli
