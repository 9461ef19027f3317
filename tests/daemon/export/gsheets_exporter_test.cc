#include "daemon/export/gsheets_exporter.h"

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <sstream>

#include "absl/strings/escaping.h"
#include "absl/strings/str_split.h"
#include "daemon/export/google_auth.h"
#include "tests/daemon/export/export_test_util.h"
#include "tests/fixtures/gsheets_fake/server.h"

namespace evald::daemon::exporters {
namespace {

namespace fs = std::filesystem;
using gsheets_fake::Fault;
using gsheets_fake::GsheetsFakeServer;
using json = nlohmann::json;
using testing::MakeJob;
using testing::ReadText;
using testing::SimpleResults;
using testing::TempDir;
using testing::WriteText;

constexpr char kEmail[] = "evald-export@my-project.iam.gserviceaccount.com";

// An RSA key pair made by openssl in `dir`: {private PEM, public PEM}.
std::pair<std::string, std::string> NewKeyPair(const fs::path& dir, const std::string& name) {
  const std::string key = (dir / (name + ".pem")).string();
  const std::string pub = (dir / (name + ".pub")).string();
  const std::string cmd = "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out '" +
                          key + "' 2>/dev/null && openssl pkey -in '" + key + "' -pubout -out '" +
                          pub + "' 2>/dev/null";
  REQUIRE(std::system(cmd.c_str()) == 0);
  return {ReadText(key), ReadText(pub)};
}

// A service account key file for `fake` holding `private_pem`.
std::string KeyFile(const fs::path& dir, const GsheetsFakeServer& fake,
                    const std::string& private_pem) {
  const fs::path path = dir / "service_account.json";
  WriteText(path, json{{"type", "service_account"},
                       {"project_id", "my-project"},
                       {"private_key_id", "kid-0001"},
                       {"private_key", private_pem},
                       {"client_email", kEmail},
                       {"token_uri", fake.url() + "/token"}}
                      .dump(2));
  return path.string();
}

RestClientOptions FastClient() {
  RestClientOptions o;
  o.backoff_base = absl::Milliseconds(5);
  o.backoff_max = absl::Seconds(2);
  o.request_timeout = absl::Seconds(5);
  return o;
}

GsheetsExporter Exporter(const GsheetsFakeServer& fake, const std::string& key_file,
                         json cfg = json::object()) {
  cfg["service_account_file"] = key_file;
  cfg["sheets_api_url"] = fake.url();
  cfg["drive_api_url"] = fake.url();
  absl::StatusOr<GsheetsExporter> e = GsheetsExporter::FromConfig(cfg, FastClient());
  REQUIRE(e.ok());
  return *e;
}

std::vector<std::string> Calls(const json& requests) {
  std::vector<std::string> out;
  for (const json& r : requests) {
    out.push_back(r["method"].get<std::string>() + " " + r["path"].get<std::string>() + " " +
                  std::to_string(r["status"].get<int>()));
  }
  return out;
}

JobExportInput Job(const fs::path& root, int index = 2) {
  return MakeJob(root, "0123abcd", index, "lm-evaluation-harness.gsm8k", R"(results:
  tasks:
    gsm8k:
      metrics:
        exact_match: {scores: {strict-match: {value: 0.75}, flexible-extract: {value: 0.5}}}
)");
}

struct Setup {
  TempDir tmp;
  std::pair<std::string, std::string> keys = NewKeyPair(tmp.path(), "sa");
  GsheetsFakeServer fake{{.public_key_pem = keys.second, .client_email = kEmail}};
  std::string key_file;
  Setup() {
    REQUIRE(fake.Start().ok());
    key_file = KeyFile(tmp.path(), fake, keys.first);
  }
  json Sheet() {
    json s = fake.State()["spreadsheets"];
    REQUIRE(s.size() == 1);
    return s.begin().value();
  }
};

TEST_CASE("gsheets: a signed JWT buys a token, the spreadsheet is created, shared and filled") {
  Setup s;
  JobExportResult r =
      Exporter(s.fake, s.key_file, {{"spreadsheet_name", "Evals"}}).ExportJob(Job(s.tmp.path()));
  INFO(r.message);
  REQUIRE(r.success);
  const json requests = s.fake.Requests();
  CHECK(Calls(requests) ==
        std::vector<std::string>{
            "POST /token 200", "GET /drive/v3/files 200", "POST /v4/spreadsheets 200",
            "POST /drive/v3/files/1FakeSheet1xYz/permissions 200",
            "GET /v4/spreadsheets/1FakeSheet1xYz 200",
            "GET /v4/spreadsheets/1FakeSheet1xYz/values/'Sheet1' 200",
            "POST /v4/spreadsheets/1FakeSheet1xYz:batchUpdate 200",
            "PUT /v4/spreadsheets/1FakeSheet1xYz/values/'Sheet1'!A1 200",
            "POST /v4/spreadsheets/1FakeSheet1xYz/values/'Sheet1'!A1:append 200"});
  // The JWT: RS256 with the key id, claims for this service account and token endpoint.
  std::string form = requests[0]["body"];
  CHECK(form.rfind("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=",
                   0) == 0);
  std::string jwt = form.substr(form.find("assertion=") + 10);
  std::vector<std::string> parts = absl::StrSplit(jwt, '.');
  REQUIRE(parts.size() == 3);
  std::string header, claims;
  REQUIRE(absl::WebSafeBase64Unescape(parts[0], &header));
  REQUIRE(absl::WebSafeBase64Unescape(parts[1], &claims));
  CHECK(json::parse(header) == json{{"alg", "RS256"}, {"typ", "JWT"}, {"kid", "kid-0001"}});
  json c = json::parse(claims);
  CHECK(c["iss"] == kEmail);
  CHECK(c["aud"] == s.fake.url() + "/token");
  CHECK(c["scope"] ==
        "https://www.googleapis.com/auth/spreadsheets https://www.googleapis.com/auth/drive");
  CHECK(c["exp"].get<int64_t>() - c["iat"].get<int64_t>() == 3600);
  for (size_t i = 1; i < requests.size(); ++i) {
    CHECK(requests[i]["headers"]["authorization"].get<std::string>().rfind("Bearer ya29.", 0) == 0);
  }
  CHECK(requests[1]["query"]["q"][0] ==
        "name = 'Evals' and mimeType = 'application/vnd.google-apps.spreadsheet' and trashed = "
        "false");
  CHECK(requests[2]["json"] == json{{"properties", {{"title", "Evals"}}}});
  CHECK(requests[7]["query"]["valueInputOption"][0] == "RAW");
  CHECK(requests[8]["query"]["insertDataOption"][0] == "INSERT_ROWS");

  const json sheet = s.Sheet();
  CHECK(sheet["title"] == "Evals");
  CHECK(sheet["bold_header"] == true);
  CHECK(sheet["permissions"] == json::array({{{"type", "anyone"}, {"role", "reader"}}}));
  CHECK(sheet["sheets"][0]["rows"] == json::parse(R"([
    ["Model Name", "Task Name", "Invocation ID", "Job ID", "Executor",
     "exact_match_flexible-extract", "exact_match_strict-match"],
    ["my/model", "lm-evaluation-harness.gsm8k", "0123abcd", "0123abcd.2", "local", 0.5, 0.75]])"));
  CHECK(r.metadata["spreadsheet_url"] ==
        "https://docs.google.com/spreadsheets/d/1FakeSheet1xYz/edit");
  CHECK(r.metadata["run_url"] == r.metadata["spreadsheet_url"]);
  CHECK(r.metadata["metrics_logged"] == 2);
  CHECK(r.message ==
        "Added a row (2 metrics) to Google Sheet "
        "https://docs.google.com/spreadsheets/d/1FakeSheet1xYz/edit");
}

TEST_CASE("gsheets: exporting again updates the job's row and new metrics extend the header") {
  Setup s;
  GsheetsExporter exporter = Exporter(s.fake, s.key_file);
  REQUIRE(exporter.ExportJob(Job(s.tmp.path())).success);
  JobExportResult again = exporter.ExportJob(Job(s.tmp.path()));
  REQUIRE(again.success);
  CHECK(again.metadata["row"] == 2);
  JobExportInput other = MakeJob(s.tmp.path(), "0123abcd", 3, "mmlu", SimpleResults("mmlu", 0.25));
  InvocationExportResult inv = exporter.ExportInvocation({Job(s.tmp.path()), other});
  REQUIRE(inv.success);
  CHECK(inv.metadata["rows_added"] == 1);
  CHECK(inv.metadata["rows_updated"] == 1);
  CHECK(inv.metadata["spreadsheet_name"] == "NeMo Evaluator Launcher Results");
  CHECK(inv.metadata["metric_columns"] ==
        json{"exact_match_flexible-extract", "exact_match_strict-match", "accuracy"});
  const json sheet = s.Sheet();  // still one spreadsheet
  CHECK(sheet["sheets"][0]["rows"] == json::parse(R"([
    ["Model Name", "Task Name", "Invocation ID", "Job ID", "Executor",
     "exact_match_flexible-extract", "exact_match_strict-match", "accuracy"],
    ["my/model", "lm-evaluation-harness.gsm8k", "0123abcd", "0123abcd.2", "local", 0.5, 0.75, ""],
    ["my/model", "mmlu", "0123abcd", "0123abcd.3", "local", "", "", 0.25]])"));
  int creates = 0;
  for (const std::string& c : Calls(s.fake.Requests())) creates += c == "POST /v4/spreadsheets 200";
  CHECK(creates == 1);
}

TEST_CASE("gsheets: more metric columns than the grid has widen it first") {
  Setup s;
  std::ostringstream yml;
  yml << "results:\n  tasks:\n    wide:\n      metrics:\n";
  for (int i = 0; i < 30; ++i) yml << "        score_" << 10 + i << ": {value: 0." << i << "}\n";
  JobExportInput job = MakeJob(s.tmp.path(), "0123abcd", 0, "wide", yml.str());
  REQUIRE(Exporter(s.fake, s.key_file).ExportJob(job).success);
  const json sheet = s.Sheet()["sheets"][0];
  CHECK(sheet["columnCount"] == 35);
  CHECK(sheet["rows"][0].size() == 35);
  const json requests = s.fake.Requests();
  const json& batch = requests[6]["json"]["requests"];
  CHECK(batch[0] ==
        json::parse(R"({"appendDimension": {"sheetId": 0, "dimension": "COLUMNS", "length": 9}})"));
}

TEST_CASE("gsheets: 503 on the token endpoint retried, 429 Retry-After honoured") {
  Setup s;
  s.fake.AddFault({.method = "POST", .path = "/token", .status = 503, .count = 2});
  s.fake.AddFault({.method = "POST", .path = "*:append", .status = 429, .retry_after = "1"});
  const auto start = std::chrono::steady_clock::now();
  JobExportResult r = Exporter(s.fake, s.key_file).ExportJob(Job(s.tmp.path()));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  INFO(r.message);
  REQUIRE(r.success);
  CHECK(seconds >= 1.0);
  const std::vector<std::string> calls = Calls(s.fake.Requests());
  CHECK(calls[0] == "POST /token 503");
  CHECK(calls[1] == "POST /token 503");
  CHECK(calls[2] == "POST /token 200");
  CHECK(calls[calls.size() - 2].find(":append 429") != std::string::npos);
  CHECK(calls.back().find(":append 200") != std::string::npos);
  CHECK(s.Sheet()["sheets"][0]["rows"].size() == 2);
}

TEST_CASE("gsheets: a JWT signed by another key and a 401 are not retried, no secret shows") {
  Setup s;
  const auto other = NewKeyPair(s.tmp.path(), "other");
  const std::string wrong = KeyFile(s.tmp.path() / "wrong", s.fake, other.first);
  JobExportResult r = Exporter(s.fake, wrong).ExportJob(Job(s.tmp.path()));
  CHECK_FALSE(r.success);
  CHECK(r.message == "Google OAuth2 POST /token: HTTP 400: invalid_grant: Invalid JWT Signature.");
  CHECK(s.fake.Requests().size() == 1);

  s.fake.AddFault({.method = "GET",
                   .path = "/drive/v3/files",
                   .status = 401,
                   .message = "Request had invalid authentication credentials."});
  JobExportResult denied = Exporter(s.fake, s.key_file).ExportJob(Job(s.tmp.path()));
  CHECK_FALSE(denied.success);
  CHECK(denied.message ==
        "Google Sheets GET /drive/v3/files: HTTP 401: UNAUTHENTICATED: Request had invalid "
        "authentication credentials. (the service account's access token was refused)");
  CHECK(s.fake.Requests().size() == 3);  // token, one files.list
  // The private key's body never reaches a message or metadata.
  const std::string key_line = s.keys.first.substr(s.keys.first.find('\n') + 1, 40);
  for (const JobExportResult& x : {r, denied}) {
    CHECK(x.message.find(key_line) == std::string::npos);
    CHECK(x.metadata.dump().find(key_line) == std::string::npos);
    CHECK(x.message.find("ya29.") == std::string::npos);
  }
}

TEST_CASE("gsheets: config and key file errors name what was expected") {
  TempDir tmp;
  absl::StatusOr<GsheetsExporter> e = GsheetsExporter::FromConfig({{"spreadsheet_name", ""}});
  REQUIRE_FALSE(e.ok());
  CHECK(e.status().message() ==
        "export config gsheets.spreadsheet_name must be a non-empty spreadsheet title");
  e = GsheetsExporter::FromConfig({{"log_metrics", {{"a", 1}}}});
  REQUIRE_FALSE(e.ok());
  CHECK(e.status().message() == "export config gsheets.log_metrics must be a list");
  e = GsheetsExporter::FromConfig({{"sheets_api_url", "sheets"}});
  REQUIRE_FALSE(e.ok());
  CHECK(e.status().message() ==
        "export config gsheets.sheets_api_url must be an http(s) URL, not 'sheets'");
  CHECK(ParseServiceAccountKey("{\"type\": \"service_account\"}", "k.json").status().message() ==
        "service account key k.json: client_email is required");
  CHECK(ParseServiceAccountKey("{\"type\": \"authorized_user\"}", "k.json").status().message() ==
        "service account key k.json: type must be service_account (not a user credential)");
  JobExportInput job = MakeJob(tmp.path(), "0123abcd", 0, "mmlu", SimpleResults("mmlu", 0.5));
  JobExportResult r =
      GsheetsExporter::FromConfig({{"service_account_file", (tmp.path() / "none.json").string()}})
          ->ExportJob(job);
  CHECK_FALSE(r.success);
  CHECK(r.message.find("cannot read the service account key") != std::string::npos);
}

}  // namespace
}  // namespace evald::daemon::exporters
