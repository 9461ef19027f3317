// The SLURM executor through real evald and evalctl, first piece (issue 10): a dry run of the
// reference's slurm example prints every task's run.sub without touching a cluster and without
// secret values; a real submit is taken and its jobs fail at start saying submission is not
// available yet.
#include <catch2/catch.hpp>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "tests/integration/harness.h"

namespace evald::testing {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

TEST_CASE("evalctl submit --dry-run of a slurm config prints the run.sub of every task") {
  TempDir dir;
  Evald evald(dir);
  const std::string example =
      SourceDir() + "/tests/fixtures/peer-examples/slurm_no_deployment_llama_3_1_8b_instruct.yaml";
  const std::vector<std::string> submit = {"submit", example,
                                           "-o",     "execution.hostname=login.invalid",
                                           "-o",     "execution.account=acct",
                                           "-o",     "execution.output_dir=" + dir.path() + "/out"};
  const std::map<std::string, std::string> env = {{"USER", "alice"},
                                                  {"API_KEY", "dry-api-key-value"},
                                                  {"HF_TOKEN_FOR_GPQA_DIAMOND", "dry-hf-value"}};

  std::vector<std::string> dry_args = submit;
  dry_args.push_back("--dry-run");
  CommandResult text = evald.Ctl(dry_args, env);
  INFO(text.out << text.err);
  REQUIRE(text.exit_code == 0);
  CHECK(absl::StrContains(text.out, "#SBATCH --account acct\n#SBATCH --partition cpu_short\n"));
  CHECK(absl::StrContains(text.out, "srun --mpi pmix --overlap "));
  CHECK_FALSE(absl::StrContains(text.out + text.err, "dry-api-key-value"));
  CHECK_FALSE(absl::StrContains(text.out + text.err, "dry-hf-value"));

  dry_args.push_back("--json");
  CommandResult json = evald.Ctl(dry_args, env);
  REQUIRE(json.exit_code == 0);
  Json j = Json::parse(json.out);
  REQUIRE(j["jobs"].size() == 3);
  for (const Json& job : j["jobs"]) {
    const std::string script = job["script"].get<std::string>();
    INFO(script);
    CHECK(absl::StartsWith(script, "#!/bin/bash\n#SBATCH --time 02:00:00\n"));
    CHECK(absl::StrContains(script, absl::StrCat("#SBATCH --job-name evald-",
                                                 job["job_id"].get<std::string>(), "-a1\n")));
    CHECK(absl::StrContains(script, "set -a; source \"$task_dir/secrets.env\""));
  }
  CHECK_FALSE(fs::exists(dir.path() + "/out"));  // nothing written, no cluster asked
  CHECK(evald.Ctl({"status", "--json"}).out.find(j["invocation_id"].get<std::string>()) ==
        std::string::npos);

  // A real submit is taken; its jobs fail at start with the reason.
  std::vector<std::string> real = submit;
  real.push_back("--json");
  CommandResult r = evald.Ctl(real, env);
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  v1::Invocation done =
      evald.WaitTerminal(Json::parse(r.out)["invocation_id"].get<std::string>(), 30);
  REQUIRE(done.jobs_size() == 3);
  for (const auto& job : done.jobs()) {
    CHECK(job.state() == v1::JOB_STATE_FAILED);
    CHECK(
        absl::StrContains(job.message(), "submitting to SLURM is not available in this build yet"));
  }
}

}  // namespace
}  // namespace evald::testing
