#include "core/paths.h"

#include <cstdlib>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace evald {

std::string DefaultStateDir() {
  const char* xdg = std::getenv("XDG_STATE_HOME");
  if (xdg != nullptr && xdg[0] == '/') return absl::StrCat(xdg, "/evald");
  const char* home = std::getenv("HOME");
  return absl::StrCat(home != nullptr && home[0] != '\0' ? home : "/tmp", "/.local/state/evald");
}

std::string DefaultSocketPath(absl::string_view state_dir) {
  return absl::StrCat(state_dir, "/evald.sock");
}

std::string UnixAddress(absl::string_view socket_path) {
  if (absl::StartsWith(socket_path, "/")) return absl::StrCat("unix://", socket_path);
  return absl::StrCat("unix:", socket_path);
}

}  // namespace evald
