#include "runner/interceptors.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace evald::runner {
namespace {

int64_t CountWords(absl::string_view s) {
  int64_t n = 0;
  bool in_word = false;
  for (char c : s) {
    bool space = absl::ascii_isspace(c);
    if (!space && !in_word) ++n;
    in_word = !space;
  }
  return n;
}

void DeepMerge(nlohmann::json& target, const nlohmann::json& patch) {
  for (auto it = patch.begin(); it != patch.end(); ++it) {
    if (it->is_object() && target.contains(it.key()) && target[it.key()].is_object()) {
      DeepMerge(target[it.key()], *it);
    } else {
      target[it.key()] = *it;
    }
  }
}

}  // namespace

void ApplySystemMessage(nlohmann::json& body, const std::string& message) {
  auto it = body.find("messages");
  if (it == body.end() || !it->is_array()) return;
  nlohmann::json messages = nlohmann::json::array();
  messages.push_back({{"role", "system"}, {"content", message}});
  for (auto& m : *it) {
    if (m.is_object() && m.value("role", "") == "system") continue;
    messages.push_back(std::move(m));
  }
  *it = std::move(messages);
}

void ApplyPayloadModifier(nlohmann::json& body, const AdapterConfig::PayloadModifier& modifier) {
  if (!modifier.enabled || !body.is_object()) return;
  for (const auto& key : modifier.params_to_remove) body.erase(key);
  for (const auto& [from, to] : modifier.params_to_rename) {
    auto it = body.find(from);
    if (it == body.end()) continue;
    nlohmann::json v = std::move(*it);
    body.erase(from);
    body[to] = std::move(v);
  }
  if (modifier.params_to_add.is_object()) DeepMerge(body, modifier.params_to_add);
}

namespace {

// Keys the response parser cares about; everything else is kOther.
enum class Key : uint8_t {
  kNone,
  kOther,
  kChoices,
  kUsage,
  kError,
  kMessage,
  kText,
  kFinishReason,
  kContent,
  kReasoningContent,
  kPromptTokens,
  kCompletionTokens,
  kTotalTokens
};

Key KeyOf(const std::string& k) {
  switch (k.size()) {
    case 4:
      return k == "text" ? Key::kText : Key::kOther;
    case 5:
      if (k == "usage") return Key::kUsage;
      return k == "error" ? Key::kError : Key::kOther;
    case 7:
      if (k == "choices") return Key::kChoices;
      if (k == "message") return Key::kMessage;
      return k == "content" ? Key::kContent : Key::kOther;
    case 12:
      return k == "total_tokens" ? Key::kTotalTokens : Key::kOther;
    case 13:
      if (k == "finish_reason") return Key::kFinishReason;
      return k == "prompt_tokens" ? Key::kPromptTokens : Key::kOther;
    case 17:
      if (k == "reasoning_content") return Key::kReasoningContent;
      return k == "completion_tokens" ? Key::kCompletionTokens : Key::kOther;
    default:
      return Key::kOther;
  }
}

// SAX handler that picks the few fields evalrun needs out of an OpenAI response without
// building a DOM (a tree of allocations per answer).
class ResponseSax {
 public:
  using json = nlohmann::json;
  explicit ResponseSax(ParsedResponse* out) : out_(out) {}

  bool null() {
    Value();
    return true;
  }
  bool boolean(bool) {
    Value();
    if (At() == Where::kMessageField && Top().key == Key::kContent) bad_content_ = true;
    return true;
  }
  bool number_integer(json::number_integer_t v) { return Number(static_cast<int64_t>(v)); }
  bool number_unsigned(json::number_unsigned_t v) { return Number(static_cast<int64_t>(v)); }
  bool number_float(json::number_float_t v, const json::string_t&) {
    return Number(static_cast<int64_t>(v));
  }
  bool string(json::string_t& v) {
    Value();
    const Where w = At();
    if (w == Where::kMessageField) {
      if (Top().key == Key::kContent) out_->content = std::move(v);
      if (Top().key == Key::kReasoningContent) out_->reasoning = std::move(v);
    } else if (w == Where::kChoiceField) {
      if (Top().key == Key::kText) {
        out_->content = std::move(v);
        text_ = true;
      }
      if (Top().key == Key::kFinishReason) out_->finish_reason = std::move(v);
    }
    return true;
  }
  bool binary(json::binary_t&) { return true; }
  bool start_object(std::size_t) {
    if (stack_.empty()) root_object_ = true;
    Value();
    const Where w = At();
    if (w == Where::kChoice0) choice0_ = true;
    if (w == Where::kChoiceField && Top().key == Key::kMessage) message_ = true;
    if (w == Where::kTop && Top().key == Key::kUsage) out_->has_usage = true;
    if (w == Where::kMessageField && Top().key == Key::kContent) bad_content_ = true;
    stack_.push_back({false, -1, Key::kNone});
    return true;
  }
  bool key(json::string_t& k) {
    Top().key = KeyOf(k);
    return true;
  }
  bool end_object() {
    stack_.pop_back();
    return true;
  }
  bool start_array(std::size_t) {
    Value();
    if (At() == Where::kTop && Top().key == Key::kChoices) choices_ = true;
    if (At() == Where::kMessageField && Top().key == Key::kContent) bad_content_ = true;
    stack_.push_back({true, -1, Key::kNone});
    return true;
  }
  bool end_array() {
    stack_.pop_back();
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) {
    return false;
  }

  bool root_object() const { return root_object_; }
  bool has_error() const { return error_; }
  bool choices() const { return choices_; }
  bool choice0() const { return choice0_; }
  bool message() const { return message_; }
  bool text() const { return text_; }
  bool bad_content() const { return bad_content_; }

 private:
  struct Frame {
    bool array;
    int64_t index;  // arrays: index of the current element
    Key key;        // objects: the current key
  };
  enum class Where { kOther, kTop, kChoice0, kChoiceField, kMessageField, kUsageField };

  Frame& Top() { return stack_.back(); }

  // Where the value now starting sits.
  Where At() const {
    const size_t n = stack_.size();
    if (n == 1 && !stack_[0].array) return Where::kTop;
    if (n >= 2 && !stack_[0].array && stack_[0].key == Key::kChoices && stack_[1].array &&
        stack_[1].index == 0) {
      if (n == 2) return Where::kChoice0;
      if (n == 3 && !stack_[2].array) return Where::kChoiceField;
      if (n == 4 && stack_[2].key == Key::kMessage && !stack_[3].array) return Where::kMessageField;
    }
    if (n == 2 && !stack_[0].array && stack_[0].key == Key::kUsage && !stack_[1].array) {
      return Where::kUsageField;
    }
    return Where::kOther;
  }

  // Bookkeeping before any value: array indexes, and whether the top-level "error" is set.
  void Value() {
    if (stack_.empty()) return;
    if (Top().array) ++Top().index;
    if (stack_.size() == 1 && !stack_[0].array && Top().key == Key::kError) error_ = true;
  }

  bool Number(int64_t v) {
    Value();
    const Where w = At();
    if (w == Where::kUsageField) {
      if (Top().key == Key::kPromptTokens) out_->prompt_tokens = v;
      if (Top().key == Key::kCompletionTokens) out_->completion_tokens = v;
      if (Top().key == Key::kTotalTokens) out_->total_tokens = v;
    }
    if (w == Where::kMessageField && Top().key == Key::kContent) bad_content_ = true;
    return true;
  }

  ParsedResponse* out_;
  std::vector<Frame> stack_;
  bool root_object_ = false;
  bool error_ = false;
  bool choices_ = false;
  bool choice0_ = false;
  bool message_ = false;
  bool text_ = false;
  bool bad_content_ = false;
};

}  // namespace

absl::StatusOr<ParsedResponse> ParseOpenAIResponse(absl::string_view body, EndpointType type) {
  ParsedResponse r;
  ResponseSax sax(&r);
  const bool ok = nlohmann::json::sax_parse(body.begin(), body.end(), &sax);
  if (!ok) {
    return absl::InvalidArgumentError(absl::StrCat("response is not valid JSON (", body.size(),
                                                   " bytes: '", body.substr(0, 80),
                                                   body.size() > 80 ? "...'" : "'", ")"));
  }
  if (!sax.root_object()) return absl::InvalidArgumentError("response is not a JSON object");
  if (!sax.choices() || !sax.choice0()) {
    if (sax.has_error()) {
      return absl::InvalidArgumentError(
          absl::StrCat("response carries an error: ", ErrorMessageFromBody(body)));
    }
    return absl::InvalidArgumentError("response has no choices");
  }
  if (type == EndpointType::kChat) {
    if (!sax.message()) return absl::InvalidArgumentError("response choice has no message");
    if (sax.bad_content()) {
      return absl::InvalidArgumentError("response message content is not a string");
    }
  } else if (!sax.text()) {
    return absl::InvalidArgumentError("response choice has no text");
  }
  if (r.has_usage && r.total_tokens == 0) r.total_tokens = r.prompt_tokens + r.completion_tokens;
  return r;
}

std::string ErrorMessageFromBody(absl::string_view body) {
  nlohmann::json j = nlohmann::json::parse(body.begin(), body.end(), nullptr, false);
  if (!j.is_discarded() && j.is_object()) {
    auto err = j.find("error");
    if (err != j.end()) {
      if (err->is_object() && err->contains("message") && (*err)["message"].is_string()) {
        return (*err)["message"].get<std::string>();
      }
      if (err->is_string()) return err->get<std::string>();
    }
    auto detail = j.find("detail");
    if (detail != j.end() && detail->is_string()) return detail->get<std::string>();
    auto msg = j.find("message");
    if (msg != j.end() && msg->is_string()) return msg->get<std::string>();
  }
  std::string text(absl::StripAsciiWhitespace(body.substr(0, 200)));
  if (body.size() > 200) text += "...";
  return text.empty() ? "(empty body)" : text;
}

void ReasoningStripper::Apply(ParsedResponse& r) {
  ++responses_;
  int64_t reasoning_words = 0;
  if (r.reasoning) {
    ++with_reasoning_;
    ++finished_;
    reasoning_words = CountWords(*r.reasoning);
  } else {
    size_t end = r.content.find(config_.end_token);
    if (end != std::string::npos) {
      size_t start = r.content.find(config_.start_token);
      size_t from =
          (start != std::string::npos && start < end) ? start + config_.start_token.size() : 0;
      r.reasoning = r.content.substr(from, end - from);
      r.content = std::string(absl::StripAsciiWhitespace(
          absl::string_view(r.content).substr(end + config_.end_token.size())));
      ++with_reasoning_;
      ++finished_;
      reasoning_words = CountWords(*r.reasoning);
    } else if (!config_.start_token.empty() &&
               r.content.find(config_.start_token) != std::string::npos) {
      ++with_reasoning_;
      ++unfinished_;
      reasoning_words = CountWords(r.content);
      if (!config_.include_if_not_finished) r.content.clear();
    }
  }
  reasoning_words_ += reasoning_words;
  max_reasoning_words_ = std::max(max_reasoning_words_, reasoning_words);
  content_words_ += CountWords(r.content);
}

nlohmann::json ReasoningStripper::StatsJson() const {
  return {
      {"responses", responses_},
      {"responses_with_reasoning", with_reasoning_},
      {"reasoning_finished_count", finished_},
      {"reasoning_unfinished_count", unfinished_},
      {"avg_reasoning_words",
       with_reasoning_ ? static_cast<double>(reasoning_words_) / with_reasoning_ : 0.0},
      {"max_reasoning_words", max_reasoning_words_},
      {"avg_updated_content_words",
       responses_ ? static_cast<double>(content_words_) / responses_ : 0.0},
  };
}

void ResponseStats::AddResponse(const ParsedResponse& r, double latency_s, long status,
                                bool cached) {
  ++responses_;
  if (cached) {
    ++cached_;
  } else {
    latencies_ms_.push_back(static_cast<float>(latency_s * 1000));
    ++status_codes_[std::to_string(status)];
  }
  if (config_.collect_finish_reasons) {
    ++finish_reasons_[r.finish_reason.empty() ? "unknown" : r.finish_reason];
  }
  if (r.has_usage) {
    ++with_usage_;
    prompt_tokens_ += r.prompt_tokens;
    completion_tokens_ += r.completion_tokens;
    total_tokens_ += r.total_tokens;
    max_completion_tokens_ = std::max(max_completion_tokens_, r.completion_tokens);
  }
}

void ResponseStats::AddFailedAttempt(const std::string& kind, long status, double latency_s) {
  (void)latency_s;
  ++failed_attempts_[kind];
  if (status > 0) ++status_codes_[std::to_string(status)];
}

double Percentile(std::vector<float> values, double p) {
  if (values.empty()) return 0.0;
  size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * values.size()));
  rank = std::clamp<size_t>(rank, 1, values.size());
  std::nth_element(values.begin(), values.begin() + (rank - 1), values.end());
  return values[rank - 1];
}

nlohmann::json ResponseStats::ToJson() const {
  nlohmann::json j;
  j["count"] = responses_;
  j["successful_count"] = responses_;
  j["cached_count"] = cached_;
  j["status_codes"] = status_codes_;
  j["failed_attempts"] = failed_attempts_;
  double sum = 0, max = 0;
  for (float v : latencies_ms_) {
    sum += v;
    max = std::max<double>(max, v);
  }
  j["latency_ms"] = {
      {"count", latencies_ms_.size()},
      {"mean", latencies_ms_.empty() ? 0.0 : sum / latencies_ms_.size()},
      {"p50", Percentile(latencies_ms_, 50)},
      {"p90", Percentile(latencies_ms_, 90)},
      {"p95", Percentile(latencies_ms_, 95)},
      {"p99", Percentile(latencies_ms_, 99)},
      {"max", max},
  };
  if (config_.collect_finish_reasons) j["finish_reason"] = finish_reasons_;
  if (config_.collect_token_stats) {
    j["token_usage"] = {
        {"responses_with_usage", with_usage_},
        {"prompt_tokens", prompt_tokens_},
        {"completion_tokens", completion_tokens_},
        {"total_tokens", total_tokens_},
        {"avg_prompt_tokens",
         with_usage_ ? static_cast<double>(prompt_tokens_) / with_usage_ : 0.0},
        {"avg_completion_tokens",
         with_usage_ ? static_cast<double>(completion_tokens_) / with_usage_ : 0.0},
        {"max_completion_tokens", max_completion_tokens_},
    };
  }
  return j;
}

nlohmann::json ResponseStats::TokenUsageJson() const {
  return {{"total_tokens", total_tokens_},
          {"prompt_tokens", prompt_tokens_},
          {"completion_tokens", completion_tokens_},
          {"total_cached_requests", cached_}};
}

BoundedLog::~BoundedLog() { Close(); }

absl::Status BoundedLog::Open(const std::string& path, int64_t max_lines) {
  Close();
  file_ = std::fopen(path.c_str(), "w");
  if (file_ == nullptr) return absl::DataLossError(absl::StrCat(path, ": cannot open for writing"));
  max_lines_ = max_lines;
  written_ = 0;
  return absl::OkStatus();
}

void BoundedLog::Write(const nlohmann::json& line) {
  if (!wants_more()) return;
  std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  text += '\n';
  std::fwrite(text.data(), 1, text.size(), file_);
  ++written_;
}

void BoundedLog::Close() {
  if (file_ != nullptr) std::fclose(file_);
  file_ = nullptr;
}

}  // namespace evald::runner
