#include "daemon/export/local_exporter.h"

#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "daemon/export/file_util.h"
#include "tests/daemon/export/export_test_util.h"

namespace evald::daemon::exporters {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using testing::DataFile;
using testing::MakeJob;
using testing::ReadText;
using testing::SimpleResults;
using testing::TempDir;
using testing::WriteText;

LocalExporter Local(const fs::path& out, json extra = json::object()) {
  extra["output_dir"] = out.string();
  absl::StatusOr<LocalExporter> e = LocalExporter::FromConfig(extra);
  REQUIRE(e.ok());
  return *e;
}

TEST_CASE("local: required artifacts, job_metadata.json and the message") {
  TempDir tmp;
  JobExportInput job =
      MakeJob(tmp.path(), "1a2b3c4d", 0, "gsm8k", DataFile("results_gsm8k_mmlu.yml"));
  const fs::path out = tmp.path() / "out";
  JobExportResult r = Local(out).ExportJob(job);
  REQUIRE(r.success);
  CHECK(r.message == "Exported 2 files. Missing optional: omni-info.json");
  CHECK(r.metadata == json{{"files_count", 2}});
  const fs::path job_out = out / "1a2b3c4d" / "1a2b3c4d.0";
  CHECK(ReadText(job_out / "artifacts" / "results.yml") == DataFile("results_gsm8k_mmlu.yml"));
  CHECK(fs::exists(job_out / "artifacts" / "eval_factory_metrics.json"));
  CHECK_FALSE(fs::exists(job_out / "artifacts" / "cache"));
  CHECK_FALSE(fs::exists(job_out / "logs"));
  CHECK(json::parse(ReadText(job_out / "job_metadata.json")) ==
        json{{"invocation_id", "1a2b3c4d"},
             {"job_id", "1a2b3c4d.0"},
             {"executor", "local"},
             {"timestamp", "2026-12-06T10:00:00Z"}});
  CHECK_FALSE(fs::exists(out / "1a2b3c4d" / "processed_results.json"));  // no format: no summary
}

TEST_CASE("local: copy_logs, only_required false copies the whole tree and the logs") {
  TempDir tmp;
  JobExportInput job = MakeJob(tmp.path(), "1a2b3c4d", 1, "gsm8k", SimpleResults("gsm8k", 0.5));
  WriteText(fs::path(job.artifacts_dir) / "omni-info.json", "{}");
  const fs::path job_out = tmp.path() / "out" / "1a2b3c4d" / "1a2b3c4d.1";
  JobExportResult r = Local(tmp.path() / "out", {{"copy_logs", true}}).ExportJob(job);
  REQUIRE(r.success);
  CHECK(r.message == "Exported 4 files. All artifacts available");
  CHECK(ReadText(job_out / "logs" / "stdout.log") == "stdout line\n");
  r = Local(tmp.path() / "out2", {{"only_required", false}}).ExportJob(job);
  REQUIRE(r.success);
  const fs::path job_out2 = tmp.path() / "out2" / "1a2b3c4d" / "1a2b3c4d.1";
  CHECK(ReadText(job_out2 / "artifacts" / "cache" / "responses" / "x.bin") == "cached");
  CHECK(fs::exists(job_out2 / "logs" / "stdout.log"));
  CHECK(r.metadata["files_count"] == 5);
}

TEST_CASE("local: copy_artifacts false writes the metadata and the summary only") {
  TempDir tmp;
  JobExportInput job = MakeJob(tmp.path(), "1a2b3c4d", 0, "gsm8k", SimpleResults("gsm8k", 0.5));
  InvocationExportResult r =
      Local(tmp.path() / "out", {{"copy_artifacts", false}, {"format", "json"}})
          .Export({job}, false);
  REQUIRE(r.success);
  const fs::path inv_out = tmp.path() / "out" / "1a2b3c4d";
  CHECK_FALSE(fs::exists(inv_out / "1a2b3c4d.0" / "artifacts"));
  CHECK(fs::exists(inv_out / "1a2b3c4d.0" / "job_metadata.json"));
  json summary = json::parse(ReadText(inv_out / "processed_results.json"));
  CHECK(summary["benchmarks"]["gsm8k"]["models"].size() == 1);
  // A non-boolean is refused with the key named.
  absl::StatusOr<LocalExportOptions> bad = ParseLocalConfig(json{{"copy_artifacts", "maybe"}});
  REQUIRE_FALSE(bad.ok());
  CHECK(absl::StrContains(bad.status().message(), "copy_artifacts"));
}

TEST_CASE("local: a missing required artifact fails the job and writes nothing") {
  TempDir tmp;
  JobExportInput job = MakeJob(tmp.path(), "1a2b3c4d", 0, "gsm8k", SimpleResults("gsm8k", 0.5));
  fs::remove(fs::path(job.artifacts_dir) / "eval_factory_metrics.json");
  InvocationExportResult r = Local(tmp.path() / "out", {{"format", "json"}}).Export({job}, false);
  CHECK_FALSE(r.success);
  REQUIRE(r.jobs.size() == 1);
  CHECK_FALSE(r.jobs[0].success);
  CHECK(r.jobs[0].message == "Missing required: eval_factory_metrics.json");
  CHECK_FALSE(fs::exists(tmp.path() / "out"));
  job = MakeJob(tmp.path(), "1a2b3c4d", 0, "gsm8k", SimpleResults("gsm8k", 0.5));
  job.job_id = "../../escape";
  JobExportResult bad = Local(tmp.path() / "out").ExportJob(job);
  CHECK_FALSE(bad.success);
  CHECK(bad.message == "invalid id '../../escape' for a folder name");
  CHECK_FALSE(fs::exists(tmp.path() / "out"));
}

TEST_CASE("local: a metric conflict fails the job with the conflict") {
  TempDir tmp;
  JobExportInput job = MakeJob(tmp.path(), "1a2b3c4d", 0, "mmlu", DataFile("results_conflict.yml"));
  JobExportResult r = Local(tmp.path() / "out").ExportJob(job);
  CHECK_FALSE(r.success);
  CHECK(r.message.find("metric conflict: 'mmlu_acc_micro' is 0.61") == 0);
}

TEST_CASE("local: JSON summary upserted by invocation and job, consolidated across invocations") {
  TempDir tmp;
  const fs::path out = tmp.path() / "out";
  LocalExporter local = Local(out, {{"format", "json"}});
  JobExportInput a0 = MakeJob(tmp.path(), "aaaa0000", 0, "lm-evaluation-harness.gsm8k",
                              SimpleResults("gsm8k", 0.5));
  JobExportInput a1 = MakeJob(tmp.path(), "aaaa0000", 1, "mmlu", SimpleResults("mmlu", 0.7));
  JobExportResult r = local.ExportJob(a0);
  REQUIRE(r.success);
  const std::string summary = (out / "aaaa0000" / "processed_results.json").string();
  CHECK(r.message == "Exported 2 files. Missing optional: omni-info.json. Summary: " + summary);
  CHECK(r.metadata["summary_path"] == summary);
  REQUIRE(local.ExportJob(a1).success);
  // Re-export of job 0 with a new score replaces its entry.
  WriteText(fs::path(a0.artifacts_dir) / "results.yml", SimpleResults("gsm8k", 0.55));
  REQUIRE(local.ExportJob(a0).success);
  json s = json::parse(ReadText(summary));
  CHECK(s["export_timestamp"].is_string());
  CHECK(s["benchmarks"] == json::parse(R"({
    "gsm8k": {"models": {"my/model": [{"invocation_id": "aaaa0000", "job_id": "aaaa0000.0",
      "harness": "lm-evaluation-harness",
      "container": "nvcr.io/nvidia/eval-factory/lm-evaluation-harness:25.08",
      "scores": {"gsm8k_accuracy": 0.55}, "timestamp": "2026-12-06T10:00:00Z",
      "executor": "local"}]}},
    "mmlu": {"models": {"my/model": [{"invocation_id": "aaaa0000", "job_id": "aaaa0000.1",
      "harness": "lm-evaluation-harness",
      "container": "nvcr.io/nvidia/eval-factory/lm-evaluation-harness:25.08",
      "scores": {"mmlu_accuracy": 0.7}, "timestamp": "2026-12-06T10:00:00Z",
      "executor": "local"}]}}})"));

  JobExportInput b0 = MakeJob(tmp.path(), "bbbb1111", 0, "gsm8k", SimpleResults("gsm8k", 0.6));
  b0.model_name = "other/model";
  InvocationExportResult many = local.Export({a1, b0}, /*consolidated=*/true);
  REQUIRE(many.success);
  const std::string consolidated = (out / "processed_results.json").string();
  CHECK(many.metadata["summary_path"] == consolidated);
  json c = json::parse(ReadText(consolidated));
  CHECK(c["benchmarks"]["gsm8k"]["models"]["other/model"][0]["job_id"] == "bbbb1111.0");
  CHECK(c["benchmarks"]["mmlu"]["models"]["my/model"].size() == 1);
  CHECK(fs::exists(out / "bbbb1111" / "processed_results.json"));
}

TEST_CASE("local: CSV summary columns, row upsert in place and appended columns") {
  TempDir tmp;
  const fs::path out = tmp.path() / "out";
  LocalExporter local = Local(out, {{"format", "csv"}});
  JobExportInput j0 = MakeJob(tmp.path(), "cccc2222", 0, "lm-evaluation-harness.gsm8k",
                              R"(results:
  tasks:
    gsm8k:
      metrics:
        exact_match: {scores: {strict-match: {value: 0.75}, flexible-extract: {value: 0.5}}}
)");
  JobExportInput j1 = MakeJob(tmp.path(), "cccc2222", 1, "mmlu", SimpleResults("mmlu", 0.7));
  j1.container = "img,with \"comma\"";
  REQUIRE(local.ExportJob(j0).success);
  const fs::path csv = out / "cccc2222" / "processed_results.csv";
  CHECK(ReadText(csv) ==
        "Model Name,Harness,Task Name,Executor,Container,Invocation ID,Job ID,"
        "exact_match_flexible-extract,exact_match_strict-match\r\n"
        "my/model,lm-evaluation-harness,gsm8k,local,nvcr.io/nvidia/eval-factory/"
        "lm-evaluation-harness:25.08,cccc2222,cccc2222.0,0.5,0.75\r\n");
  REQUIRE(local.ExportJob(j1).success);
  WriteText(fs::path(j0.artifacts_dir) / "results.yml",
            "results: {tasks: {gsm8k: {metrics: {exact_match: {scores: {strict-match: {value: "
            "1.0}}}}}}}\n");
  REQUIRE(local.ExportJob(j0).success);
  CHECK(ReadText(csv) ==
        "Model Name,Harness,Task Name,Executor,Container,Invocation ID,Job ID,"
        "exact_match_flexible-extract,exact_match_strict-match,accuracy\r\n"
        "my/model,lm-evaluation-harness,gsm8k,local,nvcr.io/nvidia/eval-factory/"
        "lm-evaluation-harness:25.08,cccc2222,cccc2222.0,,1.0,\r\n"
        "my/model,lm-evaluation-harness,mmlu,local,\"img,with \"\"comma\"\"\",cccc2222,"
        "cccc2222.1,,,0.7\r\n");
}

TEST_CASE("local: output_filename, format none, bad format") {
  TempDir tmp;
  JobExportInput j = MakeJob(tmp.path(), "dddd3333", 0, "gsm8k", SimpleResults("gsm8k", 0.5));
  JobExportResult r =
      Local(tmp.path() / "o", {{"format", "csv"}, {"output_filename", "mine.csv"}}).ExportJob(j);
  REQUIRE(r.success);
  CHECK(fs::exists(tmp.path() / "o" / "dddd3333" / "mine.csv"));
  CHECK(Local(tmp.path() / "n", {{"format", "none"}}).options().format.empty());
  absl::StatusOr<LocalExporter> bad = LocalExporter::FromConfig({{"format", "xlsx"}});
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().message() ==
        "export config local.format must be json, csv or none, not 'xlsx'");
  CHECK_FALSE(LocalExporter::FromConfig({{"output_filename", "../x.csv"}}).ok());
}

TEST_CASE("local: a summary that is not one is left alone and the export fails") {
  TempDir tmp;
  JobExportInput j = MakeJob(tmp.path(), "eeee4444", 0, "gsm8k", SimpleResults("gsm8k", 0.5));
  const fs::path csv = tmp.path() / "o" / "eeee4444" / "processed_results.csv";
  WriteText(csv, "name,value\nx,1\n");
  JobExportResult r = Local(tmp.path() / "o", {{"format", "csv"}}).ExportJob(j);
  CHECK_FALSE(r.success);
  CHECK(r.message == csv.string() + ": not a processed_results CSV summary; left unchanged");
  CHECK(ReadText(csv) == "name,value\nx,1\n");
}

TEST_CASE("local: concurrent exports to one summary keep every row") {
  TempDir tmp;
  const fs::path out = tmp.path() / "out";
  std::vector<JobExportInput> jobs;
  for (int i = 0; i < 16; ++i) {
    jobs.push_back(MakeJob(tmp.path(), "ffff5555", i, "t" + std::to_string(i),
                           SimpleResults("t" + std::to_string(i), i / 100.0)));
  }
  for (const char* format : {"csv", "json"}) {
    LocalExporter local = Local(out, {{"format", format}});
    std::vector<std::thread> threads;
    std::atomic<int> ok{0};
    for (const JobExportInput& j : jobs) {
      threads.emplace_back([&local, &j, &ok] {
        if (local.ExportJob(j).success) ++ok;
      });
    }
    for (auto& t : threads) t.join();
    CHECK(ok == 16);
  }
  const std::string csv = ReadText(out / "ffff5555" / "processed_results.csv");
  CHECK(std::count(csv.begin(), csv.end(), '\n') == 17);
  for (const JobExportInput& j : jobs) CHECK(csv.find("," + j.job_id + ",") != std::string::npos);
  json s = json::parse(ReadText(out / "ffff5555" / "processed_results.json"));
  CHECK(s["benchmarks"].size() == 16);
  // No temp files left behind.
  for (const auto& e : fs::directory_iterator(out / "ffff5555")) {
    CHECK(e.path().filename().string().find(".tmp.") == std::string::npos);
  }
}

TEST_CASE("local: exports from separate processes to one summary keep every row") {
  TempDir tmp;
  const fs::path out = tmp.path() / "out";
  std::vector<JobExportInput> jobs;
  for (int i = 0; i < 12; ++i) {
    jobs.push_back(MakeJob(tmp.path(), "abab6666", i, "t" + std::to_string(i),
                           SimpleResults("t" + std::to_string(i), 0.5)));
  }
  LocalExporter local = Local(out, {{"format", "csv"}});
  std::vector<pid_t> children;
  for (int p = 0; p < 3; ++p) {
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      int failed = 0;
      for (int i = p; i < 12; i += 3) failed += local.ExportJob(jobs[i]).success ? 0 : 1;
      ::_exit(failed);
    }
    children.push_back(pid);
  }
  for (pid_t pid : children) {
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
  const std::string csv = ReadText(out / "abab6666" / "processed_results.csv");
  CHECK(std::count(csv.begin(), csv.end(), '\n') == 13);
  for (const JobExportInput& j : jobs) CHECK(csv.find("," + j.job_id + ",") != std::string::npos);
}

TEST_CASE("local: a write that fails at the rename leaves no temp file behind") {
  TempDir tmp;
  // The target is a non-empty folder: rename(2) fails (also for root), after the temp file was
  // written in full.
  const fs::path target = tmp.path() / "processed_results.json";
  WriteText(target / "keep", "x");
  absl::Status s = WriteFileAtomic(target.string(), "{}\n");
  REQUIRE_FALSE(s.ok());
  CHECK(s.message().find("cannot rename to " + target.string()) == 0);
  CHECK(std::distance(fs::directory_iterator(tmp.path()), fs::directory_iterator()) == 1);
  CHECK(ReadText(target / "keep") == "x");
}

}  // namespace
}  // namespace evald::daemon::exporters
