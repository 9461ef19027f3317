#include "runner/runner.h"

#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iomanip>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <unordered_map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/status_macros.h"
#include "runner/hashing.h"
#include "runner/http_client.h"
#include "runner/interceptors.h"
#include "runner/json_text.h"
#include "runner/progress.h"
#include "runner/response_cache.h"
#include "runner/results_writer.h"
#include "runner/retry_policy.h"
#include "runner/task.h"
#include "runner/tasks_internal.h"
#include "runner/yaml_util.h"

namespace evald::runner {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// Tags of progress-tracking POSTs (request tags are work indexes, far below this bit).
constexpr uint64_t kProgressTag = uint64_t{1} << 63;

std::string Getenv(const std::string& name) {
  if (name.empty()) return "";
  const char* v = std::getenv(name.c_str());
  return v != nullptr ? v : "";
}

// One request, as sent: the canonical body (keys sorted, so it is also what the cache hashes)
// and its prompt part (the messages array or the prompt string) for samples.jsonl.
struct BuiltRequest {
  std::string body;
  std::string prompt_json;
};

// The request of one sample x repeat, interceptors applied; shared by the run and --dry-run.
// The body is written as text directly; only the payload modifier, which can reshape anything,
// goes through a JSON tree.
BuiltRequest BuildRequest(const Plan& plan, const Task& task, EndpointType type, size_t sample,
                          int repeat) {
  Prompt p = task.BuildPrompt(sample, type);
  const Params& params = plan.params;
  BuiltRequest r;
  if (plan.adapter.payload.enabled) {
    nlohmann::json body = nlohmann::json::object();
    body["model"] = plan.endpoint.model_id;
    if (type == EndpointType::kChat) {
      nlohmann::json messages = nlohmann::json::array();
      for (auto& m : p.messages) {
        messages.push_back({{"role", std::move(m.role)}, {"content", std::move(m.content)}});
      }
      body["messages"] = std::move(messages);
    } else {
      body["prompt"] = std::move(p.text);
    }
    if (params.temperature) body["temperature"] = *params.temperature;
    if (params.top_p) body["top_p"] = *params.top_p;
    if (params.max_new_tokens) body["max_tokens"] = *params.max_new_tokens;
    if (params.seed) body["seed"] = *params.seed + repeat;
    if (plan.adapter.system_message) ApplySystemMessage(body, *plan.adapter.system_message);
    ApplyPayloadModifier(body, plan.adapter.payload);
    r.body = DumpJson(body);
    for (const char* key : {"messages", "prompt"}) {
      if (body.contains(key)) r.prompt_json = DumpJson(body[key]);
    }
    if (r.prompt_json.empty()) r.prompt_json = "null";
    return r;
  }
  if (type == EndpointType::kChat) {
    r.prompt_json = "[";
    auto add = [&](absl::string_view role, absl::string_view content) {
      if (r.prompt_json.size() > 1) r.prompt_json += ',';
      r.prompt_json += "{\"content\":";
      AppendJsonString(&r.prompt_json, content);
      r.prompt_json += ",\"role\":";
      AppendJsonString(&r.prompt_json, role);
      r.prompt_json += '}';
    };
    // The system_message interceptor replaces any system message and goes first.
    if (plan.adapter.system_message) add("system", *plan.adapter.system_message);
    for (const auto& m : p.messages) {
      if (plan.adapter.system_message && m.role == "system") continue;
      add(m.role, m.content);
    }
    r.prompt_json += ']';
  } else {
    AppendJsonString(&r.prompt_json, p.text);
  }
  std::string& b = r.body;
  b.reserve(r.prompt_json.size() + 160);
  b += '{';
  if (params.max_new_tokens) {
    b += "\"max_tokens\":";
    AppendJsonInt(&b, *params.max_new_tokens);
    b += ',';
  }
  if (type == EndpointType::kChat) {
    b += "\"messages\":";
    b += r.prompt_json;
    b += ",\"model\":";
    AppendJsonString(&b, plan.endpoint.model_id);
  } else {
    b += "\"model\":";
    AppendJsonString(&b, plan.endpoint.model_id);
    b += ",\"prompt\":";
    b += r.prompt_json;
  }
  if (params.seed) {
    b += ",\"seed\":";
    AppendJsonInt(&b, *params.seed + repeat);
  }
  if (params.temperature) {
    b += ",\"temperature\":";
    AppendJsonDouble(&b, *params.temperature);
  }
  if (params.top_p) {
    b += ",\"top_p\":";
    AppendJsonDouble(&b, *params.top_p);
  }
  b += '}';
  return r;
}

// An evaluation's scores as an object; a name scored more than once (IFEval's instruction-level
// scores) maps to the list of its values.
nlohmann::json ScoresJson(const Evaluation& e) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [name, value] : e.scores) {
    if (!out.contains(name)) {
      out[name] = value;
    } else if (out[name].is_array()) {
      out[name].push_back(value);
    } else {
      out[name] = nlohmann::json::array({out[name], value});
    }
  }
  return out;
}

int64_t PeakRssBytes() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<int64_t>(ru.ru_maxrss) * 1024;
}

// Everything one evaluation needs; lives for one RunEvaluation() call.
class EvaluationLoop {
 public:
  EvaluationLoop(const Plan& plan, const RunnerOptions& options)
      : plan_(plan),
        options_(options),
        policy_({.max_retries = plan.params.max_retries,
                 .base_delay_s = plan.params.retry_base_delay_s,
                 .max_delay_s = plan.params.retry_max_delay_s},
                static_cast<uint64_t>(plan.params.seed.value_or(0)) ^ 0x5DEECE66Dull),
        stats_(plan.adapter.stats) {}

  RunOutcome Execute();

 private:
  // A request on the wire, and what recording its answer needs.
  struct InFlight {
    std::string key;
    std::string prompt_json;  // for samples.jsonl
    std::string request;      // kept only when the cache saves requests
  };

  absl::Status Setup();
  // The request body of a work item (sample x repeat), interceptors applied.
  BuiltRequest Build(uint64_t work) const;
  std::string CacheKey(const std::string& canonical, uint64_t work) const;
  // Answers from the cache when it can, else sends. `retry`: skip the cache lookup.
  void Start(uint64_t work, bool retry);
  // Handles one Poll()'s batch in two passes: every answer's slot is refilled and the new
  // requests handed to the network first, then the answers are cached, logged and scored. With
  // 64 answers landing together, scoring them before sending would delay the last slot's next
  // request by the whole batch's bookkeeping.
  void HandleCompletions(std::vector<HttpClient::Completion>& batch);
  void HandleCompletion(HttpClient::Completion& c);
  // The second pass for one answer: cache, response log, score, samples.jsonl.
  void Record(uint64_t work, ParsedResponse parsed, InFlight f, HttpClient::Completion& c);
  void OnAnswer(uint64_t work, ParsedResponse r, double latency_s, long status, bool cached,
                const std::string& prompt_json);
  void OnFailure(uint64_t work, FailureKind kind, const std::string& error,
                 const std::string& prompt_json);
  void Periodic(bool force);
  // Starts the next new sample if a slot is free, and hands it to the network at once.
  void RefillOne();
  size_t Busy() const {
    // Samples waiting for a retry keep their slot: `parallelism` bounds the samples being worked
    // on, so a dead endpoint is not flooded with the whole dataset.
    return client_->in_flight() - (progress_post_in_flight_ ? 1 : 0) + retries_.size();
  }
  void MaybePostProgress(bool final_post);
  absl::Status Finish(const absl::Status& run_status);
  bool StopRequested() const {
    return options_.stop_signal != nullptr && options_.stop_signal->load() != 0;
  }
  size_t SampleOf(uint64_t work) const { return work / repeats_; }
  int RepeatOf(uint64_t work) const { return static_cast<int>(work % repeats_); }

  const Plan& plan_;
  const RunnerOptions& options_;
  RetryPolicy policy_;
  ResponseStats stats_;

  std::unique_ptr<Task> task_;
  EndpointType type_ = EndpointType::kChat;
  int repeats_ = 1;
  uint64_t total_ = 0;
  std::unique_ptr<HttpClient> client_;
  std::unique_ptr<ResponseCache> cache_;
  std::optional<ReasoningStripper> reasoning_;
  std::unique_ptr<ProgressFiles> progress_;
  std::unique_ptr<ScoreBook> book_;
  SamplesWriter samples_;
  std::string line_buffer_;  // reused for every samples.jsonl line
  BoundedLog request_log_;
  BoundedLog response_log_;
  std::string api_key_;

  std::unordered_map<uint64_t, InFlight> in_flight_;
  // Answers parsed in the first pass of HandleCompletions, recorded in the second.
  struct Answered {
    uint64_t work;
    ParsedResponse parsed;
    InFlight f;
    HttpClient::Completion* c;
  };
  std::vector<Answered> answered_;
  std::vector<uint8_t> attempts_;
  using Timed = std::pair<Clock::time_point, uint64_t>;
  std::priority_queue<Timed, std::vector<Timed>, std::greater<Timed>> retries_;

  uint64_t next_ = 0;
  int64_t done_ = 0;
  int64_t errored_ = 0;
  int64_t transport_failed_ = 0;
  int64_t cached_ = 0;
  int64_t sent_ = 0;
  int64_t retried_ = 0;
  std::map<std::string, int64_t> errored_by_kind_;
  std::string last_error_;
  absl::Status abort_;  // set when the run must stop early (auth, endpoint unreachable)
  int signal_ = 0;

  int64_t progress_posted_ = 0;
  bool progress_post_in_flight_ = false;
  Clock::time_point last_kick_{};
  int64_t progress_post_failures_ = 0;
  Clock::time_point start_ = Clock::now();
  std::chrono::system_clock::time_point wall_start_ = std::chrono::system_clock::now();
  Clock::time_point next_flush_ = Clock::now();
  Clock::time_point next_log_ = Clock::now() + std::chrono::seconds(10);
};

absl::Status EvaluationLoop::Setup() {
  DatasetOptions dopts;
  dopts.hf_token = Getenv("HF_TOKEN");
  EVALD_ASSIGN_OR_RETURN(task_, CreateTask(plan_, dopts));
  type_ = plan_.endpoint.type_given ? plan_.endpoint.type : task_->default_endpoint_type();
  repeats_ = plan_.params.n_samples;
  total_ = static_cast<uint64_t>(task_->size()) * repeats_;
  attempts_.assign(total_, 0);
  book_ = std::make_unique<ScoreBook>(task_->ScoreNames(), task_->size(), repeats_);
  spdlog::info("task {}: {}", plan_.task, task_->Describe());
  if (plan_.task_file.empty() && plan_.params.num_fewshot.value_or(0) > 0) {
    spdlog::warn("config.params.extra.num_fewshot is ignored by built-in task {}", plan_.task);
  }
  for (const auto& name : plan_.adapter.ignored) {
    spdlog::warn("interceptor '{}' is not implemented by evalrun and is skipped", name);
  }

  std::error_code ec;
  fs::create_directories(plan_.output_dir, ec);
  if (ec) {
    return ScoringError(
        absl::StrCat("config.output_dir ", plan_.output_dir, ": cannot create: ", ec.message()));
  }
  EVALD_RETURN_IF_ERROR(
      WriteFileAtomically((fs::path(plan_.output_dir) / "run_config.yml").string(),
                          EmitYaml(BuildRunConfig(plan_, options_.command))));
  EVALD_RETURN_IF_ERROR(samples_.Open((fs::path(plan_.output_dir) / "samples.jsonl").string()));
  if (plan_.adapter.logging.requests) {
    EVALD_RETURN_IF_ERROR(
        request_log_.Open((fs::path(plan_.output_dir) / "request_log.jsonl").string(),
                          plan_.adapter.logging.max_requests));
  }
  if (plan_.adapter.logging.responses) {
    EVALD_RETURN_IF_ERROR(
        response_log_.Open((fs::path(plan_.output_dir) / "response_log.jsonl").string(),
                           plan_.adapter.logging.max_responses));
  }
  if (plan_.adapter.caching.enabled) {
    EVALD_ASSIGN_OR_RETURN(
        cache_, ResponseCache::Open({.dir = plan_.adapter.caching.dir,
                                     .reuse = plan_.adapter.caching.reuse_cached,
                                     .save_requests = plan_.adapter.caching.save_requests}));
  }
  if (plan_.adapter.reasoning.enabled) reasoning_.emplace(plan_.adapter.reasoning);
  progress_ = std::make_unique<ProgressFiles>(plan_.output_dir, static_cast<int64_t>(total_));
  (void)progress_->Update(0, 0, /*force=*/true);

  api_key_ = Getenv(plan_.endpoint.api_key_env);
  HttpClient::Options hopts;
  hopts.url = plan_.endpoint.url;
  hopts.bearer_token = api_key_;
  hopts.max_connections = plan_.params.parallelism;
  hopts.timeout_s = plan_.params.request_timeout_s;
  hopts.wake_fd = options_.wake_fd;
  EVALD_ASSIGN_OR_RETURN(client_, HttpClient::Create(hopts));
  spdlog::info("endpoint {} ({}), model {}, API key {}; {} samples x {} repeats, parallelism {}",
               plan_.endpoint.url, EndpointTypeName(type_), plan_.endpoint.model_id,
               plan_.endpoint.api_key_env.empty()
                   ? std::string("none")
                   : absl::StrCat("from $", plan_.endpoint.api_key_env,
                                  api_key_.empty() ? " (not set)" : ""),
               task_->size(), repeats_, plan_.params.parallelism);
  return absl::OkStatus();
}

BuiltRequest EvaluationLoop::Build(uint64_t work) const {
  return BuildRequest(plan_, *task_, type_, SampleOf(work), RepeatOf(work));
}

std::string EvaluationLoop::CacheKey(const std::string& canonical, uint64_t work) const {
  // Repeats of one request must not share an answer; with a seed they already differ.
  if (repeats_ > 1 && !plan_.params.seed && RepeatOf(work) > 0) {
    return Sha256Hex(absl::StrCat(canonical, "\n#repeat=", RepeatOf(work)));
  }
  return Sha256Hex(canonical);
}

void EvaluationLoop::Start(uint64_t work, bool retry) {
  BuiltRequest req = Build(work);
  std::string key = CacheKey(req.body, work);
  if (cache_ && !retry) {
    if (auto hit = cache_->Get(key)) {
      auto parsed = ParseOpenAIResponse(*hit, type_);
      if (parsed.ok()) {
        ++cached_;
        OnAnswer(work, *std::move(parsed), 0.0, 200, /*cached=*/true, req.prompt_json);
        return;
      }
    }
  }
  if (request_log_.wants_more()) {
    request_log_.Write({{"sample", SampleOf(work)},
                        {"repeat", RepeatOf(work)},
                        {"url", plan_.endpoint.url},
                        {"body", nlohmann::json::parse(req.body, nullptr, false)}});
  }
  InFlight f;
  f.key = std::move(key);
  f.prompt_json = std::move(req.prompt_json);
  if (cache_ && plan_.adapter.caching.save_requests) f.request = req.body;
  in_flight_[work] = std::move(f);
  ++sent_;
  client_->Post(work, std::move(req.body));
}

void EvaluationLoop::HandleCompletion(HttpClient::Completion& c) {
  if (c.tag & kProgressTag) {
    progress_post_in_flight_ = false;
    if (c.curl_code != 0 || c.status >= 400) {
      // Progress reporting is best effort: say it once, then only at debug level.
      auto level = progress_post_failures_++ == 0 ? spdlog::level::warn : spdlog::level::debug;
      spdlog::log(level, "progress POST to {} failed: {}", plan_.adapter.progress.url,
                  c.curl_code != 0 ? c.curl_error : absl::StrCat("HTTP ", c.status));
    }
    return;
  }
  const uint64_t work = c.tag;
  auto it = in_flight_.find(work);
  if (it == in_flight_.end()) return;
  InFlight f = std::move(it->second);
  in_flight_.erase(it);
  attempts_[work] = static_cast<uint8_t>(std::min(255, attempts_[work] + 1));

  FailureKind kind = ClassifyHttp(c.curl_code, c.status);
  std::string error;
  if (kind == FailureKind::kNone) {
    auto parsed = ParseOpenAIResponse(c.body, type_);
    if (parsed.ok()) {
      // The slot is free: its next request goes out before this answer is recorded.
      RefillOne();
      answered_.push_back({work, *std::move(parsed), std::move(f), &c});
      return;
    }
    kind = FailureKind::kMalformed;
    error = std::string(parsed.status().message());
  } else if (c.curl_code != 0) {
    error = kind == FailureKind::kMalformed ? absl::StrCat("truncated response: ", c.curl_error)
                                            : c.curl_error;
  } else {
    error = absl::StrCat("HTTP ", c.status, ": ", ErrorMessageFromBody(c.body));
  }
  stats_.AddFailedAttempt(FailureKindName(kind), c.status, c.elapsed_s);
  last_error_ = error;
  if (plan_.adapter.logging.failed_requests && c.status >= 400) {
    spdlog::warn("sample {} attempt {}: {}", SampleOf(work), attempts_[work], error);
  }
  if (kind == FailureKind::kAuth) {
    const std::string& env = plan_.endpoint.api_key_env;
    std::string hint =
        env.empty()        ? "the plan sends no API key (target.api_endpoint.api_key is null)"
        : api_key_.empty() ? absl::StrCat("the API key variable $", env, " is not set")
                           : absl::StrCat("check the API key in $", env);
    abort_ = absl::UnauthenticatedError(
        absl::StrCat("the endpoint refused the credentials (", error, "); ", hint));
    return;
  }
  if (IsRetryable(kind) && policy_.ShouldRetry(attempts_[work])) {
    double delay = policy_.Delay(attempts_[work], c.retry_after_s);
    spdlog::debug("sample {}: {} (attempt {}), retrying in {:.2f} s", SampleOf(work), error,
                  attempts_[work], delay);
    retries_.push({Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                      std::chrono::duration<double>(delay)),
                   work});
    ++retried_;
    return;
  }
  OnFailure(work, kind, error, f.prompt_json);
}

void EvaluationLoop::HandleCompletions(std::vector<HttpClient::Completion>& batch) {
  answered_.clear();
  for (auto& c : batch) HandleCompletion(c);
  if (answered_.empty()) return;
  if (absl::Status s = client_->Kick(); !s.ok() && abort_.ok()) abort_ = s;
  last_kick_ = Clock::now();
  for (Answered& a : answered_) Record(a.work, std::move(a.parsed), std::move(a.f), *a.c);
  answered_.clear();
}

void EvaluationLoop::Record(uint64_t work, ParsedResponse parsed, InFlight f,
                            HttpClient::Completion& c) {
  if (cache_) cache_->Put(f.key, f.request, c.body);
  if (response_log_.wants_more()) {
    nlohmann::json logged = nlohmann::json::parse(c.body, nullptr, false);
    response_log_.Write({{"sample", SampleOf(work)},
                         {"repeat", RepeatOf(work)},
                         {"status", c.status},
                         {"latency_ms", c.elapsed_s * 1000},
                         {"body", logged}});
  }
  OnAnswer(work, std::move(parsed), c.elapsed_s, c.status, /*cached=*/false, f.prompt_json);
}

void EvaluationLoop::OnAnswer(uint64_t work, ParsedResponse r, double latency_s, long status,
                              bool cached, const std::string& prompt_json) {
  // The reasoning interceptor strips the model's thinking from the content; samples.jsonl keeps
  // the text as the model sent it too, so any score can be traced back to it.
  std::optional<std::string> raw_content;
  if (reasoning_) {
    raw_content = r.content;
    reasoning_->Apply(r);
    if (*raw_content == r.content) raw_content.reset();
  }
  if (plan_.adapter.stats.enabled) stats_.AddResponse(r, latency_s, status, cached);
  const size_t sample = SampleOf(work);
  // lm-eval's post-processing: think_end_token (unset by default) keeps the text after it, and
  // the task's stop strings cut it.
  std::optional<std::string> scored_text;
  if (task_->think_end_token() || !task_->stop_strings().empty()) {
    scored_text = PostprocessResponse(r.content, task_->think_end_token(), task_->stop_strings());
  }
  Evaluation e = task_->Score(sample, scored_text ? *scored_text : r.content);
  book_->Add(sample, e);
  // One samples.jsonl line, written as text (see json_text.h).
  std::string& line = line_buffer_;
  line.clear();
  line += "{\"sample\":";
  AppendJsonInt(&line, static_cast<int64_t>(sample));
  line += ",\"repeat\":";
  AppendJsonInt(&line, RepeatOf(work));
  line += ",\"prompt\":";
  line += prompt_json;
  line += ",\"response\":";
  AppendJsonString(&line, r.content);
  if (raw_content) {
    line += ",\"raw_response\":";
    AppendJsonString(&line, *raw_content);
  }
  if (scored_text) {
    line += ",\"scored_response\":";
    AppendJsonString(&line, *scored_text);
  }
  line += ",\"extracted\":";
  if (e.extracted) {
    AppendJsonString(&line, *e.extracted);
  } else {
    line += "null";
  }
  line += ",\"gold\":";
  if (e.gold.is_string()) {
    AppendJsonString(&line, e.gold.get_ref<const std::string&>());
  } else {
    line += DumpJson(e.gold);
  }
  line += e.correct ? ",\"correct\":true" : ",\"correct\":false";
  if (!e.filtered.is_null()) {
    line += ",\"filtered\":";
    line += DumpJson(e.filtered);
  }
  line += ",\"scores\":";
  line += DumpJson(ScoresJson(e));
  line += cached ? ",\"cached\":true" : ",\"cached\":false";
  line += ",\"finish_reason\":";
  AppendJsonString(&line, r.finish_reason);
  if (r.reasoning) {
    line += ",\"reasoning_chars\":";
    AppendJsonInt(&line, static_cast<int64_t>(r.reasoning->size()));
  }
  if (!e.details.is_null()) {
    line += ",\"details\":";
    line += DumpJson(e.details);
  }
  line += '}';
  samples_.WriteLine(line);
  ++done_;
}

void EvaluationLoop::OnFailure(uint64_t work, FailureKind kind, const std::string& error,
                               const std::string& prompt_json) {
  ++errored_;
  ++errored_by_kind_[FailureKindName(kind)];
  const size_t sample = SampleOf(work);
  Evaluation e = task_->ScoreFailure(sample);
  book_->Add(sample, e);
  samples_.Write({{"sample", sample},
                  {"repeat", RepeatOf(work)},
                  {"prompt", nlohmann::json::parse(prompt_json, nullptr, false)},
                  {"response", nullptr},
                  {"extracted", nullptr},
                  {"scores", ScoresJson(e)},
                  {"gold", std::move(e.gold)},
                  {"correct", false},
                  {"cached", false},
                  {"error", error},
                  {"error_kind", FailureKindName(kind)},
                  {"attempts", attempts_[work]}});
  ++done_;
  // The first failures in full, then a sample of them: 10,000 identical lines help nobody.
  if (errored_ <= 20 || errored_ % 1000 == 0) {
    spdlog::warn("sample {} repeat {} failed after {} attempt(s): {}{}", sample, RepeatOf(work),
                 attempts_[work], error,
                 errored_ == 20 ? " (further failures: every 1000th is logged)" : "");
  }
  if (IsTransport(kind)) {
    ++transport_failed_;
    const double allowed = plan_.params.max_failed_fraction * static_cast<double>(total_);
    if (static_cast<double>(transport_failed_) > allowed) {
      abort_ = absl::UnavailableError(absl::StrCat(
          "endpoint ", plan_.endpoint.url, " unreachable: ", transport_failed_,
          " sample(s) failed after ", attempts_[work],
          " attempt(s) (allowed: ", static_cast<int64_t>(allowed), "); last error: ", error));
    }
  }
}

void EvaluationLoop::RefillOne() {
  if (next_ >= total_ || Busy() >= static_cast<size_t>(plan_.params.parallelism) || !abort_.ok() ||
      StopRequested()) {
    return;
  }
  Start(next_++, /*retry=*/false);
  // Handing each request to curl at once costs a curl_multi_socket_action() call per request;
  // at most one per millisecond keeps the wait of a freed slot short for slow endpoints without
  // slowing down fast ones (where Poll() sends the batch anyway).
  const auto now = Clock::now();
  if (now - last_kick_ >= std::chrono::milliseconds(1)) {
    last_kick_ = now;
    if (absl::Status s = client_->Kick(); !s.ok()) abort_ = s;
  }
}

void EvaluationLoop::MaybePostProgress(bool final_post) {
  const auto& pc = plan_.adapter.progress;
  if (!pc.enabled || progress_post_in_flight_) return;
  if (!final_post && done_ - progress_posted_ < std::max<int64_t>(1, pc.interval)) return;
  if (final_post && done_ == progress_posted_ && progress_posted_ > 0) return;
  progress_posted_ = done_;
  progress_post_in_flight_ = true;
  client_->Post(kProgressTag | static_cast<uint64_t>(done_),
                DumpJson({{"samples_processed", done_}}), pc.url, /*with_auth=*/false);
}

void EvaluationLoop::Periodic(bool force) {
  const auto now = Clock::now();
  if (force || now >= next_flush_ || (cache_ && cache_->pending() >= 512)) {
    if (cache_) {
      absl::Status s = cache_->Flush();
      if (!s.ok()) spdlog::warn("{}", std::string(s.message()));
    }
    absl::Status s = samples_.Flush();
    if (!s.ok() && abort_.ok()) abort_ = ScoringError(s.message());
    next_flush_ = now + std::chrono::milliseconds(50);
  }
  (void)progress_->Update(done_, errored_, force);
  MaybePostProgress(/*final_post=*/false);
  if (now >= next_log_) {
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    spdlog::info("progress: {}/{} done ({} errored, {} cached, {} retries), {:.1f} samples/s",
                 done_, total_, errored_, cached_, retried_, elapsed > 0 ? done_ / elapsed : 0.0);
    next_log_ = now + std::chrono::seconds(10);
  }
}

absl::Status EvaluationLoop::Finish(const absl::Status& run_status) {
  const bool partial = done_ < static_cast<int64_t>(total_);
  // Requests still in flight mean an early stop: drop them (and a progress POST with them).
  if (!in_flight_.empty()) {
    client_->CancelAll();
    progress_post_in_flight_ = false;
  }
  Periodic(/*force=*/true);
  absl::Status write_status = samples_.Close();

  const std::string out = plan_.output_dir;
  nlohmann::json results = BuildResults(plan_.task, *book_, plan_, options_.command);
  if (partial) {
    // Scores of a run that stopped early must not pass for final ones; readers of the
    // reference's format look only under `results`, so extra top-level keys are safe.
    results["partial"] = true;
    results["samples_scored"] = done_;
    results["samples_total"] = total_;
  }
  // How the scores were computed, next to `results` (readers of the reference's format look
  // only there): the reference reproduced, filters, and what was stripped before scoring.
  nlohmann::json scoring = task_->ScoringJson();
  if (!scoring.is_object()) scoring = nlohmann::json::object();
  scoring["think_end_token"] = task_->think_end_token() ? nlohmann::json(*task_->think_end_token())
                                                        : nlohmann::json(nullptr);
  scoring["reasoning_interceptor"] = plan_.adapter.reasoning.enabled;
  scoring["until"] = task_->stop_strings();
  scoring["scores"] = task_->ScoreNames();
  results["scoring"][plan_.task] = std::move(scoring);
  absl::Status s = WriteFileAtomically((fs::path(out) / "results.yml").string(), EmitYaml(results));
  if (write_status.ok()) write_status = s;

  const auto wall_end = std::chrono::system_clock::now();
  const double runtime = std::chrono::duration<double>(Clock::now() - start_).count();
  nlohmann::json evaluation = {
      {"runtime_seconds", runtime},
      {"start_time", UtcIsoTime(wall_start_)},
      {"end_time", UtcIsoTime(wall_end)},
      {"token_usage", stats_.TokenUsageJson()},
      {"peak_memory_bytes", PeakRssBytes()},
      {"peak_tree_memory_bytes", PeakRssBytes()},
      {"partial", partial},
  };
  if (!run_status.ok()) evaluation["stopped_by"] = std::string(run_status.message());
  nlohmann::json runner = {
      {"task", plan_.task},
      {"samples", task_->size()},
      {"repeats", repeats_},
      {"total", total_},
      {"done", done_},
      {"errored", errored_},
      {"errored_by_kind", errored_by_kind_},
      {"cached", cached_},
      {"requests_sent", sent_},
      {"retries", retried_},
      {"connections_opened", client_->connections_opened()},
      {"samples_per_second", runtime > 0 ? done_ / runtime : 0.0},
  };
  nlohmann::json updates = {{"evaluation", evaluation}, {"runner", runner}};
  if (plan_.adapter.stats.enabled) updates["response_stats"] = stats_.ToJson();
  if (reasoning_ && plan_.adapter.reasoning.tracking) {
    updates["reasoning_stats"] = reasoning_->StatsJson();
  }
  s = WriteMetricsJson((fs::path(out) / "eval_factory_metrics.json").string(), updates);
  if (write_status.ok()) write_status = s;

  // The final count reaches the progress URL (one POST at a time, so first wait out the one in
  // flight); bounded, and skipped after a stop signal, where exiting fast matters more.
  if (plan_.adapter.progress.enabled && signal_ == 0) {
    const auto deadline = Clock::now() + std::chrono::seconds(2);
    std::vector<HttpClient::Completion> done;
    while (Clock::now() < deadline && !StopRequested()) {
      if (!progress_post_in_flight_) {
        if (progress_posted_ == done_) break;
        MaybePostProgress(/*final_post=*/true);
      }
      done.clear();
      if (!client_->Poll(50, &done).ok()) break;
      HandleCompletions(done);
    }
  }

  if (options_.out != nullptr) {
    std::ostream& o = *options_.out;
    o << "task " << plan_.task << (partial ? " (partial)" : "") << "\n";
    const nlohmann::json metrics = book_->MetricsJson();
    for (auto m = metrics.begin(); m != metrics.end(); ++m) {
      for (auto sc = (*m)["scores"].begin(); sc != (*m)["scores"].end(); ++sc) {
        o << "  " << std::left << std::setw(10) << m.key() << std::setw(26) << sc.key()
          << absl::StrFormat("%.4f", (*sc)["value"].get<double>())
          << "  (n=" << (*sc)["stats"]["count"].get<int64_t>() << ")\n";
      }
    }
    o << absl::StrFormat(
        "  samples %d/%d, errored %d, cached %d, requests %d, retries %d, %.2f s\n", done_, total_,
        errored_, cached_, sent_, retried_, runtime);
    o.flush();
  }
  if (!write_status.ok()) return ScoringError(write_status.message());
  return absl::OkStatus();
}

RunOutcome EvaluationLoop::Execute() {
  RunOutcome outcome;
  absl::Status setup = Setup();
  if (!setup.ok()) {
    outcome.status = setup;
    return outcome;
  }
  std::vector<HttpClient::Completion> completions;
  const size_t parallelism = static_cast<size_t>(plan_.params.parallelism);
  while (true) {
    if (StopRequested()) {
      signal_ = options_.stop_signal->load();
      break;
    }
    if (!abort_.ok()) break;
    auto now = Clock::now();
    int inline_answers = 0;
    while (true) {
      if (!retries_.empty() && retries_.top().first <= now) {
        uint64_t w = retries_.top().second;
        retries_.pop();
        Start(w, /*retry=*/true);
        continue;
      }
      if (next_ < total_ && Busy() < parallelism) {
        Start(next_++, /*retry=*/false);
        // Cached answers are handled inline; look at signals and the clock now and then.
        if (++inline_answers % 256 == 0) {
          if (StopRequested()) break;
          Periodic(false);
        }
        continue;
      }
      break;
    }
    if (done_ == static_cast<int64_t>(total_) || StopRequested() || !abort_.ok()) {
      if (done_ == static_cast<int64_t>(total_)) break;
      continue;
    }
    int timeout_ms = 200;
    if (!retries_.empty()) {
      auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(retries_.top().first - now);
      timeout_ms = static_cast<int>(std::clamp<int64_t>(wait.count() + 1, 0, 200));
    }
    completions.clear();
    absl::Status ps = client_->Poll(timeout_ms, &completions);
    last_kick_ = Clock::now();  // Poll() handed everything posted so far to the network
    if (!ps.ok()) {
      abort_ = ps;
      break;
    }
    HandleCompletions(completions);
    Periodic(false);
  }

  absl::Status run_status = abort_;
  if (signal_ != 0) {
    run_status = absl::CancelledError(absl::StrCat("stopped by signal ", signal_));
  } else if (run_status.ok() && total_ > 0 && errored_ == static_cast<int64_t>(total_)) {
    run_status =
        absl::UnavailableError(absl::StrCat("every request failed; last error: ", last_error_));
  }
  absl::Status finish = Finish(run_status);
  outcome.status = run_status.ok() ? finish : run_status;
  outcome.signal = signal_;
  outcome.total = static_cast<int64_t>(total_);
  outcome.done = done_;
  outcome.errored = errored_;
  outcome.cached = cached_;
  outcome.sent = sent_;
  return outcome;
}

}  // namespace

absl::Status ScoringError(absl::string_view message) { return absl::DataLossError(message); }

int ExitCodeForStatus(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return kExitOk;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kAlreadyExists:
      return kExitBadInput;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kResourceExhausted:
      return kExitUnreachable;
    case absl::StatusCode::kDataLoss:
      return kExitScoring;
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kPermissionDenied:
      return kExitAuth;
    default:
      return kExitInternal;
  }
}

int ExitCode(const RunOutcome& outcome) {
  if (outcome.signal != 0) return 128 + outcome.signal;
  return ExitCodeForStatus(outcome.status);
}

RunOutcome RunEvaluation(const Plan& plan, const RunnerOptions& options) {
  try {
    EvaluationLoop run(plan, options);
    return run.Execute();
  } catch (const std::exception& e) {
    RunOutcome out;
    out.status = absl::InternalError(absl::StrCat("internal error: ", e.what()));
    return out;
  }
}

absl::Status DryRun(const Plan& plan, std::ostream& out) {
  DatasetOptions dopts;
  dopts.hf_token = Getenv("HF_TOKEN");
  EVALD_ASSIGN_OR_RETURN(std::unique_ptr<Task> task, CreateTask(plan, dopts));
  EndpointType type = plan.endpoint.type_given ? plan.endpoint.type : task->default_endpoint_type();
  out << "plan:       " << (plan.path.empty() ? "(text)" : plan.path) << "\n"
      << "task:       " << plan.task << ": " << task->Describe() << "\n"
      << "samples:    " << task->size() << " x " << plan.params.n_samples << " repeat(s)\n"
      << "scores:     " << absl::StrJoin(task->ScoreNames(), ", ") << " (think_end_token "
      << (task->think_end_token() ? "'" + *task->think_end_token() + "'" : std::string("unset"))
      << ")\n"
      << "endpoint:   " << plan.endpoint.url << " (" << EndpointTypeName(type) << "), model "
      << plan.endpoint.model_id << "\n"
      << "api key:    "
      << (plan.endpoint.api_key_env.empty()
              ? std::string("none")
              : absl::StrCat("$", plan.endpoint.api_key_env,
                             Getenv(plan.endpoint.api_key_env).empty() ? " (not set)" : " (set)"))
      << "\n"
      << "output dir: " << plan.output_dir << "\n"
      << "cache:      "
      << (plan.adapter.caching.enabled ? plan.adapter.caching.dir : std::string("off")) << "\n";
  if (task->size() == 0) {
    out << "no samples (limit_samples is 0)\n";
    return absl::OkStatus();
  }
  // The same body the run would send for sample 0 (no headers, so no key).
  nlohmann::json body = nlohmann::json::parse(BuildRequest(plan, *task, type, 0, 0).body);
  out << "first request body:\n" << DumpJson(body, 2) << "\n";
  return absl::OkStatus();
}

}  // namespace evald::runner
