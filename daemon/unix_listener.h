// File: unix_listener.h
//
// evald's unix socket, accepted by evald itself rather than by gRPC, so that the peer's uid is
// known: each connection's credentials are read with SO_PEERCRED at accept() and the connection
// is then handed to the gRPC server (grpc::AddInsecureChannelFromFd). gRPC 1.51 reports such a
// connection's ServerContext::peer() as "fd:<n>", so UnixPeers maps that fd to the credentials.
//
// Why an fd key is safe: a connection's fd stays open (gRPC only shuts it down) while any of its
// calls is alive, since each stream holds a reference to its transport; a reused fd number
// therefore always belongs to a connection accepted (and recorded) after the old one's calls.
//
// Callers: main() (Bind, Start, Stop) and CallerResolver (UnixPeers::Lookup).
//
//   EVALD_ASSIGN_OR_RETURN(auto listener, UnixListener::Bind(path, 0660, "evalteam"));
//   auto server = builder.BuildAndStart();
//   listener->Start(server.get(), &peers);
#pragma once

#include <sys/types.h>

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace grpc {
class Server;
}

namespace evald::daemon {

struct PeerCred {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
};

// The credentials of the unix-socket connections handed to gRPC, by fd. Thread-safe.
class UnixPeers {
 public:
  void Set(int fd, PeerCred cred);
  // The credentials of `peer` (ServerContext::peer(), "fd:<n>"); nullopt when it is not a
  // connection accepted by a UnixListener (a TCP peer, say).
  std::optional<PeerCred> Lookup(const std::string& peer) const;

 private:
  mutable absl::Mutex mu_;
  absl::flat_hash_map<int, PeerCred> by_fd_ ABSL_GUARDED_BY(mu_);
};

class UnixListener {
 public:
  // Removes a stale socket file, binds and listens at `path`, and sets its mode and group (empty
  // = leave evald's). Errors name the path and what failed.
  static absl::StatusOr<std::unique_ptr<UnixListener>> Bind(const std::string& path, int mode,
                                                            const std::string& group);
  ~UnixListener();

  // Accepts connections on a thread of its own until Stop(); `server` and `peers` outlive it.
  void Start(grpc::Server* server, UnixPeers* peers);
  // Stops accepting; connections already handed over stay with the server. Idempotent.
  void Stop();
  const std::string& path() const { return path_; }

 private:
  UnixListener(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  void AcceptLoop(grpc::Server* server, UnixPeers* peers);

  int fd_;
  std::string path_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace evald::daemon
