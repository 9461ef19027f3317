// logs: a job's (or every job of an invocation's) log lines, optionally followed.
#include <ostream>

#include "absl/strings/str_cat.h"
#include "cli/commands/commands.h"
#include "cli/format.h"

namespace evald::cli {

int RunLogs(Context& ctx, const LogsOptions& options) {
  if (options.source != "stdout" && options.source != "stderr" && options.source != "server" &&
      options.source != "all") {
    *ctx.err << "evalctl: invalid --source '" << options.source
             << "': expected stdout, stderr, server or all\n";
    return kExitBadInput;
  }
  if (options.tail < 0) {
    *ctx.err << "evalctl: invalid --tail " << options.tail << ": expected 0 or more lines\n";
    return kExitBadInput;
  }
  if (options.follow) InstallInterruptHandler();
  std::ostream& out = *ctx.out;
  // An invocation's logs interleave its jobs: prefix each line with its job id.
  bool prefix_job = !IsJobId(options.id);
  bool prefix_source = options.source == "all";

  v1::StreamLogsRequest req;
  req.set_job_id(options.id);
  req.set_follow(options.follow);
  req.set_tail_lines(options.tail);
  req.set_source(options.source);
  int64_t received = 0;
  absl::Status s = ctx.api->StreamLogs(req, [&](const v1::LogChunk& chunk) {
    ++received;
    std::string prefix;
    if (prefix_job) absl::StrAppend(&prefix, chunk.job_id(), ": ");
    if (prefix_source)
      absl::StrAppend(&prefix, "[", chunk.source().empty() ? "stdout" : chunk.source(), "] ");
    for (const std::string& line : chunk.lines()) out << prefix << line << "\n";
    if (options.follow) out.flush();
    return true;
  });
  out.flush();
  if (s.code() == absl::StatusCode::kCancelled && Interrupted()) return kExitInterrupted;
  if (WentAway(s, received)) {
    *ctx.err << "evalctl: "
             << WentAwayMessage(absl::StrCat("streaming the logs of ", options.id), s.message(),
                                absl::StrCat("evalctl logs ", options.follow ? "-f " : "",
                                             options.id))
             << "\n";
    return kExitUnreachable;
  }
  if (!s.ok()) return ReportFailure(s, ctx.address, *ctx.err, options.id);
  return kExitOk;
}

}  // namespace evald::cli
