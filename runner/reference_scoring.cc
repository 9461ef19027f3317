#include "runner/reference_scoring.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "core/status_macros.h"

namespace evald::runner {
namespace {

ReferenceScore Pipeline(const std::string& name, const char* pattern, int group_select,
                        const ExactMatchOptions& em) {
  return {
      {name,
       {FilterStep::Regex(pattern, group_select, "[invalid]").value(), FilterStep::TakeFirst()}},
      em};
}

// Generation-side prompts (evalrun is zero-shot): each asks for the form the variant's strict
// filter reads.
constexpr char kPromptHashes[] =
    "Solve the following math problem step by step. The last line of your response should be "
    "of the form \"#### $ANSWER\" (without quotes) where $ANSWER is the final number.\n\n"
    "{{question}}";
constexpr char kPromptCot[] =
    "Solve the following math problem step by step. End your response with \"The answer is "
    "$ANSWER.\" (without quotes) where $ANSWER is the final number.\n\n{{question}}";
constexpr char kPromptLlama[] =
    "Given the following problem, reason and give a final answer to the problem.\nProblem: "
    "{{question}}\nYour response should end with \"The final answer is [answer]\" where [answer] "
    "is the response to the problem.";

}  // namespace

absl::StatusOr<Gsm8kReference> Gsm8kReferenceFor(const std::string& variant) {
  const ExactMatchOptions em = Gsm8kExactMatch();
  Gsm8kReference r;
  if (variant == "gsm8k") {
    r.task = "gsm8k";
    r.file = "lm_eval/tasks/gsm8k/gsm8k.yaml";
    r.scores = {Pipeline("strict-match", R"(#### (\-?[0-9\.\,]+))", 0, em),
                {FlexibleExtract("flexible-extract"), em}};
    r.until = {"Question:", "</s>", "<|im_end|>"};
    r.prompt = kPromptHashes;
  } else if (variant == "gsm8k_cot_zeroshot" || variant == "gsm8k_cot" || variant == "cot") {
    r.task = variant == "gsm8k_cot" ? "gsm8k_cot" : "gsm8k_cot_zeroshot";
    r.file = absl::StrCat("lm_eval/tasks/gsm8k/",
                          r.task == "gsm8k_cot" ? "gsm8k-cot.yaml" : "gsm8k-cot-zeroshot.yaml");
    // The trailing '.' is unescaped in the reference: any character but a newline.
    r.scores = {Pipeline("strict-match", R"(The answer is (\-?[0-9\.\,]+).)", 0, em),
                {FlexibleExtract("flexible-extract"), em}};
    r.gold_is_last_part = true;
    r.until = {"Q:", "</s>", "<|im_end|>"};
    r.prompt = kPromptCot;
  } else if (variant == "gsm8k_cot_llama" || variant == "llama") {
    r.task = "gsm8k_cot_llama";
    r.file = "lm_eval/tasks/gsm8k/gsm8k-cot-llama.yaml";
    r.scores = {
        Pipeline("strict-match", R"(The final answer is ((-?[$0-9.,]{2,})|(-?[0-9]+)))", -1, em),
        {FlexibleExtract("flexible-extract"), em}};
    r.gold_is_last_part = true;
    r.until = {"<|eot_id|>", "<|start_header_id|>user<|end_header_id|>", "Q:", "</s>",
               "<|im_end|>"};
    r.prompt = kPromptLlama;
  } else if (variant == "gsm8k_llama") {
    r.task = "gsm8k_llama";
    r.file = "lm_eval/tasks/llama3/instruct/gsm8k/gsm8k.yaml";
    r.scores = {Pipeline("strict_match", R"(final answer is (\-?[0-9\.\,]+))", -1, em),
                {FlexibleExtract("flexible_extract"), em}};
    r.gold_is_last_part = true;
    r.prompt = kPromptLlama;
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "config.params.extra.variant: unknown gsm8k variant '", variant,
        "'; expected gsm8k (default), gsm8k_cot_zeroshot (or cot), gsm8k_cot, gsm8k_cot_llama "
        "(or llama) or gsm8k_llama"));
  }
  return r;
}

std::string Gsm8kReferenceGold(const Gsm8kReference& ref, absl::string_view answer) {
  if (!ref.gold_is_last_part) return std::string(answer);
  size_t pos = answer.rfind("####");
  return PyStrip(pos == absl::string_view::npos ? answer : answer.substr(pos + 4));
}

ReferenceScore MmluProReference() {
  ExactMatchOptions em;
  em.ignore_case = true;
  em.ignore_punctuation = true;
  return Pipeline("custom-extract", R"(answer is \(?([ABCDEFGHIJ])\)?)", 0, em);
}

std::optional<std::string> SimpleEvalsMmluExtract(absl::string_view response) {
  // normalize_response: literal deletions, in this order.
  static const char* const kDelete[] = {"**",        "$\\boxed{", "}$",     "\\$",    "$\\text{",
                                        "$",         "\\mathrm{", "\\{",    "\\text", "\\(",
                                        "\\mathbf{", "{",         "\\boxed"};
  std::string text(response);
  for (const char* d : kDelete) text = absl::StrReplaceAll(text, {{d, ""}});
  // MULTILINGUAL_ANSWER_REGEXES, in list order; the first label that matches anywhere wins.
  static const std::vector<PyRegex>* patterns = [] {
    static const char* const kLabels[] = {
        "Answer\\s*:",
        "Answer\\s*:\u200b\u200b\u200b\u200b\u200b\u200b",
        "\u0989\u09a4\u09cd\u09a4\u09b0\\s*:",
        "\u0909\u0924\u094d\u0924\u0930\\s*:",
        "\u0989\u09a4\u09cd\u09a4\u09b0\u0983",
        "\u0989\u09a4\u09cd\u09a4\u09b0\\s*:",
        "Antwort\\s*:",
        "\ub2f5\ubcc0\\s*:",
        "\uc815\ub2f5\\s*:",
        "\ub2f5\\s*:",
        "\u7b54\u6848\\s*\uff1a",
        "\u7b54\u6848\\s*:",
        "\u7b54\\s*\uff1a",
        "\u7b54\\s*:",
        "\u7b54\u590d\\s*\uff1a",
        "\u7b54\u66f0\\s*\uff1a",
        "\u0627\u0644\u0625\u062c\u0627\u0628\u0629:",
        "\u0627\u0644\u062c\u0648\u0627\u0628:",
        "\u0625\u062c\u0627\u0628\u0629:",
        "\u0627\u0644\u0625\u062c\u0627\u0628\u0629 "
        "\u0627\u0644\u0646\u0647\u0627\u0626\u064a\u0629:",
        "\u0627\u0644\u0625\u062c\u0627\u0628\u0629 \u0627\u0644\u0635\u062d\u064a\u062d\u0629:",
        "\u0627\u0644\u0625\u062c\u0627\u0628\u0629 \u0627\u0644\u0635\u062d\u064a\u062d\u0629 "
        "\u0647\u064a:",
        "\u0627\u0644\u0625\u062c\u0627\u0628\u0629 \u0647\u064a:",
        "\u0627\u0644\u062c\u0648\u0627\u0628 \u0627\u0644\u0646\u0647\u0627\u0626\u064a:",
        "Respuesta\\s*:",
        "Risposta\\s*:",
        "\u7b54\u3048\\s*:",
        "\u7b54\u3048\\s*\uff1a",
        "\u56de\u7b54\\s*:",
        "\u56de\u7b54\\s*\uff1a",
        "\u89e3\u7b54\\s*:",
        "Jawaban\\s*:",
        "R\u00e9ponse\\s*:",
        "Resposta\\s*:",
        "Jibu\\s*:",
        "Idahun\\s*:",
        "\u00ccd\u00e1h\u00f9n\\s*:",
        "Id\u00e1h\u00f9n\\s*:",
        "\u00c0m\u1ecd\u0300n\u00e0\\s*:",
        "\u00c0d\u00e1h\u00f9n\\s*:",
        "\u00c0n\u00fag\u1ecd\\s*:",
        "\u00c0\u1e63\u00e0y\u00e0n\\s*:",
    };
    auto* v = new std::vector<PyRegex>;
    for (const char* label : kLabels) {
      v->push_back(
          PyRegex::Compile(absl::StrCat("(?i)", label,
                                        "[ \\t]*([A-D]|[\u0623-\u062f]|[\u0985]|[\u09ac]|[\u09a1]|["
                                        "\u09a2]|[\uff21]|[\uff22]|[\uff23]|[\uff24])"))
              .value());
    }
    return v;
  }();
  for (const PyRegex& re : *patterns) {
    if (auto m = re.Search(text)) {
      // normalize_extracted_answer
      std::string a = absl::StrReplaceAll(m->groups[1], {{"\u0623", " A"},
                                                         {"\u0628", " B"},
                                                         {"\u062c", " C"},
                                                         {"\u062f", " D"},
                                                         {"\u0985", " A"},
                                                         {"\u09ac", " B"},
                                                         {"\u09a1", " C"},
                                                         {"\u09a2", " D"},
                                                         {"\uff21", " A"},
                                                         {"\uff22", " B"},
                                                         {"\uff23", " C"},
                                                         {"\uff24", " D"}});
      return PyStrip(a);
    }
  }
  return std::nullopt;
}

std::optional<std::string> SimpleEvalsGpqaExtract(absl::string_view response) {
  static const PyRegex* re =
      new PyRegex(PyRegex::Compile(R"((?i)Answer[ \t]*:[ \t]*\$?([A-D])\$?)").value());
  auto m = re->Search(response);
  if (!m) return std::nullopt;
  return m->groups[1];
}

// ---- CPython's Mersenne Twister ------------------------------------------------------------

PythonRandom::PythonRandom(uint64_t seed) {
  // random.seed(int): init_by_array over the 32-bit words of |seed|, least significant first.
  std::vector<uint32_t> key;
  do {
    key.push_back(static_cast<uint32_t>(seed & 0xFFFFFFFFu));
    seed >>= 32;
  } while (seed != 0);
  mt_[0] = 19650218u;
  for (int i = 1; i < 624; ++i) {
    mt_[i] = 1812433253u * (mt_[i - 1] ^ (mt_[i - 1] >> 30)) + static_cast<uint32_t>(i);
  }
  size_t i = 1, j = 0;
  for (size_t k = std::max<size_t>(624, key.size()); k > 0; --k) {
    mt_[i] = (mt_[i] ^ ((mt_[i - 1] ^ (mt_[i - 1] >> 30)) * 1664525u)) + key[j] +
             static_cast<uint32_t>(j);
    ++i;
    ++j;
    if (i >= 624) {
      mt_[0] = mt_[623];
      i = 1;
    }
    if (j >= key.size()) j = 0;
  }
  for (size_t k = 623; k > 0; --k) {
    mt_[i] =
        (mt_[i] ^ ((mt_[i - 1] ^ (mt_[i - 1] >> 30)) * 1566083941u)) - static_cast<uint32_t>(i);
    ++i;
    if (i >= 624) {
      mt_[0] = mt_[623];
      i = 1;
    }
  }
  mt_[0] = 0x80000000u;
  index_ = 624;
}

uint32_t PythonRandom::Next() {
  if (index_ >= 624) {
    for (int k = 0; k < 624; ++k) {
      uint32_t y = (mt_[k] & 0x80000000u) | (mt_[(k + 1) % 624] & 0x7fffffffu);
      mt_[k] = mt_[(k + 397) % 624] ^ (y >> 1) ^ ((y & 1u) ? 0x9908b0dfu : 0u);
    }
    index_ = 0;
  }
  uint32_t y = mt_[index_++];
  y ^= y >> 11;
  y ^= (y << 7) & 0x9d2c5680u;
  y ^= (y << 15) & 0xefc60000u;
  y ^= y >> 18;
  return y;
}

uint32_t PythonRandom::GetRandBits(int k) { return Next() >> (32 - k); }

uint64_t PythonRandom::RandBelow(uint64_t n) {
  int k = 0;
  while ((n >> k) != 0) ++k;  // n.bit_length()
  uint64_t r = GetRandBits(k);
  while (r >= n) r = GetRandBits(k);
  return r;
}

std::vector<int> PythonRandom::SampleRange(int n, int k) {
  std::vector<int> pool(n), result(k);
  for (int i = 0; i < n; ++i) pool[i] = i;
  for (int i = 0; i < k; ++i) {
    const int j = static_cast<int>(RandBelow(static_cast<uint64_t>(n - i)));
    result[i] = pool[j];
    pool[j] = pool[n - i - 1];
  }
  return result;
}

}  // namespace evald::runner
