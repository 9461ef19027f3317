// How evalctl tells failures apart (issue 8, items 5 and 6): evald's own failures are printed as
// what they are (exit 6), never as "cannot reach evald"; a stream that loses evald says "went
// away" the same way for watch and logs -f (exit 3); a submit whose answer was lost is sent once
// more with the same idempotency key.
#include <catch2/catch.hpp>

#include "absl/strings/match.h"
#include "cli/client.h"
#include "cli/commands/commands.h"
#include "fake_api.h"

namespace evald::cli {
namespace {

using testing::FakeApi;
using testing::Harness;
using testing::MakeInvocation;
using testing::MakeJob;

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

ComposeFn PlainCompose() {
  return [](const ComposeInput&) -> absl::StatusOr<ComposedConfig> {
    ComposedConfig c;
    c.yaml = "execution:\n  type: local\n";
    return c;
  };
}

v1::SubmitResponse Submitted() {
  v1::SubmitResponse r;
  r.set_invocation_id("1a2b3c4d");
  r.set_run_dir("/out/20260101_000000-1a2b3c4d");
  v1::JobRef* j = r.add_jobs();
  j->set_job_id("1a2b3c4d.0");
  j->set_task("gsm8k");
  return r;
}

bool IsHexKey(const std::string& key) {
  if (key.size() != 32) return false;
  for (char c : key) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

const absl::Status kSocketClosed = absl::UnavailableError("Socket closed");
const absl::Status kRefused = absl::UnavailableError(
    "failed to connect to all addresses; last error: UNKNOWN: unix:/s/evald.sock: Connection "
    "refused");
const absl::Status kIoError = MarkServerFailure(absl::UnavailableError(
    "I/O error on /s/evald.db (create invocation 1a2b3c4d): disk I/O error (extended code 778)"));

TEST_CASE("evald's own failures are printed as what they are with exit 6") {
  ServerAddress addr;
  addr.target = "unix:///s/evald.sock";
  addr.unix_path = "/s/evald.sock";
  CHECK(IsServerFailure(kIoError));
  CHECK(ExitCodeFor(kIoError) == kExitServerError);
  CHECK(FailureMessage(kIoError, addr) ==
        "evald failed: UNAVAILABLE: I/O error on /s/evald.db (create invocation 1a2b3c4d): disk "
        "I/O error (extended code 778)");
  absl::Status corrupt = absl::DataLossError("/s/evald.db is not a valid evald database");
  CHECK(ExitCodeFor(corrupt) == 6);
  CHECK(FailureMessage(corrupt, addr) ==
        "evald failed: DATA_LOSS: /s/evald.db is not a valid evald database");
  absl::Status full = MarkServerFailure(absl::ResourceExhaustedError("disk full while writing"));
  CHECK(ExitCodeFor(full) == 6);
  CHECK(absl::StartsWith(FailureMessage(full, addr), "evald failed: RESOURCE_EXHAUSTED: disk"));
  // Unmarked UNAVAILABLE is still the transport's: cannot reach.
  CHECK_FALSE(IsServerFailure(kRefused));
  CHECK(absl::StartsWith(FailureMessage(kRefused, addr), "cannot reach evald at"));
  CHECK(ExitCodeFor(kRefused) == kExitUnreachable);
}

TEST_CASE("which failures are ambiguous: the call may or may not have reached evald") {
  CHECK(IsConnectFailure(kRefused));
  CHECK(IsConnectFailure(absl::UnavailableError("failed to connect to all addresses")));
  CHECK_FALSE(IsAmbiguousFailure(kRefused));
  CHECK(IsAmbiguousFailure(kSocketClosed));
  CHECK(IsAmbiguousFailure(absl::UnavailableError("Connection reset by peer")));
  CHECK(IsAmbiguousFailure(absl::DeadlineExceededError("Deadline Exceeded")));
  CHECK_FALSE(IsAmbiguousFailure(kIoError));  // evald answered
  CHECK_FALSE(IsAmbiguousFailure(absl::InvalidArgumentError("bad config")));
  CHECK_FALSE(IsAmbiguousFailure(absl::OkStatus()));
}

TEST_CASE("submit sends a fresh random idempotency key or the one given") {
  FakeApi api;
  api.submit_response = Submitted();
  Harness h(&api);
  SubmitOptions o;
  o.config_path = "cfg.yaml";
  REQUIRE(RunSubmit(h.ctx, o, PlainCompose()) == 0);
  REQUIRE(RunSubmit(h.ctx, o, PlainCompose()) == 0);
  REQUIRE(api.submits.size() == 2);
  CHECK(IsHexKey(api.submits[0].idempotency_key()));
  CHECK(IsHexKey(api.submits[1].idempotency_key()));
  CHECK(api.submits[0].idempotency_key() != api.submits[1].idempotency_key());

  o.idempotency_key = "4711-2";
  REQUIRE(RunSubmit(h.ctx, o, PlainCompose()) == 0);
  CHECK(api.submits[2].idempotency_key() == "4711-2");

  o.dry_run = true;  // stores nothing: no key
  REQUIRE(RunSubmit(h.ctx, o, PlainCompose()) == 0);
  CHECK(api.submits[3].idempotency_key().empty());
  CHECK(h.sleeps.empty());
}

TEST_CASE("submit: a lost answer is sent once more with the same key") {
  FakeApi api;
  api.submit_response = Submitted();
  Harness h(&api);
  SubmitOptions o;
  o.config_path = "cfg.yaml";
  api.submit_statuses = {kSocketClosed};
  REQUIRE(RunSubmit(h.ctx, o, PlainCompose()) == 0);
  REQUIRE(api.submits.size() == 2);
  CHECK(api.submits[0].idempotency_key() == api.submits[1].idempotency_key());
  CHECK(h.sleeps == std::vector<int64_t>{kSubmitRetryDelayMs});
  CHECK(Contains(h.err.str(), "no answer to submit (Socket closed); sending it once more"));
  CHECK(Contains(h.out.str(), "Submitted invocation 1a2b3c4d"));
}

TEST_CASE("submit: the retry is made once and then the key is printed for a later rerun") {
  FakeApi api;
  Harness h(&api);
  SubmitOptions o;
  o.config_path = "cfg.yaml";
  o.idempotency_key = "ci-42-7";
  api.submit_statuses = {kSocketClosed, kRefused};
  CHECK(RunSubmit(h.ctx, o, PlainCompose()) == kExitUnreachable);
  CHECK(api.submits.size() == 2);
  CHECK(Contains(h.err.str(), "evalctl: cannot reach evald"));
  CHECK(Contains(h.err.str(), "may have been stored"));
  CHECK(Contains(h.err.str(), "--idempotency-key ci-42-7"));
}

TEST_CASE("submit: no retry when nothing was sent or evald answered") {
  SECTION("evald not running") {
    FakeApi api;
    Harness h(&api);
    SubmitOptions o;
    o.config_path = "cfg.yaml";
    api.submit_status = kRefused;
    CHECK(RunSubmit(h.ctx, o, PlainCompose()) == kExitUnreachable);
    CHECK(api.submits.size() == 1);
    CHECK(h.sleeps.empty());
    CHECK_FALSE(Contains(h.err.str(), "may have been stored"));
  }
  SECTION("evald's database failed: said as it is, not 'cannot reach'") {
    FakeApi api;
    Harness h(&api);
    SubmitOptions o;
    o.config_path = "cfg.yaml";
    api.submit_status = kIoError;
    CHECK(RunSubmit(h.ctx, o, PlainCompose()) == kExitServerError);
    CHECK(api.submits.size() == 1);
    CHECK(h.err.str() ==
          "evalctl: evald failed: UNAVAILABLE: I/O error on /s/evald.db (create invocation "
          "1a2b3c4d): disk I/O error (extended code 778)\n");
  }
}

v1::Invocation Running() {
  return MakeInvocation("1a2b3c4d", v1::JOB_STATE_RUNNING,
                        {MakeJob("1a2b3c4d.0", "gsm8k", v1::JOB_STATE_RUNNING)});
}

TEST_CASE("watch and logs -f say the same when evald goes away with exit 3") {
  FakeApi api;
  v1::WatchEvent snap;
  *snap.mutable_snapshot() = Running();
  api.watch_messages = {snap};
  api.watch_end = kSocketClosed;
  v1::LogChunk chunk;
  chunk.set_job_id("1a2b3c4d.0");
  chunk.add_lines("hello");
  api.log_chunks = {chunk};
  api.logs_end = kSocketClosed;

  Harness w(&api);
  WatchOptions wo;
  wo.id = "1a2b3c4d";
  CHECK(RunWatch(w.ctx, wo) == kExitUnreachable);
  CHECK(w.err.str() ==
        "evalctl: evald went away (connection lost: Socket closed) while watching 1a2b3c4d; the "
        "jobs keep running; run `evalctl watch 1a2b3c4d` once evald is back\n");

  Harness l(&api);
  LogsOptions lo;
  lo.id = "1a2b3c4d.0";
  lo.follow = true;
  CHECK(RunLogs(l.ctx, lo) == kExitUnreachable);
  CHECK(l.err.str() ==
        "evalctl: evald went away (connection lost: Socket closed) while streaming the logs of "
        "1a2b3c4d.0; the jobs keep running; run `evalctl logs -f 1a2b3c4d.0` once evald is back\n");

  // Before the first chunk: a broken connection still went away, a refused one never arrived.
  api.log_chunks.clear();
  Harness l2(&api);
  CHECK(RunLogs(l2.ctx, lo) == kExitUnreachable);
  CHECK(Contains(l2.err.str(), "evald went away (connection lost: Socket closed)"));
  api.logs_end = kRefused;
  Harness l3(&api);
  CHECK(RunLogs(l3.ctx, lo) == kExitUnreachable);
  CHECK(Contains(l3.err.str(), "cannot reach evald"));
}

TEST_CASE("a stream that ends with evald's own failure says so with exit 6") {
  FakeApi api;
  v1::WatchEvent snap;
  *snap.mutable_snapshot() = Running();
  api.watch_messages = {snap};
  api.watch_end = absl::DataLossError("/s/evald.db is not a valid evald database");
  Harness h(&api);
  WatchOptions o;
  o.id = "1a2b3c4d";
  CHECK(RunWatch(h.ctx, o) == kExitServerError);
  CHECK(Contains(h.err.str(), "evalctl: evald failed: DATA_LOSS: /s/evald.db is not a valid"));
  CHECK_FALSE(Contains(h.err.str(), "went away"));
}

TEST_CASE("idempotency keys are 128 random bits in hex") {
  std::string a = NewIdempotencyKey();
  std::string b = NewIdempotencyKey();
  CHECK(IsHexKey(a));
  CHECK(IsHexKey(b));
  CHECK(a != b);
}

}  // namespace
}  // namespace evald::cli
