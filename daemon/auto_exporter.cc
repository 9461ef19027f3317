#include "daemon/auto_exporter.h"

#include <cstdlib>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/config/yaml_io.h"
#include "core/redact.h"
#include "daemon/export/export_config.h"
#include "daemon/export/gsheets_exporter.h"
#include "daemon/export/local_exporter.h"
#include "daemon/export/mlflow_exporter.h"
#include "daemon/export/wandb_exporter.h"
#include "daemon/export_runner.h"
#include "daemon/fmt_absl.h"
#include "spdlog/spdlog.h"

namespace evald::daemon {
namespace {

namespace fs = std::filesystem;

int64_t NowMs() { return absl::ToUnixMillis(absl::Now()); }

// Errors that another attempt cannot fix: a refused request or token, bad config, missing files.
bool IsPermanent(const std::string& message) {
  for (const char* s :
       {"HTTP 400", "HTTP 401", "HTTP 403", "HTTP 404", "Missing required", "metric conflict",
        " must be ", "is refused", "not a summary", "GraphQL error", "service account key"}) {
    if (absl::StrContains(message, s)) return true;
  }
  return false;
}

absl::Duration RetryTimeout(const YAML::Node& config, absl::Duration fallback) {
  try {
    YAML::Node v = config["execution"]["auto_export"]["retry_timeout"];
    if (v && v.IsScalar()) return absl::Seconds(v.as<double>());
  } catch (const YAML::Exception&) {
  }
  return fallback;
}

}  // namespace

struct AutoExporter::InvocationContext {
  absl::StatusOr<storage::InvocationView> view;
  YAML::Node config;  // null when the stored config does not parse
};

AutoExporter::AutoExporter(storage::Store* store, WatchHub* hub, Options options)
    : store_(store), hub_(hub), options_(options) {}

AutoExporter::~AutoExporter() { Stop(); }

void AutoExporter::Start() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = false;
    wake_ = true;  // pending exports of an earlier evald are resumed at once
  }
  thread_ = std::thread([this] { Loop(); });
}

void AutoExporter::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

bool AutoExporter::Stopping() {
  absl::MutexLock lock(&mu_);
  return stop_;
}

void AutoExporter::JobSucceeded(const JobRecord& job) {
  auto it = destinations_.find(job.invocation_id);
  if (it == destinations_.end()) {
    absl::StatusOr<storage::InvocationView> view = store_->GetInvocation(job.invocation_id);
    if (!view.ok()) return;
    std::vector<std::string> dests;
    absl::StatusOr<YAML::Node> config =
        config::ParseYaml(view->invocation.config_yaml, "<stored config>");
    if (config.ok()) dests = AutoExportDestinations(*config);
    if (destinations_.size() > 1000) destinations_.clear();
    it = destinations_.emplace(job.invocation_id, std::move(dests)).first;
  }
  if (it->second.empty()) return;
  const int64_t now = NowMs();
  for (const std::string& dest : it->second) {
    storage::JobExportRecord r{.job_id = job.id,
                               .dest = dest,
                               .invocation_id = job.invocation_id,
                               .state = "pending",
                               .created_ms = now,
                               .updated_ms = now,
                               .next_attempt_ms = now};
    absl::Status s = store_->PutExport(r);
    if (!s.ok())
      spdlog::warn("job {}: cannot record the export to {}: {}", job.id, dest, s.message());
  }
  absl::MutexLock lock(&mu_);
  wake_ = true;
}

void AutoExporter::Loop() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      auto woken = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return wake_ || stop_; };
      mu_.AwaitWithTimeout(absl::Condition(&woken), options_.scan);
      if (stop_) return;
      wake_ = false;
    }
    RunDue();
  }
}

void AutoExporter::RunDue() {
  absl::StatusOr<std::vector<storage::JobExportRecord>> pending = store_->ListDueExports(NowMs());
  if (!pending.ok()) {
    spdlog::warn("auto-export: cannot list pending exports: {}", pending.status().message());
    return;
  }
  // The jobs of one invocation succeed together: read and parse it once, not once per job.
  std::map<std::string, InvocationContext> contexts;
  for (storage::JobExportRecord& r : *pending) {
    if (Stopping()) return;
    auto it = contexts.find(r.invocation_id);
    if (it == contexts.end()) {
      InvocationContext c{.view = store_->GetInvocation(r.invocation_id)};
      if (c.view.ok()) {
        absl::StatusOr<YAML::Node> parsed =
            config::ParseYaml(c.view->invocation.config_yaml, "<stored config>");
        if (parsed.ok()) c.config = *parsed;
      }
      it = contexts.emplace(r.invocation_id, std::move(c)).first;
    }
    Attempt(std::move(r), it->second);
  }
}

void AutoExporter::Attempt(storage::JobExportRecord r, const InvocationContext& context) {
  const char* env_token = std::getenv(kMlflowTokenSecret);
  const std::string token = env_token == nullptr ? "" : env_token;
  const char* env_wandb = std::getenv(kWandbApiKeySecret);
  const std::string wandb_key = env_wandb == nullptr ? "" : env_wandb;
  const Redactor redact(std::map<std::string, std::string>{{kMlflowTokenSecret, token},
                                                           {kWandbApiKeySecret, wandb_key}});
  absl::Duration retry_timeout = options_.default_retry_timeout;

  exporters::JobExportResult result;
  bool permanent = false;
  const absl::StatusOr<storage::InvocationView>& view = context.view;
  const JobRecord* job = nullptr;
  if (view.ok()) {
    for (const JobRecord& j : view->jobs) {
      if (j.id == r.job_id) job = &j;
    }
  }
  if (!view.ok() || job == nullptr) {
    result.message = view.ok() ? "the job is gone" : std::string(view.status().message());
    permanent = view.ok() || view.status().code() == absl::StatusCode::kNotFound;
  } else {
    const YAML::Node& config = context.config;
    retry_timeout = RetryTimeout(config, retry_timeout);
    exporters::JobExportInput in = ExportInputFor(view->invocation, config, *job);
    absl::StatusOr<nlohmann::json> cfg = DestinationConfig(config, r.dest, {});
    if (cfg.ok() && r.dest == "gsheets") {
      // A relative key file is the invocation's run dir's, as local's output_dir is.
      absl::StatusOr<std::string> key_file =
          exporters::ConfigString(*cfg, r.dest, "service_account_file", "");
      if (!key_file.ok()) {
        cfg = key_file.status();
      } else if (!key_file->empty() && (*key_file)[0] != '~' && fs::path(*key_file).is_relative()) {
        (*cfg)["service_account_file"] =
            (fs::path(view->invocation.run_dir) / *key_file).lexically_normal().string();
      }
    }
    if (cfg.ok() && r.dest == "local") {
      // A relative output_dir (and the exporter's default) is the invocation's run dir's.
      absl::StatusOr<std::string> out =
          exporters::ConfigString(*cfg, r.dest, "output_dir", "nemo-evaluator-launcher-results");
      if (!out.ok()) {
        cfg = out.status();
      } else {
        fs::path p(*out);
        if (p.is_relative()) p = fs::path(view->invocation.run_dir) / p;
        (*cfg)["output_dir"] = p.lexically_normal().string();
      }
    }
    if (!cfg.ok()) {
      result.message = std::string(cfg.status().message());
      permanent = true;
    } else if (r.dest == "local") {
      absl::StatusOr<exporters::LocalExporter> e = exporters::LocalExporter::FromConfig(*cfg);
      if (e.ok()) {
        result = e->ExportJob(in);
      } else {
        result.message = std::string(e.status().message());
        permanent = true;
      }
    } else if (r.dest == "mlflow") {
      // Short per-call retries: this loop retries the whole export for much longer, and an
      // attempt in progress is what evald's shutdown waits for.
      exporters::MlflowClient::Options client{.request_timeout = absl::Seconds(15),
                                              .connect_timeout = absl::Seconds(5),
                                              .max_attempts = 3,
                                              .max_total = absl::Seconds(20)};
      absl::StatusOr<exporters::MlflowExporter> e =
          exporters::MlflowExporter::FromConfig(*cfg, token, client);
      if (e.ok()) {
        result = e->ExportJob(in);
      } else {
        result.message = std::string(e.status().message());
        permanent = true;
      }
    } else if (r.dest == "wandb" || r.dest == "gsheets") {
      // Short per-call retries as for MLflow: this loop retries the whole export.
      exporters::RestClientOptions client{.request_timeout = absl::Seconds(15),
                                          .connect_timeout = absl::Seconds(5),
                                          .max_attempts = 3,
                                          .max_total = absl::Seconds(20)};
      if (r.dest == "wandb") {
        absl::StatusOr<exporters::WandbExporter> e =
            exporters::WandbExporter::FromConfig(*cfg, wandb_key, client);
        if (e.ok()) {
          result = e->ExportJob(in);
        } else {
          result.message = std::string(e.status().message());
          permanent = true;
        }
      } else {
        absl::StatusOr<exporters::GsheetsExporter> e =
            exporters::GsheetsExporter::FromConfig(*cfg, client);
        if (e.ok()) {
          result = e->ExportJob(in);
        } else {
          result.message = std::string(e.status().message());
          permanent = true;
        }
      }
    } else {
      result.message = std::string(CheckExportDestination(r.dest).message());
      permanent = true;
    }
  }

  const int64_t now = NowMs();
  r.attempts += 1;
  r.updated_ms = now;
  r.message = redact(result.message);
  std::string event;
  if (result.success) {
    r.state = "succeeded";
    auto url = result.metadata.find("run_url");
    r.run_url = url != result.metadata.end() && url->is_string() ? url->get<std::string>() : "";
    event = r.run_url.empty() ? absl::StrCat("export ", r.dest, ": ok, ", r.message)
                              : absl::StrCat("export ", r.dest, ": ok, run_url ", r.run_url);
  } else {
    permanent = permanent || IsPermanent(result.message);
    absl::Duration backoff = options_.first_backoff;
    for (int i = 1; i < r.attempts && backoff < options_.max_backoff; ++i) backoff *= 2;
    backoff = std::min(backoff, options_.max_backoff);
    const bool out_of_time =
        absl::FromUnixMillis(now) + backoff > absl::FromUnixMillis(r.created_ms) + retry_timeout;
    if (permanent || out_of_time) {
      r.state = "failed";
      event = absl::StrCat(
          "export ", r.dest, ": failed: ", r.message,
          permanent ? "" : absl::StrCat("; giving up after ", r.attempts, " attempts"));
    } else {
      r.next_attempt_ms = now + absl::ToInt64Milliseconds(backoff);
      event = absl::StrCat("export ", r.dest, ": failed: ", r.message, "; retrying in ",
                           absl::FormatDuration(backoff), " (attempt ", r.attempts, ")");
    }
  }
  absl::Status s = store_->PutExport(r);
  if (!s.ok())
    spdlog::warn("job {}: cannot record the export to {}: {}", r.job_id, r.dest, s.message());
  absl::StatusOr<EventRecord> e = store_->AppendEvent({.time_ms = now,
                                                       .invocation_id = r.invocation_id,
                                                       .job_id = r.job_id,
                                                       .kind = "job.export",
                                                       .message = event});
  if (!e.ok())
    spdlog::warn("job {}: cannot record the export event: {}", r.job_id, e.status().message());
  spdlog::info("job {}: {}", r.job_id, event);
  hub_->NotifyChanged();
}

}  // namespace evald::daemon
