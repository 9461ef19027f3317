// The SLURM executor's command layer (slurm_cluster.h): commands with stdin, output and timeouts
// (a hung command is killed with its process group; a background process holding the output
// open does not hold the caller), and, when the test cluster's login node is there
// (EVALD_SLURM_SSH_CONFIG, EVALD_SLURM_SSH_ALIAS from `scripts/slurm-local env`), commands and
// file copies over one multiplexed ssh connection that comes back after its master is killed.
#include "executors/slurm/slurm_cluster.h"

#include <signal.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

namespace evald::executors {
namespace {

namespace fs = std::filesystem;

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct TempDir {
  TempDir() {
    std::string tmpl = "/tmp/evald-slurm-cluster-test-XXXXXX";
    path = mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string path;
};

TEST_CASE("RunCommand passes stdin, collects stdout, stderr and the exit code") {
  ClusterResult r =
      RunCommand({"bash", "-c", "cat; echo err >&2; exit 3"}, "hello\n", absl::Seconds(10));
  CHECK(r.exit_code == 3);
  CHECK_FALSE(r.timed_out);
  CHECK(r.out == "hello\n");
  CHECK(r.err == "err\n");
  CHECK(r.Describe() == "exit code 3: err");
  // More stdin than a pipe buffer, to a command that reads none of it: no hang, no SIGPIPE.
  ClusterResult ignore = RunCommand({"true"}, std::string(1 << 20, 'x'), absl::Seconds(10));
  CHECK(ignore.exit_code == 0);
  ClusterResult missing = RunCommand({"/nonexistent/cmd"}, "", absl::Seconds(5));
  CHECK_FALSE(missing.ok());
}

TEST_CASE("RunCommand kills a command that outlives its timeout, with its process group") {
  TempDir dir;
  const std::string pid_file = dir.path + "/child.pid";
  const absl::Time start = absl::Now();
  ClusterResult r =
      RunCommand({"bash", "-c", absl::StrCat("sleep 60 & echo $! > ", pid_file, "; wait")}, "",
                 absl::Milliseconds(500));
  CHECK(r.timed_out);
  CHECK_FALSE(r.ok());
  CHECK(absl::Now() - start < absl::Seconds(5));
  int child = 0;
  REQUIRE(absl::SimpleAtoi(absl::StripAsciiWhitespace(Slurp(pid_file)), &child));
  absl::SleepFor(absl::Milliseconds(100));
  // Gone, or a zombie waiting for a lazy reaper.
  std::string stat = Slurp(absl::StrCat("/proc/", child, "/stat"));
  CHECK((stat.empty() || absl::StrContains(stat, ") Z ")));
}

TEST_CASE("RunCommand returns when the command exits even if a background child keeps its output") {
  const absl::Time start = absl::Now();
  ClusterResult r =
      RunCommand({"bash", "-c", "echo done; (sleep 30 &) ; exit 0"}, "", absl::Seconds(20));
  CHECK(r.exit_code == 0);
  CHECK(r.out == "done\n");
  CHECK(absl::Now() - start < absl::Seconds(5));
}

TEST_CASE("a local cluster runs commands with bash and needs no copies") {
  ClusterPool pool;
  SlurmCluster& local = pool.Get({});
  CHECK(local.SshArgv("true").empty());
  ClusterResult r = local.Run("printf '%s' \"$(cat)\"", "a b");
  CHECK(r.out == "a b");
  // Same dir both ways: nothing to do, no command run.
  const std::map<std::string, int64_t> before = SlurmCluster::CommandCounts();
  CHECK(local.CopyTo("/x", {"run.sub"}, "/x").ok());
  CHECK(local.FetchFrom("/x", {"logs"}, "/x").ok());
  CHECK(SlurmCluster::CommandCounts() == before);
}

TEST_CASE("ssh argv: options for the master and commands, user, config, host after --") {
  SlurmCluster c({.hostname = "login", .username = "alice", .ssh_config_file = "/cfg"},
                 "/tmp/evald-ssh-x/c0");
  std::vector<std::string> argv = c.SshArgv("squeue -h");
  REQUIRE(argv.size() > 4);
  CHECK(argv[0] == "ssh");
  CHECK(argv[1] == "-F");
  CHECK(argv[2] == "/cfg");
  CHECK(argv[argv.size() - 3] == "--");
  CHECK(argv[argv.size() - 2] == "login");
  CHECK(argv.back() == "squeue -h");
  std::string joined;
  for (const std::string& a : argv) absl::StrAppend(&joined, a, " ");
  CHECK(absl::StrContains(joined, "BatchMode=yes"));
  CHECK(absl::StrContains(joined, "ConnectTimeout="));
  CHECK(absl::StrContains(joined, "ControlPath=/tmp/evald-ssh-x/c0"));
  CHECK(absl::StrContains(joined, "ControlMaster=no"));
  CHECK(absl::StrContains(joined, "-l alice"));
}

TEST_CASE("ssh to the test cluster's login node: one master, back after it is killed, copies") {
  const char* config = std::getenv("EVALD_SLURM_SSH_CONFIG");
  const char* alias = std::getenv("EVALD_SLURM_SSH_ALIAS");
  if (config == nullptr || alias == nullptr) {
    const char* require = std::getenv("EVALD_REQUIRE_SLURM");
    if (require != nullptr && std::string(require) == "1") {
      FAIL("EVALD_REQUIRE_SLURM=1 but EVALD_SLURM_SSH_CONFIG/ALIAS are not set");
    }
    WARN(
        "skipped: no SLURM test cluster (scripts/slurm-local up; eval \"$(scripts/slurm-local "
        "env)\")");
    SUCCEED();
    return;
  }
  ClusterPool pool;
  SlurmCluster& c = pool.Get({.hostname = alias, .ssh_config_file = config});
  ClusterResult r = c.Run("echo $((6*7))");
  INFO(r.Describe());
  REQUIRE(r.ok());
  CHECK(absl::StrContains(r.out, "42"));
  // The master is the one `ssh -O check` answers for.
  std::vector<std::string> check = c.SshArgv("");
  check.pop_back();
  check.insert(check.end() - 2, {"-O", "check"});
  ClusterResult master = RunCommand(check, "", absl::Seconds(5));
  INFO(master.err);
  REQUIRE(master.ok());
  int pid = 0;
  size_t at = master.err.find("pid=");
  REQUIRE(at != std::string::npos);
  REQUIRE(absl::SimpleAtoi(master.err.substr(at + 4, master.err.find(')', at) - at - 4), &pid));
  // One master: the next command goes through it rather than starting another.
  REQUIRE(c.Run("true").ok());
  ClusterResult same = RunCommand(check, "", absl::Seconds(5));
  CHECK(absl::StrContains(same.err, absl::StrCat("pid=", pid, ")")));
  // Killed (a dropped connection): the next commands still work, and a new master comes up.
  REQUIRE(kill(pid, SIGKILL) == 0);
  absl::SleepFor(absl::Milliseconds(200));
  ClusterResult after = c.Run("echo again");
  INFO(after.Describe());
  CHECK(after.ok());
  ClusterResult again = c.Run("echo third");
  CHECK(again.ok());
  CHECK(RunCommand(check, "", absl::Seconds(5)).ok());

  // Copies both ways and a private file.
  TempDir local, remote, back;
  std::ofstream(local.path + "/run.sub") << "#!/bin/bash\necho hi\n";
  REQUIRE(c.CopyTo(local.path, {"run.sub"}, remote.path + "/task").ok());
  CHECK(Slurp(remote.path + "/task/run.sub") == "#!/bin/bash\necho hi\n");
  REQUIRE(c.WritePrivateFile(remote.path + "/task/secrets.env", "API_KEY='s3cret'\n").ok());
  struct stat st {};
  REQUIRE(stat((remote.path + "/task/secrets.env").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  REQUIRE(c.FetchFrom(remote.path + "/task", {"run.sub", "missing"}, back.path).ok());
  CHECK(Slurp(back.path + "/run.sub") == "#!/bin/bash\necho hi\n");
  // A task dir that is gone on the cluster has nothing to fetch: not an error.
  CHECK(c.FetchFrom(remote.path + "/gone", {"logs"}, back.path).ok());

  // Many dirs in one command, each into its own local dir; a gone one is skipped.
  TempDir back2;
  REQUIRE(c.Run(absl::StrCat("mkdir -p ", remote.path, "/t2/logs && echo two > ", remote.path,
                             "/t2/logs/stage.exit"))
              .ok());
  const int64_t before = SlurmCluster::CommandCounts()["cd"];
  REQUIRE(c.FetchFrom({{remote.path + "/task", back.path + "/a"},
                       {remote.path + "/gone", back.path + "/b"},
                       {remote.path + "/t2", back2.path + "/c"}},
                      {"run.sub", "logs"})
              .ok());
  CHECK(SlurmCluster::CommandCounts()["cd"] == before + 1);
  CHECK(Slurp(back.path + "/a/run.sub") == "#!/bin/bash\necho hi\n");
  CHECK(Slurp(back2.path + "/c/logs/stage.exit") == "two\n");
  CHECK(!std::filesystem::exists(back2.path + "/c/run.sub"));
  CHECK(!std::filesystem::exists(back.path + "/b/logs"));
}

}  // namespace
}  // namespace evald::executors
