#include "executors/slurm/slurm_cluster.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "core/shell.h"

extern char** environ;

namespace evald::executors {
namespace {

constexpr int kConnectTimeoutS = 10;
// Idle seconds before a master exits by itself: longer than the default poll interval (30 s), short
// enough that the master of an evald killed with -9 does not linger.
constexpr char kControlPersist[] = "120";

void SetNonBlocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

// Reads what is available on `fd` into `out`; false at EOF or on an error.
bool Drain(int fd, std::string& out) {
  char buf[65536];
  while (true) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n > 0) {
      out.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    if (n < 0 && errno == EINTR) continue;
    return false;
  }
}

// True when an ssh master listens on `path` (a connect, no process: cheap enough per command).
bool MasterListens(const std::string& path) {
  sockaddr_un addr{};
  if (path.size() >= sizeof(addr.sun_path)) return false;
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

absl::Mutex g_counts_mu;
std::map<std::string, int64_t>& Counts() ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_counts_mu) {
  static auto* counts = new std::map<std::string, int64_t>();
  return *counts;
}

void CountCommand(const std::string& command) {
  absl::string_view s = absl::StripLeadingAsciiWhitespace(command);
  std::string word(s.substr(0, s.find_first_of(" \t\n;")));
  absl::MutexLock lock(&g_counts_mu);
  ++Counts()[word];
}

int ExitCodeOf(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

std::string ClusterTarget::Key() const {
  return absl::StrCat(hostname, "\n", username, "\n", ssh_config_file);
}

std::string ClusterResult::Describe() const {
  if (timed_out) return "timed out";
  std::string first(err.substr(0, err.find('\n')));
  if (first.size() > 300) first.resize(300);
  if (exit_code < 0) return absl::StrCat("could not run: ", first);
  return absl::StrCat("exit code ", exit_code, first.empty() ? "" : ": ", first);
}

ClusterResult RunCommand(const std::vector<std::string>& argv, const std::string& stdin_data,
                         absl::Duration timeout) {
  ClusterResult result;
  if (argv.empty()) return result;
  // stdin is a socket so a child that stops reading gives EPIPE to send(MSG_NOSIGNAL), never a
  // SIGPIPE to evald.
  int in[2], out[2], err[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) != 0) return result;
  if (pipe2(out, O_CLOEXEC) != 0) {
    close(in[0]);
    close(in[1]);
    return result;
  }
  if (pipe2(err, O_CLOEXEC) != 0) {
    for (int fd : {in[0], in[1], out[0], out[1]}) close(fd);
    return result;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in[0], 0);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err[1], 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setpgroup(&attr, 0);  // its own group: a timeout kills ssh and its helpers
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  std::vector<std::string> args = argv;
  std::vector<char*> cargs;
  for (std::string& a : args) cargs.push_back(a.data());
  cargs.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, cargs[0], &actions, &attr, cargs.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  close(in[0]);
  close(out[1]);
  close(err[1]);
  if (rc != 0) {
    for (int fd : {in[1], out[0], err[0]}) close(fd);
    result.err = absl::StrCat("cannot run ", argv[0], ": ", std::strerror(rc));
    return result;
  }
  SetNonBlocking(in[1]);
  SetNonBlocking(out[0]);
  SetNonBlocking(err[0]);
  size_t written = 0;
  int in_fd = in[1];
  if (stdin_data.empty()) {
    close(in_fd);
    in_fd = -1;
  }
  bool out_open = true, err_open = true;
  int status = 0;
  bool exited = false;
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    if (!exited) {
      pid_t r = waitpid(pid, &status, WNOHANG);
      if (r == pid) exited = true;
    }
    // Once the command has exited, what is left in the pipes is read and a background process
    // that inherited them (an ssh master) is not waited for.
    if (exited) {
      if (out_open) Drain(out[0], result.out);
      if (err_open) Drain(err[0], result.err);
      break;
    }
    if (!out_open && !err_open && in_fd < 0) {
      if (waitpid(pid, &status, 0) == pid) exited = true;
      break;
    }
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      kill(-pid, SIGKILL);
      waitpid(pid, &status, 0);
      result.timed_out = true;
      break;
    }
    std::vector<pollfd> fds;
    if (out_open) fds.push_back({out[0], POLLIN, 0});
    if (err_open) fds.push_back({err[0], POLLIN, 0});
    if (in_fd >= 0) fds.push_back({in_fd, POLLOUT, 0});
    // A short cap so an exit without EOF (background holder of the pipes) is noticed.
    int wait_ms = static_cast<int>(std::min<int64_t>(absl::ToInt64Milliseconds(left) + 1, 50));
    int n = poll(fds.data(), fds.size(), wait_ms);
    if (n < 0 && errno != EINTR) break;
    for (const pollfd& p : fds) {
      if (p.revents == 0) continue;
      if (p.fd == out[0] && !Drain(out[0], result.out)) out_open = false;
      if (p.fd == err[0] && !Drain(err[0], result.err)) err_open = false;
      if (p.fd == in_fd) {
        ssize_t w = send(in_fd, stdin_data.data() + written, stdin_data.size() - written,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) written += static_cast<size_t>(w);
        if ((w < 0 && errno != EAGAIN && errno != EINTR) || written == stdin_data.size()) {
          close(in_fd);
          in_fd = -1;
        }
      }
    }
  }
  if (in_fd >= 0) close(in_fd);
  close(out[0]);
  close(err[0]);
  if (!result.timed_out && exited) result.exit_code = ExitCodeOf(status);
  return result;
}

SlurmCluster::SlurmCluster(ClusterTarget target, std::string control_socket)
    : target_(std::move(target)), control_socket_(std::move(control_socket)) {}

SlurmCluster::~SlurmCluster() {
  if (!target_.remote() || control_socket_.empty() || !std::filesystem::exists(control_socket_)) {
    return;
  }
  RunCommand(ControlArgv("exit"), "", absl::Seconds(5));
}

std::vector<std::string> SlurmCluster::ControlArgv(const std::string& op) const {
  std::vector<std::string> argv = SshArgv("");
  argv.pop_back();                          // no command
  argv.insert(argv.end() - 2, {"-O", op});  // before "--" host
  return argv;
}

std::vector<std::string> SlurmCluster::SshArgv(const std::string& command, bool master) const {
  if (!target_.remote()) return {};
  std::vector<std::string> argv = {"ssh"};
  if (!target_.ssh_config_file.empty()) argv.insert(argv.end(), {"-F", target_.ssh_config_file});
  argv.insert(argv.end(),
              {"-o", "BatchMode=yes", "-o", absl::StrCat("ConnectTimeout=", kConnectTimeoutS), "-o",
               "ServerAliveInterval=15", "-o", "ServerAliveCountMax=3", "-o",
               absl::StrCat("ControlPath=", control_socket_.empty() ? "none" : control_socket_)});
  if (master) {
    // -f: to the background once authenticated, so this call returns; -N: no command.
    argv.insert(argv.end(), {"-o", "ControlMaster=yes", "-o",
                             absl::StrCat("ControlPersist=", kControlPersist), "-f", "-N"});
  } else {
    // Commands use the master when it is there and fall back to a direct connection when not;
    // only EnsureMaster creates masters (a command that became one would hold our pipes open).
    argv.insert(argv.end(), {"-o", "ControlMaster=no"});
  }
  if (!target_.username.empty()) argv.insert(argv.end(), {"-l", target_.username});
  argv.push_back("--");
  argv.push_back(target_.hostname);
  if (!master) argv.push_back(command);
  return argv;
}

void SlurmCluster::EnsureMaster() {
  if (control_socket_.empty()) return;
  if (master_ok_ && MasterListens(control_socket_)) return;
  if (std::filesystem::exists(control_socket_) &&
      RunCommand(ControlArgv("check"), "", absl::Seconds(5)).ok()) {
    master_ok_ = true;
    return;
  }
  // A master that died (killed, network drop) may leave its socket behind.
  std::error_code ec;
  std::filesystem::remove(control_socket_, ec);
  ClusterResult r =
      RunCommand(SshArgv("", /*master=*/true), "", absl::Seconds(kConnectTimeoutS + 10));
  // On failure the command falls back to its own connection and reports what went wrong.
  master_ok_ = r.ok();
}

std::map<std::string, int64_t> SlurmCluster::CommandCounts() {
  absl::MutexLock lock(&g_counts_mu);
  return Counts();
}

ClusterResult SlurmCluster::Run(const std::string& command, const std::string& stdin_data,
                                absl::Duration timeout) {
  CountCommand(command);
  if (!target_.remote()) return RunCommand({"bash", "-c", command}, stdin_data, timeout);
  EnsureMaster();
  ClusterResult r = RunCommand(SshArgv(command), stdin_data, timeout);
  // 255: ssh itself failed (connection lost): check the master again next time.
  if (r.timed_out || r.exit_code == 255) master_ok_ = false;
  return r;
}

absl::Status SlurmCluster::CopyTo(const std::string& local_dir,
                                  const std::vector<std::string>& files,
                                  const std::string& remote_dir) {
  if (!target_.remote() && local_dir == remote_dir) return absl::OkStatus();
  std::vector<std::string> tar = {"tar", "c", "-C", local_dir, "--"};
  tar.insert(tar.end(), files.begin(), files.end());
  ClusterResult packed = RunCommand(tar, "", absl::Seconds(30));
  if (!packed.ok()) {
    return absl::UnavailableError(
        absl::StrCat("cannot pack the job files in ", local_dir, ": ", packed.Describe()));
  }
  const std::string q = ShellQuote(remote_dir);
  ClusterResult r =
      Run(absl::StrCat("mkdir -p ", q, " && tar x -m -C ", q), packed.out, absl::Seconds(60));
  if (!r.ok()) {
    return absl::UnavailableError(absl::StrCat("cannot copy the job files to ", target_.hostname,
                                               ":", remote_dir, ": ", r.Describe()));
  }
  return absl::OkStatus();
}

absl::Status SlurmCluster::FetchFrom(const std::string& remote_dir,
                                     const std::vector<std::string>& paths,
                                     const std::string& local_dir) {
  return FetchFrom({{remote_dir, local_dir}}, paths);
}

absl::Status SlurmCluster::FetchFrom(const std::vector<FetchDir>& dirs,
                                     const std::vector<std::string>& paths) {
  std::vector<FetchDir> todo;
  for (const FetchDir& d : dirs) {
    if (target_.remote() || d.local_dir != d.remote_dir) todo.push_back(d);
  }
  if (todo.empty()) return absl::OkStatus();
  std::vector<std::string> remote, quoted;
  for (const FetchDir& d : todo) remote.push_back(ShellQuote(d.remote_dir));
  for (const std::string& p : paths) quoted.push_back(ShellQuote(p));
  // Dir number i is the symlink $t/i, so the one archive holds "<i>/<path>" members. Only the
  // paths that exist go in, so tar's exit code means something; a task dir that is gone on the
  // cluster has nothing to fetch (an error would keep its job from ever being reported). A
  // relative dir is relative to where the command started ($OLDPWD after `cd /`).
  const std::string command = absl::StrCat(
      "cd / && t=$(mktemp -d) && trap 'rm -rf -- \"$t\"' EXIT && set -- && i=0 && for d in ",
      absl::StrJoin(remote, " "), "; do case $d in /*) ;; *) d=$OLDPWD/$d ;; esac; ",
      "if [ -d \"$d\" ]; then ln -s -- \"$d\" \"$t/$i\" || exit 1; for p in ",
      absl::StrJoin(quoted, " "), "; do [ -e \"$d/$p\" ] && set -- \"$@\" \"$i/$p\"; done; fi; ",
      "i=$((i+1)); done; if [ $# -gt 0 ]; then tar c -C \"$t\" -- \"$@\"; fi");
  ClusterResult r = Run(command, "", absl::Seconds(120));
  const std::string where =
      todo.size() == 1 ? todo[0].remote_dir : absl::StrCat(todo.size(), " task dirs");
  if (!r.ok()) {
    const std::string message =
        absl::StrCat("cannot fetch ", where, " from ", target_.hostname, ": ", r.Describe());
    // The command ran and failed (tar could not read a file): the cluster is there.
    if (!r.timed_out && r.exit_code > 0 && r.exit_code != 255) {
      return absl::FailedPreconditionError(message);
    }
    return absl::UnavailableError(message);
  }
  if (r.out.empty()) return absl::OkStatus();
  // Unpacked the same way: through a private dir whose entry i links to local dir i.
  std::string stage = (std::filesystem::temp_directory_path() / "evald-fetch-XXXXXX").string();
  if (mkdtemp(stage.data()) == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("cannot make a staging dir: ", std::strerror(errno)));
  }
  std::error_code ec;
  for (size_t i = 0; i < todo.size() && !ec; ++i) {
    std::filesystem::create_directories(todo[i].local_dir, ec);
    std::filesystem::path target;
    if (!ec) target = std::filesystem::absolute(todo[i].local_dir, ec);
    if (!ec) std::filesystem::create_directory_symlink(target, absl::StrCat(stage, "/", i), ec);
  }
  ClusterResult x;
  if (!ec) x = RunCommand({"tar", "x", "-m", "-C", stage}, r.out, absl::Seconds(60));
  std::error_code ignored;
  std::filesystem::remove_all(stage, ignored);  // the links, not what they point to
  if (ec) {
    return absl::UnavailableError(absl::StrCat("cannot unpack ", where, ": ", ec.message()));
  }
  if (!x.ok()) {
    return absl::UnavailableError(
        absl::StrCat("cannot unpack the files of ", where, ": ", x.Describe()));
  }
  return absl::OkStatus();
}

absl::Status SlurmCluster::WritePrivateFile(const std::string& remote_path,
                                            const std::string& content) {
  const std::string q = ShellQuote(remote_path);
  // rm first: an existing file keeps its mode under `cat >`.
  ClusterResult r =
      Run(absl::StrCat("umask 077 && rm -f ", q, " && cat > ", q), content, absl::Seconds(30));
  if (!r.ok()) {
    return absl::UnavailableError(
        absl::StrCat("cannot write ", remote_path, " on the cluster: ", r.Describe()));
  }
  return absl::OkStatus();
}

namespace {

// The first 64 hex digits of a `sha256sum` answer, lowercase, or "".
std::string Sha256Of(absl::string_view out) {
  out = absl::StripLeadingAsciiWhitespace(out);
  if (out.size() < 64) return "";
  std::string hex(out.substr(0, 64));
  for (char c : hex) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) return "";
  }
  return absl::AsciiStrToLower(hex);
}

}  // namespace

absl::StatusOr<std::string> FileSha256(const std::string& path) {
  ClusterResult r = RunCommand({"sha256sum", "--", path}, "", absl::Seconds(60));
  std::string hex = r.ok() ? Sha256Of(r.out) : "";
  if (hex.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot checksum ", path, ": ", r.Describe()));
  }
  return hex;
}

absl::StatusOr<bool> SlurmCluster::InstallFile(const std::string& local_path,
                                               const std::string& sha256,
                                               const std::string& remote_path) {
  if (Sha256Of(sha256) != sha256) {
    return absl::InvalidArgumentError(absl::StrCat("not a sha256: '", sha256, "'"));
  }
  const std::string q = ShellQuote(remote_path);
  const std::string where = target_.remote() ? absl::StrCat(target_.hostname, ":") : "";
  // Exit 0 whether the file is there or not: only ssh's own failures fail this.
  ClusterResult check = Run(absl::StrCat("sha256sum < ", q, " 2>/dev/null || true"));
  if (!check.ok()) {
    return absl::UnavailableError(
        absl::StrCat("cannot checksum ", where, remote_path, ": ", check.Describe()));
  }
  if (Sha256Of(check.out) == sha256) return false;

  std::ifstream in(local_path, std::ios::binary);
  std::string content;
  if (in.is_open()) {
    content.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  if (!in.is_open() || in.bad()) {
    return absl::FailedPreconditionError(absl::StrCat("cannot read ", local_path));
  }
  const std::string dir = std::filesystem::path(remote_path).parent_path().string();
  const std::string tmp = ShellQuote(absl::StrCat(remote_path, ".upload.XXXXXX"));
  // A temporary name in the same dir (same file system), checked, then renamed over the target.
  ClusterResult r =
      Run(absl::StrCat(
              "mkdir -p ", ShellQuote(dir.empty() ? "/" : dir), " && t=$(mktemp ", tmp,
              ") || exit 1; if cat > \"$t\" && chmod 0755 \"$t\" && [ \"$(sha256sum < \"$t\" | "
              "cut -c1-64)\" = ",
              sha256, " ]; then mv -f -- \"$t\" ", q,
              " && exit 0; fi; rm -f -- \"$t\"; echo 'the copy failed or its sha256 differs' "
              ">&2; exit 1"),
          content, absl::Minutes(5));
  if (!r.ok()) {
    const std::string message =
        absl::StrCat("cannot copy ", local_path, " to ", where, remote_path, ": ", r.Describe());
    if (!r.timed_out && r.exit_code > 0 && r.exit_code != 255) {
      return absl::FailedPreconditionError(message);
    }
    return absl::UnavailableError(message);
  }
  return true;
}

ClusterPool::ClusterPool() = default;

ClusterPool::~ClusterPool() {
  clusters_.clear();  // ends the masters first
  if (!control_dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(control_dir_, ec);
  }
}

SlurmCluster& ClusterPool::Get(const ClusterTarget& target) {
  auto it = clusters_.find(target.Key());
  if (it != clusters_.end()) return *it->second;
  if (control_dir_.empty() && target.remote()) {
    // Made on first use (every evald builds this executor). Socket paths must stay short (108
    // bytes), so under /tmp rather than the state dir; mkdtemp makes it 0700.
    std::string tmpl = "/tmp/evald-ssh-XXXXXX";
    if (mkdtemp(tmpl.data()) != nullptr) control_dir_ = tmpl;
  }
  // Without a directory: no multiplexing, every command its own connection.
  std::string socket =
      control_dir_.empty() ? "" : absl::StrCat(control_dir_, "/c", clusters_.size());
  auto cluster = std::make_unique<SlurmCluster>(target, socket);
  SlurmCluster& ref = *cluster;
  clusters_.emplace(target.Key(), std::move(cluster));
  return ref;
}

}  // namespace evald::executors
