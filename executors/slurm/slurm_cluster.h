// File: slurm_cluster.h
//
// How the SLURM executor talks to a cluster: shell commands on its login node, either on this
// machine (no hostname: `bash -c`) or over ssh with ONE multiplexed connection per cluster
// (ControlMaster in a directory evald owns, re-established when the master dies), honouring the
// user's ssh config and agent. Every command has a timeout; a command that fails or times out
// means "not observed this time" to callers, never "the job failed". Job files travel over the same
// connection as a tar stream on stdin, secrets as stdin of `cat` under umask 077, so no value
// ever reaches a command line.
//
// Callers: SlurmExecutor only, on its driver thread (not thread-safe).
//
//   ClusterPool pool;
//   SlurmCluster& c = pool.Get({.hostname = "login", .username = "alice"});
//   ClusterResult r = c.Run(absl::StrCat("scancel ", ShellQuote(id)), "", absl::Seconds(20));
//   if (!r.ok()) ...  // not observed; retry later
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace evald::executors {

// Where a cluster's login node is. Compared by all fields: two configs that reach the same host
// differently get separate connections.
struct ClusterTarget {
  std::string hostname;         // "" = this machine (no ssh)
  std::string username;         // "" = ssh's default (config file or local user)
  std::string ssh_config_file;  // "" = the user's ~/.ssh/config
  std::string Key() const;
  bool remote() const { return !hostname.empty(); }
};

struct ClusterResult {
  int exit_code = -1;  // -1 when it could not run or timed out
  bool timed_out = false;
  std::string out;
  std::string err;
  bool ok() const { return !timed_out && exit_code == 0; }
  // For messages: "exit code N: <first stderr line>" or "timed out after ..." (never stdin).
  std::string Describe() const;
};

// Runs argv (PATH lookup) in its own process group with `stdin_data` on stdin, collecting stdout
// and stderr, and kills the group when `timeout` passes. Does not wait for grandchildren that keep
// the output open (an ssh master that went to the background) once argv[0] itself has exited.
ClusterResult RunCommand(const std::vector<std::string>& argv, const std::string& stdin_data,
                         absl::Duration timeout);

class SlurmCluster {
 public:
  // `control_socket`: the ssh ControlPath, in a 0700 directory (unused for local clusters).
  SlurmCluster(ClusterTarget target, std::string control_socket);
  ~SlurmCluster();  // ends the ssh master
  SlurmCluster(const SlurmCluster&) = delete;
  SlurmCluster& operator=(const SlurmCluster&) = delete;

  const ClusterTarget& target() const { return target_; }

  // Runs `command` (shell text whose values are ShellQuote'd words) on the login node.
  ClusterResult Run(const std::string& command, const std::string& stdin_data = "",
                    absl::Duration timeout = absl::Seconds(30));

  // Copies `files` (relative to `local_dir`) into `remote_dir` on the cluster, creating it. A
  // no-op for a local cluster when the two dirs are the same.
  absl::Status CopyTo(const std::string& local_dir, const std::vector<std::string>& files,
                      const std::string& remote_dir);
  // Copies `paths` (relative to `remote_dir`; missing ones are skipped) back into `local_dir`.
  absl::Status FetchFrom(const std::string& remote_dir, const std::vector<std::string>& paths,
                         const std::string& local_dir);
  // The same for many dirs in ONE remote command (one tar stream for all of them): a poll in
  // which many jobs ended pays one round trip, not one per job. All or nothing; a dir that is gone
  // on the cluster has nothing to fetch. The whole stream is held in memory: callers bound `dirs`.
  // FailedPrecondition when the remote tar failed (e.g. an unreadable file: fetching the dirs one
  // by one may get the others), Unavailable when the cluster did not answer.
  struct FetchDir {
    std::string remote_dir;
    std::string local_dir;
  };
  absl::Status FetchFrom(const std::vector<FetchDir>& dirs, const std::vector<std::string>& paths);
  // Writes `content` to `remote_path` with mode 0600 (through stdin, never a command line).
  absl::Status WritePrivateFile(const std::string& remote_path, const std::string& content);
  // Makes `remote_path` on the cluster a 0755 copy of the local file `local_path`, whose sha256
  // (64 lowercase hex, FileSha256) is `sha256`. One remote `sha256sum` tells whether it is there
  // already; if not, the file goes over the connection (stdin) to a temporary name next to it, is
  // checksummed there and renamed, so a job never runs half a file and two evalds copying at once
  // both end with a whole one. True when it copied, false when the file was there. Unavailable
  // when the cluster did not answer; FailedPrecondition when the copy failed on the cluster (no
  // space, no permission, a checksum that differs) or the local file cannot be read.
  absl::StatusOr<bool> InstallFile(const std::string& local_path, const std::string& sha256,
                                   const std::string& remote_path);

  // The ssh argv for `command` (tests; empty for a local cluster).
  std::vector<std::string> SshArgv(const std::string& command, bool master = false) const;

  // How many commands Run() has started in this process, over all clusters, by the command's
  // first word ("squeue", "sacct", "cd" for FetchFrom, "mkdir" for CopyTo, ...); ssh master checks
  // are not counted. For tests and benches (bench/slurm) that check what a poll costs: the
  // executor's pool is private, so the count is process-wide. Thread-safe.
  static std::map<std::string, int64_t> CommandCounts();

 private:
  void EnsureMaster();
  // `ssh ... -O <op> host` for the master (check, exit).
  std::vector<std::string> ControlArgv(const std::string& op) const;

  ClusterTarget target_;
  std::string control_socket_;
  bool master_ok_ = false;
};

// The sha256 of a local file as 64 lowercase hex digits (coreutils `sha256sum`, as on the
// cluster); FailedPrecondition when it cannot be read.
absl::StatusOr<std::string> FileSha256(const std::string& path);

// One SlurmCluster per target, with their control sockets in one private directory that is
// removed on destruction.
class ClusterPool {
 public:
  ClusterPool();
  ~ClusterPool();
  ClusterPool(const ClusterPool&) = delete;
  ClusterPool& operator=(const ClusterPool&) = delete;
  SlurmCluster& Get(const ClusterTarget& target);

 private:
  std::string control_dir_;
  std::map<std::string, std::unique_ptr<SlurmCluster>> clusters_;
};

}  // namespace evald::executors
