// File: client.h
//
// evalctl's side of the evald.v1 API: where the daemon is (`--server` > EVALD_ADDR > the default
// socket), the RPCs the commands make (EvalApi; the gRPC implementation creates its channel on
// the first call, so commands that never call pay nothing), and the one mapping from an RPC
// status to evalctl's exit code and error line. No gRPC type appears here: only client.cc
// includes gRPC, which keeps the commands quick to compile and testable against a fake EvalApi.
//
// Callers: cli/main.cc (creates the API), every command (calls it, reports failures).
//
//   ServerAddress addr = ResolveAddress(flag, std::getenv("EVALD_ADDR"), DefaultStateDir());
//   std::unique_ptr<EvalApi> api = NewGrpcEvalApi(addr);
//   v1::Invocation inv;
//   absl::Status s = api->GetInvocation(req, &inv);
//   if (!s.ok()) return ReportFailure(s, addr, std::cerr, id);
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "evald/v1/evald.pb.h"

namespace evald::cli {

// evalctl's exit codes (docs/cli.md and `evalctl --help` list them).
enum ExitCode : int {
  kExitOk = 0,
  kExitFailed = 1,       // the evaluation failed (watch/--wait) or an unexpected server error
  kExitBadInput = 2,     // usage, config, unset env var, invalid --since, request too large
  kExitUnreachable = 3,  // evald not reachable (or went away while watching)
  kExitNotFound = 4,     // unknown invocation or job id
  kExitRefused = 5,      // refused in the current state (e.g. kill of a finished job)
  kExitServerError = 6,  // evald failed on its side (database I/O error or corrupt, internal)
  kExitInterrupted = 130,
};

// The version evalctl reports and sends as `client = "evalctl/<version>"`.
const char* EvalctlVersion();

struct ServerAddress {
  std::string target;     // what gRPC dials: unix:///abs, unix:rel, host:port
  std::string source;     // "--server", "EVALD_ADDR", the config file's path or "default"
  std::string unix_path;  // the socket path of a unix target, else ""
  bool tls = false;       // host:port over TLS (cli/connection.h decides)
};

// `flag`: --server (nullopt when not given); `env`: EVALD_ADDR (nullptr or "" = unset). A bare
// absolute path is taken as a unix socket. InvalidArgument for an empty --server.
absl::StatusOr<ServerAddress> ResolveAddress(const std::optional<std::string>& flag,
                                             const char* env, const std::string& state_dir);

// The one error line for an unreachable daemon, e.g.
//   "cannot reach evald at unix:///home/u/.local/state/evald/evald.sock (no such socket); start
//    it with: evald --state-dir /home/u/.local/state/evald"
// `detail` is gRPC's message, used when the socket itself looks fine (or for TCP).
std::string UnreachableMessage(const ServerAddress& address, absl::string_view detail);

// Status -> exit code: a server failure (IsServerFailure) 6, whatever its code; else Ok 0,
// InvalidArgument/OutOfRange 2, Unavailable/DeadlineExceeded 3, NotFound 4, FailedPrecondition 5,
// Cancelled 130, else 1. ResourceExhausted is 2 when the request was over evald's message limit
// (IsRequestTooLarge) and 1 otherwise (evald busy or out of resources).
int ExitCodeFor(const absl::Status& status);

// evald answered that it failed on its side: INTERNAL, DATA_LOSS, UNKNOWN, or any code that evald
// marked as its own failure (trailing metadata `evald-server-failure`, e.g. UNAVAILABLE for a
// database I/O error). Such a status never means "cannot reach evald".
bool IsServerFailure(const absl::Status& status);
// Tags `status` the way the gRPC client does when evald marked a failure as its own.
absl::Status MarkServerFailure(absl::Status status);
// UNAVAILABLE because no connection could be made (nothing was sent).
bool IsConnectFailure(const absl::Status& status);
// A call that may or may not have reached evald: DEADLINE_EXCEEDED, or UNAVAILABLE that is
// neither a failed connect nor evald's own answer (the connection broke during the call).
bool IsAmbiguousFailure(const absl::Status& status);

// The one line (without "evalctl: ") for a stream that lost evald midway, e.g.
//   "evald went away (connection lost: Socket closed) while watching 3f9a0c1e; the jobs keep
//    running; run `evalctl watch 3f9a0c1e` once evald is back"
// `doing` is "watching 3f9a0c1e" / "streaming the logs of 3f9a0c1e"; `again` the command to rerun.
// Exit code: kExitUnreachable.
std::string WentAwayMessage(absl::string_view doing, absl::string_view detail,
                            absl::string_view again);
// A stream that ended with `status` after `received` messages lost evald midway: UNAVAILABLE not
// marked as evald's own failure, after a message arrived or with a connection that broke (not
// one that was never made).
bool WentAway(const absl::Status& status, int64_t received);

// A fresh random idempotency key for Submit: 32 lower-case hex digits (128 bits).
std::string NewIdempotencyKey();
// gRPC's rejection of an over-large message ("Received message larger than max (N vs. M)").
bool IsRequestTooLarge(const absl::Status& status);

// The error line (without "evalctl: ") for a failed call. `id`, when not empty, is what the user
// asked about (used for NotFound: "no invocation or job with id X").
std::string FailureMessage(const absl::Status& status, const ServerAddress& address,
                           absl::string_view id = "");

// Prints "evalctl: <FailureMessage>" on one line to `err` and returns ExitCodeFor(status).
int ReportFailure(const absl::Status& status, const ServerAddress& address, std::ostream& err,
                  absl::string_view id = "");

// Ctrl-C handling for the streaming commands (watch, logs -f, --wait): the first SIGINT only
// sets a flag, which cancels the running stream; the command then exits 130.
void InstallInterruptHandler();
bool Interrupted();
// Tests only.
void SetInterruptedForTest(bool value);

// The RPCs evalctl makes, with gRPC status codes carried as absl::Status codes (same numbers).
// Stream callbacks return false to stop reading (the stream is then cancelled and the call
// returns OK).
class EvalApi {
 public:
  virtual ~EvalApi() = default;
  virtual absl::Status Submit(const v1::SubmitRequest& request, v1::SubmitResponse* response) = 0;
  virtual absl::Status GetInvocation(const v1::GetInvocationRequest& request,
                                     v1::Invocation* response) = 0;
  virtual absl::Status ListInvocations(const v1::ListInvocationsRequest& request,
                                       v1::ListInvocationsResponse* response) = 0;
  virtual absl::Status Kill(const v1::KillRequest& request, v1::KillResponse* response) = 0;
  virtual absl::Status Resume(const v1::ResumeRequest& request, v1::ResumeResponse* response) = 0;
  virtual absl::Status ListTasks(const v1::ListTasksRequest& request,
                                 v1::ListTasksResponse* response) = 0;
  virtual absl::Status GetResults(const v1::GetResultsRequest& request,
                                  v1::GetResultsResponse* response) = 0;
  // `quick`: a short deadline, for `version`, where an absent daemon is not an error.
  virtual absl::Status GetServerInfo(bool quick, v1::ServerInfo* response) = 0;
  virtual absl::Status Watch(const v1::WatchRequest& request,
                             const std::function<bool(const v1::WatchEvent&)>& on_message) = 0;
  virtual absl::Status StreamLogs(const v1::StreamLogsRequest& request,
                                  const std::function<bool(const v1::LogChunk&)>& on_chunk) = 0;
  // Not pure: test fakes that have no use for it need not implement it.
  virtual absl::Status Backup(const v1::BackupRequest& request, v1::BackupResponse* response) {
    (void)request;
    (void)response;
    return absl::UnimplementedError("Backup");
  }
  virtual absl::Status Export(const v1::ExportRequest& request, v1::ExportResponse* response) {
    (void)request;
    (void)response;
    return absl::UnimplementedError("Export");
  }
  // Token administration (evalctl admin tokens); admins only on evald's side.
  virtual absl::Status CreateToken(const v1::CreateTokenRequest& request,
                                   v1::CreateTokenResponse* response) {
    (void)request;
    (void)response;
    return absl::UnimplementedError("this evalctl cannot call CreateToken yet");
  }
  virtual absl::Status ListTokens(const v1::ListTokensRequest& request,
                                  v1::ListTokensResponse* response) {
    (void)request;
    (void)response;
    return absl::UnimplementedError("this evalctl cannot call ListTokens yet");
  }
  virtual absl::Status RevokeToken(const v1::RevokeTokenRequest& request,
                                   v1::RevokeTokenResponse* response) {
    (void)request;
    (void)response;
    return absl::UnimplementedError("this evalctl cannot call RevokeToken yet");
  }
  virtual absl::Status Compare(const v1::CompareRequest& request, v1::CompareResponse* response) {
    (void)request;
    (void)response;
    return absl::UnimplementedError("this evalctl cannot call Compare yet");
  }
};

// The gRPC implementation: insecure channel (unix sockets are protected by file permissions),
// 10 s deadline on unary calls, wait_for_ready false (fail fast when evald is not there).
// cli/connection.h has the overload with TLS and a bearer token.
std::unique_ptr<EvalApi> NewGrpcEvalApi(const ServerAddress& address);

}  // namespace evald::cli
