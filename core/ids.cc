#include "core/ids.h"

#include "absl/random/random.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace evald {

std::string NewInvocationId() {
  // One generator per thread: absl::BitGen is seeded from the OS and not thread-safe.
  thread_local absl::BitGen gen;
  return absl::StrFormat("%08x", absl::Uniform<uint32_t>(gen));
}

std::string JobId(absl::string_view invocation_id, int index) {
  return absl::StrCat(invocation_id, ".", index);
}

std::string DeploymentId(absl::string_view invocation_id, int index) {
  return absl::StrCat(invocation_id, ".d", index);
}

bool IsValidInvocationId(absl::string_view id) {
  if (id.size() != 8) return false;
  for (char c : id) {
    if (!absl::ascii_isxdigit(c) || absl::ascii_isupper(c)) return false;
  }
  return true;
}

std::optional<std::pair<std::string, int>> ParseJobId(absl::string_view id) {
  size_t dot = id.find('.');
  if (dot == absl::string_view::npos) return std::nullopt;
  absl::string_view inv = id.substr(0, dot);
  absl::string_view num = id.substr(dot + 1);
  int index = 0;
  if (!IsValidInvocationId(inv) || num.empty() || !absl::ascii_isdigit(num[0]) ||
      !absl::SimpleAtoi(num, &index) || index < 0) {
    return std::nullopt;
  }
  return std::make_pair(std::string(inv), index);
}

std::string InvocationIdOf(absl::string_view id) {
  return std::string(id.substr(0, id.find('.')));
}

}  // namespace evald
