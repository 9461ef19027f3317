// version: evalctl's version and, when reachable, the daemon's.
#include <ostream>

#include "cli/commands/commands.h"

namespace evald::cli {

int RunVersion(Context& ctx) {
  std::ostream& out = *ctx.out;
  out << "evalctl " << EvalctlVersion() << "\n";
  v1::ServerInfo info;
  absl::Status s = ctx.api->GetServerInfo(/*quick=*/true, &info);
  if (s.ok()) {
    out << "evald " << info.version() << " (api "
        << (info.api_version().empty() ? "evald.v1" : info.api_version()) << ") at "
        << ctx.address.target << "\n";
  } else {
    // Not an error here: the client's version is still useful.
    out << "evald: not reachable (" << FailureMessage(s, ctx.address) << ")\n";
  }
  return kExitOk;
}

}  // namespace evald::cli
