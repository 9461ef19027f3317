// File: write_file.h
//
// The one way executors write a file of a job or a deployment into its directory (scripts,
// plans, secrets, handles' records): whole or not at all, with the mode asked for.
//
// Callers: the local, SLURM and Lepton executors and the Lepton deployments.
//
//   EVALD_RETURN_IF_ERROR(WriteFileAtomically(spec.task_dir + "/run.sh", script, 0755));
#pragma once

#include <sys/types.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace evald::executors {

// Writes `content` to `<path>.tmp` created with `mode` and renames it over `path`, so a reader or
// a crash sees the old file or the new one, never half of one. `mode` is given to open(), so
// evald's umask still applies (UMask=0027 in the systemd unit: a chmod would hand job files back
// the bits the administrator's umask took away); a leftover `.tmp` is removed first so it cannot
// keep an older, wider mode. ResourceExhausted when a write fails, Internal otherwise.
absl::Status WriteFileAtomically(const std::string& path, absl::string_view content, mode_t mode);

}  // namespace evald::executors
