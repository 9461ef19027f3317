#include "executors/local/process.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

extern char** environ;

namespace evald::executors {
namespace {

// Child-side failure report: which step failed and errno, written to the status pipe.
struct ChildError {
  int step;
  int err;
};

constexpr const char* kStepNames[] = {"setsid", "open stdin", "open stdout", "open stderr",
                                      "chdir",  "pid file",   "exec"};

// The child runs on its own stack in our memory, which AddressSanitizer does not know: its checks
// (e.g. the stack unpoisoning before a noreturn call) report false errors there, so the
// functions the child runs are not instrumented.
#define EVALD_CHILD_SIDE __attribute__((no_sanitize("address", "undefined")))

EVALD_CHILD_SIDE [[noreturn]] void ChildFail(int fd, int step) {
  ChildError e{step, errno};
  ssize_t unused = write(fd, &e, sizeof(e));
  (void)unused;
  _exit(127);
}

EVALD_CHILD_SIDE int WriteAll(int fd, const char* data, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, data, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    data += w;
    n -= static_cast<size_t>(w);
  }
  return 0;
}

// "<v>\n" to fd, for v >= 0, by hand: snprintf is not async-signal-safe.
EVALD_CHILD_SIDE int WriteDecimalLine(int fd, long v) {
  char buf[24];
  size_t n = sizeof(buf);
  buf[--n] = '\n';
  do {
    buf[--n] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v > 0);
  return WriteAll(fd, buf + n, sizeof(buf) - n);
}

// What the child needs, prepared by the parent: the child only makes async-signal-safe calls.
struct ChildArgs {
  char* const* argv;
  char* const* envp;
  const char* out_path;
  const char* err_path;
  const char* cwd;       // null: stay
  const char* pid_file;  // null: none
  int nice;
  int status_fd;
};

EVALD_CHILD_SIDE int RunChild(void* arg) {
  const ChildArgs& a = *static_cast<const ChildArgs*>(arg);
  int fd = a.status_fd;
  // Signals stay blocked until no handler of the daemon is left to run here (exec would reset
  // them anyway); SIGPIPE, which the daemon ignores, is the command's to handle.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) {
    struct sigaction sa;
    if (sig == SIGKILL || sig == SIGSTOP || sigaction(sig, nullptr, &sa) != 0) continue;
    bool handled = (sa.sa_flags & SA_SIGINFO) != 0 ||
                   (sa.sa_handler != SIG_DFL && sa.sa_handler != SIG_IGN);
    if (handled || sig == SIGPIPE) sigaction(sig, &dfl, nullptr);
  }
  // The default (empty) mask: the daemon blocks SIGTERM/SIGINT for sigwait, jobs must not.
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  if (setsid() < 0) ChildFail(fd, 0);
  // setsid gave the job its own autogroup, and the kernel shares the CPU between autogroups
  // before it looks at nice values: the job's nice only holds if its group carries it too.
  if (a.nice > 0) {
    int ag = open("/proc/self/autogroup", O_WRONLY | O_CLOEXEC);
    if (ag >= 0) {
      (void)WriteDecimalLine(ag, a.nice < 19 ? a.nice : 19);  // the kernel takes -20..19
      close(ag);
    }
  }
  int in = open("/dev/null", O_RDONLY);
  if (in < 0) ChildFail(fd, 1);
  int out = open(a.out_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (out < 0) ChildFail(fd, 2);
  int err = open(a.err_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (err < 0) ChildFail(fd, 3);
  dup2(in, 0);
  dup2(out, 1);
  dup2(err, 2);
  if (in > 2) close(in);
  if (out > 2) close(out);
  if (err > 2) close(err);
  if (a.cwd != nullptr && chdir(a.cwd) != 0) ChildFail(fd, 4);
  // Best effort: a job that keeps evald's priority still runs.
  if (a.nice != 0) (void)setpriority(PRIO_PROCESS, 0, getpriority(PRIO_PROCESS, 0) + a.nice);
  if (a.pid_file != nullptr) {
    int pf = open(a.pid_file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (pf < 0) ChildFail(fd, 5);
    if (WriteDecimalLine(pf, getpid()) != 0) ChildFail(fd, 5);
    close(pf);
  }
  execvpe(a.argv[0], a.argv, a.envp);
  ChildFail(fd, 6);
}

}  // namespace

absl::StatusOr<ProcessId> SpawnDetached(const SpawnOptions& options) {
  if (options.argv.empty()) return absl::InvalidArgumentError("empty command");

  // Everything the child needs is prepared before clone: after it only async-signal-safe calls.
  std::map<std::string, std::string> env_map;
  for (char** e = environ; *e != nullptr; ++e) {
    std::pair<std::string, std::string> kv = absl::StrSplit(*e, absl::MaxSplits('=', 1));
    env_map[kv.first] = kv.second;
  }
  // systemd's notify and watchdog settings are evald's own: a job must not inherit them.
  for (const char* own : {"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS",
                          "LISTEN_PID", "LISTEN_FDNAMES"}) {
    env_map.erase(own);
  }
  for (const auto& [k, v] : options.env) env_map[k] = v;
  std::vector<std::string> env_strings;
  env_strings.reserve(env_map.size());
  for (const auto& [k, v] : env_map) env_strings.push_back(absl::StrCat(k, "=", v));
  std::vector<char*> envp;
  for (std::string& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_strings = options.argv;
  std::vector<char*> argv;
  for (std::string& s : argv_strings) argv.push_back(s.data());
  argv.push_back(nullptr);
  const char* out_path = options.stdout_path.empty() ? "/dev/null" : options.stdout_path.c_str();
  const char* err_path = options.stderr_path.empty() ? "/dev/null" : options.stderr_path.c_str();

  int status_pipe[2];
  if (pipe2(status_pipe, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
  }
  ChildArgs child{.argv = argv.data(),
                  .envp = envp.data(),
                  .out_path = out_path,
                  .err_path = err_path,
                  .cwd = options.cwd.empty() ? nullptr : options.cwd.c_str(),
                  .pid_file = options.pid_file.empty() ? nullptr : options.pid_file.c_str(),
                  .nice = options.nice,
                  .status_fd = status_pipe[1]};
  // The child shares our memory and this thread waits until it has exec'd (what posix_spawn
  // does). A fork() would copy the page tables and make every write by evald's other threads a
  // copy-on-write fault until the child exec'd: in bench/daemon, each job start slowed the
  // Submits in flight by 20-50 ms.
  constexpr size_t kChildStack = 256 * 1024;
  void* stack = mmap(nullptr, kChildStack, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) {
    int err = errno;
    close(status_pipe[0]);
    close(status_pipe[1]);
    return absl::ResourceExhaustedError(absl::StrCat("mmap: ", std::strerror(err)));
  }
  // No signal handler of the daemon may run in the child while it shares our memory.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pid_t pid = clone(RunChild, static_cast<char*>(stack) + kChildStack,
                    CLONE_VM | CLONE_VFORK | SIGCHLD, &child);
  int clone_errno = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  munmap(stack, kChildStack);
  if (pid < 0) {
    close(status_pipe[0]);
    close(status_pipe[1]);
    return absl::ResourceExhaustedError(absl::StrCat("clone: ", std::strerror(clone_errno)));
  }
  close(status_pipe[1]);
  ChildError child_error{};
  ssize_t n;
  do {
    n = read(status_pipe[0], &child_error, sizeof(child_error));
  } while (n < 0 && errno == EINTR);
  close(status_pipe[0]);
  if (n == static_cast<ssize_t>(sizeof(child_error))) {
    int status = 0;
    waitpid(pid, &status, 0);
    std::string what = kStepNames[child_error.step];
    std::string detail = std::strerror(child_error.err);
    if (child_error.step == 6) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot run '", options.argv[0], "': ", detail));
    }
    return absl::FailedPreconditionError(absl::StrCat("cannot start '", options.argv[0],
                                                      "': ", what, " failed: ", detail));
  }
  ProcessId id{pid, 0};
  absl::StatusOr<uint64_t> ticks = StartTicks(pid);
  // The child exec'd and may already have exited (a zombie still has its start time).
  if (ticks.ok()) id.start_ticks = *ticks;
  return id;
}

absl::StatusOr<uint64_t> StartTicks(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string stat;
  if (!in || !std::getline(in, stat)) return absl::NotFoundError(absl::StrCat("no process ", pid));
  // The command name (field 2) may contain spaces and parentheses: parse after the last ')'.
  size_t close = stat.rfind(')');
  if (close == std::string::npos) return absl::InternalError("unparsable /proc stat");
  std::vector<absl::string_view> fields =
      absl::StrSplit(absl::string_view(stat).substr(close + 2), ' ', absl::SkipEmpty());
  // fields[0] is field 3 (state); start time is field 22.
  uint64_t ticks = 0;
  if (fields.size() < 20 || !absl::SimpleAtoi(fields[19], &ticks)) {
    return absl::InternalError("unparsable /proc stat");
  }
  return ticks;
}

ProcessState Inspect(const ProcessId& process) {
  ProcessState state;
  if (process.pid <= 0) return state;
  int status = 0;
  pid_t r = waitpid(process.pid, &status, WNOHANG);
  if (r == process.pid) {
    state.status = ProcessStatus::kExited;
    state.exit_code =
        WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    return state;
  }
  absl::StatusOr<uint64_t> ticks = StartTicks(process.pid);
  if (!ticks.ok() || (process.start_ticks != 0 && *ticks != process.start_ticks)) return state;
  state.status = ProcessStatus::kAlive;
  return state;
}

absl::Status SignalGroup(pid_t pgid, int signal) {
  if (pgid <= 1) return absl::InvalidArgumentError(absl::StrCat("refusing to signal group ", pgid));
  if (kill(-pgid, signal) != 0 && errno != ESRCH) {
    return absl::InternalError(absl::StrCat("kill(-", pgid, "): ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

bool GroupAlive(pid_t pgid) { return pgid > 1 && (kill(-pgid, 0) == 0 || errno == EPERM); }

std::string CommandLine(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/cmdline"), std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  for (char& c : s) {
    if (c == '\0') c = ' ';
  }
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

}  // namespace evald::executors
