// File: logging.h
//
// evald's log set-up: spdlog to stderr (systemd's journal or the terminal), as human-readable
// text or as JSON lines (one object per line: time, level, msg) for log shippers. Called once by
// main(). Nothing secret is ever logged: secrets only travel in Submit/Resume and job environments.
#pragma once

#include <string>

#include "absl/status/status.h"

namespace evald::daemon {

absl::Status SetupLogging(const std::string& level, const std::string& format);

}  // namespace evald::daemon
