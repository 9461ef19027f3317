// The auto-resume budget of SLURM jobs (slurm_resume.h): which states are resumed, max_resumes
// and max_walltime (every job of the chain counted at its full walltime), the messages jobs get,
// SLURM time parsing and the chain file's round trip.
#include "executors/slurm/slurm_resume.h"

#include <catch2/catch.hpp>

namespace evald::executors {
namespace {

SlurmChain Chain(std::vector<std::string> ids, int max_resumes, int64_t walltime_s = 60,
                 std::optional<int64_t> max_walltime_s = std::nullopt) {
  return {.attempt = 1,
          .ids = std::move(ids),
          .max_resumes = max_resumes,
          .walltime_s = walltime_s,
          .max_walltime_s = max_walltime_s};
}

TEST_CASE("only TIMEOUT, PREEMPTED and NODE_FAIL are resumed") {
  const SlurmChain chain = Chain({"55"}, 3);
  for (const char* state : {"TIMEOUT", "PREEMPTED", "NODE_FAIL"}) {
    INFO(state);
    CHECK(DecideResume(chain, state).resume);
  }
  for (const char* state : {"COMPLETED", "FAILED", "CANCELLED", "OUT_OF_MEMORY", "BOOT_FAIL",
                            "DEADLINE", "RUNNING", "PENDING"}) {
    INFO(state);
    ResumeDecision d = DecideResume(chain, state);
    CHECK_FALSE(d.resume);
    CHECK(d.message.empty());  // nothing to explain: not a resumable ending
  }
}

TEST_CASE("max_resumes bounds the chain: N resumes means N+1 jobs") {
  CHECK(DecideResume(Chain({"55"}, 2), "TIMEOUT").resume);
  CHECK(DecideResume(Chain({"55", "57"}, 2), "TIMEOUT").resume);
  ResumeDecision d = DecideResume(Chain({"55", "57", "60"}, 2), "TIMEOUT");
  CHECK_FALSE(d.resume);
  CHECK(d.message == "TIMEOUT; max_resumes 2 reached");
  ResumeDecision off = DecideResume(Chain({"55"}, 0), "PREEMPTED");
  CHECK_FALSE(off.resume);
  CHECK(off.message == "PREEMPTED; max_resumes 0 reached (auto-resume is off)");
}

TEST_CASE("max_walltime counts every job at its walltime and never lets the chain pass it") {
  // 1 minute jobs, 3 minutes in all: a second and a third job fit, a fourth does not.
  CHECK(DecideResume(Chain({"1"}, 10, 60, 180), "TIMEOUT").resume);
  CHECK(DecideResume(Chain({"1", "2"}, 10, 60, 180), "TIMEOUT").resume);
  ResumeDecision d = DecideResume(Chain({"1", "2", "3"}, 10, 60, 180), "TIMEOUT");
  CHECK_FALSE(d.resume);
  CHECK(d.message ==
        "TIMEOUT; max_walltime 00:03:00 reached (3 jobs of walltime 00:01:00, another would "
        "exceed it)");
  // A max_walltime below two walltimes allows no resume at all.
  CHECK_FALSE(DecideResume(Chain({"1"}, 10, 3600, 5400), "NODE_FAIL").resume);
  // Unset = unbounded: only max_resumes counts.
  CHECK(DecideResume(Chain({"1", "2", "3", "4"}, 10, 86400), "TIMEOUT").resume);
}

TEST_CASE("a stopped chain is not resumed") {
  SlurmChain chain = Chain({"55"}, 3);
  chain.stopped = true;
  ResumeDecision d = DecideResume(chain, "TIMEOUT");
  CHECK_FALSE(d.resume);
  CHECK(d.message == "TIMEOUT; not resumed, the job was being stopped");
}

TEST_CASE("the chain's text and the resumed message") {
  SlurmChain chain = Chain({"55", "57"}, 3);
  CHECK(chain.Text() == "55 -> 57");
  CHECK(chain.resumes() == 1);
  CHECK(ResumedMessage(chain, "TIMEOUT") ==
        "resumed after TIMEOUT as SLURM job 57 (resume 1 of 3)");
  CHECK(Chain({}, 3).resumes() == 0);
}

TEST_CASE("SLURM times in every form sbatch takes") {
  CHECK(SlurmTimeSeconds("30").value() == 1800);
  CHECK(SlurmTimeSeconds("00:01:00").value() == 60);
  CHECK(SlurmTimeSeconds("1:30").value() == 90);  // minutes:seconds
  CHECK(SlurmTimeSeconds("120:00:00").value() == 432000);
  CHECK(SlurmTimeSeconds("1-02").value() == 93600);
  CHECK(SlurmTimeSeconds("1-02:03").value() == 93780);
  CHECK(SlurmTimeSeconds("2-00:00:01").value() == 172801);
  for (const char* bad : {"", "1h", "1:2:3:4", "1--2", "-1", "1::2", "a-01:00"}) {
    INFO(bad);
    CHECK_FALSE(SlurmTimeSeconds(bad).ok());
  }
  CHECK(FormatSlurmTime(3725) == "01:02:05");
  CHECK(FormatSlurmTime(90061) == "1-01:01:01");
}

TEST_CASE("the chain file round-trips and refuses what is not one") {
  SlurmChain chain = Chain({"55", "57"}, 3, 60, 600);
  chain.attempt = 2;
  chain.resubmitting = true;
  chain.last_resume = "resumed after TIMEOUT as SLURM job 57 (resume 1 of 3)";
  std::optional<SlurmChain> back = DecodeSlurmChain(EncodeSlurmChain(chain));
  REQUIRE(back);
  CHECK(back->attempt == 2);
  CHECK(back->ids == chain.ids);
  CHECK(back->max_resumes == 3);
  CHECK(back->walltime_s == 60);
  CHECK(back->max_walltime_s == 600);
  CHECK(back->resubmitting);
  CHECK_FALSE(back->stopped);
  CHECK(back->last_resume == chain.last_resume);
  std::optional<SlurmChain> unbounded = DecodeSlurmChain(EncodeSlurmChain(Chain({"1"}, 0)));
  REQUIRE(unbounded);
  CHECK_FALSE(unbounded->max_walltime_s);
  CHECK_FALSE(DecodeSlurmChain(""));
  CHECK_FALSE(DecodeSlurmChain("{\"attempt\": 1}"));
  CHECK_FALSE(DecodeSlurmChain("{\"ids\": [55]}"));
  CHECK_FALSE(DecodeSlurmChain("[1,2]"));
}

}  // namespace
}  // namespace evald::executors
