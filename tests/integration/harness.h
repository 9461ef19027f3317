// File: harness.h
//
// Integration-test harness: starts the real binaries of this build (evald, evalctl, evalrun,
// ref_endpoint) as child processes on private temp dirs, sockets and databases, and talks to evald
// over real gRPC. Nothing is faked but the model (ref_endpoint).
//
//   TempDir dir;
//   RefEndpoint model(dir, {"--latency-ms", "5"});
//   Evald evald(dir);
//   CommandResult r = evald.Ctl({"submit", cfg_path, "--wait"});
//   REQUIRE(r.exit_code == 0);
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "evald/v1/evald.grpc.pb.h"
#include "tests/executors/local/test_util.h"

namespace evald::testing {

std::string BinDir();  // <build>/bin
std::string SourceDir();

struct CommandResult {
  int exit_code = -1;  // 128+signal when killed
  std::string out;
  std::string err;
};

// Runs a command to completion (or kills it after `timeout_s`), capturing output.
CommandResult Run(const std::vector<std::string>& argv,
                  const std::map<std::string, std::string>& env = {}, double timeout_s = 120,
                  const std::string& cwd = "");

// A background child process with its output in files.
class Process {
 public:
  Process(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
          const std::string& log_prefix);
  ~Process();
  pid_t pid() const { return pid_; }
  bool Alive();
  // Sends `signal` and waits up to `timeout_s` for the exit; returns the exit code (128+sig).
  int Stop(int signal, double timeout_s = 10);
  int Wait(double timeout_s);
  std::string Stdout() const;
  std::string Stderr() const;

 private:
  pid_t pid_ = -1;
  int exit_code_ = -1;
  std::string out_path_;
  std::string err_path_;
};

// The reference model endpoint on a free port.
class RefEndpoint {
 public:
  RefEndpoint(const TempDir& dir, std::vector<std::string> flags = {});
  int port() const { return port_; }
  std::string base_url() const;
  std::string chat_url() const { return base_url() + "/v1/chat/completions"; }
  // GET /stats as text.
  std::string Stats() const;

 private:
  int port_ = 0;
  std::unique_ptr<Process> process_;
};

// evald on a private state dir and socket.
class Evald {
 public:
  explicit Evald(const TempDir& dir, std::vector<std::string> extra_flags = {},
                 std::map<std::string, std::string> env = {});
  ~Evald();

  const std::string& state_dir() const { return state_dir_; }
  const std::string& address() const { return address_; }
  Process& process() { return *process_; }
  void Start();
  int Terminate(double timeout_s = 10);  // SIGTERM
  void Kill9();
  void Restart() {
    if (process_ && process_->Alive()) Terminate();
    Start();
  }

  // evalctl against this evald.
  CommandResult Ctl(const std::vector<std::string>& args,
                    std::map<std::string, std::string> env = {}, double timeout_s = 120,
                    const std::string& cwd = "") const;
  std::unique_ptr<v1::EvalService::Stub> Stub() const;
  // GetInvocation, failing the test when the call fails.
  v1::Invocation Get(const std::string& id) const;
  // Polls until the invocation is terminal (or the timeout passes).
  v1::Invocation WaitTerminal(const std::string& id, double timeout_s = 120) const;
  // Polls until the invocation's first job runs and has scored a sample; nullopt on timeout.
  std::optional<v1::Invocation> WaitWorking(const std::string& id, double timeout_s = 30) const;

 private:
  std::string dir_;
  std::string state_dir_;
  std::string address_;
  std::vector<std::string> extra_flags_;
  std::map<std::string, std::string> env_;
  std::unique_ptr<Process> process_;
};

// Writes a config using the local executor and native tasks against `endpoint_url`.
// `tasks_yaml` is the YAML list under evaluation.tasks (indented by 4 spaces per line).
std::string WriteConfig(const TempDir& dir, const std::string& name, const std::string& body);

bool IsTerminalState(v1::JobState s);
bool PidAlive(pid_t pid);

}  // namespace evald::testing
