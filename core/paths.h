// File: paths.h
//
// Where evald keeps its state by default, so evald and evalctl agree without talking:
// state dir `${XDG_STATE_HOME:-$HOME/.local/state}/evald`, socket `<state dir>/evald.sock`.
//
//   std::string dir = DefaultStateDir();       // "/home/ana/.local/state/evald"
//   std::string addr = UnixAddress(DefaultSocketPath(dir));   // "unix:///home/.../evald.sock"
#pragma once

#include <string>

#include "absl/strings/string_view.h"

namespace evald {

// Longest unix socket path the kernel accepts (sun_path is 108 bytes with the trailing NUL).
inline constexpr size_t kMaxUnixSocketPath = 107;

std::string DefaultStateDir();
std::string DefaultSocketPath(absl::string_view state_dir);
// "unix:///abs/path.sock" for a path; gRPC accepts it as a target and as a listen address.
std::string UnixAddress(absl::string_view socket_path);

}  // namespace evald
