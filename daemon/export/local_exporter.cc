#include "daemon/export/local_exporter.h"

#include <filesystem>
#include <map>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "daemon/export/export_config.h"
#include "daemon/export/file_util.h"

namespace evald::daemon::exporters {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr const char* kLocalDest = "local";
const std::vector<std::string> kCsvFixed = {"Model Name", "Harness",       "Task Name", "Executor",
                                            "Container",  "Invocation ID", "Job ID"};

std::string NowIso() {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E6S", absl::Now(), absl::UTCTimeZone());
}

// RFC 4180: fields with a comma, quote, CR or LF are quoted, quotes doubled.
std::string CsvField(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

absl::StatusOr<std::vector<std::vector<std::string>>> ParseCsv(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string field;
  bool quoted = false, any = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          field += '"';
          ++i;
        } else {
          quoted = false;
        }
      } else {
        field += c;
      }
      continue;
    }
    if (c == '"') {
      quoted = true;
      any = true;
    } else if (c == ',') {
      row.push_back(std::move(field));
      field.clear();
      any = true;
    } else if (c == '\r' || c == '\n') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      if (any || !field.empty()) {
        row.push_back(std::move(field));
        rows.push_back(std::move(row));
      }
      row.clear();
      field.clear();
      any = false;
    } else {
      field += c;
      any = true;
    }
  }
  if (quoted) return absl::InvalidArgumentError("unterminated quoted field");
  if (any || !field.empty()) {
    row.push_back(std::move(field));
    rows.push_back(std::move(row));
  }
  return rows;
}

std::string CsvColumn(const std::string& key, const std::string& benchmark) {
  const std::string prefix = absl::StrCat(benchmark, "_");
  if (absl::StartsWith(key, prefix) && key.size() > prefix.size()) {
    return key.substr(prefix.size());
  }
  return key;
}

json EntryJson(const SummaryEntry& e) {
  json scores = json::object();
  for (const auto& [k, v] : e.metrics) scores[k] = v;
  return json{{"invocation_id", e.invocation_id},
              {"job_id", e.job_id},
              {"harness", e.harness},
              {"container", e.container},
              {"scores", scores},
              {"timestamp", e.timestamp},
              {"executor", e.executor}};
}

// Copies every regular file under `from` to `to`, keeping the relative paths; symlinks are not
// followed (a job's artifacts dir is the job's, its links could point anywhere).
absl::Status CopyTree(const fs::path& from, const fs::path& to, int* files) {
  std::error_code ec;
  if (!fs::is_directory(from, ec)) return absl::OkStatus();
  for (fs::recursive_directory_iterator it(from, fs::directory_options::none, ec), end;
       !ec && it != end; it.increment(ec)) {
    if (!it->is_regular_file(ec) || it->is_symlink(ec)) continue;
    const fs::path rel = fs::relative(it->path(), from, ec);
    if (ec) break;
    absl::Status s = CopyFileAtomic(it->path().string(), (to / rel).string());
    if (!s.ok()) return s;
    ++*files;
  }
  if (ec)
    return absl::InternalError(absl::StrCat("cannot list ", from.string(), ": ", ec.message()));
  return absl::OkStatus();
}

}  // namespace

ArtifactCheck CheckArtifacts(const std::string& artifacts_dir) {
  ArtifactCheck c;
  std::vector<std::string> missing_required, missing_optional;
  std::error_code ec;
  for (const char* f : kRequiredArtifacts) {
    if (fs::is_regular_file(fs::path(artifacts_dir) / f, ec)) {
      c.present.push_back(f);
    } else {
      missing_required.push_back(f);
    }
  }
  for (const char* f : kOptionalArtifacts) {
    if (fs::is_regular_file(fs::path(artifacts_dir) / f, ec)) {
      c.present.push_back(f);
    } else {
      missing_optional.push_back(f);
    }
  }
  c.can_export = missing_required.empty();
  if (!missing_required.empty()) {
    c.message = absl::StrCat("Missing required: ", absl::StrJoin(missing_required, ", "));
  } else if (!missing_optional.empty()) {
    c.message = absl::StrCat("Missing optional: ", absl::StrJoin(missing_optional, ", "));
  } else {
    c.message = "All artifacts available";
  }
  return c;
}

absl::StatusOr<LocalExportOptions> ParseLocalConfig(const json& cfg) {
  LocalExportOptions o;
  absl::StatusOr<std::string> s = ConfigString(cfg, kLocalDest, "output_dir", o.output_dir);
  if (!s.ok()) return s.status();
  o.output_dir = *s;
  absl::StatusOr<bool> b = ConfigBool(cfg, kLocalDest, "copy_logs", o.copy_logs);
  if (!b.ok()) return b.status();
  o.copy_logs = *b;
  b = ConfigBool(cfg, kLocalDest, "only_required", o.only_required);
  if (!b.ok()) return b.status();
  o.only_required = *b;
  b = ConfigBool(cfg, kLocalDest, "copy_artifacts", o.copy_artifacts);
  if (!b.ok()) return b.status();
  o.copy_artifacts = *b;
  s = ConfigString(cfg, kLocalDest, "format", "");
  if (!s.ok()) return s.status();
  o.format = *s == "none" ? "" : *s;
  if (!o.format.empty() && o.format != "json" && o.format != "csv") {
    return absl::InvalidArgumentError(
        absl::StrCat("export config local.format must be json, csv or none, not '", *s, "'"));
  }
  absl::StatusOr<std::vector<std::string>> l = ConfigStringList(cfg, kLocalDest, "log_metrics");
  if (!l.ok()) return l.status();
  o.log_metrics = *l;
  s = ConfigString(cfg, kLocalDest, "output_filename", "");
  if (!s.ok()) return s.status();
  o.output_filename = *s;
  if (o.output_filename.find('/') != std::string::npos || o.output_filename == "." ||
      o.output_filename == "..") {
    return absl::InvalidArgumentError(
        "export config local.output_filename must be a file name, not a path");
  }
  if (o.output_dir.empty()) {
    return absl::InvalidArgumentError("export config local.output_dir is empty");
  }
  return o;
}

absl::StatusOr<std::string> UpsertJsonSummary(const std::string& existing,
                                              const std::vector<SummaryEntry>& entries,
                                              const std::string& export_timestamp) {
  json root = json::object();
  if (!existing.empty()) {
    root = json::parse(existing, nullptr, /*allow_exceptions=*/false);
    if (!root.is_object() || (root.contains("benchmarks") && !root["benchmarks"].is_object())) {
      return absl::InvalidArgumentError("not a processed_results JSON summary");
    }
  }
  std::set<std::pair<std::string, std::string>> replaced;
  for (const SummaryEntry& e : entries) replaced.emplace(e.invocation_id, e.job_id);
  json& benchmarks = root["benchmarks"];
  if (!benchmarks.is_object()) benchmarks = json::object();
  for (auto& [bname, bench] : benchmarks.items()) {
    if (!bench.is_object() || !bench["models"].is_object()) continue;
    for (auto& [mname, list] : bench["models"].items()) {
      if (!list.is_array()) continue;
      json kept = json::array();
      for (json& item : list) {
        const bool same =
            item.is_object() && replaced.count({item.value("invocation_id", std::string()),
                                                item.value("job_id", std::string())}) != 0;
        if (!same) kept.push_back(std::move(item));
      }
      list = std::move(kept);
    }
  }
  for (const SummaryEntry& e : entries) {
    benchmarks[e.benchmark]["models"][e.model].push_back(EntryJson(e));
  }
  // Drop what the replacements emptied (a job that moved to another benchmark or model name).
  for (auto bit = benchmarks.begin(); bit != benchmarks.end();) {
    json& models = (*bit)["models"];
    for (auto mit = models.begin(); mit != models.end();) {
      mit = mit->is_array() && mit->empty() ? models.erase(mit) : std::next(mit);
    }
    bit = models.empty() ? benchmarks.erase(bit) : std::next(bit);
  }
  root["export_timestamp"] = export_timestamp;
  return root.dump(2) + "\n";
}

absl::StatusOr<std::string> UpsertCsvSummary(const std::string& existing,
                                             const std::vector<SummaryEntry>& entries) {
  std::vector<std::string> header = kCsvFixed;
  std::vector<std::vector<std::string>> rows;
  if (!existing.empty()) {
    absl::StatusOr<std::vector<std::vector<std::string>>> parsed = ParseCsv(existing);
    if (!parsed.ok() || parsed->empty() || parsed->front().size() < kCsvFixed.size() ||
        !std::equal(kCsvFixed.begin(), kCsvFixed.end(), parsed->front().begin())) {
      return absl::InvalidArgumentError("not a processed_results CSV summary");
    }
    header = parsed->front();
    rows.assign(parsed->begin() + 1, parsed->end());
  }
  std::map<std::string, size_t> column;
  for (size_t i = 0; i < header.size(); ++i) column.emplace(header[i], i);
  std::set<std::string> added;
  for (const SummaryEntry& e : entries) {
    for (const auto& kv : e.metrics) {
      std::string c = CsvColumn(kv.first, e.benchmark);
      if (column.count(c) == 0) added.insert(c);
    }
  }
  for (const std::string& c : added) {  // std::set: new columns sorted
    column.emplace(c, header.size());
    header.push_back(c);
  }
  const size_t inv_col = 5, job_col = 6;
  std::map<std::pair<std::string, std::string>, size_t> row_of;
  for (size_t r = 0; r < rows.size(); ++r) {
    rows[r].resize(header.size());
    row_of[{rows[r][inv_col], rows[r][job_col]}] = r;
  }
  for (const SummaryEntry& e : entries) {
    std::vector<std::string> row(header.size());
    row[0] = e.model;
    row[1] = e.harness;
    row[2] = e.benchmark;
    row[3] = e.executor;
    row[4] = e.container;
    row[inv_col] = e.invocation_id;
    row[job_col] = e.job_id;
    for (const auto& [k, v] : e.metrics) row[column[CsvColumn(k, e.benchmark)]] = MetricText(v);
    auto it = row_of.find({e.invocation_id, e.job_id});
    if (it != row_of.end()) {
      rows[it->second] = std::move(row);
    } else {
      row_of[{e.invocation_id, e.job_id}] = rows.size();
      rows.push_back(std::move(row));
    }
  }
  std::string out;
  auto emit = [&out](const std::vector<std::string>& r) {
    for (size_t i = 0; i < r.size(); ++i) {
      if (i > 0) out += ',';
      out += CsvField(r[i]);
    }
    out += "\r\n";  // Python's csv module default, which the reference's files have
  };
  emit(header);
  for (const auto& r : rows) emit(r);
  return out;
}

absl::StatusOr<LocalExporter> LocalExporter::FromConfig(const json& cfg) {
  absl::StatusOr<LocalExportOptions> o = ParseLocalConfig(cfg);
  if (!o.ok()) return o.status();
  return LocalExporter(std::move(*o));
}

std::string LocalExporter::SummaryName() const {
  if (!options_.output_filename.empty()) return options_.output_filename;
  return absl::StrCat("processed_results.", options_.format);
}

JobExportResult LocalExporter::CopyJob(const JobExportInput& job, SummaryEntry* entry,
                                       int* files) const {
  JobExportResult r;
  r.job_id = job.job_id;
  // The ids become folder names under output_dir: nothing that could leave it.
  for (const std::string* id : {&job.invocation_id, &job.job_id}) {
    if (id->empty() || *id == "." || *id == ".." || id->find('/') != std::string::npos ||
        id->find('\0') != std::string::npos) {
      r.message = absl::StrCat("invalid id '", *id, "' for a folder name");
      return r;
    }
  }
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
  const fs::path job_out = fs::path(options_.output_dir) / job.invocation_id / job.job_id;
  const fs::path artifacts(job.artifacts_dir);
  absl::Status s;
  if (!options_.copy_artifacts) {
    // Summary only: nothing of the artifacts tree is copied.
  } else if (options_.only_required) {
    for (const std::string& f : check.present) {
      s = CopyFileAtomic((artifacts / f).string(), (job_out / "artifacts" / f).string());
      if (!s.ok()) break;
      ++*files;
    }
  } else {
    s = CopyTree(artifacts, job_out / "artifacts", files);
  }
  if (s.ok() && (options_.copy_logs || !options_.only_required) && !job.logs_dir.empty()) {
    s = CopyTree(job.logs_dir, job_out / "logs", files);
  }
  if (s.ok()) {
    json meta = {{"invocation_id", job.invocation_id},
                 {"job_id", job.job_id},
                 {"executor", job.executor},
                 {"timestamp", job.timestamp}};
    s = WriteFileAtomic((job_out / "job_metadata.json").string(), meta.dump(2) + "\n",
                        /*durable=*/false);
  }
  if (!s.ok()) {
    r.message = std::string(s.message());
    return r;
  }
  r.success = true;
  r.message = absl::StrCat("Exported ", *files, " files. ", check.message);
  r.metadata["files_count"] = *files;
  entry->invocation_id = job.invocation_id;
  entry->job_id = job.job_id;
  entry->benchmark = BenchmarkName(job.task_name, job.harness);
  entry->model =
      job.model_name.empty() ? absl::StrCat("unknown_model_", job.job_id) : job.model_name;
  entry->harness = job.harness;
  entry->container = job.container;
  entry->executor = job.executor;
  entry->timestamp = job.timestamp;
  entry->metrics = std::move(*metrics);
  return r;
}

absl::Status LocalExporter::UpsertSummary(const std::string& path,
                                          const std::vector<SummaryEntry>& entries) const {
  absl::StatusOr<FileLock> lock = FileLock::Acquire(path + ".lock");
  if (!lock.ok()) return lock.status();
  std::string existing;
  if (absl::StatusOr<std::string> text = ReadWholeFile(path); text.ok()) existing = *text;
  absl::StatusOr<std::string> updated = options_.format == "json"
                                            ? UpsertJsonSummary(existing, entries, NowIso())
                                            : UpsertCsvSummary(existing, entries);
  if (!updated.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": ", updated.status().message(), "; left unchanged"));
  }
  return WriteFileAtomic(path, *updated);
}

InvocationExportResult LocalExporter::Export(const std::vector<JobExportInput>& jobs,
                                             bool consolidated) const {
  InvocationExportResult out;
  out.success = true;
  std::map<std::string, std::vector<SummaryEntry>> by_invocation;
  std::map<std::string, std::vector<size_t>> results_by_invocation;
  for (const JobExportInput& job : jobs) {
    SummaryEntry entry;
    int files = 0;
    JobExportResult r = CopyJob(job, &entry, &files);
    if (r.success) {
      by_invocation[job.invocation_id].push_back(std::move(entry));
      results_by_invocation[job.invocation_id].push_back(out.jobs.size());
    } else {
      out.success = false;
    }
    out.jobs.push_back(std::move(r));
  }
  if (options_.format.empty()) return out;
  std::vector<SummaryEntry> all;
  for (auto& [inv, entries] : by_invocation) {
    const std::string path = (fs::path(options_.output_dir) / inv / SummaryName()).string();
    absl::Status s = UpsertSummary(path, entries);
    for (size_t idx : results_by_invocation[inv]) {
      JobExportResult& r = out.jobs[idx];
      if (s.ok()) {
        absl::StrAppend(&r.message, ". Summary: ", path);
        r.metadata["summary_path"] = path;
      } else {
        r.success = false;
        r.message = std::string(s.message());
      }
    }
    if (!s.ok()) {
      out.success = false;
      if (out.message.empty()) out.message = std::string(s.message());
      continue;
    }
    if (consolidated) all.insert(all.end(), entries.begin(), entries.end());
  }
  if (consolidated && !all.empty()) {
    const std::string path = (fs::path(options_.output_dir) / SummaryName()).string();
    absl::Status s = UpsertSummary(path, all);
    if (s.ok()) {
      out.metadata["summary_path"] = path;
    } else {
      out.success = false;
      if (out.message.empty()) out.message = std::string(s.message());
    }
  }
  return out;
}

JobExportResult LocalExporter::ExportJob(const JobExportInput& job) const {
  InvocationExportResult r = Export({job}, /*consolidated=*/false);
  return std::move(r.jobs.front());
}

}  // namespace evald::daemon::exporters
