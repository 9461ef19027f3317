#include "tests/integration/harness.h"

#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "executors/local/process.h"
#include "nlohmann/json.hpp"
#include "tests/integration/fixture.h"

namespace evald::testing {
namespace {

namespace fs = std::filesystem;
using executors::Inspect;
using executors::ProcessId;
using executors::ProcessStatus;
using executors::SignalGroup;
using executors::SpawnDetached;

int Counter() {
  static int n = 0;
  return ++n;
}

}  // namespace

std::string BinDir() { return std::string(EVALD_BINARY_DIR) + "/bin"; }
std::string SourceDir() { return EVALD_SOURCE_DIR; }

bool IsTerminalState(v1::JobState s) {
  return s == v1::JOB_STATE_SUCCEEDED || s == v1::JOB_STATE_FAILED || s == v1::JOB_STATE_KILLED ||
         s == v1::JOB_STATE_LOST;
}

bool PidAlive(pid_t pid) {
  if (pid <= 0 || kill(pid, 0) != 0) return false;
  // A zombie counts as gone.
  std::string stat = Slurp(absl::StrCat("/proc/", pid, "/stat"));
  size_t close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z';
}

Process::Process(const std::vector<std::string>& argv,
                 const std::map<std::string, std::string>& env, const std::string& log_prefix) {
  out_path_ = log_prefix + ".out";
  err_path_ = log_prefix + ".err";
  absl::StatusOr<ProcessId> p =
      SpawnDetached({.argv = argv, .env = env, .stdout_path = out_path_, .stderr_path = err_path_});
  REQUIRE(p.ok());
  pid_ = p->pid;
}

Process::~Process() {
  if (Alive()) Stop(SIGKILL, 5);
}

bool Process::Alive() {
  if (exit_code_ >= 0) return false;
  int status = 0;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return false;
  }
  return r == 0;
}

int Process::Wait(double timeout_s) {
  WaitFor([&] { return !Alive(); }, timeout_s);
  return exit_code_;
}

int Process::Stop(int signal, double timeout_s) {
  if (Alive()) kill(pid_, signal);
  int code = Wait(timeout_s);
  if (Alive()) {
    kill(pid_, SIGKILL);
    code = Wait(5);
  }
  return code;
}

std::string Process::Stdout() const { return Slurp(out_path_); }
std::string Process::Stderr() const { return Slurp(err_path_); }

CommandResult Run(const std::vector<std::string>& argv,
                  const std::map<std::string, std::string>& env, double timeout_s,
                  const std::string& cwd) {
  std::string prefix =
      absl::StrCat(fs::temp_directory_path().string(), "/evald-run-", getpid(), "-", Counter());
  CommandResult result;
  absl::StatusOr<ProcessId> p = SpawnDetached({.argv = argv,
                                               .env = env,
                                               .cwd = cwd,
                                               .stdout_path = prefix + ".out",
                                               .stderr_path = prefix + ".err"});
  if (!p.ok()) {
    result.err = std::string(p.status().message());
    return result;
  }
  int status = 0;
  auto deadline = std::chrono::steady_clock::now() +
                  std::chrono::milliseconds(static_cast<int>(timeout_s * 1000));
  while (true) {
    pid_t r = waitpid(p->pid, &status, WNOHANG);
    if (r == p->pid) break;
    if (std::chrono::steady_clock::now() > deadline) {
      SignalGroup(p->pid, SIGKILL).IgnoreError();
      waitpid(p->pid, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  result.out = Slurp(prefix + ".out");
  result.err = Slurp(prefix + ".err");
  fs::remove(prefix + ".out");
  fs::remove(prefix + ".err");
  return result;
}

RefEndpoint::RefEndpoint(const TempDir& dir, std::vector<std::string> flags) {
  std::string port_file = absl::StrCat(dir.path(), "/ref-port-", Counter());
  std::vector<std::string> argv = {
      BinDir() + "/ref_endpoint", "--host", "127.0.0.1", "--port", "0", "--port-file", port_file};
  argv.insert(argv.end(), flags.begin(), flags.end());
  process_ =
      std::make_unique<Process>(argv, std::map<std::string, std::string>{}, port_file + ".log");
  REQUIRE(WaitFor([&] {
    return absl::SimpleAtoi(absl::StripAsciiWhitespace(Slurp(port_file)), &port_) && port_ > 0;
  }));
}

std::string RefEndpoint::base_url() const { return absl::StrCat("http://127.0.0.1:", port_); }

std::string RefEndpoint::Stats() const {
  return Run({"curl", "-s", "--noproxy", "*", base_url() + "/stats"}).out;
}

Evald::Evald(const TempDir& dir, std::vector<std::string> extra_flags,
             std::map<std::string, std::string> env)
    : dir_(dir.path()),
      state_dir_(dir.path() + "/state"),
      address_("unix://" + dir.path() + "/state/evald.sock"),
      extra_flags_(std::move(extra_flags)),
      env_(std::move(env)) {
  Start();
}

Evald::~Evald() {
  if (process_ && process_->Alive()) Terminate();
}

void Evald::Start() {
  std::vector<std::string> argv = {BinDir() + "/evald", "--state-dir", state_dir_, "--log-level",
                                   "debug"};
  // A test may set its own tick (the flag may be given once).
  if (std::find(extra_flags_.begin(), extra_flags_.end(), "--tick-ms") == extra_flags_.end()) {
    argv.insert(argv.end(), {"--tick-ms", "100"});
  }
  argv.insert(argv.end(), extra_flags_.begin(), extra_flags_.end());
  process_ = std::make_unique<Process>(argv, env_, absl::StrCat(dir_, "/evald-", Counter()));
  bool ready = WaitFor(
      [&] {
        if (!process_->Alive()) return true;
        auto stub = Stub();
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
        v1::ServerInfo info;
        return stub->GetServerInfo(&ctx, v1::GetServerInfoRequest(), &info).ok();
      },
      30);
  INFO("evald stderr:\n" << process_->Stderr());
  REQUIRE(ready);
  REQUIRE(process_->Alive());
}

int Evald::Terminate(double timeout_s) { return process_->Stop(SIGTERM, timeout_s); }

void Evald::Kill9() { process_->Stop(SIGKILL, 5); }

CommandResult Evald::Ctl(const std::vector<std::string>& args,
                         std::map<std::string, std::string> env, double timeout_s,
                         const std::string& cwd) const {
  std::vector<std::string> argv = {BinDir() + "/evalctl"};
  argv.insert(argv.end(), args.begin(), args.end());
  env.emplace("EVALD_ADDR", address_);
  return Run(argv, env, timeout_s, cwd);
}

std::unique_ptr<v1::EvalService::Stub> Evald::Stub() const {
  return v1::EvalService::NewStub(
      grpc::CreateChannel(address_, grpc::InsecureChannelCredentials()));
}

v1::Invocation Evald::Get(const std::string& id) const {
  grpc::ClientContext ctx;
  v1::GetInvocationRequest req;
  req.set_id(id);
  v1::Invocation inv;
  grpc::Status s = Stub()->GetInvocation(&ctx, req, &inv);
  INFO("GetInvocation(" << id << "): " << s.error_message());
  REQUIRE(s.ok());
  return inv;
}

v1::Invocation Evald::WaitTerminal(const std::string& id, double timeout_s) const {
  v1::Invocation inv;
  WaitFor(
      [&] {
        inv = Get(id);
        return IsTerminalState(inv.state());
      },
      timeout_s);
  return inv;
}

std::optional<v1::Invocation> Evald::WaitWorking(const std::string& id, double timeout_s) const {
  v1::Invocation inv;
  bool working = WaitFor(
      [&] {
        inv = Get(id);
        return inv.jobs_size() > 0 && inv.jobs(0).state() == v1::JOB_STATE_RUNNING &&
               inv.jobs(0).progress().done() >= 1;
      },
      timeout_s);
  if (!working) return std::nullopt;
  return inv;
}

std::string WriteConfig(const TempDir& dir, const std::string& name, const std::string& body) {
  std::string path = dir.path() + "/" + name;
  Spit(path, body);
  return path;
}

// Declared in fixture.h; here so every integration test binary links it.
std::string InvocationIdFromJson(const std::string& json_text) {
  nlohmann::json j = nlohmann::json::parse(json_text, nullptr, false);
  if (j.is_discarded() || !j.contains("invocation_id")) return "";
  return j["invocation_id"].get<std::string>();
}

}  // namespace evald::testing
