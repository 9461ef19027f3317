// File: gsheets_exporter.h
//
// The Google Sheets destination of `evalctl export --dest gsheets` and auto-export (issue 13,
// peer-launcher.md 6.5), over the Sheets API v4 and Drive API v3 REST routes with a service
// account (google_auth.h: JWT signed with OpenSSL, jwt-bearer grant): the spreadsheet named
// `spreadsheet_name` is found with Drive files.list, else created (spreadsheets.create, shared
// `anyone: reader`, header bolded); its first sheet gets the header `Model Name, Task Name,
// Invocation ID, Job ID, Executor` + metric columns (metric key after its first `_`, new ones
// appended sorted, the grid widened when needed) and one row per job. Called by ServerCore::Export
// and the AutoExporter; retries are rest_client.h's.
//
// Unlike the reference (which appends every time), a job's row is found by (Invocation ID, Job
// ID) and updated in place, so exporting again never duplicates rows; and a cell is filled from
// the metric whose key gave the column (the reference looks up `<config task name>_<column>`,
// which misses for `harness.task` names).
//
//   EVALD_ASSIGN_OR_RETURN(GsheetsExporter e, GsheetsExporter::FromConfig(cfg));
//   InvocationExportResult r = e.ExportInvocation(jobs);  // metadata: spreadsheet_url, ...
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "daemon/export/export_types.h"
#include "daemon/export/rest_client.h"
#include "nlohmann/json.hpp"

namespace evald::daemon::exporters {

struct GsheetsExportOptions {
  std::string spreadsheet_name = "NeMo Evaluator Launcher Results";
  // The key file on evald's machine; default gspread's ~/.config/gspread/service_account.json.
  std::string service_account_file;
  std::vector<std::string> log_metrics;
  // evald's additions, for a proxy or a test server.
  std::string sheets_api_url = "https://sheets.googleapis.com";
  std::string drive_api_url = "https://www.googleapis.com";
};

absl::StatusOr<GsheetsExportOptions> ParseGsheetsConfig(const nlohmann::json& cfg);

class GsheetsExporter {
 public:
  static absl::StatusOr<GsheetsExporter> FromConfig(const nlohmann::json& cfg,
                                                    RestClientOptions client = {});

  JobExportResult ExportJob(const JobExportInput& job) const;
  // One row per job, one token and one read of the sheet for all of them.
  InvocationExportResult ExportInvocation(const std::vector<JobExportInput>& jobs) const;

 private:
  GsheetsExporter(GsheetsExportOptions options, RestClientOptions client)
      : options_(std::move(options)), client_options_(client) {}

  GsheetsExportOptions options_;
  RestClientOptions client_options_;
};

}  // namespace evald::daemon::exporters
