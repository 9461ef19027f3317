#include "daemon/submit_key.h"

#include <map>

#include "absl/strings/str_cat.h"

namespace evald::daemon {
namespace {

void Field(std::string* out, absl::string_view name, absl::string_view value) {
  absl::StrAppend(out, name, ":", value.size(), ":", value, "\n");
}

}  // namespace

absl::Status CheckIdempotencyKey(absl::string_view key) {
  if (key.size() > kMaxIdempotencyKeySize) {
    return absl::InvalidArgumentError(absl::StrCat("idempotency_key has ", key.size(),
                                                   " characters; at most ", kMaxIdempotencyKeySize,
                                                   " are allowed"));
  }
  for (char c : key) {
    if (c <= ' ' || c > '~') {
      return absl::InvalidArgumentError(
          "idempotency_key must be printable ASCII without spaces (e.g. "
          "\"$CI_PIPELINE_ID-$CI_JOB_ID\" or 32 hex digits)");
    }
  }
  return absl::OkStatus();
}

std::string CanonicalSubmitRequest(const v1::SubmitRequest& request) {
  std::string out = "evald.v1.SubmitRequest\n";
  Field(&out, "config_yaml", request.config_yaml());
  for (const std::string& o : request.overrides()) Field(&out, "override", o);
  for (const std::string& t : request.tasks()) Field(&out, "task", t);
  Field(&out, "composed", request.composed() ? "true" : "false");
  const std::map<std::string, std::string> env(request.environment().begin(),
                                               request.environment().end());
  for (const auto& [name, value] : env) Field(&out, absl::StrCat("env ", name), value);
  Field(&out, "working_dir", request.working_dir());
  return out;
}

}  // namespace evald::daemon
