#include "executors/local/run_script.h"

#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/shell.h"
#include "executors/local/local_executor.h"
#include "tests/executors/local/test_util.h"

namespace evald::executors {
namespace {

namespace fs = std::filesystem;
using testing::Slurp;
using testing::Spit;
using testing::TempDir;

// Each of these runs `touch PWNED` (in the script's working directory) if it reaches bash as code.
constexpr char kNewlineName[] = "a\ntouch PWNED #";
constexpr char kSubst[] = "$(touch PWNED)";
constexpr char kBackticks[] = "`touch PWNED`";
constexpr char kQuotes[] = "it's \"q\" ';touch PWNED;'";

int Bash(const std::string& args, const std::string& cwd, const std::string& path_dir = "") {
  std::string command = absl::StrCat(
      "cd ", ShellQuote(cwd), " && ",
      path_dir.empty() ? "" : absl::StrCat("PATH=", ShellQuote(path_dir), ":\"$PATH\" "), "bash ",
      args, " >/dev/null 2>&1");
  int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Nothing named PWNED anywhere under `dir`.
bool Pwned(const std::string& dir) {
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.path().filename() == "PWNED") return true;
  }
  return false;
}

TEST_CASE("a newline in the task name stays in the run.sh comment") {
  TempDir dir;
  std::string bin = absl::StrCat(dir.path(), "/bin ", kSubst, " ", kQuotes);
  fs::create_directories(bin);
  std::string runner = absl::StrCat(bin, "/evalrun ", kBackticks);
  Spit(runner, "#!/bin/sh\necho ran > \"$(dirname \"$2\")/artifacts/ran\"\n", true);

  JobSpec spec;
  spec.job_id = absl::StrCat("0badf00d.0", kSubst, kBackticks, "\n", "touch PWNED");
  spec.invocation_id = "0badf00d";
  spec.task = kNewlineName;
  spec.task_dir = absl::StrCat(dir.path(), "/out/", kQuotes, " ", kSubst, " ", kBackticks, "\n#");
  spec.plan_yaml = "config: {type: x}\n";
  spec.env_vars = {{"API_KEY", "MY_KEY"}};
  LocalExecutor ex({.runner_path = runner});
  absl::StatusOr<RenderedJob> r = ex.Render(spec);
  REQUIRE(r.ok());
  CHECK(absl::StrContains(r->script, "task $'a\\ntouch PWNED #'\n"));

  fs::create_directories(spec.task_dir);
  Spit(spec.task_dir + "/plan.yaml", spec.plan_yaml);
  std::string script = dir.path() + "/run.sh";
  Spit(script, r->script);
  CHECK(Bash("-n " + ShellQuote(script), dir.path()) == 0);
  CHECK(Bash(ShellQuote(script), dir.path()) == 0);
  CHECK_FALSE(Pwned(dir.path()));
  CHECK(Slurp(spec.task_dir + "/artifacts/ran") == "ran\n");
  CHECK(absl::EndsWith(Slurp(spec.task_dir + "/logs/stage.exit"), " 0\n"));
}

TEST_CASE("container job fields reach docker verbatim and never run on the host") {
  TempDir dir;
  std::string bin = dir.path() + "/bin";
  fs::create_directories(bin);
  // A stand-in docker: records its arguments, one per line.
  Spit(bin + "/docker", "#!/bin/sh\nprintf '%s\\n' \"$@\" > \"$(dirname \"$0\")/../args\"\n", true);

  JobSpec spec;
  spec.job_id = "0badf00d.0";
  spec.task = kNewlineName;
  spec.task_dir = absl::StrCat(dir.path(), "/out/", kQuotes, kSubst);
  spec.native = false;
  spec.image = absl::StrCat("img", kSubst, kBackticks);
  spec.container_command = "nv_eval run_eval";
  spec.env_vars = {{"API_KEY", "MY_KEY"}};
  spec.execution_yaml =
      "extra_docker_args: >-\n  --label \"a b\" --label 'c$(touch PWNED)' --label d\\;e\n";
  LocalExecutor ex({.runner_path = "/x/evalrun", .container_runtime = bin + "/docker"});
  absl::StatusOr<RenderedJob> r = ex.Render(spec);
  REQUIRE(r.ok());

  std::string script = dir.path() + "/run.sh";
  Spit(script, r->script);
  CHECK(Bash("-n " + ShellQuote(script), dir.path()) == 0);
  CHECK(Bash(ShellQuote(script), dir.path(), bin) == 0);
  CHECK_FALSE(Pwned(dir.path()));
  CHECK(absl::StrContains(Slurp(dir.path() + "/args"),
                          absl::StrCat("--name\nevald-0badf00d.0-a-touch-PWNED--\n--label\na b\n"
                                       "--label\nc$(touch PWNED)\n--label\nd;e\n--volume\n",
                                       spec.task_dir, "/artifacts:/results\n-e\nAPI_KEY\nimg",
                                       kSubst, kBackticks, "\nbash\n-c\nnv_eval run_eval ;")));
}

TEST_CASE("what a script cannot carry is refused with the field named") {
  TempDir dir;
  JobSpec spec;
  spec.job_id = "0badf00d.0";
  spec.task = "mmlu";
  spec.task_dir = dir.path() + "/mmlu";
  LocalExecutor ex({.runner_path = "/x/evalrun"});

  JobSpec bad_env = spec;
  bad_env.env_vars = {{"API_KEY;touch PWNED", "MY_KEY"}};
  absl::StatusOr<RenderedJob> r = ex.Render(bad_env);
  CHECK(r.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(r.status().message() ==
        "task 'mmlu': env_vars: 'API_KEY;touch PWNED' is not a valid environment variable name "
        "([A-Za-z_][A-Za-z0-9_]*)");

  JobSpec nul = spec;
  nul.task = std::string("mm\0lu", 5);
  CHECK(ex.Render(nul).status().message() ==
        "task name contains a NUL byte, which a shell script cannot carry");

  JobSpec expansion = spec;
  expansion.native = false;
  expansion.execution_yaml = "extra_docker_args: -v $HOME/x:/x\n";
  r = ex.Render(expansion);
  CHECK(r.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(absl::StartsWith(r.status().message(),
                         "execution.extra_docker_args: an expansion ($ or `) in '-v $HOME/x:/x'"));
}

TEST_CASE("extra docker args split like bash words, without expansions") {
  using Words = std::vector<std::string>;
  CHECK(*SplitDockerArgs("") == Words{});
  CHECK(*SplitDockerArgs("  --network host\t--gpus all ") ==
        Words{"--network", "host", "--gpus", "all"});
  CHECK(*SplitDockerArgs("-e 'A=b c' -e \"D=\\\"e\\\" f\" g\\ h i''j") ==
        Words{"-e", "A=b c", "-e", "D=\"e\" f", "g h", "ij"});
  for (const char* bad :
       {"a'b", "a\"b", "a\\", "a;b", "a|b", "a && b", "$(x)", "`x`", "\"$x\"", "a > b", "(a)"}) {
    INFO(bad);
    CHECK(SplitDockerArgs(bad).status().code() == absl::StatusCode::kInvalidArgument);
  }
  CHECK(*SplitDockerArgs("'$(x);`y`'") == Words{"$(x);`y`"});
}

}  // namespace
}  // namespace evald::executors
