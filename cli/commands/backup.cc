// admin backup: asks evald for a consistent online copy of its database (SQLite online backup).
// evald writes the file, as its own user and on its own machine, so a relative FILE is resolved
// here against evalctl's working directory first.
#include <filesystem>
#include <ostream>

#include "cli/commands/commands.h"
#include "nlohmann/json.hpp"

namespace evald::cli {

int RunBackup(Context& ctx, const BackupOptions& options) {
  std::error_code ec;
  std::filesystem::path path = std::filesystem::absolute(options.path, ec);
  if (ec) path = options.path;
  v1::BackupRequest req;
  req.set_path(path.lexically_normal().string());
  req.set_overwrite(options.overwrite);
  v1::BackupResponse resp;
  absl::Status s = ctx.api->Backup(req, &resp);
  if (!s.ok()) return ReportFailure(s, ctx.address, *ctx.err);
  if (options.json) {
    nlohmann::json j = {{"path", resp.path()},
                        {"bytes", resp.bytes()},
                        {"invocations", resp.invocation_count()},
                        {"duration_ms", resp.duration_ms()}};
    *ctx.out << j.dump(2) << "\n";
    return kExitOk;
  }
  *ctx.out << "Backup written to " << resp.path() << " (" << resp.bytes() << " bytes, "
           << resp.invocation_count() << " invocations, " << resp.duration_ms() << " ms).\n"
           << "It does not include secrets.key; restore: docs/operations.md#backups\n";
  return kExitOk;
}

}  // namespace evald::cli
