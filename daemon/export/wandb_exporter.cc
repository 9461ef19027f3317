#include "daemon/export/wandb_exporter.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <random>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "daemon/export/export_config.h"
#include "daemon/export/file_util.h"
#include "daemon/export/local_exporter.h"
#include "daemon/export/metrics_extract.h"
#include "executors/common/http_attempt.h"

namespace evald::daemon::exporters {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr const char* kWandbDest = "wandb";

// The queries as W&B's Python client sends them (wandb/sdk/internal/internal_api.py), cut to the
// fields read here.
constexpr char kRunResumeStatus[] =
    R"(query RunResumeStatus($project: String, $entity: String, $name: String!) {
  model(name: $project, entityName: $entity) {
    id
    name
    entity { id name }
    bucket(name: $name, missingOk: true) {
      id
      name
      displayName
      summaryMetrics
      historyLineCount
      config
      tags
    }
  }
})";

constexpr char kRuns[] =
    R"(query Runs($project: String!, $entity: String, $filters: JSONString, $perPage: Int) {
  project(name: $project, entityName: $entity) {
    runs(filters: $filters, first: $perPage) {
      edges { node { id name displayName } }
    }
  }
})";

constexpr char kUpsertBucket[] =
    R"(mutation UpsertBucket($id: String, $name: String, $project: String, $entity: String, $groupName: String, $description: String, $displayName: String, $notes: String, $config: JSONString, $jobType: String, $tags: [String!], $summaryMetrics: JSONString) {
  upsertBucket(input: {id: $id, name: $name, groupName: $groupName, modelName: $project, entityName: $entity, description: $description, displayName: $displayName, notes: $notes, config: $config, jobType: $jobType, tags: $tags, summaryMetrics: $summaryMetrics}) {
    bucket {
      id
      name
      displayName
      project { id name entity { id name } }
    }
    inserted
  }
})";

constexpr char kRunUploadUrls[] =
    R"(query RunUploadUrls($name: String!, $files: [String]!, $entity: String, $run: String!, $description: String) {
  model(name: $name, entityName: $entity) {
    bucket(name: $run, desc: $description) {
      id
      files(names: $files) {
        uploadHeaders
        edges { node { name url(upload: true) updatedAt } }
      }
    }
  }
})";

// `errors[].message` of a GraphQL or W&B error body, else its start.
std::string WandbErrorText(const std::string& body) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_object()) {
    std::vector<std::string> messages;
    if (j.contains("errors") && j["errors"].is_array()) {
      for (const json& e : j["errors"]) {
        if (e.is_string()) messages.push_back(e.get<std::string>());
        if (e.is_object() && e.contains("message") && e["message"].is_string()) {
          messages.push_back(e["message"].get<std::string>());
        }
      }
    }
    if (j.contains("error") && j["error"].is_string()) messages.push_back(j["error"]);
    if (!messages.empty()) return absl::StrJoin(messages, "; ");
  }
  return BodyStart(body);
}

std::string NewRunId() {
  // W&B's own ids: 8 characters of [a-z0-9].
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* kChars = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string id;
  for (int i = 0; i < 8; ++i) id += kChars[rng() % 36];
  return id;
}

// The app's address for run URLs: the cloud API's is wandb.ai; a self-hosted server serves both.
std::string AppUrl(const std::string& base_url) {
  if (base_url == "https://api.wandb.ai") return "https://wandb.ai";
  return base_url;
}

// A JSONString field (W&B sends config and summaryMetrics as JSON text) as an object.
json JsonStringField(const json& v) {
  if (v.is_object()) return v;
  if (!v.is_string()) return json::object();
  json j = json::parse(v.get<std::string>(), nullptr, false);
  return j.is_object() ? j : json::object();
}

// Appends `item` to the list at config[key].value unless it is there.
void AddToList(json& config, const std::string& key, const std::string& item) {
  json list = config.contains(key) && config[key].is_object() && config[key]["value"].is_array()
                  ? config[key]["value"]
                  : json::array();
  if (std::find(list.begin(), list.end(), json(item)) == list.end()) list.push_back(item);
  config[key] = {{"desc", nullptr}, {"value", list}};
}

}  // namespace

struct WandbExporter::Run {
  bool exists = false;
  std::string entity;
  json config = json::object();  // W&B form: {key: {desc, value}}
  json summary = json::object();
  int64_t history_lines = 0;
};

absl::StatusOr<WandbExportOptions> ParseWandbConfig(const json& cfg) {
  WandbExportOptions o;
  for (auto [key, out] :
       {std::pair{"base_url", &o.base_url}, std::pair{"entity", &o.entity},
        std::pair{"project", &o.project}, std::pair{"name", &o.name}, std::pair{"group", &o.group},
        std::pair{"job_type", &o.job_type}, std::pair{"description", &o.description},
        std::pair{"log_mode", &o.log_mode}, std::pair{"run_id", &o.run_id}}) {
    absl::StatusOr<std::string> s = ConfigString(cfg, kWandbDest, key, *out);
    if (!s.ok()) return s.status();
    *out = *s;
  }
  while (absl::EndsWith(o.base_url, "/")) o.base_url.pop_back();
  if (o.project.empty()) {
    return absl::InvalidArgumentError(
        "export config wandb.project is required (the W&B project to log runs to)");
  }
  if (o.log_mode != "per_task" && o.log_mode != "multi_task") {
    return absl::InvalidArgumentError(absl::StrCat(
        "export config wandb.log_mode must be per_task or multi_task, not '", o.log_mode, "'"));
  }
  if (!absl::StartsWith(o.base_url, "http://") && !absl::StartsWith(o.base_url, "https://")) {
    return absl::InvalidArgumentError(absl::StrCat(
        "export config wandb.base_url must be an http(s) URL, not '", o.base_url, "'"));
  }
  const size_t host = o.base_url.find("//") + 2;
  if (o.base_url.substr(host, o.base_url.find('/', host) - host).find('@') != std::string::npos) {
    return absl::InvalidArgumentError(
        "export config wandb.base_url must not hold credentials; give the key as the "
        "WANDB_API_KEY secret");
  }
  absl::StatusOr<std::vector<std::string>> l = ConfigStringList(cfg, kWandbDest, "tags");
  if (!l.ok()) return l.status();
  o.tags = *l;
  l = ConfigStringList(cfg, kWandbDest, "log_metrics");
  if (!l.ok()) return l.status();
  o.log_metrics = *l;
  absl::StatusOr<bool> b = ConfigBool(cfg, kWandbDest, "log_artifacts", o.log_artifacts);
  if (!b.ok()) return b.status();
  o.log_artifacts = *b;
  auto extra = cfg.find("extra_metadata");
  if (extra != cfg.end() && !extra->is_null()) {
    if (!extra->is_object()) {
      return absl::InvalidArgumentError("export config wandb.extra_metadata must be a mapping");
    }
    o.extra_metadata = *extra;
  }
  return o;
}

WandbExporter::WandbExporter(WandbExportOptions options, std::string api_key,
                             RestClientOptions client)
    : options_(std::move(options)),
      auth_header_(absl::StrCat("Authorization: Basic ", absl::Base64Escape("api:" + api_key))),
      client_("W&B", client, {api_key, absl::Base64Escape("api:" + api_key)}, WandbErrorText) {}

absl::StatusOr<WandbExporter> WandbExporter::FromConfig(const json& cfg, const std::string& api_key,
                                                        RestClientOptions client) {
  absl::StatusOr<WandbExportOptions> o = ParseWandbConfig(cfg);
  if (!o.ok()) return o.status();
  if (api_key.empty()) {
    return absl::InvalidArgumentError(
        "export to wandb: the API key is required: set WANDB_API_KEY (sent to evald as a secret)");
  }
  if (absl::Status s = http::CheckHeaderToken(api_key, "WANDB_API_KEY"); !s.ok()) return s;
  return WandbExporter(std::move(*o), api_key, client);
}

absl::StatusOr<json> WandbExporter::Graphql(const std::string& operation, const std::string& query,
                                            const json& variables) const {
  const std::string body = json{{"query", query}, {"variables", variables}}.dump();
  RestCall call{.method = "POST",
                .url = options_.base_url + "/graphql",
                .route = "/graphql " + operation,
                .body = &body,
                .headers = {auth_header_},
                .unauthorized_hint = "the W&B API key was refused; check WANDB_API_KEY"};
  absl::StatusOr<json> r = client_.CallJson(call);
  if (!r.ok()) return r.status();
  if (r->contains("errors") && (*r)["errors"].is_array() && !(*r)["errors"].empty()) {
    // A GraphQL error comes back with HTTP 200: a refused request, not a transient one.
    return absl::InvalidArgumentError(client_.Scrub(
        absl::StrCat("W&B GraphQL error in ", operation, ": ", WandbErrorText(r->dump()))));
  }
  return (*r)["data"].is_object() ? (*r)["data"] : json::object();
}

absl::StatusOr<std::string> WandbExporter::FindRunByDisplayName(
    const std::string& display_name) const {
  json vars = {{"project", options_.project},
               {"entity", options_.entity.empty() ? json(nullptr) : json(options_.entity)},
               {"filters", json{{"display_name", display_name}}.dump()},
               {"perPage", 1}};
  absl::StatusOr<json> data = Graphql("Runs", kRuns, vars);
  if (!data.ok()) return data.status();
  const json& project = (*data)["project"];
  if (!project.is_object()) return std::string();  // no such project yet: no run either
  const json& edges = project["runs"]["edges"];
  if (!edges.is_array() || edges.empty()) return std::string();
  return edges[0]["node"].value("name", std::string());
}

absl::StatusOr<WandbExporter::Run> WandbExporter::ResumeStatus(const std::string& run_id) const {
  json vars = {{"project", options_.project},
               {"entity", options_.entity.empty() ? json(nullptr) : json(options_.entity)},
               {"name", run_id}};
  absl::StatusOr<json> data = Graphql("RunResumeStatus", kRunResumeStatus, vars);
  if (!data.ok()) return data.status();
  Run run;
  const json& model = (*data)["model"];
  if (!model.is_object()) return run;
  if (model["entity"].is_object()) run.entity = model["entity"].value("name", std::string());
  const json& bucket = model["bucket"];
  if (!bucket.is_object()) return run;
  run.exists = true;
  run.config = JsonStringField(bucket["config"]);
  run.summary = JsonStringField(bucket["summaryMetrics"]);
  if (bucket["historyLineCount"].is_number_integer()) {
    run.history_lines = bucket["historyLineCount"].get<int64_t>();
  }
  return run;
}

absl::Status WandbExporter::FileStream(const std::string& entity, const std::string& run_id,
                                       const json& body) const {
  const std::string route =
      absl::StrCat("/files/", http::UrlEscape(entity), "/", http::UrlEscape(options_.project), "/",
                   http::UrlEscape(run_id), "/file_stream");
  const std::string text = body.dump();
  RestCall call{.method = "POST",
                .url = options_.base_url + route,
                .route = route,
                .body = &text,
                .headers = {auth_header_},
                .unauthorized_hint = "the W&B API key was refused; check WANDB_API_KEY"};
  return client_.Call(call).status();
}

absl::StatusOr<std::vector<std::string>> WandbExporter::UploadFiles(
    const std::string& entity, const std::string& run_id,
    const std::vector<std::pair<std::string, std::string>>& files) const {
  std::vector<std::string> uploaded;
  if (files.empty()) return uploaded;
  json names = json::array();
  for (const auto& f : files) names.push_back(f.first);
  absl::StatusOr<json> data =
      Graphql("RunUploadUrls", kRunUploadUrls,
              {{"name", options_.project}, {"entity", entity}, {"run", run_id}, {"files", names}});
  if (!data.ok()) return data.status();
  const json& fs_json = (*data)["model"]["bucket"]["files"];
  if (!fs_json.is_object()) {
    return absl::InternalError("W&B RunUploadUrls: no model.bucket.files in the answer");
  }
  std::vector<std::string> headers;
  if (fs_json["uploadHeaders"].is_array()) {
    for (const json& h : fs_json["uploadHeaders"]) {
      // W&B sends them as "Name:value".
      if (h.is_string()) headers.push_back(h.get<std::string>());
    }
  }
  std::map<std::string, std::string> urls;
  for (const json& e : fs_json["edges"]) {
    const json& node = e["node"];
    if (node.is_object() && node["url"].is_string()) urls[node.value("name", "")] = node["url"];
  }
  for (const auto& [name, content] : files) {
    auto it = urls.find(name);
    if (it == urls.end()) {
      return absl::InternalError(absl::StrCat("W&B RunUploadUrls: no upload URL for ", name));
    }
    // The signed URL is the credential: no Authorization header goes to the storage.
    RestCall put{.method = "PUT",
                 .url = it->second,
                 .route = absl::StrCat("<upload URL of ", name, ">"),
                 .body = &content,
                 .content_type = "application/octet-stream",
                 .headers = headers};
    if (absl::StatusOr<std::string> r = client_.Call(put); !r.ok()) return r.status();
    uploaded.push_back(name);
  }
  return uploaded;
}

JobExportResult WandbExporter::ExportJob(const JobExportInput& job) const {
  JobExportResult r;
  r.job_id = job.job_id;
  auto fail = [&r](const absl::Status& s) {
    r.success = false;
    r.message = std::string(s.message());
    return r;
  };
  ArtifactCheck check = CheckArtifacts(job.artifacts_dir);
  if (!check.can_export) {
    r.message = check.message;
    return r;
  }
  absl::StatusOr<MetricMap> metrics = ExtractMetrics(job.artifacts_dir, options_.log_metrics);
  if (!metrics.ok()) return fail(metrics.status());
  const std::string benchmark = BenchmarkName(job.task_name, job.harness);
  const bool multi = options_.log_mode == "multi_task";
  const std::string display_name = !options_.name.empty() ? options_.name
                                   : multi
                                       ? absl::StrCat("eval-", job.invocation_id)
                                       : absl::StrCat("eval-", job.invocation_id, "-", benchmark);

  // Which run: multi_task's is fixed; per_task's is found by its display name, else new.
  std::string run_id = multi ? (options_.run_id.empty() ? job.invocation_id : options_.run_id) : "";
  if (!multi) {
    absl::StatusOr<std::string> found = FindRunByDisplayName(display_name);
    if (!found.ok()) return fail(found.status());
    run_id = found->empty() ? NewRunId() : *found;
  }
  absl::StatusOr<Run> run = ResumeStatus(run_id);
  if (!run.ok()) return fail(run.status());

  json config = run->config;
  auto set = [&config](const std::string& k, const json& v) {
    config[k] = {{"desc", nullptr}, {"value", v}};
  };
  set("invocation_id", job.invocation_id);
  set("executor", job.executor);
  if (multi) {
    AddToList(config, "benchmarks", benchmark);
    AddToList(config, "harnesses", job.harness);
  } else {
    set("job_id", job.job_id);
    set("harness", job.harness);
    set("benchmark", benchmark);
  }
  for (const auto& [k, v] : options_.extra_metadata.items()) set(k, v);

  json vars = {{"name", run_id},
               {"project", options_.project},
               {"entity", options_.entity.empty() ? json(nullptr) : json(options_.entity)},
               {"groupName", options_.group.empty() ? job.invocation_id : options_.group},
               {"displayName", display_name},
               {"jobType", options_.job_type},
               {"config", config.dump()},
               {"tags", options_.tags}};
  if (!options_.description.empty()) vars["notes"] = options_.description;
  absl::StatusOr<json> upserted = Graphql("UpsertBucket", kUpsertBucket, vars);
  if (!upserted.ok()) return fail(upserted.status());
  const json& bucket = (*upserted)["upsertBucket"]["bucket"];
  std::string entity = options_.entity;
  if (bucket.is_object() && bucket["project"]["entity"].is_object()) {
    entity = bucket["project"]["entity"].value("name", entity);
  }
  if (entity.empty()) entity = run->entity;
  if (entity.empty()) {
    return fail(absl::InternalError("W&B UpsertBucket: the answer names no entity"));
  }
  const std::string run_url =
      absl::StrCat(AppUrl(options_.base_url), "/", entity, "/", options_.project, "/runs/", run_id);
  r.metadata["run_id"] = run_id;
  r.metadata["run_url"] = run_url;
  r.metadata["entity"] = entity;
  r.metadata["project"] = options_.project;
  r.metadata["resumed"] = run->exists;

  // One history line per job, at step <job index>; the summary always. Jobs sharing a run can
  // end (and be exported) in any order, and W&B steps only go up, so a job that comes after a
  // higher one takes the next step. `_evald_jobs` in the summary lists the jobs already logged,
  // so exporting a job again adds no line.
  const int64_t last_step =
      run->summary.contains("_step") && run->summary["_step"].is_number_integer()
          ? run->summary["_step"].get<int64_t>()
          : -1;
  const int64_t step = std::max<int64_t>(job.job_index, last_step + 1);
  json logged = run->summary.contains("_evald_jobs") && run->summary["_evald_jobs"].is_array()
                    ? run->summary["_evald_jobs"]
                    : json::array();
  const bool already_logged =
      std::find(logged.begin(), logged.end(), json(job.job_id)) != logged.end();
  const double now_s = absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch());
  json summary = run->summary;
  for (const auto& [k, v] : *metrics) summary[k] = v;
  json files = json::object();
  if (!already_logged) {
    logged.push_back(job.job_id);
    summary["_evald_jobs"] = logged;
    json line = {{"_step", step}, {"_runtime", 0}, {"_timestamp", now_s}};
    for (const auto& [k, v] : *metrics) line[k] = v;
    files["wandb-history.jsonl"] = {{"offset", run->history_lines},
                                    {"content", json::array({line.dump()})}};
    summary["_step"] = step;
  }
  summary["_timestamp"] = now_s;
  files["wandb-summary.json"] = {{"offset", 0}, {"content", json::array({summary.dump()})}};
  if (absl::Status s = FileStream(entity, run_id, {{"files", files}}); !s.ok()) return fail(s);

  json artifacts = json::array();
  if (options_.log_artifacts) {
    // As the reference's artifact: the job's config and its result files under <benchmark>/.
    std::vector<std::pair<std::string, std::string>> uploads;
    if (!job.config_yaml.empty()) uploads.emplace_back("config.yaml", job.config_yaml);
    for (const std::string& f : check.present) {
      absl::StatusOr<std::string> content =
          ReadWholeFile((fs::path(job.artifacts_dir) / f).string());
      if (!content.ok()) return fail(content.status());
      uploads.emplace_back(absl::StrCat(benchmark, "/", f), std::move(*content));
    }
    absl::StatusOr<std::vector<std::string>> up = UploadFiles(entity, run_id, uploads);
    if (!up.ok()) return fail(up.status());
    for (const std::string& n : *up) artifacts.push_back(n);
  }
  if (absl::Status s = FileStream(entity, run_id, {{"complete", true}, {"exitcode", 0}}); !s.ok()) {
    return fail(s);
  }
  r.success = true;
  r.metadata["metrics_logged"] = metrics->size();
  r.metadata["artifacts_logged"] = artifacts;
  r.message = absl::StrCat("Exported ", metrics->size(), " metrics and ", artifacts.size(),
                           " files to W&B run ", entity, "/", options_.project, "/", run_id,
                           run->exists ? " (resumed)" : "");
  return r;
}

InvocationExportResult WandbExporter::ExportInvocation(
    const std::vector<JobExportInput>& jobs) const {
  InvocationExportResult out;
  if (jobs.empty()) {
    out.message = "no jobs to export";
    return out;
  }
  out.success = true;
  for (const JobExportInput& job : jobs) {
    out.jobs.push_back(ExportJob(job));
    out.success &= out.jobs.back().success;
  }
  if (options_.log_mode == "multi_task") {
    for (const JobExportResult& j : out.jobs) {
      if (j.success) out.metadata["run_url"] = j.metadata["run_url"];
    }
  }
  return out;
}

}  // namespace evald::daemon::exporters
