#include "daemon/export/gsheets_exporter.h"

#include <algorithm>
#include <cstdlib>
#include <map>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "daemon/export/export_config.h"
#include "daemon/export/google_auth.h"
#include "daemon/export/local_exporter.h"
#include "daemon/export/metrics_extract.h"
#include "executors/common/http_attempt.h"

namespace evald::daemon::exporters {
namespace {

using json = nlohmann::json;

constexpr const char* kGsheetsDest = "gsheets";
// gspread's default scopes: the sheets, and Drive to find, create and share them.
constexpr char kScopes[] =
    "https://www.googleapis.com/auth/spreadsheets https://www.googleapis.com/auth/drive";
const std::vector<std::string> kBaseHeader = {"Model Name", "Task Name", "Invocation ID", "Job ID",
                                              "Executor"};

// `STATUS: message` of Google's API error body ({"error": {code, message, status}}).
std::string GoogleErrorText(const std::string& body) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_object() && j["error"].is_object()) {
    const json& e = j["error"];
    std::string status = e.value("status", std::string());
    std::string message = e.value("message", std::string());
    return status.empty() ? message : absl::StrCat(status, ": ", message);
  }
  return BodyStart(body);
}

// A sheet title as an A1-notation range prefix: 'Title' with quotes doubled.
std::string QuotedSheet(const std::string& title) {
  return absl::StrCat("'", absl::StrReplaceAll(title, {{"'", "''"}}), "'");
}

// The metric column of a metric key: after its first `_` (the reference's rule).
std::string ColumnOf(const std::string& key) {
  size_t p = key.find('_');
  return p == std::string::npos ? key : key.substr(p + 1);
}

std::string CellText(const json& v) {
  return v.is_string() ? v.get<std::string>() : v.is_null() ? std::string() : v.dump();
}

std::string ExpandHome(const std::string& path) {
  if (!absl::StartsWith(path, "~/")) return path;
  const char* home = std::getenv("HOME");
  return absl::StrCat(home == nullptr ? "" : home, path.substr(1));
}

}  // namespace

absl::StatusOr<GsheetsExportOptions> ParseGsheetsConfig(const json& cfg) {
  GsheetsExportOptions o;
  for (auto [key, out] : {std::pair{"spreadsheet_name", &o.spreadsheet_name},
                          std::pair{"service_account_file", &o.service_account_file},
                          std::pair{"sheets_api_url", &o.sheets_api_url},
                          std::pair{"drive_api_url", &o.drive_api_url}}) {
    absl::StatusOr<std::string> s = ConfigString(cfg, kGsheetsDest, key, *out);
    if (!s.ok()) return s.status();
    *out = *s;
  }
  if (o.spreadsheet_name.empty()) {
    return absl::InvalidArgumentError(
        "export config gsheets.spreadsheet_name must be a non-empty spreadsheet title");
  }
  for (auto [key, url] : {std::pair{"sheets_api_url", &o.sheets_api_url},
                          std::pair{"drive_api_url", &o.drive_api_url}}) {
    while (absl::EndsWith(*url, "/")) url->pop_back();
    if (!absl::StartsWith(*url, "http://") && !absl::StartsWith(*url, "https://")) {
      return absl::InvalidArgumentError(
          absl::StrCat("export config gsheets.", key, " must be an http(s) URL, not '", *url, "'"));
    }
  }
  if (o.service_account_file.empty()) {
    o.service_account_file = "~/.config/gspread/service_account.json";
  }
  o.service_account_file = ExpandHome(o.service_account_file);
  absl::StatusOr<std::vector<std::string>> l = ConfigStringList(cfg, kGsheetsDest, "log_metrics");
  if (!l.ok()) return l.status();
  o.log_metrics = *l;
  return o;
}

absl::StatusOr<GsheetsExporter> GsheetsExporter::FromConfig(const json& cfg,
                                                            RestClientOptions client) {
  absl::StatusOr<GsheetsExportOptions> o = ParseGsheetsConfig(cfg);
  if (!o.ok()) return o.status();
  return GsheetsExporter(std::move(*o), client);
}

JobExportResult GsheetsExporter::ExportJob(const JobExportInput& job) const {
  InvocationExportResult r = ExportInvocation({job});
  JobExportResult out = r.jobs.empty() ? JobExportResult{.job_id = job.job_id} : r.jobs[0];
  if (!r.success && out.message.empty()) out.message = r.message;
  return out;
}

InvocationExportResult GsheetsExporter::ExportInvocation(
    const std::vector<JobExportInput>& jobs) const {
  InvocationExportResult out;
  if (jobs.empty()) {
    out.message = "no jobs to export";
    return out;
  }
  // Metrics per job, by column.
  std::vector<std::map<std::string, double>> columns(jobs.size());
  std::vector<bool> ok(jobs.size(), false);
  std::set<std::string> all_columns;
  for (size_t i = 0; i < jobs.size(); ++i) {
    JobExportResult jr;
    jr.job_id = jobs[i].job_id;
    ArtifactCheck check = CheckArtifacts(jobs[i].artifacts_dir);
    absl::StatusOr<MetricMap> metrics =
        check.can_export ? ExtractMetrics(jobs[i].artifacts_dir, options_.log_metrics)
                         : absl::StatusOr<MetricMap>(absl::FailedPreconditionError(check.message));
    if (!metrics.ok()) {
      jr.message = std::string(metrics.status().message());
    } else {
      ok[i] = true;
      for (const auto& [k, v] : *metrics) {
        columns[i][ColumnOf(k)] = v;
        all_columns.insert(ColumnOf(k));
      }
    }
    out.jobs.push_back(std::move(jr));
  }
  auto fail_all = [&](const absl::Status& s) {
    out.success = false;
    out.message = std::string(s.message());
    for (size_t i = 0; i < jobs.size(); ++i) {
      if (ok[i]) out.jobs[i].message = out.message;
    }
    return out;
  };
  if (std::find(ok.begin(), ok.end(), true) == ok.end()) {
    out.message = "no job of the invocation can be exported";
    return out;
  }

  absl::StatusOr<ServiceAccountKey> key = ReadServiceAccountKey(options_.service_account_file);
  if (!key.ok()) return fail_all(key.status());
  absl::StatusOr<std::string> token = FetchAccessToken(*key, kScopes, client_options_);
  if (!token.ok()) return fail_all(token.status());
  RestClient api("Google Sheets", client_options_, {*token, key->private_key}, GoogleErrorText);
  auto call = [&](const std::string& method, const std::string& base, const std::string& route,
                  const std::string& query, const json* body) {
    const std::string text = body == nullptr ? "" : body->dump();
    return api.CallJson({.method = method,
                         .url = absl::StrCat(base, route, query.empty() ? "" : "?", query),
                         .route = route,
                         .body = body == nullptr ? nullptr : &text,
                         .bearer_token = &*token,
                         .unauthorized_hint = "the service account's access token was refused"});
  };

  // Open by name, else create (shared anyone: reader, as the reference's gspread code does).
  const std::string q = absl::StrCat(
      "name = '", absl::StrReplaceAll(options_.spreadsheet_name, {{"\\", "\\\\"}, {"'", "\\'"}}),
      "' and mimeType = 'application/vnd.google-apps.spreadsheet' and trashed = false");
  absl::StatusOr<json> found = call("GET", options_.drive_api_url, "/drive/v3/files",
                                    absl::StrCat("q=", http::UrlEscape(q),
                                                 "&fields=files(id%2Cname)&supportsAllDrives=true"
                                                 "&includeItemsFromAllDrives=true"),
                                    nullptr);
  if (!found.ok()) return fail_all(found.status());
  std::string id;
  bool created = false;
  if ((*found)["files"].is_array() && !(*found)["files"].empty()) {
    id = (*found)["files"][0].value("id", std::string());
  } else {
    const json create = {{"properties", {{"title", options_.spreadsheet_name}}}};
    absl::StatusOr<json> c = call("POST", options_.sheets_api_url, "/v4/spreadsheets", "", &create);
    if (!c.ok()) return fail_all(c.status());
    id = c->value("spreadsheetId", std::string());
    created = true;
    const json share = {{"type", "anyone"}, {"role", "reader"}};
    absl::StatusOr<json> p =
        call("POST", options_.drive_api_url,
             absl::StrCat("/drive/v3/files/", http::UrlEscape(id), "/permissions"),
             "supportsAllDrives=true", &share);
    if (!p.ok()) return fail_all(p.status());
  }
  if (id.empty()) return fail_all(absl::InternalError("Google Sheets: no spreadsheet id"));
  const std::string sheet_route = absl::StrCat("/v4/spreadsheets/", http::UrlEscape(id));
  absl::StatusOr<json> meta =
      call("GET", options_.sheets_api_url, sheet_route,
           "fields=spreadsheetId%2CspreadsheetUrl%2Csheets.properties", nullptr);
  if (!meta.ok()) return fail_all(meta.status());
  if (!(*meta)["sheets"].is_array() || (*meta)["sheets"].empty()) {
    return fail_all(absl::InternalError("Google Sheets: the spreadsheet has no sheet"));
  }
  const json& props = (*meta)["sheets"][0]["properties"];
  const std::string title = props.value("title", "Sheet1");
  const int64_t sheet_id = props.value("sheetId", 0);
  const int64_t column_count =
      props["gridProperties"].is_object() ? props["gridProperties"].value("columnCount", 26) : 26;
  const std::string url =
      meta->value("spreadsheetUrl", absl::StrCat("https://docs.google.com/spreadsheets/d/", id));
  auto values_route = [&](const std::string& range) {
    return absl::StrCat(sheet_route, "/values/", http::UrlEscape(range));
  };

  absl::StatusOr<json> current =
      call("GET", options_.sheets_api_url, values_route(QuotedSheet(title)), "", nullptr);
  if (!current.ok()) return fail_all(current.status());
  const json rows = (*current)["values"].is_array() ? (*current)["values"] : json::array();
  std::vector<std::string> header;
  if (!rows.empty()) {
    for (const json& c : rows[0]) header.push_back(CellText(c));
  }
  const size_t old_width = header.size();
  if (header.empty()) header = kBaseHeader;
  if (header.size() < kBaseHeader.size() ||
      !std::equal(kBaseHeader.begin(), kBaseHeader.end(), header.begin())) {
    return fail_all(absl::FailedPreconditionError(
        absl::StrCat("Google Sheets: the first sheet of '", options_.spreadsheet_name,
                     "' does not start with the header Model Name, Task Name, Invocation ID, Job "
                     "ID, Executor")));
  }
  for (const std::string& c : all_columns) {  // sorted; new ones appended after existing ones
    if (std::find(header.begin() + kBaseHeader.size(), header.end(), c) == header.end()) {
      header.push_back(c);
    }
  }
  json batch = json::array();
  if (static_cast<int64_t>(header.size()) > column_count) {
    batch.push_back({{"appendDimension",
                      {{"sheetId", sheet_id},
                       {"dimension", "COLUMNS"},
                       {"length", static_cast<int64_t>(header.size()) - column_count}}}});
  }
  if (created) {
    batch.push_back({{"repeatCell",
                      {{"range", {{"sheetId", sheet_id}, {"startRowIndex", 0}, {"endRowIndex", 1}}},
                       {"cell", {{"userEnteredFormat", {{"textFormat", {{"bold", true}}}}}}},
                       {"fields", "userEnteredFormat.textFormat.bold"}}}});
  }
  if (!batch.empty()) {
    const json body = {{"requests", batch}};
    absl::StatusOr<json> b =
        call("POST", options_.sheets_api_url, sheet_route + ":batchUpdate", "", &body);
    if (!b.ok()) return fail_all(b.status());
  }
  if (header.size() != old_width) {
    const std::string range = QuotedSheet(title) + "!A1";
    const json body = {
        {"range", range}, {"majorDimension", "ROWS"}, {"values", json::array({json(header)})}};
    absl::StatusOr<json> h =
        call("PUT", options_.sheets_api_url, values_route(range), "valueInputOption=RAW", &body);
    if (!h.ok()) return fail_all(h.status());
  }

  // A job's row again is updated where it is; the others are appended in one call.
  json appended = json::array();
  std::vector<size_t> appended_jobs;
  size_t updated = 0;
  for (size_t i = 0; i < jobs.size(); ++i) {
    if (!ok[i]) continue;
    const JobExportInput& job = jobs[i];
    json row = {job.model_name, job.task_name, job.invocation_id, job.job_id, job.executor};
    for (size_t c = kBaseHeader.size(); c < header.size(); ++c) {
      auto it = columns[i].find(header[c]);
      row.push_back(it == columns[i].end() ? json("") : json(it->second));
    }
    size_t existing = 0;
    for (size_t r = 1; r < rows.size(); ++r) {
      if (rows[r].size() >= 4 && CellText(rows[r][2]) == job.invocation_id &&
          CellText(rows[r][3]) == job.job_id) {
        existing = r + 1;  // 1-based sheet row
      }
    }
    JobExportResult& jr = out.jobs[i];
    jr.metadata = {{"spreadsheet_url", url},
                   {"spreadsheet_id", id},
                   {"run_url", url},
                   {"job_id", job.job_id},
                   {"metrics_logged", columns[i].size()}};
    if (existing == 0) {
      appended.push_back(row);
      appended_jobs.push_back(i);
      continue;
    }
    const std::string range = absl::StrCat(QuotedSheet(title), "!A", existing);
    const json body = {
        {"range", range}, {"majorDimension", "ROWS"}, {"values", json::array({row})}};
    absl::StatusOr<json> u =
        call("PUT", options_.sheets_api_url, values_route(range), "valueInputOption=RAW", &body);
    if (!u.ok()) return fail_all(u.status());
    jr.success = true;
    jr.metadata["row"] = existing;
    jr.message = absl::StrCat("Updated row ", existing, " (", columns[i].size(),
                              " metrics) of Google Sheet ", url);
    ++updated;
  }
  if (!appended.empty()) {
    const std::string range = QuotedSheet(title) + "!A1";
    const json body = {{"range", range}, {"majorDimension", "ROWS"}, {"values", appended}};
    absl::StatusOr<json> a = call("POST", options_.sheets_api_url, values_route(range) + ":append",
                                  "valueInputOption=RAW&insertDataOption=INSERT_ROWS", &body);
    if (!a.ok()) return fail_all(a.status());
    for (size_t i : appended_jobs) {
      out.jobs[i].success = true;
      out.jobs[i].message =
          absl::StrCat("Added a row (", columns[i].size(), " metrics) to Google Sheet ", url);
    }
  }
  out.success = std::find(ok.begin(), ok.end(), false) == ok.end();
  out.message = absl::StrCat(appended.size(), " rows added, ", updated, " updated in '",
                             options_.spreadsheet_name, "'");
  json metric_columns = json::array();
  for (size_t c = kBaseHeader.size(); c < header.size(); ++c) metric_columns.push_back(header[c]);
  out.metadata = {{"spreadsheet_name", options_.spreadsheet_name},
                  {"spreadsheet_url", url},
                  {"run_url", url},
                  {"rows_added", appended.size()},
                  {"rows_updated", updated},
                  {"total_columns", header.size()},
                  {"metric_columns", metric_columns}};
  return out;
}

}  // namespace evald::daemon::exporters
