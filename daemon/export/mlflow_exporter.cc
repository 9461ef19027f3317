#include "daemon/export/mlflow_exporter.h"

#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "daemon/export/export_config.h"
#include "daemon/export/file_util.h"
#include "daemon/export/local_exporter.h"
#include "daemon/export/metrics_extract.h"

namespace evald::daemon::exporters {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr const char* kMlflowDest = "mlflow";
constexpr size_t kMaxParamLength = 250;
constexpr size_t kMaxTagKeyLength = 250;
constexpr size_t kMaxTagValueLength = 5000;

// Sets `key`, replacing an earlier value (later sources win, as a Python dict update).
void Put(KeyValues& kv, const std::string& key, const std::string& value) {
  for (auto& [k, v] : kv) {
    if (k == key) {
      v = value;
      return;
    }
  }
  kv.emplace_back(key, value);
}

KeyValues CleanParams(const KeyValues& in) {
  KeyValues out;
  for (const auto& [k, v] : in) {
    if (k.empty() || v.empty()) continue;
    Put(out, k.substr(0, kMaxParamLength), v.substr(0, kMaxParamLength));
  }
  return out;
}

KeyValues CleanTags(const KeyValues& in) {
  KeyValues out;
  for (const auto& [k, v] : in) {
    if (k.empty()) continue;
    Put(out, k.substr(0, kMaxTagKeyLength), v.substr(0, kMaxTagValueLength));
  }
  return out;
}

std::string SqlQuoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

int64_t NowMs() { return absl::ToUnixMillis(absl::Now()); }

}  // namespace

struct MlflowExporter::RunSpec {
  std::string result_id;  // job id, or the invocation id
  std::string run_name;
  std::string search_filter;
  MetricMap metrics;
  KeyValues params;
  KeyValues tags;
  // (artifact path, local file) and (artifact path, content) to upload.
  std::vector<std::pair<std::string, std::string>> files;
  std::vector<std::pair<std::string, std::string>> contents;
};

absl::StatusOr<MlflowExportOptions> ParseMlflowConfig(const json& cfg) {
  MlflowExportOptions o;
  auto str = [&](const char* key, std::string* out) -> absl::Status {
    absl::StatusOr<std::string> s = ConfigString(cfg, kMlflowDest, key, *out);
    if (!s.ok()) return s.status();
    *out = *s;
    return absl::OkStatus();
  };
  for (auto [key, out] :
       {std::pair{"tracking_uri", &o.tracking_uri},
        std::pair{"experiment_name", &o.experiment_name}, std::pair{"run_name", &o.run_name},
        std::pair{"description", &o.description}}) {
    if (absl::Status s = str(key, out); !s.ok()) return s;
  }
  while (absl::EndsWith(o.tracking_uri, "/")) o.tracking_uri.pop_back();
  if (o.tracking_uri.empty()) {
    return absl::InvalidArgumentError("export config mlflow.tracking_uri is required");
  }
  if (!absl::StartsWith(o.tracking_uri, "http://") &&
      !absl::StartsWith(o.tracking_uri, "https://")) {
    return absl::InvalidArgumentError(absl::StrCat(
        "export config mlflow.tracking_uri must be an http(s) URL of a tracking server, not '",
        o.tracking_uri, "' (file stores and databricks URIs are not supported)"));
  }
  // Credentials in the URI would travel into run_url, results and events.
  const std::string authority = o.tracking_uri.substr(
      o.tracking_uri.find("//") + 2,
      o.tracking_uri.find('/', o.tracking_uri.find("//") + 2) - (o.tracking_uri.find("//") + 2));
  if (authority.find('@') != std::string::npos) {
    return absl::InvalidArgumentError(
        "export config mlflow.tracking_uri must not hold credentials (user:password@); give the "
        "token as the MLFLOW_TRACKING_TOKEN secret");
  }
  if (o.experiment_name.empty()) {
    return absl::InvalidArgumentError("export config mlflow.experiment_name is empty");
  }
  absl::StatusOr<KeyValues> kv = ConfigStringMap(cfg, kMlflowDest, "tags");
  if (!kv.ok()) return kv.status();
  o.tags = *kv;
  kv = ConfigStringMap(cfg, kMlflowDest, "extra_metadata");
  if (!kv.ok()) return kv.status();
  o.extra_metadata = *kv;
  absl::StatusOr<std::vector<std::string>> l = ConfigStringList(cfg, kMlflowDest, "log_metrics");
  if (!l.ok()) return l.status();
  o.log_metrics = *l;
  absl::StatusOr<bool> b = ConfigBool(cfg, kMlflowDest, "log_artifacts", o.log_artifacts);
  if (!b.ok()) return b.status();
  o.log_artifacts = *b;
  b = ConfigBool(cfg, kMlflowDest, "skip_existing", o.skip_existing);
  if (!b.ok()) return b.status();
  o.skip_existing = *b;
  return o;
}

MlflowExporter::MlflowExporter(MlflowExportOptions options, MlflowClient::Options client)
    : options_(std::move(options)), client_([&] {
        client.tracking_uri = options_.tracking_uri;
        return client;
      }()) {}

absl::StatusOr<MlflowExporter> MlflowExporter::FromConfig(const json& cfg, const std::string& token,
                                                          MlflowClient::Options client) {
  absl::StatusOr<MlflowExportOptions> o = ParseMlflowConfig(cfg);
  if (!o.ok()) return o.status();
  client.token = token;
  return MlflowExporter(std::move(*o), std::move(client));
}

JobExportResult MlflowExporter::ExportRun(const RunSpec& spec) const {
  JobExportResult r;
  r.job_id = spec.result_id;
  auto fail = [&r](const absl::Status& s) {
    r.success = false;
    r.message = std::string(s.message());
    return r;
  };
  absl::StatusOr<std::string> eid = client_.GetOrCreateExperiment(options_.experiment_name);
  if (!eid.ok()) return fail(eid.status());
  const std::string& uri = client_.tracking_uri();
  auto url_of = [&](const std::string& run_id) {
    return absl::StrCat(uri, "/#/experiments/", *eid, "/runs/", run_id);
  };
  r.metadata["experiment_id"] = *eid;
  r.metadata["tracking_uri"] = uri;
  if (options_.skip_existing) {
    absl::StatusOr<std::vector<json>> runs = client_.SearchRuns(*eid, spec.search_filter);
    if (!runs.ok()) return fail(runs.status());
    if (!runs->empty()) {
      const std::string run_id = (*runs)[0]["info"].value("run_id", std::string());
      r.success = true;
      r.message = absl::StrCat("Skipped: MLflow run ", run_id, " already exists (",
                               spec.search_filter, ")");
      r.metadata["run_id"] = run_id;
      r.metadata["run_url"] = url_of(run_id);
      r.metadata["skipped"] = true;
      return r;
    }
  }
  absl::StatusOr<json> info = client_.CreateRun(*eid, spec.run_name, NowMs(), spec.tags);
  if (!info.ok()) return fail(info.status());
  const std::string run_id = (*info)["run_id"].get<std::string>();
  r.metadata["run_id"] = run_id;
  r.metadata["run_url"] = url_of(run_id);
  auto fail_run = [&](const absl::Status& s) {
    // Best effort: the run is marked FAILED so it is not left RUNNING forever.
    (void)client_.UpdateRun(run_id, "FAILED", NowMs());
    return fail(s);
  };
  std::vector<MlflowMetric> metrics;
  const int64_t now = NowMs();
  for (const auto& [k, v] : spec.metrics) metrics.push_back({k, v, now, 0});
  if (absl::Status s = client_.LogBatch(run_id, metrics, spec.params, {}); !s.ok()) {
    return fail_run(s);
  }
  json artifacts = json::array();
  if (options_.log_artifacts) {
    const std::string artifact_uri = info->value("artifact_uri", std::string());
    for (const auto& [path, content] : spec.contents) {
      if (absl::Status s = client_.UploadArtifact(artifact_uri, path, content); !s.ok()) {
        return fail_run(s);
      }
      artifacts.push_back(path);
    }
    for (const auto& [path, file] : spec.files) {
      absl::StatusOr<std::string> content = ReadWholeFile(file);
      if (!content.ok()) return fail_run(content.status());
      if (absl::Status s = client_.UploadArtifact(artifact_uri, path, *content); !s.ok()) {
        return fail_run(s);
      }
      artifacts.push_back(path);
    }
  }
  if (absl::Status s = client_.UpdateRun(run_id, "FINISHED", NowMs()); !s.ok()) return fail(s);
  r.success = true;
  r.message = absl::StrCat("Exported ", metrics.size(), " metrics, ", spec.params.size(),
                           " params and ", artifacts.size(), " artifacts to MLflow run ", run_id);
  r.metadata["metrics_logged"] = metrics.size();
  r.metadata["params_logged"] = spec.params.size();
  r.metadata["artifacts_logged"] = artifacts;
  return r;
}

JobExportResult MlflowExporter::ExportJob(const JobExportInput& job) const {
  JobExportResult r;
  r.job_id = job.job_id;
  ArtifactCheck check = CheckArtifacts(job.artifacts_dir);
  if (!check.can_export) {
    r.message = check.message;
    return r;
  }
  absl::StatusOr<MetricMap> metrics = ExtractMetrics(job.artifacts_dir, options_.log_metrics);
  if (!metrics.ok()) {
    r.message = std::string(metrics.status().message());
    return r;
  }
  const std::string benchmark = BenchmarkName(job.task_name, job.harness);
  RunSpec spec;
  spec.result_id = job.job_id;
  spec.run_name = options_.run_name.empty()
                      ? absl::StrCat("eval-", job.invocation_id, "-", benchmark)
                      : options_.run_name;
  spec.search_filter = absl::StrCat("tags.invocation_id = ", SqlQuoted(job.invocation_id),
                                    " and tags.job_id = ", SqlQuoted(job.job_id));
  spec.metrics = std::move(*metrics);
  KeyValues params = {{"invocation_id", job.invocation_id},
                      {"executor", job.executor},
                      {"timestamp", job.timestamp}};
  for (const auto& kv : options_.extra_metadata) Put(params, kv.first, kv.second);
  spec.params = CleanParams(params);
  KeyValues tags = options_.tags;
  for (const auto& [k, v] : KeyValues{{"invocation_id", job.invocation_id},
                                      {"job_id", job.job_id},
                                      {"task_name", benchmark},
                                      {"benchmark", benchmark},
                                      {"harness", job.harness},
                                      {"executor", job.executor}}) {
    Put(tags, k, v);
  }
  if (!options_.description.empty()) Put(tags, "mlflow.note.content", options_.description);
  spec.tags = CleanTags(tags);
  if (!job.config_yaml.empty()) spec.contents.emplace_back("config.yaml", job.config_yaml);
  for (const std::string& f : check.present) {
    spec.files.emplace_back(absl::StrCat(benchmark, "/", f),
                            (fs::path(job.artifacts_dir) / f).string());
  }
  return ExportRun(spec);
}

InvocationExportResult MlflowExporter::ExportInvocation(
    const std::vector<JobExportInput>& jobs) const {
  InvocationExportResult out;
  if (jobs.empty()) {
    out.message = "no jobs to export";
    return out;
  }
  const std::string& inv = jobs.front().invocation_id;
  RunSpec spec;
  spec.result_id = inv;
  spec.run_name = options_.run_name.empty() ? absl::StrCat("eval-", inv) : options_.run_name;
  spec.search_filter = absl::StrCat("tags.invocation_id = ", SqlQuoted(inv));
  std::map<std::string, std::string> metric_job;
  size_t exported_jobs = 0;
  for (const JobExportInput& job : jobs) {
    JobExportResult jr;
    jr.job_id = job.job_id;
    ArtifactCheck check = CheckArtifacts(job.artifacts_dir);
    absl::StatusOr<MetricMap> metrics =
        check.can_export ? ExtractMetrics(job.artifacts_dir, options_.log_metrics)
                         : absl::StatusOr<MetricMap>(absl::FailedPreconditionError(check.message));
    if (!metrics.ok()) {
      jr.message = std::string(metrics.status().message());
      out.jobs.push_back(std::move(jr));
      continue;
    }
    for (const auto& [k, v] : *metrics) {
      auto [it, inserted] = spec.metrics.emplace(k, v);
      if (!inserted && it->second != v) {
        out.message =
            absl::StrCat("metric conflict: '", k, "' is ", MetricText(it->second), " (job ",
                         metric_job[k], ") and ", MetricText(v), " (job ", job.job_id, ")");
        return out;
      }
      metric_job.emplace(k, job.job_id);
    }
    const std::string benchmark = BenchmarkName(job.task_name, job.harness);
    for (const std::string& f : check.present) {
      spec.files.emplace_back(absl::StrCat(benchmark, "/", f),
                              (fs::path(job.artifacts_dir) / f).string());
    }
    if (spec.contents.empty() && !job.config_yaml.empty()) {
      spec.contents.emplace_back("config.yaml", job.config_yaml);
    }
    jr.success = true;
    out.jobs.push_back(std::move(jr));
    ++exported_jobs;
  }
  if (exported_jobs == 0) {
    out.message = "no job of the invocation can be exported";
    return out;
  }
  KeyValues params = {{"invocation_id", inv},
                      {"executor", jobs.front().executor},
                      {"timestamp", jobs.front().timestamp},
                      {"jobs_count", std::to_string(jobs.size())}};
  for (const auto& kv : options_.extra_metadata) Put(params, kv.first, kv.second);
  spec.params = CleanParams(params);
  KeyValues tags = options_.tags;
  Put(tags, "invocation_id", inv);
  Put(tags, "executor", jobs.front().executor);
  if (!options_.description.empty()) Put(tags, "mlflow.note.content", options_.description);
  spec.tags = CleanTags(tags);
  JobExportResult run = ExportRun(spec);
  out.success = run.success && exported_jobs == jobs.size();
  out.message = run.message;
  out.metadata = run.metadata;
  for (JobExportResult& jr : out.jobs) {
    if (!jr.success) continue;
    jr.success = run.success;
    jr.message = run.message;
    jr.metadata = run.metadata;
  }
  return out;
}

}  // namespace evald::daemon::exporters
