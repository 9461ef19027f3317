// export: sends the results of succeeded jobs to a destination through evald's Export RPC
// (docs/export.md): `local` files and summaries, MLflow or W&B runs, or Google Sheets rows. The
// reference launcher's flags; the MLflow token (MLFLOW_TRACKING_TOKEN) and the W&B key
// (WANDB_API_KEY) travel as request secrets and are scrubbed from everything printed.
#include <fstream>
#include <ostream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "cli/commands/commands.h"
#include "cli/format.h"

namespace evald::cli {
namespace {

constexpr char kMlflowToken[] = "MLFLOW_TRACKING_TOKEN";
constexpr char kWandbApiKey[] = "WANDB_API_KEY";

Json ExportJson(const v1::ExportResponse& r, const Redactor& redact) {
  Json j;
  j["dest"] = r.dest();
  j["success"] = r.success();
  j["summary_path"] = r.summary_path().empty() ? Json() : Json(r.summary_path());
  j["message"] = r.message().empty() ? Json() : Json(redact(r.message()));
  j["invocations"] = Json::array();
  for (const v1::ExportInvocationResult& inv : r.invocations()) {
    Json i;
    i["invocation_id"] = inv.invocation_id();
    i["success"] = inv.success();
    i["message"] = inv.message().empty() ? Json() : Json(redact(inv.message()));
    i["run_url"] = inv.run_url().empty() ? Json() : Json(inv.run_url());
    i["summary_path"] = inv.summary_path().empty() ? Json() : Json(inv.summary_path());
    i["skipped"] = Json::array();
    for (const std::string& s : inv.skipped()) i["skipped"].push_back(s);
    i["jobs"] = Json::array();
    for (const v1::ExportJobResult& job : inv.jobs()) {
      Json jj;
      jj["job_id"] = job.job_id();
      jj["success"] = job.success();
      jj["message"] = redact(job.message());
      jj["run_url"] = job.run_url().empty() ? Json() : Json(job.run_url());
      jj["summary_path"] = job.summary_path().empty() ? Json() : Json(job.summary_path());
      Json meta = Json::parse(redact(job.metadata_json()), nullptr, false);
      jj["metadata"] = meta.is_discarded() ? Json::object() : meta;
      i["jobs"].push_back(std::move(jj));
    }
    j["invocations"].push_back(std::move(i));
  }
  return j;
}

// The reference launcher's report: per invocation, one line per job (URL and summary below).
void PrintExport(const v1::ExportResponse& r, const Redactor& redact, std::ostream& out) {
  int ok_count = 0;
  for (const v1::ExportInvocationResult& inv : r.invocations()) ok_count += inv.success() ? 1 : 0;
  if (r.invocations_size() > 1) {
    out << "Export completed: " << ok_count << "/" << r.invocations_size() << " successful\n";
    if (!r.summary_path().empty()) out << "Summary: " << r.summary_path() << "\n";
  }
  for (const v1::ExportInvocationResult& inv : r.invocations()) {
    if (inv.success()) {
      out << "Export completed for " << inv.invocation_id() << "\n";
    } else {
      out << "Export failed for " << inv.invocation_id()
          << (inv.message().empty() ? "" : absl::StrCat(": ", redact(inv.message()))) << "\n";
    }
    if (!inv.run_url().empty()) out << "  URL: " << inv.run_url() << "\n";
    for (const v1::ExportJobResult& job : inv.jobs()) {
      if (job.success()) {
        out << "  " << job.job_id() << ": " << redact(job.message()) << "\n";
        if (!job.run_url().empty() && job.run_url() != inv.run_url()) {
          out << "    URL: " << job.run_url() << "\n";
        }
      } else {
        out << "  " << job.job_id() << " failed: " << redact(job.message()) << "\n";
      }
    }
    for (const std::string& s : inv.skipped()) out << "  " << s << " (not exported)\n";
  }
  if (!r.message().empty()) out << "Export failed: " << redact(r.message()) << "\n";
}

// `export --retry`: evald re-queues the failed auto-exports; the auto-exporter runs them.
int RunExportRetry(Context& ctx, const ExportOptions& options) {
  v1::ExportRequest req;
  for (const std::string& id : options.ids) req.add_ids(id);
  req.set_dest(options.dest);
  req.set_retry_failed(true);
  req.set_client(absl::StrCat("evalctl/", EvalctlVersion()));
  v1::ExportResponse resp;
  absl::Status s = ctx.api->Export(req, &resp);
  if (!s.ok()) return ReportFailure(s, ctx.address, *ctx.err, options.ids.front());
  if (options.json) {
    Json j;
    j["retried"] = Json::array();
    for (const v1::ExportRetry& r : resp.retried()) {
      j["retried"].push_back({{"job_id", r.job_id()},
                              {"dest", r.dest()},
                              {"attempts", r.attempts()},
                              {"message", r.message()}});
    }
    *ctx.out << j.dump(2) << "\n";
    return kExitOk;
  }
  for (const v1::ExportRetry& r : resp.retried()) {
    *ctx.out << "Retrying the auto-export of " << r.job_id() << " to " << r.dest()
             << " (failed after " << r.attempts() << " attempt(s): " << r.message() << ")\n";
  }
  *ctx.out << "Follow it with `evalctl info " << options.ids.front() << "` (exports)\n";
  return kExitOk;
}

}  // namespace

int RunExport(Context& ctx, const ExportOptions& options) {
  if (options.retry &&
      (options.dest.empty() || options.dest == "local" || options.dest == "mlflow" ||
       options.dest == "wandb" || options.dest == "gsheets")) {
    return RunExportRetry(ctx, options);
  }
  if (options.dest != "local" && options.dest != "mlflow" && options.dest != "wandb" &&
      options.dest != "gsheets") {
    *ctx.err << "evalctl: --dest " << options.dest << ": use local, mlflow, wandb or gsheets\n";
    return kExitBadInput;
  }
  if (!options.format.empty() && options.format != "json" && options.format != "csv") {
    *ctx.err << "evalctl: --format " << options.format << ": use json or csv\n";
    return kExitBadInput;
  }
  v1::ExportRequest req;
  for (const std::string& id : options.ids) req.add_ids(id);
  req.set_dest(options.dest);
  if (!options.config_path.empty()) {
    std::ifstream in(options.config_path);
    if (!in) {
      *ctx.err << "evalctl: --config " << options.config_path << ": cannot read the file\n";
      return kExitBadInput;
    }
    std::stringstream text;
    text << in.rdbuf();
    req.set_config_yaml(text.str());
  }
  for (const std::string& o : options.overrides) req.add_overrides(o);
  if (!options.output_dir.empty()) req.set_output_dir(options.output_dir);
  if (!options.output_filename.empty()) req.set_output_filename(options.output_filename);
  if (!options.format.empty()) {
    if (options.dest == "local") {
      req.set_format(options.format);
    } else {
      *ctx.err << "Note: --format is only used by --dest local. It will be ignored for other "
                  "destinations.\n";
    }
  }
  if (options.copy_logs) req.set_copy_logs(*options.copy_logs);
  if (options.only_required) req.set_only_required(*options.only_required);
  if (options.copy_artifacts) req.set_copy_artifacts(*options.copy_artifacts);
  for (const std::string& m : options.log_metrics) req.add_log_metrics(m);
  std::map<std::string, std::string> secrets;
  if (options.dest == "mlflow" || options.dest == "wandb") {
    std::vector<std::string> missing;
    secrets = CollectPresentSecrets({options.dest == "mlflow" ? kMlflowToken : kWandbApiKey},
                                    Env(ctx), &missing);
  }
  req.mutable_secrets()->insert(secrets.begin(), secrets.end());
  req.set_working_dir(WorkingDir(ctx));
  req.set_client(absl::StrCat("evalctl/", EvalctlVersion()));
  Redactor redact(secrets);

  if (!options.json) {
    *ctx.out << "Exporting " << options.ids.size() << " id(s) to " << options.dest << "...\n";
    ctx.out->flush();
  }
  v1::ExportResponse resp;
  absl::Status s = ctx.api->Export(req, &resp);
  if (!s.ok()) {
    *ctx.err << "evalctl: " << redact(FailureMessage(s, ctx.address)) << "\n";
    return ExitCodeFor(s);
  }
  if (options.json) {
    *ctx.out << ExportJson(resp, redact).dump(2) << "\n";
  } else {
    PrintExport(resp, redact, *ctx.out);
  }
  return resp.success() ? kExitOk : kExitFailed;
}

}  // namespace evald::cli
