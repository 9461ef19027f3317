// status: the state of invocations and jobs, as a table or JSON.
#include <algorithm>
#include <ostream>
#include <set>

#include "cli/commands/commands.h"
#include "cli/format.h"

namespace evald::cli {
namespace {

constexpr int kRecentCount = 10;
constexpr int kPageSize = 1000;
// Bounds the paging of active invocations (a runaway server cannot keep evalctl busy forever).
constexpr int kMaxPages = 20;

// Lists invocations with `state` (UNSPECIFIED = any), newest first, up to `limit` (0 = all).
absl::Status List(EvalApi* api, v1::JobState state, int limit, std::vector<v1::Invocation>* out) {
  v1::ListInvocationsRequest req;
  req.set_state(state);
  req.set_include_jobs(true);
  int collected = 0;
  for (int page = 0; page < kMaxPages; ++page) {
    req.set_limit(limit > 0 ? std::min(kPageSize, limit - collected) : kPageSize);
    v1::ListInvocationsResponse resp;
    absl::Status s = api->ListInvocations(req, &resp);
    if (!s.ok()) return s;
    for (v1::Invocation& inv : *resp.mutable_invocations()) {
      out->push_back(std::move(inv));
      ++collected;
    }
    if (resp.next_page_token().empty() || (limit > 0 && collected >= limit)) break;
    req.set_page_token(resp.next_page_token());
  }
  return absl::OkStatus();
}

}  // namespace

int RunStatus(Context& ctx, const StatusOptions& options) {
  std::ostream& out = *ctx.out;
  std::vector<v1::Invocation> found;
  int rc = kExitOk;

  if (options.ids.empty()) {
    // The active invocations, however old, plus the most recent ones.
    std::vector<v1::Invocation> all;
    absl::Status s = List(ctx.api, v1::JOB_STATE_UNSPECIFIED, kRecentCount, &all);
    for (v1::JobState st :
         {v1::JOB_STATE_PENDING, v1::JOB_STATE_SUBMITTED, v1::JOB_STATE_RUNNING}) {
      if (s.ok()) s = List(ctx.api, st, 0, &all);
    }
    if (!s.ok()) return ReportFailure(s, ctx.address, *ctx.err);
    std::set<std::string> seen;
    for (v1::Invocation& inv : all) {
      if (seen.insert(inv.invocation_id()).second) found.push_back(std::move(inv));
    }
    std::stable_sort(found.begin(), found.end(),
                     [](const auto& a, const auto& b) { return a.created_ms() > b.created_ms(); });
  } else {
    for (const std::string& id : options.ids) {
      v1::GetInvocationRequest req;
      req.set_id(id);
      v1::Invocation inv;
      absl::Status s = ctx.api->GetInvocation(req, &inv);
      if (s.ok() && IsJobId(id)) {
        // Keep only the job asked for.
        auto* jobs = inv.mutable_jobs();
        jobs->erase(std::remove_if(jobs->begin(), jobs->end(),
                                   [&](const v1::Job& j) { return j.job_id() != id; }),
                    jobs->end());
        if (jobs->empty()) s = absl::NotFoundError(id);
      }
      if (s.code() == absl::StatusCode::kNotFound) {
        rc = ReportFailure(s, ctx.address, *ctx.err, id);
        continue;
      }
      if (!s.ok()) return ReportFailure(s, ctx.address, *ctx.err, id);
      found.push_back(std::move(inv));
    }
  }

  if (options.json) {
    if (options.ids.size() == 1) {
      if (!found.empty()) out << InvocationStatusJson(found.front()).dump(2) << "\n";
    } else {
      Json arr = Json::array();
      for (const v1::Invocation& inv : found) arr.push_back(InvocationStatusJson(inv));
      out << arr.dump(2) << "\n";
    }
  } else if (found.empty() && options.ids.empty()) {
    out << "No invocations yet. Submit one with: evalctl submit <config.yaml>\n";
  } else {
    out << RenderStatusTable(found, NowMs(ctx));
  }
  return rc;
}

}  // namespace evald::cli
