// ls runs / ls tasks: the invocation history and the task catalog evald knows.
#include <algorithm>
#include <ostream>

#include "absl/strings/ascii.h"
#include "cli/commands/commands.h"
#include "cli/format.h"

namespace evald::cli {
namespace {

constexpr int kMaxPageSize = 1000;

}  // namespace

int RunLsRuns(Context& ctx, const LsRunsOptions& options) {
  v1::ListInvocationsRequest req;
  if (options.limit < 0) {
    *ctx.err << "evalctl: invalid --limit " << options.limit << ": expected 0 or more\n";
    return kExitBadInput;
  }
  if (!options.since.empty()) {
    absl::StatusOr<int64_t> since = ParseSince(options.since, NowMs(ctx));
    if (!since.ok()) {
      *ctx.err << since.status().message() << "\n";
      return kExitBadInput;
    }
    req.set_since_ms(*since);
  }
  if (!options.state.empty()) {
    std::optional<v1::JobState> state = ParseStateName(absl::AsciiStrToLower(options.state));
    if (!state) {
      *ctx.err << "evalctl: invalid --state '" << options.state
               << "': expected pending, submitted, running, succeeded, failed, killed or lost\n";
      return kExitBadInput;
    }
    req.set_state(*state);
  }
  req.set_executor(options.executor);
  if (options.mine && !options.user.empty()) {
    *ctx.err << "evalctl: --mine and --user NAME are exclusive\n";
    return kExitBadInput;
  }
  req.set_mine(options.mine);
  req.set_owner(options.user);

  std::vector<v1::Invocation> rows;
  while (static_cast<int>(rows.size()) < options.limit) {
    req.set_limit(std::min(kMaxPageSize, options.limit - static_cast<int>(rows.size())));
    v1::ListInvocationsResponse resp;
    absl::Status s = ctx.api->ListInvocations(req, &resp);
    if (!s.ok()) return ReportFailure(s, ctx.address, *ctx.err);
    for (v1::Invocation& inv : *resp.mutable_invocations()) {
      if (static_cast<int>(rows.size()) < options.limit) rows.push_back(std::move(inv));
    }
    if (resp.next_page_token().empty() || resp.invocations_size() == 0) break;
    req.set_page_token(resp.next_page_token());
  }
  *ctx.out << RenderRunsTable(rows);
  return kExitOk;
}

int RunLsTasks(Context& ctx, const LsTasksOptions& options) {
  v1::ListTasksRequest req;
  req.set_harness(options.harness);
  v1::ListTasksResponse resp;
  absl::Status s = ctx.api->ListTasks(req, &resp);
  if (!s.ok()) return ReportFailure(s, ctx.address, *ctx.err);
  if (options.json) {
    *ctx.out << TasksJson(resp).dump(2) << "\n";
  } else {
    *ctx.out << RenderTasksTable(resp);
  }
  return kExitOk;
}

}  // namespace evald::cli
