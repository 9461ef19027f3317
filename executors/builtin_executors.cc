// The one list of backends evald ships. Add a new executor here (see
// docs/design/adding-an-executor.md).
#include "core/status_macros.h"
#include "executors/local/local_executor.h"
#include "executors/registry.h"

namespace evald::executors {

absl::Status RegisterBuiltinExecutors(const ExecutorContext& context, ExecutorRegistry& registry) {
  EVALD_RETURN_IF_ERROR(registry.Register(std::make_unique<LocalExecutor>(context)));
  return absl::OkStatus();
}

}  // namespace evald::executors
