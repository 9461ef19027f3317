#include "executors/job_spec_check.h"

#include <string>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "core/shell.h"
#include "core/status_macros.h"

namespace evald::executors {

absl::Status CheckJobSpecForScript(const JobSpec& spec) {
  const std::pair<const char*, const std::string*> fields[] = {
      {"job id", &spec.job_id},
      {"task name", &spec.task},
      {"task directory", &spec.task_dir},
      {"task image", &spec.image},
      {"container command", &spec.container_command}};
  for (const auto& [what, value] : fields) {
    EVALD_RETURN_IF_ERROR(CheckShellValue(*value, what));
  }
  for (const auto& [dst, src] : spec.env_vars) {
    EVALD_RETURN_IF_ERROR(
        CheckEnvName(dst, absl::StrCat("task '", absl::CHexEscape(spec.task), "': env_vars")));
  }
  return absl::OkStatus();
}

}  // namespace evald::executors
