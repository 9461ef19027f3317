#include "cli/client.h"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <ostream>
#include <random>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "cli/connection.h"
#include "core/paths.h"
#include "evald/v1/evald.grpc.pb.h"
#include "grpc/support/log.h"
#include "grpcpp/grpcpp.h"

#ifndef EVALD_VERSION
#define EVALD_VERSION "0.0.0"
#endif

namespace evald::cli {
namespace {

constexpr auto kUnaryDeadline = std::chrono::seconds(10);
constexpr auto kQuickDeadline = std::chrono::seconds(2);
// Dry runs return every rendered script; allow more than gRPC's 4 MB default.
constexpr int kMaxReceiveBytes = 64 << 20;
// evald's mark on a failure of its own (daemon/grpc_status_util.h, kServerFailureMetadataKey).
constexpr char kServerFailureMetadataKey[] = "evald-server-failure";
constexpr char kServerFailurePayload[] = "type.evald.dev/evalctl.ServerFailure";

std::atomic<bool> g_interrupted{false};

extern "C" void OnSigint(int) { g_interrupted.store(true); }

void DiscardGrpcLog(gpr_log_func_args*) {}

std::string OneLine(absl::string_view text) {
  std::string out = absl::StrReplaceAll(text, {{"\r\n", " "}, {"\n", " "}, {"\r", " "}});
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

// Why a unix socket cannot be reached, from the file system's point of view ("" if it looks fine).
std::string SocketProblem(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return "no such socket";
    if (errno == EACCES) return "permission denied";
    return std::strerror(errno);
  }
  if (!S_ISSOCK(st.st_mode)) return "not a socket";
  if (::access(path.c_str(), R_OK | W_OK) != 0) return "permission denied";
  return "";
}

std::string DirName(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

absl::Status FromGrpc(const grpc::Status& s, const grpc::ClientContext& ctx) {
  if (s.ok()) return absl::OkStatus();
  absl::Status out(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
  const auto& trailers = ctx.GetServerTrailingMetadata();
  if (trailers.find(kServerFailureMetadataKey) != trailers.end()) return MarkServerFailure(out);
  return out;
}

// Cancels a call when Ctrl-C arrives, from a helper thread (TryCancel is thread-safe; a signal
// handler may not call it).
class CancelOnInterrupt {
 public:
  explicit CancelOnInterrupt(grpc::ClientContext* ctx)
      : thread_([this, ctx] {
          std::unique_lock<std::mutex> lock(mu_);
          while (!done_) {
            if (g_interrupted.load()) {
              ctx->TryCancel();
              return;
            }
            cv_.wait_for(lock, std::chrono::milliseconds(50));
          }
        }) {}
  ~CancelOnInterrupt() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

class GrpcEvalApi final : public EvalApi {
 public:
  explicit GrpcEvalApi(Connection connection) : connection_(std::move(connection)) {}

  absl::Status Submit(const v1::SubmitRequest& req, v1::SubmitResponse* resp) override {
    return Unary(&v1::EvalService::Stub::Submit, req, resp, kUnaryDeadline);
  }
  absl::Status GetInvocation(const v1::GetInvocationRequest& req, v1::Invocation* resp) override {
    return Unary(&v1::EvalService::Stub::GetInvocation, req, resp, kUnaryDeadline);
  }
  absl::Status ListInvocations(const v1::ListInvocationsRequest& req,
                               v1::ListInvocationsResponse* resp) override {
    return Unary(&v1::EvalService::Stub::ListInvocations, req, resp, kUnaryDeadline);
  }
  absl::Status Kill(const v1::KillRequest& req, v1::KillResponse* resp) override {
    return Unary(&v1::EvalService::Stub::Kill, req, resp, kUnaryDeadline);
  }
  absl::Status Resume(const v1::ResumeRequest& req, v1::ResumeResponse* resp) override {
    return Unary(&v1::EvalService::Stub::Resume, req, resp, kUnaryDeadline);
  }
  absl::Status ListTasks(const v1::ListTasksRequest& req, v1::ListTasksResponse* resp) override {
    return Unary(&v1::EvalService::Stub::ListTasks, req, resp, kUnaryDeadline);
  }
  absl::Status GetResults(const v1::GetResultsRequest& req, v1::GetResultsResponse* resp) override {
    return Unary(&v1::EvalService::Stub::GetResults, req, resp, kUnaryDeadline);
  }
  absl::Status Backup(const v1::BackupRequest& req, v1::BackupResponse* resp) override {
    // Copying a large database takes a while; evald serves other calls meanwhile.
    return Unary(&v1::EvalService::Stub::Backup, req, resp, std::chrono::seconds(600));
  }
  absl::Status Export(const v1::ExportRequest& req, v1::ExportResponse* resp) override {
    // An MLflow export retries each call for up to 3 minutes; many jobs take a while.
    return Unary(&v1::EvalService::Stub::Export, req, resp, std::chrono::seconds(1800));
  }
  absl::Status Compare(const v1::CompareRequest& req, v1::CompareResponse* resp) override {
    return Unary(&v1::EvalService::Stub::Compare, req, resp, kUnaryDeadline);
  }
  absl::Status CreateToken(const v1::CreateTokenRequest& req,
                           v1::CreateTokenResponse* resp) override {
    return Unary(&v1::EvalService::Stub::CreateToken, req, resp, kUnaryDeadline);
  }
  absl::Status ListTokens(const v1::ListTokensRequest& req, v1::ListTokensResponse* resp) override {
    return Unary(&v1::EvalService::Stub::ListTokens, req, resp, kUnaryDeadline);
  }
  absl::Status RevokeToken(const v1::RevokeTokenRequest& req,
                           v1::RevokeTokenResponse* resp) override {
    return Unary(&v1::EvalService::Stub::RevokeToken, req, resp, kUnaryDeadline);
  }
  absl::Status GetServerInfo(bool quick, v1::ServerInfo* resp) override {
    v1::GetServerInfoRequest req;
    return Unary(&v1::EvalService::Stub::GetServerInfo, req, resp,
                 quick ? kQuickDeadline : kUnaryDeadline);
  }

  absl::Status Watch(const v1::WatchRequest& req,
                     const std::function<bool(const v1::WatchEvent&)>& on_message) override {
    return Stream<v1::WatchEvent>([&](grpc::ClientContext* ctx) { return stub()->Watch(ctx, req); },
                                  on_message);
  }
  absl::Status StreamLogs(const v1::StreamLogsRequest& req,
                          const std::function<bool(const v1::LogChunk&)>& on_chunk) override {
    return Stream<v1::LogChunk>(
        [&](grpc::ClientContext* ctx) { return stub()->StreamLogs(ctx, req); }, on_chunk);
  }

 private:
  v1::EvalService::Stub* stub() {
    if (stub_ == nullptr) {
      grpc::ChannelArguments args;
      args.SetMaxReceiveMessageSize(kMaxReceiveBytes);
      // gRPC core logs a failed TLS handshake on stderr itself; evalctl's promise is one error
      // line, which says the same. GRPC_VERBOSITY set by the user brings the logs back.
      if (std::getenv("GRPC_VERBOSITY") == nullptr) gpr_set_log_function(DiscardGrpcLog);
      std::shared_ptr<grpc::ChannelCredentials> creds = grpc::InsecureChannelCredentials();
      if (connection_.tls) {
        grpc::SslCredentialsOptions ssl;
        ssl.pem_root_certs = connection_.ca_pem;  // empty: gRPC's default roots
        ssl.pem_cert_chain = connection_.cert_pem;
        ssl.pem_private_key = connection_.key_pem;
        creds = grpc::SslCredentials(ssl);
      }
      channel_ = grpc::CreateCustomChannel(connection_.address.target, creds, args);
      stub_ = v1::EvalService::NewStub(channel_);
    }
    return stub_.get();
  }

  template <typename Method, typename Req, typename Resp>
  absl::Status Unary(Method method, const Req& req, Resp* resp, std::chrono::seconds deadline) {
    grpc::ClientContext ctx;
    ctx.set_wait_for_ready(false);
    ctx.set_deadline(std::chrono::system_clock::now() + deadline);
    Authorize(&ctx);
    grpc::Status s = (stub()->*method)(&ctx, req, resp);
    return FromGrpc(s, ctx);
  }

  template <typename Msg, typename Open, typename Callback>
  absl::Status Stream(Open open, const Callback& on_message) {
    if (g_interrupted.load()) return absl::CancelledError("interrupted");
    grpc::ClientContext ctx;
    ctx.set_wait_for_ready(false);
    Authorize(&ctx);
    CancelOnInterrupt cancel(&ctx);
    auto reader = open(&ctx);
    Msg msg;
    bool stopped = false;
    while (reader->Read(&msg)) {
      if (!on_message(msg)) {
        stopped = true;
        ctx.TryCancel();
        break;
      }
    }
    grpc::Status s = reader->Finish();
    if (stopped) return absl::OkStatus();
    if (g_interrupted.load()) return absl::CancelledError("interrupted");
    return FromGrpc(s, ctx);
  }

  // As metadata on each call rather than call credentials: those are only sent over TLS, and
  // the contract is a token on every call that has one, unix socket included.
  void Authorize(grpc::ClientContext* ctx) const {
    if (!connection_.token.empty()) {
      ctx->AddMetadata("authorization", "Bearer " + connection_.token);
    }
  }

  Connection connection_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::EvalService::Stub> stub_;
};

}  // namespace

const char* EvalctlVersion() { return EVALD_VERSION; }

absl::StatusOr<ServerAddress> ResolveAddress(const std::optional<std::string>& flag,
                                             const char* env, const std::string& state_dir) {
  ServerAddress a;
  if (flag.has_value()) {
    if (flag->empty()) return absl::InvalidArgumentError("--server needs an address");
    a.target = *flag;
    a.source = "--server";
  } else if (env != nullptr && env[0] != '\0') {
    a.target = env;
    a.source = "EVALD_ADDR";
  } else {
    a.target = UnixAddress(DefaultSocketPath(state_dir));
    a.source = "default";
  }
  if (absl::StartsWith(a.target, "/")) a.target = UnixAddress(a.target);
  if (absl::StartsWith(a.target, "unix://")) {
    a.unix_path = a.target.substr(7);
  } else if (absl::StartsWith(a.target, "unix:")) {
    a.unix_path = a.target.substr(5);
  }
  return a;
}

std::string UnreachableMessage(const ServerAddress& address, absl::string_view detail) {
  std::string why;
  if (!address.unix_path.empty()) why = SocketProblem(address.unix_path);
  const std::string lower = absl::AsciiStrToLower(detail);
  // A failed TLS handshake also reads "failed to connect"; it is not a missing daemon.
  const bool tls_failed =
      address.tls && (absl::StrContains(lower, "ssl") || absl::StrContains(lower, "handshake") ||
                      absl::StrContains(lower, "certificate"));
  if (tls_failed) {
    return absl::StrCat("cannot reach evald at ", address.target, " over TLS (", OneLine(detail),
                        "); check the CA file (--ca-file, EVALD_CA_FILE or ca_file in evalctl's "
                        "config), or --insecure if that evald listens without TLS");
  }
  if (why.empty()) {
    why = OneLine(detail);
    if (why.empty() || absl::StrContains(why, "onnection refused") ||
        absl::StrContains(why, "failed to connect")) {
      why = "connection refused: no evald is listening";
    }
  }
  // evald's default socket is <state dir>/evald.sock; anything else needs --listen, and TCP
  // also --insecure-tcp (evald refuses it otherwise).
  std::string hint;
  const std::string& path = address.unix_path;
  if (!path.empty() && (path == "evald.sock" || absl::EndsWith(path, "/evald.sock"))) {
    hint = absl::StrCat("evald --state-dir ", DirName(path));
  } else if (path.empty() && address.tls) {
    hint = absl::StrCat("a TLS listen entry for ", address.target, " in evald.yaml");
  } else if (path.empty()) {
    hint = absl::StrCat("evald --listen ", address.target, " --insecure-tcp");
  } else {
    hint = absl::StrCat("evald --listen ", address.target);
  }
  return absl::StrCat("cannot reach evald at ", address.target, " (", why,
                      "); start it with: ", hint);
}

bool IsRequestTooLarge(const absl::Status& status) {
  if (status.code() != absl::StatusCode::kResourceExhausted) return false;
  std::string msg = absl::AsciiStrToLower(status.message());
  return absl::StrContains(msg, "larger than max") || absl::StrContains(msg, "too large") ||
         absl::StrContains(msg, "message size");
}

bool IsServerFailure(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return false;
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kDataLoss:
    case absl::StatusCode::kUnknown:
      return true;
    default:
      return status.GetPayload(kServerFailurePayload).has_value();
  }
}

absl::Status MarkServerFailure(absl::Status status) {
  if (!status.ok()) status.SetPayload(kServerFailurePayload, absl::Cord("1"));
  return status;
}

bool IsConnectFailure(const absl::Status& status) {
  if (status.code() != absl::StatusCode::kUnavailable || IsServerFailure(status)) return false;
  const std::string msg = absl::AsciiStrToLower(status.message());
  for (const char* needle : {"failed to connect", "connection refused", "no such file",
                             "connect failed", "dns resolution failed", "name resolution"}) {
    if (absl::StrContains(msg, needle)) return true;
  }
  return false;
}

bool IsAmbiguousFailure(const absl::Status& status) {
  if (status.code() == absl::StatusCode::kDeadlineExceeded) return true;
  return status.code() == absl::StatusCode::kUnavailable && !IsServerFailure(status) &&
         !IsConnectFailure(status);
}

std::string WentAwayMessage(absl::string_view doing, absl::string_view detail,
                            absl::string_view again) {
  const std::string why = OneLine(detail);
  return absl::StrCat("evald went away (connection lost", why.empty() ? "" : ": ", why, ") while ",
                      doing, "; the jobs keep running; run `", again, "` once evald is back");
}

bool WentAway(const absl::Status& status, int64_t received) {
  if (IsServerFailure(status)) return false;
  // evald cancels the streams still open when its shutdown grace ends: CANCELLED that this
  // process did not ask for (no Ctrl-C) is evald going away, not an interruption.
  if (status.code() == absl::StatusCode::kCancelled) return !Interrupted();
  if (status.code() != absl::StatusCode::kUnavailable) return false;
  // With nothing received yet, only a connection that broke (not one never made) went away.
  return received > 0 || !IsConnectFailure(status);
}

std::string NewIdempotencyKey() {
  std::random_device random;
  std::string key;
  for (int i = 0; i < 4; ++i) absl::StrAppend(&key, absl::Hex(random(), absl::kZeroPad8));
  return key;
}

int ExitCodeFor(const absl::Status& status) {
  if (IsServerFailure(status)) return kExitServerError;
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return kExitOk;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      return kExitBadInput;
    case absl::StatusCode::kResourceExhausted:
      return IsRequestTooLarge(status) ? kExitBadInput : kExitFailed;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
      return kExitUnreachable;
    case absl::StatusCode::kNotFound:
      return kExitNotFound;
    case absl::StatusCode::kFailedPrecondition:
      return kExitRefused;
    case absl::StatusCode::kCancelled:
      return kExitInterrupted;
    default:
      return kExitFailed;
  }
}

std::string FailureMessage(const absl::Status& status, const ServerAddress& address,
                           absl::string_view id) {
  std::string msg = OneLine(status.message());
  if (IsServerFailure(status)) {
    return absl::StrCat("evald failed: ", absl::StatusCodeToString(status.code()), ": ", msg);
  }
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
      return UnreachableMessage(address, msg);
    case absl::StatusCode::kDeadlineExceeded:
      return absl::StrCat("evald at ", address.target, " did not answer in time (", msg, ")");
    case absl::StatusCode::kNotFound:
      if (!id.empty()) return absl::StrCat("no invocation or job with id ", id);
      return msg;
    case absl::StatusCode::kResourceExhausted:
      if (IsRequestTooLarge(status)) return absl::StrCat("request too large: ", msg);
      return absl::StrCat("evald is out of resources: ", msg);
    case absl::StatusCode::kCancelled:
      return "interrupted";
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
      return msg;
    case absl::StatusCode::kUnauthenticated:
      return absl::StrCat("evald refused the request: ", msg,
                          " (give a token with EVALD_TOKEN or `evalctl login`)");
    case absl::StatusCode::kPermissionDenied:
      return absl::StrCat("evald refused the request: ", msg);
    default:
      return absl::StrCat("evald error (", absl::StatusCodeToString(status.code()), "): ", msg);
  }
}

int ReportFailure(const absl::Status& status, const ServerAddress& address, std::ostream& err,
                  absl::string_view id) {
  err << "evalctl: " << FailureMessage(status, address, id) << "\n";
  return ExitCodeFor(status);
}

void InstallInterruptHandler() {
  struct sigaction sa {};
  sa.sa_handler = OnSigint;
  sigemptyset(&sa.sa_mask);
  // A second Ctrl-C gets the default action, so a stuck evalctl can always be stopped.
  sa.sa_flags = SA_RESTART | SA_RESETHAND;
  sigaction(SIGINT, &sa, nullptr);
}

bool Interrupted() { return g_interrupted.load(); }
void SetInterruptedForTest(bool value) { g_interrupted.store(value); }

std::unique_ptr<EvalApi> NewGrpcEvalApi(const ServerAddress& address) {
  Connection c;
  c.address = address;
  return std::make_unique<GrpcEvalApi>(std::move(c));
}

std::unique_ptr<EvalApi> NewGrpcEvalApi(const Connection& connection) {
  return std::make_unique<GrpcEvalApi>(connection);
}

}  // namespace evald::cli
