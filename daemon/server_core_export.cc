// ServerCore::Export, the Export RPC (docs/export.md): validates the ids and the destination,
// collects the succeeded jobs, builds each invocation's exporter config (export_runner.h) and runs
// the local, MLflow, W&B or Google Sheets exporter on the calling gRPC thread. Exporter credentials
// come only from the request's secrets: they are used for this call and never stored, logged or
// returned.
#include <filesystem>
#include <functional>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "core/config/yaml_io.h"
#include "core/ids.h"
#include "core/redact.h"
#include "core/status_macros.h"
#include "daemon/export/export_config.h"
#include "daemon/export/gsheets_exporter.h"
#include "daemon/export/local_exporter.h"
#include "daemon/export/mlflow_exporter.h"
#include "daemon/export/wandb_exporter.h"
#include "daemon/export_runner.h"
#include "daemon/fmt_absl.h"
#include "daemon/server_core.h"
#include "spdlog/spdlog.h"

namespace evald::daemon {
namespace {

namespace fs = std::filesystem;
using exporters::InvocationExportResult;
using exporters::JobExportInput;
using exporters::JobExportResult;

// One invocation named by an Export request: all of its succeeded jobs, or the jobs named.
struct ExportTarget {
  std::string invocation_id;
  bool whole = false;
  std::vector<std::string> job_ids;
  std::vector<JobExportInput> inputs;
  std::vector<std::string> skipped;  // "<job id>: <state>"
  nlohmann::json cfg;
};

std::string MetadataString(const nlohmann::json& metadata, const char* key) {
  auto it = metadata.find(key);
  return it != metadata.end() && it->is_string() ? it->get<std::string>() : "";
}

void FillJobResult(const JobExportResult& r, const std::string& invocation_id,
                   const Redactor& redact, v1::ExportJobResult* out) {
  out->set_job_id(r.job_id);
  out->set_invocation_id(invocation_id);
  out->set_success(r.success);
  out->set_message(redact(r.message));
  out->set_run_url(MetadataString(r.metadata, "run_url"));
  out->set_summary_path(MetadataString(r.metadata, "summary_path"));
  out->set_metadata_json(redact(r.metadata.dump()));
}

absl::Status CheckExportId(const std::string& id) {
  std::string inv = InvocationIdOf(id);
  if (id.empty() || !IsValidInvocationId(inv) || (id != inv && !ParseJobId(id).has_value())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", id, "' is not an invocation id (8 hex digits) or a job id (<invocation>.<n>)"));
  }
  return absl::OkStatus();
}

// `evalctl export --retry`: the failed job_exports rows of `ids` (to `dest`, or to every
// destination when empty) go back to pending with a fresh retry window; the AutoExporter's scan
// (every second) picks them up, so the call does not wait for the exports.
absl::Status RetryFailedExports(storage::Store& store, const Caller& caller,
                                const v1::ExportRequest& request, v1::ExportResponse* response) {
  const int64_t now = absl::ToUnixMillis(absl::Now());
  std::set<std::string> seen;
  for (const std::string& id : request.ids()) {
    const std::string inv = InvocationIdOf(id);
    if (!seen.insert(id).second) continue;
    EVALD_ASSIGN_OR_RETURN(storage::InvocationView view, store.GetInvocation(inv));
    (void)view;  // NOT_FOUND for an unknown invocation
    EVALD_ASSIGN_OR_RETURN(std::vector<storage::JobExportRecord> rows, store.ListExports(inv));
    for (storage::JobExportRecord& r : rows) {
      if (r.state != "failed" || (id != inv && r.job_id != id)) continue;
      if (!request.dest().empty() && r.dest != request.dest()) continue;
      v1::ExportRetry* out = response->add_retried();
      out->set_job_id(r.job_id);
      out->set_dest(r.dest);
      out->set_attempts(r.attempts);
      out->set_message(r.message);
      r.state = "pending";
      r.attempts = 0;
      r.message = absl::StrCat("retry requested by ", caller.user);
      r.created_ms = now;  // the retry_timeout window starts again
      r.updated_ms = now;
      r.next_attempt_ms = now;
      EVALD_RETURN_IF_ERROR(store.PutExport(r));
      spdlog::info("{}: export {}: retry requested by {} (was failed after {} attempts)", r.job_id,
                   r.dest, caller.user, out->attempts());
    }
  }
  if (response->retried_size() == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("no failed auto-export", request.dest().empty() ? "" : " to " + request.dest(),
                     " to retry in ", absl::StrJoin(request.ids(), ", ")));
  }
  response->set_dest(request.dest());
  response->set_success(true);
  return absl::OkStatus();
}

}  // namespace

absl::Status ServerCore::Export(const Caller& caller, const v1::ExportRequest& request,
                                v1::ExportResponse* response) {
  if (request.ids().empty()) {
    return absl::InvalidArgumentError("export needs at least one invocation or job id");
  }
  const std::string dest = request.dest().empty() ? "local" : request.dest();
  EVALD_RETURN_IF_ERROR(CheckExportDestination(dest));
  for (const std::string& id : request.ids()) EVALD_RETURN_IF_ERROR(CheckExportId(id));
  // Exporting writes files and runs as evald's user: the owner's (or an admin's) to ask for.
  EVALD_RETURN_IF_ERROR(RequireRole(caller, Role::kUser, "export"));
  if (!caller.is_admin()) {
    for (const std::string& id : request.ids()) {
      EVALD_ASSIGN_OR_RETURN(storage::InvocationView view,
                             store_->GetInvocation(InvocationIdOf(id)));
      EVALD_RETURN_IF_ERROR(RequireOwnerOrAdmin(caller, view.invocation.owner, "export", id));
    }
  }
  if (request.retry_failed()) return RetryFailedExports(*store_, caller, request, response);
  std::string working_dir = request.working_dir();
  if (working_dir.empty()) {
    std::error_code ec;
    working_dir = fs::current_path(ec).string();
  } else if (working_dir[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("working_dir must be an absolute path, got '", working_dir, "'"));
  }
  const std::map<std::string, std::string> secrets(request.secrets().begin(),
                                                   request.secrets().end());
  const Redactor redact(secrets);
  auto token_it = secrets.find(kMlflowTokenSecret);
  const std::string token = token_it == secrets.end() ? "" : token_it->second;
  auto wandb_it = secrets.find(kWandbApiKeySecret);
  const std::string wandb_key = wandb_it == secrets.end() ? "" : wandb_it->second;

  ExportLayers layers;
  if (!request.config_yaml().empty()) {
    EVALD_ASSIGN_OR_RETURN(YAML::Node doc,
                           config::ParseYaml(request.config_yaml(), "<export config>"));
    layers.extra = DestinationSection(doc, dest);
  }
  layers.overrides.assign(request.overrides().begin(), request.overrides().end());
  if (request.has_output_dir()) layers.flags["output_dir"] = request.output_dir();
  if (request.has_output_filename()) layers.flags["output_filename"] = request.output_filename();
  // --format is the local exporter's (the reference CLI ignores it for other destinations).
  if (request.has_format() && dest == "local") layers.flags["format"] = request.format();
  if (request.has_copy_logs()) layers.flags["copy_logs"] = request.copy_logs();
  if (request.has_only_required()) layers.flags["only_required"] = request.only_required();
  if (request.has_copy_artifacts()) {
    if (dest == "local") {
      layers.flags["copy_artifacts"] = request.copy_artifacts();
    } else if (dest == "mlflow" || dest == "wandb") {
      layers.flags["log_artifacts"] = request.copy_artifacts();
    }
  }
  if (request.log_metrics_size() > 0) {
    layers.flags["log_metrics"] =
        std::vector<std::string>(request.log_metrics().begin(), request.log_metrics().end());
  }

  // Group the ids by invocation (in the order first named) and check every one before any
  // export starts: a typo in the last id must not leave the first ones half exported.
  std::vector<ExportTarget> targets;
  std::map<std::string, size_t> by_invocation;
  bool any_whole = false, any_job = false;
  for (const std::string& id : request.ids()) {
    std::string inv = InvocationIdOf(id);
    auto [it, added] = by_invocation.emplace(inv, targets.size());
    if (added) targets.push_back({.invocation_id = inv});
    ExportTarget& t = targets[it->second];
    if (id == inv) {
      t.whole = any_whole = true;
    } else if (std::find(t.job_ids.begin(), t.job_ids.end(), id) == t.job_ids.end()) {
      t.job_ids.push_back(id);
      any_job = true;
    }
  }
  for (ExportTarget& t : targets) {
    EVALD_ASSIGN_OR_RETURN(storage::InvocationView view, store_->GetInvocation(t.invocation_id));
    YAML::Node config;
    absl::StatusOr<YAML::Node> parsed =
        config::ParseYaml(view.invocation.config_yaml, "<stored config>");
    if (parsed.ok()) config = *parsed;
    if (t.whole) {
      for (const JobRecord& job : view.jobs) {
        if (job.state == JobState::kSucceeded) {
          t.inputs.push_back(ExportInputFor(view.invocation, config, job));
        } else {
          t.skipped.push_back(absl::StrCat(job.id, ": ", ToString(job.state)));
        }
      }
      if (t.inputs.empty()) {
        return absl::FailedPreconditionError(absl::StrCat("invocation ", t.invocation_id,
                                                          " has no succeeded job to export (",
                                                          absl::StrJoin(t.skipped, ", "), ")"));
      }
    } else {
      for (const std::string& job_id : t.job_ids) {
        const JobRecord* found = nullptr;
        for (const JobRecord& job : view.jobs) {
          if (job.id == job_id) found = &job;
        }
        if (found == nullptr) return absl::NotFoundError(absl::StrCat("no job ", job_id));
        if (found->state != JobState::kSucceeded) {
          return absl::FailedPreconditionError(absl::StrCat("job ", job_id, " is ",
                                                            ToString(found->state),
                                                            "; only succeeded jobs are exported"));
        }
        t.inputs.push_back(ExportInputFor(view.invocation, config, *found));
      }
    }
    EVALD_ASSIGN_OR_RETURN(t.cfg, DestinationConfig(config, dest, layers));
    if (dest == "local") {
      // As the reference CLI, an export without output_dir writes to the caller's directory.
      EVALD_ASSIGN_OR_RETURN(std::string out,
                             exporters::ConfigString(t.cfg, dest, "output_dir", "."));
      fs::path p(out);
      if (p.is_relative()) p = fs::path(working_dir) / p;
      t.cfg["output_dir"] = p.lexically_normal().string();
    }
    if (dest == "gsheets") {
      // A relative key file is the caller's, as a relative output_dir is.
      EVALD_ASSIGN_OR_RETURN(std::string key_file,
                             exporters::ConfigString(t.cfg, dest, "service_account_file", ""));
      if (!key_file.empty() && key_file[0] != '~' && fs::path(key_file).is_relative()) {
        t.cfg["service_account_file"] =
            (fs::path(working_dir) / key_file).lexically_normal().string();
      }
    }
  }

  response->set_dest(dest);
  bool success = true;
  size_t exported = 0, total = 0;
  auto add_invocation = [&](const ExportTarget& t, const InvocationExportResult& r) {
    v1::ExportInvocationResult* out = response->add_invocations();
    out->set_invocation_id(t.invocation_id);
    out->set_success(r.success);
    out->set_message(redact(r.message));
    out->set_run_url(MetadataString(r.metadata, "run_url"));
    for (const std::string& s : t.skipped) out->add_skipped(s);
    for (const JobExportResult& jr : r.jobs) {
      FillJobResult(jr, t.invocation_id, redact, out->add_jobs());
      if (out->summary_path().empty()) {
        out->set_summary_path(MetadataString(jr.metadata, "summary_path"));
      }
      exported += jr.success ? 1 : 0;
      ++total;
    }
    success &= r.success;
  };

  if (dest == "local") {
    std::vector<exporters::LocalExporter> exporters_by_target;
    for (const ExportTarget& t : targets) {
      EVALD_ASSIGN_OR_RETURN(exporters::LocalExporter e,
                             exporters::LocalExporter::FromConfig(t.cfg));
      exporters_by_target.push_back(std::move(e));
    }
    // The reference's rule: several invocations, or an invocation with job ids, also get one
    // consolidated summary in output_dir (the first invocation's config decides its place).
    const bool consolidated = targets.size() >= 2 || (any_whole && any_job);
    if (consolidated) {
      std::vector<JobExportInput> all;
      for (const ExportTarget& t : targets) all.insert(all.end(), t.inputs.begin(), t.inputs.end());
      InvocationExportResult r = exporters_by_target.front().Export(all, /*consolidated=*/true);
      response->set_summary_path(MetadataString(r.metadata, "summary_path"));
      if (!r.success && !r.message.empty()) response->set_message(redact(r.message));
      success &= r.success;
      size_t next = 0;
      for (const ExportTarget& t : targets) {
        InvocationExportResult part;
        part.success = true;
        for (size_t i = 0; i < t.inputs.size() && next < r.jobs.size(); ++i, ++next) {
          part.success &= r.jobs[next].success;
          part.jobs.push_back(r.jobs[next]);
        }
        add_invocation(t, part);
      }
    } else {
      for (size_t i = 0; i < targets.size(); ++i) {
        add_invocation(targets[i], exporters_by_target[i].Export(targets[i].inputs, false));
      }
    }
  } else if (dest == "wandb" || dest == "gsheets") {
    // Every target's config is checked before the first export. An invocation or the jobs named
    // go through ExportInvocation: W&B per_task logs a run per job, multi_task one run; Sheets
    // writes a row per job with one token and one read of the sheet.
    std::vector<std::function<InvocationExportResult(const std::vector<JobExportInput>&)>> run;
    for (const ExportTarget& t : targets) {
      if (dest == "wandb") {
        EVALD_ASSIGN_OR_RETURN(exporters::WandbExporter e,
                               exporters::WandbExporter::FromConfig(t.cfg, wandb_key));
        run.push_back(
            [e](const std::vector<JobExportInput>& in) { return e.ExportInvocation(in); });
      } else {
        EVALD_ASSIGN_OR_RETURN(exporters::GsheetsExporter e,
                               exporters::GsheetsExporter::FromConfig(t.cfg));
        run.push_back(
            [e](const std::vector<JobExportInput>& in) { return e.ExportInvocation(in); });
      }
    }
    for (size_t i = 0; i < targets.size(); ++i)
      add_invocation(targets[i], run[i](targets[i].inputs));
  } else {
    std::vector<exporters::MlflowExporter> exporters_by_target;
    for (const ExportTarget& t : targets) {
      EVALD_ASSIGN_OR_RETURN(exporters::MlflowExporter e,
                             exporters::MlflowExporter::FromConfig(t.cfg, token));
      exporters_by_target.push_back(std::move(e));
    }
    for (size_t i = 0; i < targets.size(); ++i) {
      const ExportTarget& t = targets[i];
      if (t.whole) {
        // The reference: an invocation is one MLflow run with the union of its jobs' metrics.
        add_invocation(t, exporters_by_target[i].ExportInvocation(t.inputs));
        continue;
      }
      InvocationExportResult r;
      r.success = true;
      for (const JobExportInput& in : t.inputs) {
        r.jobs.push_back(exporters_by_target[i].ExportJob(in));
        r.success &= r.jobs.back().success;
      }
      add_invocation(t, r);
    }
  }
  response->set_success(success);
  spdlog::info("export to {} of {} by {}: {} of {} job(s) exported{}", dest,
               absl::StrJoin(request.ids(), " "),
               request.client().empty() ? "unknown client" : request.client(), exported, total,
               success ? "" : " (some failed)");
  return absl::OkStatus();
}

}  // namespace evald::daemon
