#include "runner/adapter_config.h"

#include <catch2/catch.hpp>

namespace evald::runner {
namespace {

absl::StatusOr<AdapterConfig> Parse(const std::string& yaml) {
  auto doc = YamlDoc::Parse(yaml, "plan.yaml");
  REQUIRE(doc.ok());
  return ParseAdapterConfig(*doc, doc->root(), "target.api_endpoint.adapter_config");
}

TEST_CASE("adapter_config: absent means caching and response stats only") {
  auto doc = YamlDoc::Parse("{}", "plan.yaml");
  auto ac = ParseAdapterConfig(*doc, YamlDoc::Child(doc->root(), "missing"), "x");
  REQUIRE(ac.ok());
  CHECK(ac->caching.enabled);
  CHECK(ac->caching.reuse_cached);
  CHECK(ac->stats.enabled);
  CHECK_FALSE(ac->system_message.has_value());
  CHECK_FALSE(ac->payload.enabled);
  CHECK_FALSE(ac->reasoning.enabled);
  CHECK_FALSE(ac->logging.requests);
  CHECK_FALSE(ac->progress.enabled);
}

TEST_CASE("adapter_config: legacy flags convert as the reference converts them") {
  auto ac = Parse(R"(
use_system_prompt: true
custom_system_prompt: "Be brief."
params_to_add: {chat_template_kwargs: {enable_thinking: false}}
params_to_remove: [top_p]
params_to_rename: {max_tokens: max_completion_tokens}
use_reasoning: true
end_reasoning_token: "</reason>"
start_reasoning_token: "<reason>"
include_if_reasoning_not_finished: false
use_caching: false
use_request_logging: true
max_logged_requests: 3
use_response_logging: true
max_logged_responses: 4
use_progress_tracking: true
progress_tracking_url: http://127.0.0.1:1/progress
progress_tracking_interval: 10
tracking_requests_stats: false
)");
  REQUIRE(ac.ok());
  CHECK(*ac->system_message == "Be brief.");
  CHECK(ac->payload.enabled);
  CHECK(ac->payload.params_to_add["chat_template_kwargs"]["enable_thinking"] == false);
  CHECK(ac->payload.params_to_remove == std::vector<std::string>{"top_p"});
  REQUIRE(ac->payload.params_to_rename.size() == 1);
  CHECK(ac->payload.params_to_rename[0].second == "max_completion_tokens");
  CHECK(ac->reasoning.enabled);
  CHECK(ac->reasoning.end_token == "</reason>");
  CHECK(ac->reasoning.start_token == "<reason>");
  CHECK_FALSE(ac->reasoning.include_if_not_finished);
  CHECK_FALSE(ac->caching.enabled);
  CHECK(ac->logging.requests);
  CHECK(ac->logging.max_requests == 3);
  CHECK(ac->logging.max_responses == 4);
  CHECK(ac->progress.enabled);
  CHECK(ac->progress.interval == 10);
  CHECK_FALSE(ac->stats.enabled);
}

TEST_CASE("adapter_config: a custom prompt without use_system_prompt is not used") {
  auto ac = Parse("custom_system_prompt: x\n");
  REQUIRE(ac.ok());
  CHECK_FALSE(ac->system_message.has_value());
}

TEST_CASE("adapter_config: an interceptors list replaces the defaults") {
  auto ac = Parse(R"(
interceptors:
  - name: system_message
    config: {system_message: "You are a judge."}
  - reasoning
  - name: caching
    enabled: false
  - name: request_logging
    config: {max_requests: 1}
  - endpoint
  - name: progress_tracking
    config: {progress_tracking_url: "http://h/p", progress_tracking_interval: 5}
  - omni_info
)");
  REQUIRE(ac.ok());
  CHECK(*ac->system_message == "You are a judge.");
  CHECK(ac->reasoning.enabled);
  CHECK_FALSE(ac->caching.enabled);  // listed but disabled
  CHECK_FALSE(ac->stats.enabled);    // not listed
  CHECK(ac->logging.requests);
  CHECK(ac->logging.max_requests == 1);
  CHECK(ac->progress.enabled);
  CHECK(ac->progress.interval == 5);
  CHECK(ac->ignored == std::vector<std::string>{"omni_info"});
}

TEST_CASE("adapter_config: list errors name the entry") {
  auto ac = Parse("interceptors: [caching, {name: bogus}, endpoint]\n");
  REQUIRE_FALSE(ac.ok());
  CHECK_THAT(std::string(ac.status().message()),
             Catch::Contains("adapter_config.interceptors[1].name") &&
                 Catch::Contains("unknown interceptor 'bogus'"));
  ac = Parse("interceptors: [caching]\n");
  REQUIRE_FALSE(ac.ok());
  CHECK_THAT(std::string(ac.status().message()), Catch::Contains("must include 'endpoint'"));
  ac = Parse("use_caching: maybe\n");
  REQUIRE_FALSE(ac.ok());
  CHECK_THAT(std::string(ac.status().message()),
             Catch::Contains("plan.yaml:1: target.api_endpoint.adapter_config.use_caching"));
}

}  // namespace
}  // namespace evald::runner
