// SLURM status parsing and state mapping (slurm_status.h): squeue and sacct lines as SLURM 22.05
// prints them (captured from the test cluster, slurmdbd and jobcomp forms), every state the
// executor must map, and the commands quoting their ids and names.
#include "executors/slurm/slurm_status.h"

#include <catch2/catch.hpp>

#include "absl/strings/match.h"

namespace evald::executors {
namespace {

using Kind = Observation::Kind;

TEST_CASE("ParseSqueue reads id|state|reason|name lines and skips anything else") {
  auto q = ParseSqueue(
      "welcome to the login node\n"
      "35|PENDING|Resources|evald-ab12cd34.0-a1\n"
      "36|RUNNING|None|evald-ab12cd34.1-a1\n"
      "  37|CANCELLED|None|wrap  \n"
      "x|RUNNING|None|bad\n"
      "38|RUNNING|None\n");
  REQUIRE(q.size() == 3);
  CHECK(q["35"].state == "PENDING");
  CHECK(q["35"].reason == "Resources");
  CHECK(q["35"].name == "evald-ab12cd34.0-a1");
  CHECK(q["36"].reason.empty());  // "None" is no reason
  CHECK(q["37"].state == "CANCELLED");
  CHECK(DescribeSlurmStatus(q["35"]) == "PENDING (Resources)");
  CHECK(DescribeSlurmStatus(q["36"]) == "RUNNING");
}

TEST_CASE("ParseSacct reads jobcomp and slurmdbd lines, exit codes with signals, and reused ids") {
  auto a = ParseSacct(
      "3|wrap|FAILED|3:0\n"
      "4|evald-x-a1|CANCELLED by 0|0:15\n"
      "5|evald-x-a2|TIMEOUT|0:0\n"
      "5.batch|batch|COMPLETED|0:0\n"
      "6|old|COMPLETED|0:0\n"
      "6|new|FAILED|2:0\n"
      "sacct: error: Unknown type ArrayJobId: 19\n");
  REQUIRE(a.size() == 4);
  CHECK(a["3"][0].state == "FAILED");
  CHECK(a["3"][0].exit_code == 3);
  CHECK(a["4"][0].state == "CANCELLED");
  CHECK(a["4"][0].exit_code == 128 + 15);
  CHECK(a["5"].size() == 1);  // the step line is not a job
  CHECK(a["5"][0].exit_code == 0);
  REQUIRE(a["6"].size() == 2);
  CHECK(a["6"][1].name == "new");
}

TEST_CASE("SLURM states map onto observations") {
  struct Case {
    std::string state;
    Kind kind;
    std::optional<int> exit_code;
  };
  for (const Case& c : std::vector<Case>{
           {"PENDING", Kind::kSubmitted, std::nullopt},
           {"CONFIGURING", Kind::kSubmitted, std::nullopt},
           {"REQUEUED", Kind::kSubmitted, std::nullopt},
           {"RUNNING", Kind::kRunning, std::nullopt},
           {"COMPLETING", Kind::kRunning, std::nullopt},
           {"SUSPENDED", Kind::kRunning, std::nullopt},
           {"COMPLETED", Kind::kExited, 0},
           {"FAILED", Kind::kExited, 1},
           {"CANCELLED", Kind::kExited, 143},
           {"TIMEOUT", Kind::kExited, 143},
           {"PREEMPTED", Kind::kExited, 143},
           {"DEADLINE", Kind::kExited, 143},
           {"OUT_OF_MEMORY", Kind::kExited, 137},
           {"NODE_FAIL", Kind::kExited, 1},
           {"BOOT_FAIL", Kind::kExited, 1},
       }) {
    INFO(c.state);
    Observation obs = ObservationFor({.id = "42", .state = c.state});
    CHECK(obs.kind == c.kind);
    CHECK(obs.exit_code == c.exit_code);
    CHECK(absl::StrContains(obs.message, "SLURM job 42 " + c.state));
    CHECK(IsFinalSlurmState(c.state) == (c.kind == Kind::kExited));
  }
  // FAILED carries the job's own exit code; a 0 there is still a failure.
  CHECK(ObservationFor({.id = "1", .state = "FAILED", .exit_code = 3}).exit_code == 3);
  CHECK(ObservationFor({.id = "1", .state = "FAILED", .exit_code = 0}).exit_code == 1);
  Observation pending = ObservationFor({.id = "7", .state = "PENDING", .reason = "Priority"});
  CHECK(pending.message == "SLURM job 7 PENDING (Priority)");
}

TEST_CASE("status commands batch ids and quote names") {
  const std::string q = SqueueCommand({"1", "2", "3"});
  CHECK(absl::StrContains(q, "squeue -h -t all -j 1,2,3 "));
  const std::string a = SacctCommand({"4", "5"});
  CHECK(absl::StrContains(a, "sacct -n -P -X "));
  CHECK(absl::StrContains(a, "|| sacct -c "));
  CHECK(absl::StrContains(a, "-j 4,5"));
  const std::string f = FindByNameCommand("evald-a'b-a1");
  CHECK(absl::StrContains(f, "-n 'evald-a'\\''b-a1'"));
  CHECK(SqueueKnowsNone(1, "slurm_load_jobs error: Invalid job id specified\n"));
  CHECK_FALSE(SqueueKnowsNone(1, "slurm_load_jobs error: Unable to contact slurm controller\n"));
  CHECK_FALSE(SqueueKnowsNone(255, "ssh: connect to host x port 22: Connection refused\n"));
}

}  // namespace
}  // namespace evald::executors
