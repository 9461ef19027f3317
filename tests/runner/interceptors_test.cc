#include "runner/interceptors.h"

#include <catch2/catch.hpp>

#include "runner/progress.h"
#include "runner/response_cache.h"
#include "runner/retry_policy.h"
#include "tests/runner/test_util.h"

namespace evald::runner {
namespace {

using testing::ReadFile;
using testing::ReadLines;
using testing::TempDir;
using testing::WriteFile;

TEST_CASE("interceptor system_message: replaces and prepends") {
  nlohmann::json body = {
      {"messages",
       {{{"role", "system"}, {"content", "old"}}, {{"role", "user"}, {"content", "q"}}}}};
  ApplySystemMessage(body, "new");
  REQUIRE(body["messages"].size() == 2);
  CHECK(body["messages"][0] == nlohmann::json({{"role", "system"}, {"content", "new"}}));
  CHECK(body["messages"][1]["content"] == "q");
  nlohmann::json completions = {{"prompt", "p"}};
  ApplySystemMessage(completions, "new");
  CHECK(completions == nlohmann::json({{"prompt", "p"}}));
}

TEST_CASE("interceptor payload_modifier: remove, rename, then deep-merge add") {
  AdapterConfig::PayloadModifier m;
  m.enabled = true;
  m.params_to_remove = {"top_p"};
  m.params_to_rename = {{"max_tokens", "max_completion_tokens"}};
  m.params_to_add = {{"chat_template_kwargs", {{"enable_thinking", false}}}, {"temperature", 1.0}};
  nlohmann::json body = {{"model", "m"},
                         {"top_p", 0.9},
                         {"max_tokens", 10},
                         {"temperature", 0.0},
                         {"chat_template_kwargs", {{"keep", true}}}};
  ApplyPayloadModifier(body, m);
  CHECK_FALSE(body.contains("top_p"));
  CHECK_FALSE(body.contains("max_tokens"));
  CHECK(body["max_completion_tokens"] == 10);
  CHECK(body["temperature"] == 1.0);
  CHECK(body["chat_template_kwargs"] ==
        nlohmann::json({{"keep", true}, {"enable_thinking", false}}));
}

TEST_CASE("response parsing: chat, completions and malformed bodies") {
  auto chat = ParseOpenAIResponse(
      R"({"choices":[{"message":{"role":"assistant","content":"hi","reasoning_content":"r"},
         "finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}})",
      EndpointType::kChat);
  REQUIRE(chat.ok());
  CHECK(chat->content == "hi");
  CHECK(*chat->reasoning == "r");
  CHECK(chat->finish_reason == "stop");
  CHECK(chat->total_tokens == 7);
  auto null_content =
      ParseOpenAIResponse(R"({"choices":[{"message":{"content":null}}]})", EndpointType::kChat);
  REQUIRE(null_content.ok());
  CHECK(null_content->content.empty());
  auto text = ParseOpenAIResponse(R"({"choices":[{"text":"t","finish_reason":"length"}]})",
                                  EndpointType::kCompletions);
  REQUIRE(text.ok());
  CHECK(text->content == "t");
  CHECK_FALSE(ParseOpenAIResponse("not json", EndpointType::kChat).ok());
  CHECK_FALSE(
      ParseOpenAIResponse(R"({"choices":[{"message":{"content":"cut)", EndpointType::kChat).ok());
  CHECK_FALSE(ParseOpenAIResponse(R"({"choices":[]})", EndpointType::kChat).ok());
  CHECK_FALSE(ParseOpenAIResponse(R"({"choices":[{"text":"t"}]})", EndpointType::kChat).ok());
  CHECK_FALSE(ParseOpenAIResponse(R"([1])", EndpointType::kChat).ok());
  // Only choices[0] at the top level counts; other places with the same keys are ignored.
  auto second = ParseOpenAIResponse(
      R"({"meta":{"choices":[{"message":{"content":"decoy"}}]},"choices":[{"message":)"
      R"({"content":"real","tool_calls":[{"message":{"content":"no"}}]}},{"message":)"
      R"({"content":"other choice"}}],"usage":{"prompt_tokens":3,"completion_tokens":4}})",
      EndpointType::kChat);
  REQUIRE(second.ok());
  CHECK(second->content == "real");
  CHECK(second->total_tokens == 7);  // summed when the server leaves it out
  CHECK_FALSE(
      ParseOpenAIResponse(R"({"choices":[{"message":{"content":42}}]})", EndpointType::kChat).ok());
  CHECK_FALSE(ParseOpenAIResponse(R"({"meta":{"choices":[{"message":{"content":"x"}}]}})",
                                  EndpointType::kChat)
                  .ok());
  auto escaped = ParseOpenAIResponse(R"({"choices":[{"message":{"content":"a\"b\n\u00e9"}}]})",
                                     EndpointType::kChat);
  REQUIRE(escaped.ok());
  CHECK(escaped->content == "a\"b\n\xc3\xa9");
  auto err200 = ParseOpenAIResponse(R"({"error":{"message":"overloaded"}})", EndpointType::kChat);
  REQUIRE_FALSE(err200.ok());
  CHECK_THAT(std::string(err200.status().message()), Catch::Contains("overloaded"));
  CHECK(ErrorMessageFromBody(R"({"error":{"message":"Invalid API key","type":"x"}})") ==
        "Invalid API key");
  CHECK(ErrorMessageFromBody("  plain text  ") == "plain text");
}

TEST_CASE("interceptor reasoning: think tags, reasoning_content and unfinished reasoning") {
  AdapterConfig::Reasoning cfg;
  ReasoningStripper strip(cfg);
  ParsedResponse a;
  a.content = "<think>step one step two</think>\n\nAnswer: B";
  strip.Apply(a);
  CHECK(a.content == "Answer: B");
  CHECK(*a.reasoning == "step one step two");
  ParsedResponse b;
  b.content = "Answer: C";
  b.reasoning = "server side reasoning";
  strip.Apply(b);
  CHECK(b.content == "Answer: C");
  ParsedResponse c;
  c.content = "<think>never ends";
  strip.Apply(c);
  CHECK(c.content == "<think>never ends");  // include_if_not_finished defaults to true
  ParsedResponse d;
  d.content = "plain";
  strip.Apply(d);
  nlohmann::json stats = strip.StatsJson();
  CHECK(stats["responses"] == 4);
  CHECK(stats["responses_with_reasoning"] == 3);
  CHECK(stats["reasoning_finished_count"] == 2);
  CHECK(stats["reasoning_unfinished_count"] == 1);
  CHECK(stats["max_reasoning_words"] == 4);

  cfg.include_if_not_finished = false;
  ReasoningStripper drop(cfg);
  ParsedResponse e;
  e.content = "<think>never ends";
  drop.Apply(e);
  CHECK(e.content.empty());
  // Without a start token in the answer, everything up to the end token is reasoning.
  ParsedResponse f;
  f.content = "hidden</think>shown";
  drop.Apply(f);
  CHECK(f.content == "shown");
}

TEST_CASE("interceptor response_stats: latency percentiles, tokens, finish reasons") {
  ResponseStats stats(AdapterConfig::Stats{});
  for (int i = 1; i <= 100; ++i) {
    ParsedResponse r;
    r.finish_reason = i % 10 == 0 ? "length" : "stop";
    r.has_usage = true;
    r.prompt_tokens = 10;
    r.completion_tokens = i;
    r.total_tokens = 10 + i;
    stats.AddResponse(r, i / 1000.0, 200, /*cached=*/i > 90);
  }
  stats.AddFailedAttempt("server_error", 503, 0.01);
  nlohmann::json j = stats.ToJson();
  CHECK(j["count"] == 100);
  CHECK(j["cached_count"] == 10);
  CHECK(j["latency_ms"]["count"] == 90);  // cached answers have no latency
  CHECK(j["latency_ms"]["p50"].get<double>() == Approx(45).epsilon(0.01));
  CHECK(j["latency_ms"]["p99"].get<double>() == Approx(90).epsilon(0.01));
  CHECK(j["finish_reason"]["length"] == 10);
  CHECK(j["status_codes"]["200"] == 90);
  CHECK(j["status_codes"]["503"] == 1);
  CHECK(j["failed_attempts"]["server_error"] == 1);
  CHECK(j["token_usage"]["completion_tokens"] == 5050);
  CHECK(stats.TokenUsageJson()["total_cached_requests"] == 10);
  CHECK(Percentile({}, 50) == 0.0);
  CHECK(Percentile({3, 1, 2}, 100) == 3.0);
}

TEST_CASE("interceptor request/response logging: bounded") {
  TempDir dir;
  BoundedLog log;
  REQUIRE(log.Open(dir / "request_log.jsonl", 2).ok());
  for (int i = 0; i < 5; ++i) log.Write({{"i", i}});
  log.Close();
  CHECK(ReadLines(dir / "request_log.jsonl").size() == 2);
}

TEST_CASE("retry policy: classification") {
  CHECK(ClassifyHttp(0, 200) == FailureKind::kNone);
  CHECK(ClassifyHttp(7 /*CURLE_COULDNT_CONNECT*/, 0) == FailureKind::kConnection);
  CHECK(ClassifyHttp(28 /*CURLE_OPERATION_TIMEDOUT*/, 0) == FailureKind::kConnection);
  CHECK(ClassifyHttp(52 /*CURLE_GOT_NOTHING*/, 0) == FailureKind::kConnection);
  CHECK(ClassifyHttp(18 /*CURLE_PARTIAL_FILE*/, 200) == FailureKind::kMalformed);
  CHECK(ClassifyHttp(0, 408) == FailureKind::kThrottled);
  CHECK(ClassifyHttp(0, 429) == FailureKind::kThrottled);
  CHECK(ClassifyHttp(0, 500) == FailureKind::kServer);
  CHECK(ClassifyHttp(0, 503) == FailureKind::kServer);
  CHECK(ClassifyHttp(0, 401) == FailureKind::kAuth);
  CHECK(ClassifyHttp(0, 403) == FailureKind::kAuth);
  CHECK(ClassifyHttp(0, 400) == FailureKind::kClientError);
  CHECK(ClassifyHttp(0, 404) == FailureKind::kClientError);
  for (auto k : {FailureKind::kConnection, FailureKind::kServer, FailureKind::kThrottled,
                 FailureKind::kMalformed}) {
    CHECK(IsRetryable(k));
  }
  for (auto k : {FailureKind::kAuth, FailureKind::kClientError, FailureKind::kNone}) {
    CHECK_FALSE(IsRetryable(k));
  }
  CHECK(IsTransport(FailureKind::kServer));
  CHECK_FALSE(IsTransport(FailureKind::kMalformed));
}

TEST_CASE("retry policy: exponential backoff with jitter, capped, honouring Retry-After") {
  RetryPolicy policy({.max_retries = 3, .base_delay_s = 1.0, .max_delay_s = 5.0}, 42);
  CHECK(policy.ShouldRetry(1));
  CHECK(policy.ShouldRetry(3));
  CHECK_FALSE(policy.ShouldRetry(4));
  for (int trial = 0; trial < 200; ++trial) {
    double d1 = policy.Delay(1, -1);
    double d3 = policy.Delay(3, -1);
    double d9 = policy.Delay(9, -1);
    CHECK(d1 >= 0.5);
    CHECK(d1 <= 1.0);
    CHECK(d3 >= 2.0);
    CHECK(d3 <= 4.0);
    CHECK(d9 >= 2.5);  // capped at 5 s, jittered down to half
    CHECK(d9 <= 5.0);
  }
  CHECK(policy.Delay(1, 7.0) >= 7.0);          // Retry-After wins when longer
  CHECK(policy.Delay(1, 100000.0) <= 600.05);  // but is capped
  // Jitter actually varies.
  std::set<double> seen;
  for (int i = 0; i < 20; ++i) seen.insert(policy.Delay(2, -1));
  CHECK(seen.size() > 10);
  RetryPolicy none({.max_retries = 0}, 1);
  CHECK_FALSE(none.ShouldRetry(1));
}

TEST_CASE("retry policy: Retry-After 0 retries at once, with a little jitter") {
  // A base delay far above any hint: a server's hint replaces the backoff, shorter or longer.
  RetryPolicy policy({.max_retries = 5, .base_delay_s = 10.0, .max_delay_s = 30.0}, 7);
  std::set<double> seen;
  for (int attempt = 1; attempt <= 5; ++attempt) {
    for (int trial = 0; trial < 50; ++trial) {
      double now = policy.Delay(attempt, 0.0);
      CHECK(now >= 0.0);
      CHECK(now <= RetryPolicy::kRetryAfterJitterS);
      seen.insert(now);
      double later = policy.Delay(attempt, 2.0);
      CHECK(later >= 2.0);
      CHECK(later <= 2.0 + RetryPolicy::kRetryAfterJitterS);
    }
  }
  CHECK(seen.size() > 10);  // jittered, not all at the same instant
  CHECK(policy.Delay(1, -1) >= 5.0);  // no hint: the backoff as before
}

TEST_CASE("response cache: put, flush, reopen, reuse off") {
  TempDir dir;
  {
    auto cache = ResponseCache::Open({.dir = dir / "cache"});
    REQUIRE(cache.ok());
    CHECK_FALSE((*cache)->Get("k1").has_value());
    (*cache)->Put("k1", "{\"req\":1}", "{\"resp\":1}");
    // A cache that was empty when opened answers nothing: the run only asks for keys it has not
    // put itself.
    CHECK_FALSE((*cache)->Get("k1").has_value());
    CHECK((*cache)->Flush().ok());
    (*cache)->Put("k2", "", "two");
  }  // the destructor commits
  {
    auto again = ResponseCache::Open({.dir = dir / "cache"});
    REQUIRE(again.ok());
    REQUIRE((*again)->Get("k1").has_value());
    CHECK(*(*again)->Get("k1") == "{\"resp\":1}");
    CHECK(*(*again)->Get("k2") == "two");
    CHECK_FALSE((*again)->Get("k3").has_value());
    CHECK((*again)->Count() == 2);
  }
  auto fill_only = ResponseCache::Open({.dir = dir / "cache", .reuse = false});
  REQUIRE(fill_only.ok());
  CHECK_FALSE((*fill_only)->Get("k1").has_value());
}

TEST_CASE("response cache: one process at a time") {
  TempDir dir;
  auto first = ResponseCache::Open({.dir = dir / "cache"});
  REQUIRE(first.ok());
  (*first)->Put("k", "", "v");
  REQUIRE((*first)->Flush().ok());
  auto second = ResponseCache::Open({.dir = dir / "cache", .busy_timeout_ms = 50});
  REQUIRE_FALSE(second.ok());
  CHECK_THAT(std::string(second.status().message()), Catch::Contains("in use by another process"));
}

TEST_CASE("response cache: a file that is not SQLite is a clear error") {
  TempDir dir;
  WriteFile(dir / "cache/cache.sqlite3", std::string(4096, 'x'));
  auto cache = ResponseCache::Open({.dir = dir / "cache"});
  REQUIRE_FALSE(cache.ok());
  CHECK(cache.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK_THAT(std::string(cache.status().message()), Catch::Contains("cache.sqlite3"));
}

TEST_CASE("progress files: atomic JSON and the bare integer") {
  TempDir dir;
  ProgressFiles progress(dir.path(), 10, /*min_interval_s=*/3600);
  REQUIRE(progress.Update(3, 1, /*force=*/true).ok());
  auto j = nlohmann::json::parse(ReadFile(dir / "progress.json"));
  CHECK(j["done"] == 3);
  CHECK(j["total"] == 10);
  CHECK(j["errors"] == 1);
  CHECK(j.contains("rate"));
  CHECK(j["updated_at"].get<std::string>().back() == 'Z');
  CHECK(ReadFile(dir / "progress") == "3\n");
  REQUIRE(progress.Update(5, 1, /*force=*/false).ok());  // throttled: not written
  CHECK(ReadFile(dir / "progress") == "3\n");
  REQUIRE(progress.Update(5, 1, /*force=*/true).ok());
  CHECK(ReadFile(dir / "progress") == "5\n");
  CHECK_FALSE(WriteFileAtomically(dir / "no/such/dir/file", "x").ok());
}

}  // namespace
}  // namespace evald::runner
