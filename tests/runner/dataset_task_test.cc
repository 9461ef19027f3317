#include <httplib.h>

#include <catch2/catch.hpp>
#include <thread>

#include "runner/dataset.h"
#include "runner/plan.h"
#include "runner/task.h"
#include "tests/runner/test_util.h"

namespace evald::runner {
namespace {

using testing::DataDir;
using testing::TempDir;
using testing::WriteFile;

std::string Message(const absl::Status& s) { return std::string(s.message()); }

TEST_CASE("dataset: JSONL rows keep their line numbers, limit reads the first N") {
  TempDir dir;
  WriteFile(dir / "d.jsonl", "{\"q\": 1}\n{\"q\": 2}\r\n{\"q\": 3}\n\n");
  auto ds = LoadDataset(dir / "d.jsonl", {});
  REQUIRE(ds.ok());
  REQUIRE(ds->rows.size() == 3);
  CHECK(ds->rows[2].value["q"] == 3);
  CHECK(ds->Where(1) == dir / "d.jsonl:2");
  DatasetOptions opts;
  opts.limit = 2;
  auto limited = LoadDataset(dir / "d.jsonl", opts);
  REQUIRE(limited.ok());
  CHECK(limited->rows.size() == 2);
}

TEST_CASE("dataset: JSON arrays and wrapped arrays") {
  TempDir dir;
  WriteFile(dir / "a.json", "[{\"q\": 1}, {\"q\": 2}]");
  WriteFile(dir / "b.json", "{\"rows\": [{\"q\": 1}]}");
  WriteFile(dir / "c.data", "[{\"q\": 1}]");
  auto a = LoadDataset(dir / "a.json", {});
  REQUIRE(a.ok());
  CHECK(a->rows.size() == 2);
  CHECK(a->Where(1) == dir / "a.json: element [1]");
  CHECK(LoadDataset(dir / "b.json", {})->rows.size() == 1);
  CHECK(LoadDataset(dir / "c.data", {})->rows.size() == 1);
}

TEST_CASE("dataset: malformed input names the file and the line") {
  TempDir dir;
  WriteFile(dir / "bad.jsonl", "{\"q\": 1}\n{\"q\": 2\n");
  auto bad = LoadDataset(dir / "bad.jsonl", {});
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(Message(bad.status()), Catch::Contains(dir / "bad.jsonl:2: invalid JSON"));

  WriteFile(dir / "blank.jsonl", "{\"q\": 1}\n\n{\"q\": 2}\n");
  auto blank = LoadDataset(dir / "blank.jsonl", {});
  REQUIRE_FALSE(blank.ok());
  CHECK_THAT(Message(blank.status()), Catch::Contains("blank.jsonl:2: empty line"));

  WriteFile(dir / "empty_row.jsonl", "{\"q\": 1}\n{}\n");
  CHECK_THAT(Message(LoadDataset(dir / "empty_row.jsonl", {}).status()),
             Catch::Contains("empty_row.jsonl:2: empty row"));

  WriteFile(dir / "list.jsonl", "[1, 2]\n");
  CHECK_THAT(Message(LoadDataset(dir / "list.jsonl", {}).status()),
             Catch::Contains("list.jsonl:1: expected a JSON object, got a list"));

  WriteFile(dir / "empty.jsonl", "");
  CHECK_THAT(Message(LoadDataset(dir / "empty.jsonl", {}).status()), Catch::Contains("no rows"));

  WriteFile(dir / "x.csv", "a,b\n");
  CHECK_THAT(Message(LoadDataset(dir / "x.csv", {}).status()),
             Catch::Contains("convert the file to JSONL"));

  auto missing = LoadDataset(dir / "nope.jsonl", {});
  CHECK(missing.status().code() == absl::StatusCode::kNotFound);
}

TEST_CASE("dataset: URLs are downloaded once, with HF_TOKEN as a bearer token") {
  httplib::Server server;
  std::atomic<int> hits{0};
  std::string seen_auth;
  server.Get("/data/rows.jsonl", [&](const httplib::Request& req, httplib::Response& res) {
    ++hits;
    seen_auth = req.get_header_value("Authorization");
    res.set_content("{\"question\": \"q1\"}\n{\"question\": \"q2\"}\n", "application/jsonl");
  });
  server.Get("/gated.jsonl", [&](const httplib::Request&, httplib::Response& res) {
    res.status = 401;
    res.set_content("{\"error\": \"gated\"}", "application/json");
  });
  int port = server.bind_to_any_port("127.0.0.1");
  std::thread t([&] { server.listen_after_bind(); });
  while (!server.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  TempDir dir;
  const std::string base = "http://127.0.0.1:" + std::to_string(port);
  DatasetOptions opts;
  opts.cache_dir = dir / "dl";
  opts.hf_token = "hf_secret";
  auto ds = LoadDataset(base + "/data/rows.jsonl", opts);
  REQUIRE(ds.ok());
  CHECK(ds->rows.size() == 2);
  CHECK(seen_auth == "Bearer hf_secret");
  CHECK(ds->local_path.rfind(dir / "dl/", 0) == 0);
  auto again = LoadDataset(base + "/data/rows.jsonl", opts);
  REQUIRE(again.ok());
  CHECK(hits == 1);  // served from the download cache

  opts.hf_token.clear();
  auto gated = LoadDataset(base + "/gated.jsonl", opts);
  REQUIRE_FALSE(gated.ok());
  CHECK_THAT(Message(gated.status()), Catch::Contains("HTTP 401") && Catch::Contains("HF_TOKEN"));
  server.stop();
  t.join();
}

Plan PlanFor(const std::string& task, const std::string& dataset) {
  Plan plan;
  plan.task = task;
  plan.params.dataset = dataset;
  return plan;
}

TEST_CASE("tasks: native_gsm8k prompts carry the question verbatim and score numbers") {
  auto task = CreateTask(PlanFor("native_gsm8k", DataDir() + "/gsm8k_tiny.jsonl"), {});
  REQUIRE(task.ok());
  CHECK((*task)->size() == 12);
  Prompt p = (*task)->BuildPrompt(0, EndpointType::kChat);
  REQUIRE(p.messages.size() == 1);
  CHECK(p.messages[0].role == "user");
  CHECK_THAT(p.messages[0].content,
             Catch::Contains("Mia has 12 apples.") && Catch::Contains("#### $ANSWER"));
  // lm-eval gsm8k first: strict-match reads "#### N", flexible-extract the last number.
  CHECK((*task)->ScoreNames() ==
        std::vector<std::string>{"strict-match", "flexible-extract", "lenient_numeric_match"});
  Evaluation strict = (*task)->Score(0, "12 - 5 = 7, 7 + 8 = 15\n#### 15");
  CHECK(strict.correct);
  CHECK(strict.gold == "15");
  CHECK(*strict.extracted == "15");
  CHECK(strict.filtered["strict-match"] == "15");
  CHECK(strict.filtered["flexible-extract"] == "15");
  Evaluation flexible = (*task)->Score(0, "The final answer is: 15");
  CHECK_FALSE(flexible.correct);  // the first (reference) score decides
  CHECK(*flexible.extracted == "[invalid]");
  CHECK(flexible.scores ==
        std::vector<std::pair<std::string, double>>{
            {"strict-match", 0.0}, {"flexible-extract", 1.0}, {"lenient_numeric_match", 1.0}});
  CHECK_FALSE((*task)->Score(0, "#### 16").correct);
  // 18.00 is not 18 for exact_match; the lenient score says it is.
  Evaluation decimals = (*task)->Score(0, "#### 15.00");
  CHECK(decimals.scores[0].second == 0.0);
  CHECK(decimals.scores[2].second == 1.0);
  CHECK((*task)->think_end_token() == std::nullopt);  // lm-eval's default: nothing stripped
  CHECK((*task)->ScoringJson()["commit"] == "4e7e0d47f33bc71070c1d38394bafbb52b117163");
  Prompt completion = (*task)->BuildPrompt(0, EndpointType::kCompletions);
  CHECK(completion.messages.empty());
  CHECK_THAT(completion.text, Catch::Contains("Mia has 12 apples."));
  Evaluation failed = (*task)->ScoreFailure(0);
  CHECK_FALSE(failed.correct);
  CHECK(failed.scores[0].second == 0.0);
}

TEST_CASE("tasks: multiple choice layouts, letters and MMLU-Pro's ten options") {
  auto mmlu = CreateTask(PlanFor("native_mmlu", DataDir() + "/mmlu_tiny.jsonl"), {});
  REQUIRE(mmlu.ok());
  std::string text = (*mmlu)->BuildPrompt(0, EndpointType::kChat).messages[0].content;
  CHECK_THAT(text, Catch::Contains("closest to the Sun?\n\nA) Venus\nB) Mercury") &&
                       Catch::Contains("where LETTER is one of ABCD. Think step by step"));
  CHECK((*mmlu)->ScoreNames() == std::vector<std::string>{"score", "lenient_choice_accuracy"});
  CHECK((*mmlu)->Score(0, "Answer: B").correct);
  CHECK_FALSE((*mmlu)->Score(0, "Answer: C").correct);
  // simple-evals rejects "(B)"; the lenient score accepts it.
  Evaluation paren = (*mmlu)->Score(0, "Answer: (B)");
  CHECK_FALSE(paren.correct);
  CHECK(paren.scores[1] == std::pair<std::string, double>{"lenient_choice_accuracy", 1.0});

  auto pro = CreateTask(PlanFor("native_mmlu_pro", DataDir() + "/mmlu_pro_tiny.jsonl"), {});
  REQUIRE(pro.ok());
  CHECK_THAT((*pro)->BuildPrompt(3, EndpointType::kChat).messages[0].content,
             Catch::Contains("Options:\nA. Cobalt") && Catch::Contains("J. Iron\n") &&
                 Catch::Contains("the answer is (X)") &&
                 Catch::EndsWith("Answer: Let's think step by step."));
  CHECK((*pro)->ScoreNames() ==
        std::vector<std::string>{"custom-extract", "lenient_choice_accuracy"});
  CHECK((*pro)->Score(3, "The answer is (J)").correct);
  CHECK_FALSE((*pro)->Score(3, "The answer is: (J)").correct);

  auto gpqa_plan = PlanFor("native_gpqa_diamond", DataDir() + "/gpqa_tiny.jsonl");
  gpqa_plan.params.shuffle_choices = false;
  auto gpqa = CreateTask(gpqa_plan, {});
  REQUIRE(gpqa.ok());
  CHECK((*gpqa)->Score(0, "Answer: A").correct);  // "Correct Answer" column comes first
  CHECK((*gpqa)->Score(3, "Answer: B").correct);  // answer_index layout
}

TEST_CASE("tasks: GPQA shuffles options by seed, deterministically") {
  auto plan = PlanFor("native_gpqa_diamond", DataDir() + "/gpqa_tiny.jsonl");
  plan.params.seed = 7;
  auto a = CreateTask(plan, {});
  auto b = CreateTask(plan, {});
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  for (size_t i = 0; i < (*a)->size(); ++i) {
    CHECK((*a)->BuildPrompt(i, EndpointType::kChat).messages[0].content ==
          (*b)->BuildPrompt(i, EndpointType::kChat).messages[0].content);
    // The gold letter follows the correct option wherever it went.
    std::string gold = (*a)->Score(i, "").gold.get<std::string>();
    CHECK((*a)->Score(i, "Answer: " + gold).correct);
  }
  plan.params.seed = 8;
  auto c = CreateTask(plan, {});
  bool any_different = false;
  for (size_t i = 0; i < (*a)->size(); ++i) {
    any_different =
        any_different || (*a)->BuildPrompt(i, EndpointType::kChat).messages[0].content !=
                             (*c)->BuildPrompt(i, EndpointType::kChat).messages[0].content;
  }
  CHECK(any_different);
}

TEST_CASE("tasks: native_ifeval scores prompt and instruction level, strict and loose") {
  auto task = CreateTask(PlanFor("native_ifeval", DataDir() + "/ifeval_tiny.jsonl"), {});
  REQUIRE(task.ok());
  CHECK((*task)->size() == 10);
  // Row 2: lowercase + keywords beacon/coast.
  Evaluation both = (*task)->Score(1, "the beacon shines over the coast.");
  CHECK(both.correct);
  Evaluation one = (*task)->Score(1, "The beacon shines over the coast.");
  CHECK_FALSE(one.correct);
  int inst_strict = 0, inst_total = 0;
  for (const auto& [name, v] : one.scores) {
    if (name == "inst_level_strict_acc") {
      ++inst_total;
      inst_strict += v > 0;
    }
  }
  CHECK(inst_total == 2);
  CHECK(inst_strict == 1);
  CHECK(one.details["instruction_id_list"].size() == 2);
}

TEST_CASE("tasks: row errors name the dataset file and line") {
  TempDir dir;
  WriteFile(dir / "g.jsonl",
            "{\"question\": \"q\", \"answer\": \"#### 3\"}\n{\"question\": \"q2\", \"answer\": "
            "\"no number\"}\n");
  auto g = CreateTask(PlanFor("native_gsm8k", dir / "g.jsonl"), {});
  REQUIRE_FALSE(g.ok());
  CHECK_THAT(Message(g.status()),
             Catch::Contains("g.jsonl:2: 'answer' must end with '#### <number>'"));
  WriteFile(dir / "m.jsonl",
            "{\"question\": \"q\", \"options\": [\"a\", \"b\"], \"answer\": \"E\"}\n");
  auto m = CreateTask(PlanFor("native_mmlu", dir / "m.jsonl"), {});
  REQUIRE_FALSE(m.ok());
  CHECK_THAT(Message(m.status()), Catch::Contains("m.jsonl:1: gold answer out of range"));
  WriteFile(dir / "i.jsonl",
            "{\"prompt\": \"p\", \"instruction_id_list\": [\"x:y\"], \"kwargs\": [{}]}\n");
  auto i = CreateTask(PlanFor("native_ifeval", dir / "i.jsonl"), {});
  REQUIRE_FALSE(i.ok());
  CHECK_THAT(Message(i.status()), Catch::Contains("i.jsonl:1: unknown IFEval instruction 'x:y'"));
}

TEST_CASE("tasks: built-ins without a public JSONL ask for a dataset, unknown names fail") {
  auto mmlu = CreateTask(PlanFor("native_mmlu", ""), {});
  REQUIRE_FALSE(mmlu.ok());
  CHECK_THAT(Message(mmlu.status()), Catch::Contains("config.params.extra.dataset"));
  CHECK(DefaultDatasetUrl("native_gsm8k").find("openai/grade-school-math") != std::string::npos);
  auto unknown = CreateTask(PlanFor("native_gsm9k", ""), {});
  REQUIRE_FALSE(unknown.ok());
  CHECK_THAT(Message(unknown.status()), Catch::Contains("unknown native task 'native_gsm9k'"));
}

// ---- user-defined tasks -------------------------------------------------------------------

constexpr char kQaRows[] =
    "{\"question\": \"What is the largest ocean?\", \"answer\": \"Pacific\"}\n"
    "{\"question\": \"What is the smallest prime?\", \"answer\": 2}\n";

absl::StatusOr<std::unique_ptr<Task>> UserTask(const TempDir& dir, const std::string& yaml,
                                               Params params = {}) {
  WriteFile(dir / "task/qa.jsonl", kQaRows);
  WriteFile(dir / "task/my_task.yaml", yaml);
  return LoadUserTask(dir / "task/my_task.yaml", "my_task", params, {});
}

TEST_CASE("user task: template, regex extractor, few-shot and relative paths") {
  TempDir dir;
  WriteFile(dir / "task/shots.jsonl",
            "{\"question\": \"Capital of Peru?\", \"answer\": \"Lima\"}\n"
            "{\"question\": \"Colour of the sky?\", \"answer\": \"Blue\"}\n");
  auto task = UserTask(dir, R"y(
dataset: qa.jsonl
prompt: "Question: {{question}}\nReply as 'Answer: <answer>'."
system_prompt: "Be brief."
answer_field: answer
extractor: {regex: "Answer:\\s*(\\w+)"}
metric: exact_match
ignore_case: true
few_shot: shots.jsonl
few_shot_answer: "Answer: {{answer}}"
)y");
  REQUIRE(task.ok());
  CHECK((*task)->size() == 2);
  Prompt p = (*task)->BuildPrompt(0, EndpointType::kChat);
  REQUIRE(p.messages.size() == 6);  // system + 2 x (user, assistant) + user
  CHECK(p.messages[0].content == "Be brief.");
  CHECK(p.messages[2].content == "Answer: Lima");
  CHECK_THAT(p.messages[5].content, Catch::Contains("What is the largest ocean?"));
  CHECK((*task)->Score(0, "Answer: pacific").correct);
  CHECK((*task)->Score(1, "Answer: 2").correct);  // numeric gold rendered as text
  Prompt text = (*task)->BuildPrompt(0, EndpointType::kCompletions);
  CHECK_THAT(text.text, Catch::StartsWith("Be brief.\n\nQuestion: Capital of Peru?"));

  Params two_shot_off;
  two_shot_off.num_fewshot = 0;
  auto zero = UserTask(dir, R"(
dataset: qa.jsonl
prompt: "Q: {{question}}"
answer_field: answer
extractor: full
metric: contains
few_shot: [{question: "x?", answer: "y"}]
)",
                       two_shot_off);
  REQUIRE(zero.ok());
  CHECK((*zero)->BuildPrompt(0, EndpointType::kChat).messages.size() == 1);
  CHECK((*zero)->Score(0, "It is the Pacific.").correct);
}

TEST_CASE("user task: choices extractor maps index answers to letters") {
  TempDir dir;
  WriteFile(dir / "task/mc.jsonl",
            "{\"q\": \"2+2?\", \"opts\": [\"3\", \"4\"], \"gold\": 1}\n"
            "{\"q\": \"1+1?\", \"opts\": [\"2\", \"5\"], \"gold\": \"A\"}\n");
  WriteFile(dir / "task/my_task.yaml", R"(
dataset: mc.jsonl
prompt: "{{q}}\n{{opts}}"
answer_field: gold
extractor: {choices: [A, B]}
metric: choice_accuracy
)");
  auto task = LoadUserTask(dir / "task/my_task.yaml", "mc", {}, {});
  REQUIRE(task.ok());
  CHECK((*task)->BuildPrompt(0, EndpointType::kChat).messages[0].content == "2+2?\nA. 3\nB. 4");
  CHECK((*task)->Score(0, "Answer: B").correct);
  CHECK((*task)->Score(1, "Answer: A").correct);
}

TEST_CASE("user task: errors name the task file, the key and the line") {
  TempDir dir;
  auto err = [&](const std::string& yaml) {
    auto t = UserTask(dir, yaml);
    REQUIRE_FALSE(t.ok());
    return Message(t.status());
  };
  const std::string base =
      "dataset: qa.jsonl\nanswer_field: answer\nextractor: full\nmetric: exact_match\n";
  CHECK_THAT(err(base + "prompt: \"Q: {{questoin}}\"\n"),
             Catch::Contains("my_task.yaml:5: prompt: unknown template field 'questoin'") &&
                 Catch::Contains("have answer, question"));
  CHECK_THAT(err(base + "promt: x\n"), Catch::Contains("my_task.yaml:5: promt: unknown key"));
  CHECK_THAT(err("dataset: qa.jsonl\nprompt: x\nanswer_field: answer\nextractor: {regex: "
                 "\"(a)(b)\"}\nmetric: exact_match\n"),
             Catch::Contains("my_task.yaml:4: extractor.regex") &&
                 Catch::Contains("exactly one capture group"));
  CHECK_THAT(
      err("dataset: qa.jsonl\nprompt: x\nanswer_field: answer\nextractor: full\nmetric: bleu\n"),
      Catch::Contains("my_task.yaml:5: metric: unknown metric 'bleu'"));
  CHECK_THAT(err("dataset: qa.jsonl\nprompt: x\nanswer_field: gold\nextractor: full\nmetric: "
                 "exact_match\n"),
             Catch::Contains("qa.jsonl:1: missing the answer field 'gold'"));
  CHECK_THAT(err("dataset: missing.jsonl\nprompt: x\nanswer_field: a\nextractor: full\nmetric: "
                 "exact_match\n"),
             Catch::Contains("missing.jsonl: dataset file not found"));
  CHECK_THAT(err("prompt: x\nanswer_field: a\nextractor: full\nmetric: exact_match\n"),
             Catch::Contains("dataset: missing"));
  CHECK_THAT(err("dataset: qa.jsonl\nprompt: x\nanswer_field: a\nextractor: full\nmetric: "
                 "choice_accuracy\n"),
             Catch::Contains("choice_accuracy needs a choices: extractor"));
  CHECK_THAT(err(base + "prompt: \"{{question\"\n"), Catch::Contains("unclosed '{{'"));
}

}  // namespace
}  // namespace evald::runner
