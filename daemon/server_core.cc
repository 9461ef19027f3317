#include "daemon/server_core.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/config/compose.h"
#include "core/config/job_plan.h"
#include "core/config/run_config.h"
#include "core/config/schema.h"
#include "core/deployment/deployment_spec.h"
#include "core/ids.h"
#include "core/redact.h"
#include "core/status_macros.h"
#include "daemon/auth/token.h"
#include "daemon/log_tail.h"
#include "daemon/proto_convert.h"
#include "daemon/results_reader.h"
#include "daemon/submit_key.h"
#include "daemon/fmt_absl.h"
#include "spdlog/spdlog.h"

#ifndef EVALD_VERSION
#define EVALD_VERSION "0.0.0"
#endif

namespace evald::daemon {
namespace {

namespace fs = std::filesystem;

constexpr int kDefaultListLimit = 50;
constexpr int kMaxListLimit = 1000;
constexpr absl::Duration kStreamPoll = absl::Milliseconds(250);
// Logs kept by the executor (a Lepton job's /logs): how often a follower asks.
constexpr absl::Duration kExecutorLogPoll = absl::Seconds(2);
// Configs are a few KB; one over this leaves megabytes of free heap behind (request_gate.h).
constexpr size_t kTrimAfterConfigBytes = 32 << 10;

int64_t NowMs() { return absl::ToUnixMillis(absl::Now()); }

absl::Status ShuttingDown() { return absl::UnavailableError("evald is shutting down"); }

std::string JobFilterOf(const std::string& id) {
  return ParseJobId(id).has_value() ? id : "";
}

absl::Status CheckId(const std::string& id) {
  if (id.empty()) return absl::InvalidArgumentError("an invocation or job id is required");
  std::string inv = InvocationIdOf(id);
  if (!IsValidInvocationId(inv) || (id != inv && !ParseJobId(id).has_value())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", id, "' is not an invocation id (8 hex digits) or a job id (<invocation>.<n>)"));
  }
  return absl::OkStatus();
}

// The environment for ${oc.env:...} left in an API client's config: only what it sent.
config::EnvLookup RequestEnv(const v1::SubmitRequest& request) {
  std::map<std::string, std::string> env(request.environment().begin(),
                                         request.environment().end());
  return [env](const std::string& name) -> std::optional<std::string> {
    auto it = env.find(name);
    if (it == env.end()) return std::nullopt;
    return it->second;
  };
}

}  // namespace

absl::StatusOr<std::unique_ptr<ServerCore>> ServerCore::Create(
    const ServerConfig& config, std::function<absl::Status()> may_start_jobs,
    std::vector<std::unique_ptr<executors::Executor>> extra_executors,
    SystemdNotifier* notifier) {
  std::unique_ptr<ServerCore> core(new ServerCore());
  core->config_ = config;
  core->submit_policy_ = std::make_unique<SubmitPolicy>(SubmitPolicyOptions{
      .state_dir = config.state_dir,
      .output_roots = config.output_roots,
      .command_deployments = config.command_deployments == "all"    ? CommandDeployments::kAll
                             : config.command_deployments == "none" ? CommandDeployments::kNone
                                                                    : CommandDeployments::kAdmins,
      .submits_per_minute = config.limit_submits_per_minute,
      .active_jobs = config.limit_active_jobs});
  core->started_ms_ = NowMs();
  EVALD_ASSIGN_OR_RETURN(core->store_,
                         storage::Store::Open({.db_path = config.state_dir + "/evald.db",
                                               .key_path = config.state_dir + "/secrets.key"}));
  core->metrics_ = std::make_unique<Metrics>(core->store_.get(), config.state_dir + "/evald.db");
  EVALD_ASSIGN_OR_RETURN(core->catalog_,
                         config::TaskCatalog::LoadDir(config.configs_dir + "/tasks"));
  EVALD_RETURN_IF_ERROR(executors::RegisterBuiltinExecutors(
      {.runner_path = config.runner_path,
       .container_runtime = config.container_runtime,
       .eval_binary = config.eval_binary,
       .job_nice = config.job_nice},
      core->registry_));
  for (std::unique_ptr<executors::Executor>& executor : extra_executors) {
    EVALD_RETURN_IF_ERROR(core->registry_.Register(std::move(executor)));
  }
  core->planner_ = std::make_unique<JobPlanner>(&core->catalog_, config.eval_binary,
                                               core->registry_.JobEnv());
  core->planner_->SetSecretSource(
      [store = core->store_.get()](const std::string& id) { return store->GetSecrets(id); });
  core->supervisor_ = std::make_unique<Supervisor>(
      core->store_.get(), &core->registry_, core->planner_.get(), &core->hub_,
      Supervisor::Options{.tick = config.tick,
                          .stop_grace = config.stop_grace,
                          .max_running_jobs = config.max_running_jobs,
                          .may_start = std::move(may_start_jobs),
                          .poll_intervals = config.executor_poll,
                          .metrics = core->metrics_.get(),
                          .on_pass_done = notifier != nullptr
                                              ? notifier->PassDoneHook(core->store_.get())
                                              : nullptr});
  return core;
}

ServerCore::~ServerCore() { Shutdown(); }

void ServerCore::StartSupervisor() { supervisor_->Start(); }

void ServerCore::Shutdown() {
  hub_.Shutdown();
  if (supervisor_) supervisor_->Stop();
}

void ServerCore::FillInvocation(const storage::InvocationView& view, bool include_config,
                                v1::Invocation* out) const {
  ToProto(view.invocation, out);
  for (const JobRecord& job : view.jobs) ToProto(job, view.invocation.executor, registry_, out->add_jobs());
  for (const DeploymentRecord& d : view.deployments) ToProto(d, registry_, out->add_deployments());
  out->set_job_count(static_cast<int32_t>(view.jobs.size()));
  if (include_config) out->set_config_yaml(view.invocation.config_yaml);
  // Auto-export state per job and destination; a read failure only leaves it out.
  absl::StatusOr<std::vector<storage::JobExportRecord>> exports =
      store_->ListExports(view.invocation.id);
  if (!exports.ok() || exports->empty()) return;
  for (v1::Job& job : *out->mutable_jobs()) {
    for (const storage::JobExportRecord& e : *exports) {
      if (e.job_id != job.job_id()) continue;
      v1::JobExport* x = job.add_exports();
      x->set_dest(e.dest);
      x->set_state(e.state == "succeeded" ? v1::EXPORT_STATE_SUCCEEDED
                   : e.state == "failed"  ? v1::EXPORT_STATE_FAILED
                                          : v1::EXPORT_STATE_PENDING);
      x->set_attempts(e.attempts);
      x->set_message(e.message);
      x->set_run_url(e.run_url);
      x->set_updated_ms(e.updated_ms);
      if (e.state == "pending") x->set_next_attempt_ms(e.next_attempt_ms);
    }
  }
}

namespace {

// Everything Submit stores for one invocation id.
struct SubmitRecords {
  InvocationRecord invocation;
  std::vector<JobRecord> jobs;
  std::vector<DeploymentRecord> deployments;
};

}  // namespace

absl::Status ServerCore::Submit(const Caller& caller, const v1::SubmitRequest& request,
                                v1::SubmitResponse* response) {
  EVALD_RETURN_IF_ERROR(RequireRole(caller, Role::kUser, "submit"));
  if (request.config_yaml().empty()) return absl::InvalidArgumentError("config_yaml is empty");
  EVALD_RETURN_IF_ERROR(CheckIdempotencyKey(request.idempotency_key()));
  std::string working_dir = request.working_dir();
  if (working_dir.empty()) {
    std::error_code ec;
    working_dir = fs::current_path(ec).string();
  } else if (working_dir[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("working_dir must be an absolute path, got '", working_dir, "'"));
  }
  // Parsing, composing and planning is where a Submit's memory goes: a few at a time.
  EVALD_ASSIGN_OR_RETURN(RequestGate::Slot heavy, submit_gate_.Acquire());
  if (request.config_yaml().size() > kTrimAfterConfigBytes) heavy.TrimAtEnd();
  YAML::Node composed;
  if (request.composed()) {
    if (request.overrides_size() > 0) {
      return absl::InvalidArgumentError(
          "overrides come with an uncomposed config; apply them when composing instead");
    }
    EVALD_ASSIGN_OR_RETURN(composed,
                           config::ParseYaml(request.config_yaml(), "<submitted config>"));
  } else {
    config::ComposeRequest compose;
    compose.primary_yaml = request.config_yaml();
    compose.primary_name = "<submitted config>";
    compose.packaged_dir = config_.configs_dir;
    compose.overrides.assign(request.overrides().begin(), request.overrides().end());
    compose.env = RequestEnv(request);
    compose.working_dir = working_dir;
    EVALD_ASSIGN_OR_RETURN(composed, config::Compose(compose));
  }
  std::vector<std::string> filter(request.tasks().begin(), request.tasks().end());
  // Every key, type and limit first, all problems at once; then the decoding checks.
  EVALD_RETURN_IF_ERROR(
      config::CheckConfigSchema(composed, "<submitted config>", registry_.schemas()));
  EVALD_ASSIGN_OR_RETURN(config::RunConfig rc,
                         config::ParseRunConfig(composed, catalog_, filter, registry_.JobEnv()));

  absl::StatusOr<executors::Executor*> executor = registry_.Get(rc.executor);
  if (!executor.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("execution.type: ", executor.status().message()));
  }
  // Jobs write output_dir as evald's user; a remote SLURM cluster's path is the ssh user's.
  const bool remote_output = rc.executor == "slurm" && rc.execution["hostname"].IsScalar() &&
                             !rc.execution["hostname"].Scalar().empty();
  if (!remote_output) EVALD_RETURN_IF_ERROR(submit_policy_->CheckOutputDir(caller, rc.output_dir));
  std::optional<deployment::DeploymentSpec> deploy;
  // The executor runs the server inside each job (SLURM): no deployment is recorded, each job's
  // spec carries it and Validate checks it with the job.
  const bool server_in_job = rc.deployment_type != "none" && (*executor)->DeploysInJob();
  if (rc.deployment_type != "none") {
    absl::StatusOr<deployment::DeploymentSpec> spec =
        deployment::ParseDeploymentSpec(rc.deployment, rc.execution);
    if (!spec.ok()) return spec.status();
    EVALD_RETURN_IF_ERROR(submit_policy_->CheckDeployment(caller, spec->type));
    executors::DeploymentBackend* servers = (*executor)->deployments();
    if (servers == nullptr && !server_in_job) {
      return absl::FailedPreconditionError(
          absl::StrCat("the ", rc.executor, " executor cannot deploy models in this evald; use ",
                       "deployment: none with target.api_endpoint.url"));
    }
    if (!server_in_job) EVALD_RETURN_IF_ERROR(servers->Validate(*spec));
    deploy = std::move(*spec);
    // Secret environment of the server ($host:NAME values) travels like the jobs' secrets.
    for (const auto& [server_var, host_var] : deploy->secret_env_vars) {
      if (std::find(rc.secret_names.begin(), rc.secret_names.end(), host_var) ==
          rc.secret_names.end()) {
        rc.secret_names.push_back(host_var);
      }
    }
    std::sort(rc.secret_names.begin(), rc.secret_names.end());
  }
  std::vector<std::string> missing;
  std::map<std::string, std::string> secrets;
  for (const std::string& name : rc.secret_names) {
    auto it = request.secrets().find(name);
    if (it == request.secrets().end()) {
      missing.push_back(name);
    } else {
      secrets[name] = it->second;
    }
  }
  if (!missing.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the config needs the values of environment variable(s) ", absl::StrJoin(missing, ", "),
        " but the request's secrets map lacks them (evalctl sends them from its environment)"));
  }

  absl::Time created = absl::Now();
  int64_t created_ms = absl::ToUnixMillis(created);
  std::vector<std::string> dir_names = JobPlanner::TaskDirNames(rc);
  std::string config_yaml = config::ToYaml(composed);
  // A secret the config itself does not name (evalctl sends the credential-named variables a
  // `${oc.env:...}` read, e.g. AWS_SECRET_ACCESS_KEY in an export config) is kept with the others
  // when its value is in the config, so it is masked there and restored for jobs and resumes.
  for (const auto& [name, value] : request.secrets()) {
    if (secrets.count(name) == 0 && value.size() >= 4 &&
        config_yaml.find(value) != std::string::npos) {
      secrets[name] = value;
      rc.secret_names.push_back(name);
    }
  }
  std::sort(rc.secret_names.begin(), rc.secret_names.end());
  // Stored and returned with secret values masked (a `${oc.env:...}` of a secret variable puts
  // one in the config); the job planner puts them back from the encrypted secrets.
  const std::string stored_yaml = Redactor(secrets)(config_yaml);
  auto build = [&](const std::string& invocation_id) {
    SubmitRecords r;
    std::string run_dir =
        absl::StrCat(rc.output_dir, "/", JobPlanner::RunDirName(created, invocation_id));
    InvocationRecord& inv = r.invocation;
    inv.id = invocation_id;
    inv.executor = rc.executor;
    inv.config_yaml = stored_yaml;
    inv.run_dir = run_dir;
    inv.mode = rc.mode;
    inv.task_filter = filter;
    inv.secret_names = rc.secret_names;
    inv.client = request.client();
    inv.owner = caller.user;
    inv.created_ms = created_ms;
    inv.updated_ms = created_ms;
    for (size_t i = 0; i < rc.tasks.size(); ++i) {
      const config::TaskSpec& task = rc.tasks[i];
      JobRecord job;
      job.invocation_id = invocation_id;
      job.id = JobId(invocation_id, task.index);
      job.index = task.index;
      job.task = task.name;
      job.harness = task.def.harness;
      job.endpoint_type = task.endpoint_type;
      job.container = task.container;
      job.output_dir = absl::StrCat(run_dir, "/", dir_names[i]);
      job.created_ms = created_ms;
      inv.tasks.push_back(task.name);
      r.jobs.push_back(std::move(job));
    }
    if (deploy && !server_in_job) {
      auto add = [&](int index, const std::string& job_id, const std::string& log_path) {
        DeploymentRecord d;
        d.id = DeploymentId(invocation_id, index);
        d.invocation_id = invocation_id;
        d.job_id = job_id;
        d.type = rc.deployment_type;
        d.spec_yaml = JobPlanner::EncodeDeploymentSpec(rc, secrets);
        d.command = deployment::ReferenceCommand(*deploy);
        d.port = deploy->port_auto ? 0 : deploy->port;
        d.log_path = log_path;
        d.created_ms = created_ms;
        r.deployments.push_back(std::move(d));
      };
      if (deploy->shared) {
        add(0, "", run_dir + "/deployment/server.log");
      } else {
        for (const JobRecord& job : r.jobs) {
          add(job.index, job.id, job.output_dir + "/logs/server.log");
        }
      }
    }
    return r;
  };

  // Each job is planned here, once: its spec is stored with it (secret values masked) and every
  // attempt starts from it. Every job must be runnable here; dry runs also render what would run.
  auto plan = [&](SubmitRecords& r, bool render) -> absl::Status {
    for (size_t i = 0; i < rc.tasks.size(); ++i) {
      JobRecord probe = r.jobs[i];
      probe.attempt = 1;
      EVALD_ASSIGN_OR_RETURN(config::EndpointSpec endpoint,
                             config::EndpointForTask(rc, rc.tasks[i]));
      EVALD_ASSIGN_OR_RETURN(executors::JobSpec spec,
                             planner_->BuildSpec(rc, rc.tasks[i], probe, endpoint));
      if (server_in_job) spec.deployment_yaml = config::ToYaml(rc.deployment);
      EVALD_RETURN_IF_ERROR((*executor)->Validate(spec));
      r.jobs[i].spec_yaml = JobPlanner::EncodeSpec(spec, secrets);
      if (render) {
        EVALD_ASSIGN_OR_RETURN(executors::RenderedJob rendered, (*executor)->Render(spec));
        v1::JobRef* ref = response->add_jobs();
        ref->set_job_id(probe.id);
        ref->set_task(probe.task);
        ref->set_output_dir(probe.output_dir);
        ref->set_script(rendered.script);
        ref->set_plan(rendered.plan);
      }
    }
    return absl::OkStatus();
  };
  SubmitRecords records = build(NewInvocationId());
  EVALD_RETURN_IF_ERROR(plan(records, request.dry_run()));
  heavy.Release();  // what follows is small, and storing has the store's own lock
  if (deploy) response->set_deployment_command(deployment::ReferenceCommand(*deploy));
  if (deploy && request.dry_run() && !records.deployments.empty()) {
    // A backend may show more than the command (Lepton: the endpoint spec it would create).
    const DeploymentRecord& d = records.deployments.front();
    const executors::DeploymentRef ref{
        .id = d.id, .invocation_id = d.invocation_id, .log_path = d.log_path};
    EVALD_ASSIGN_OR_RETURN(std::string rendered, (*executor)->deployments()->Render(ref, *deploy));
    if (!rendered.empty()) response->set_deployment_command(rendered);
  }
  response->set_dry_run(request.dry_run());
  if (request.dry_run()) {
    // Nothing is stored or started; the id shows what the run would be called.
    response->set_invocation_id(records.invocation.id);
    response->set_run_dir(records.invocation.run_dir);
    response->set_config_yaml(stored_yaml);
    return absl::OkStatus();
  }

  int64_t active_jobs = 0;
  if (submit_policy_->limits_active_jobs()) {
    EVALD_ASSIGN_OR_RETURN(active_jobs, store_->CountActiveJobsOfOwner(caller.user));
  }
  EVALD_RETURN_IF_ERROR(submit_policy_->Admit(caller, active_jobs,
                                              static_cast<int>(records.jobs.size()), absl::Now()));
  std::optional<storage::SubmitKey> key;
  if (!request.idempotency_key().empty()) {
    key = storage::SubmitKey{request.idempotency_key(), CanonicalSubmitRequest(request), ""};
  }
  absl::Status created_status;
  for (int tries = 0; tries < 5; ++tries) {
    std::vector<EventRecord> events;
    created_status =
        store_->CreateInvocation(records.invocation, records.jobs, records.deployments, secrets,
                                 created_ms, &events, key.has_value() ? &*key : nullptr);
    // An id collision (1 in 4 billion per pair): draw another id.
    if (created_status.code() != absl::StatusCode::kAlreadyExists) break;
    records = build(NewInvocationId());
    EVALD_RETURN_IF_ERROR(plan(records, /*render=*/false));
  }
  EVALD_RETURN_IF_ERROR(created_status);
  if (key.has_value() && !key->existing_invocation_id.empty()) {
    // A retry of a stored Submit: answer as the first one was answered; nothing new is stored.
    EVALD_ASSIGN_OR_RETURN(storage::InvocationView view,
                           store_->GetInvocation(key->existing_invocation_id));
    spdlog::info("invocation {} submitted again by {} with idempotency key {}: nothing stored",
                 view.invocation.id, request.client().empty() ? "unknown client" : request.client(),
                 key->key);
    response->set_invocation_id(view.invocation.id);
    response->set_run_dir(view.invocation.run_dir);
    for (const JobRecord& job : view.jobs) {
      v1::JobRef* ref = response->add_jobs();
      ref->set_job_id(job.id);
      ref->set_task(job.task);
      ref->set_output_dir(job.output_dir);
    }
    return absl::OkStatus();
  }
  const std::string& invocation_id = records.invocation.id;
  spdlog::info("invocation {} submitted by {} ({}) with {}: {} job(s) on {}{}", invocation_id,
               caller.user, caller.via,
               request.client().empty() ? "unknown client" : request.client(),
               records.jobs.size(), rc.executor,
               deploy ? absl::StrCat(" with a ", rc.deployment_type, " deployment") : "");
  response->set_invocation_id(invocation_id);
  response->set_run_dir(records.invocation.run_dir);
  for (const JobRecord& job : records.jobs) {
    v1::JobRef* ref = response->add_jobs();
    ref->set_job_id(job.id);
    ref->set_task(job.task);
    ref->set_output_dir(job.output_dir);
  }
  hub_.NotifyChanged();
  supervisor_->Wake();
  return absl::OkStatus();
}

absl::Status ServerCore::GetInvocation(const v1::GetInvocationRequest& request,
                                       v1::Invocation* response) {
  EVALD_RETURN_IF_ERROR(CheckId(request.id()));
  EVALD_ASSIGN_OR_RETURN(storage::InvocationView view,
                         store_->GetInvocation(InvocationIdOf(request.id())));
  FillInvocation(view, request.include_config(), response);
  return absl::OkStatus();
}

absl::Status ServerCore::ListInvocations(const Caller& caller,
                                         const v1::ListInvocationsRequest& request,
                                         v1::ListInvocationsResponse* response) {
  storage::InvocationFilter filter;
  filter.owner = request.mine() ? caller.user : request.owner();
  if (request.state() != v1::JOB_STATE_UNSPECIFIED) {
    filter.state = FromProto(request.state());
    if (!filter.state) return absl::InvalidArgumentError("unknown state filter");
  }
  filter.executor = absl::AsciiStrToLower(request.executor());
  filter.since_ms = request.since_ms();
  filter.task = request.task();
  filter.id_contains = request.query();
  filter.limit = request.limit() <= 0 ? kDefaultListLimit : request.limit();
  if (filter.limit > kMaxListLimit) {
    return absl::InvalidArgumentError(
        absl::StrCat("limit ", request.limit(), " is over the maximum of ", kMaxListLimit));
  }
  filter.page_token = request.page_token();
  EVALD_ASSIGN_OR_RETURN(storage::InvocationPage page, store_->ListInvocations(filter));
  for (size_t i = 0; i < page.invocations.size(); ++i) {
    v1::Invocation* out = response->add_invocations();
    if (request.include_jobs()) {
      absl::StatusOr<storage::InvocationView> view =
          store_->GetInvocation(page.invocations[i].id);
      if (view.ok()) {
        FillInvocation(*view, false, out);
        continue;
      }
    }
    ToProto(page.invocations[i], out);
    if (i < page.job_counts.size()) out->set_job_count(page.job_counts[i]);
  }
  response->set_next_page_token(page.next_page_token);
  return absl::OkStatus();
}

absl::Status ServerCore::Watch(const v1::WatchRequest& request,
                               const StreamSink<v1::WatchEvent>& sink) {
  EVALD_RETURN_IF_ERROR(CheckId(request.id()));
  const std::string invocation_id = InvocationIdOf(request.id());
  const std::string job_filter = JobFilterOf(request.id());
  uint64_t seen = hub_.generation();
  EVALD_ASSIGN_OR_RETURN(storage::InvocationView view, store_->GetInvocation(invocation_id));
  if (!job_filter.empty()) {
    bool found = false;
    for (const JobRecord& job : view.jobs) found |= job.id == job_filter;
    if (!found) return absl::NotFoundError(absl::StrCat("no job ", job_filter));
  }
  v1::WatchEvent snapshot;
  FillInvocation(view, false, snapshot.mutable_snapshot());
  if (!sink.write(snapshot)) return absl::OkStatus();

  auto finished = [&](const storage::InvocationView& v) {
    if (job_filter.empty()) return IsTerminal(v.invocation.state);
    for (const JobRecord& job : v.jobs) {
      if (job.id == job_filter) return IsTerminal(job.state);
    }
    return true;
  };
  if (finished(view)) return absl::OkStatus();

  std::vector<std::pair<std::string, FileTailer>> tailers;  // job id, file
  if (request.include_logs()) {
    for (const JobRecord& job : view.jobs) {
      if (!job_filter.empty() && job.id != job_filter) continue;
      for (const char* file : {"/logs/stdout.log", "/logs/stderr.log"}) {
        tailers.emplace_back(job.id, FileTailer(job.output_dir + file));
        tailers.back().second.SkipToEnd();
      }
    }
  }
  int64_t last_seq = view.last_event_seq;
  bool done = false;
  while (!done) {
    if (sink.cancelled()) return absl::OkStatus();
    if (hub_.shut_down()) return ShuttingDown();
    uint64_t now_gen = hub_.WaitForChange(seen, kStreamPoll);
    // Progress first: the supervisor publishes a job's final count before its transition.
    if (request.include_progress()) {
      for (const auto& [job_id, p] : hub_.ProgressSince(invocation_id, seen)) {
        if (!job_filter.empty() && job_id != job_filter) continue;
        v1::WatchEvent msg;
        v1::JobProgress* jp = msg.mutable_progress();
        jp->set_job_id(job_id);
        jp->mutable_progress()->set_done(p.done);
        jp->mutable_progress()->set_total(p.total);
        jp->mutable_progress()->set_errors(p.errors);
        jp->mutable_progress()->set_rate(p.rate);
        jp->mutable_progress()->set_updated_ms(p.updated_ms);
        if (!sink.write(msg)) return absl::OkStatus();
      }
    }
    EVALD_ASSIGN_OR_RETURN(std::vector<EventRecord> events,
                           store_->ListEvents(invocation_id, last_seq, 500));
    for (const EventRecord& e : events) {
      last_seq = e.seq;
      bool relevant = job_filter.empty() || e.job_id.empty() || e.job_id == job_filter;
      if (!relevant) continue;
      v1::WatchEvent msg;
      ToProto(e, msg.mutable_event());
      if (!sink.write(msg)) return absl::OkStatus();
      std::optional<JobState> to = ParseJobState(e.to_state);
      if (to && IsTerminal(*to)) {
        if (job_filter.empty() && e.kind == "invocation.state") done = true;
        if (!job_filter.empty() && e.kind == "job.state" && e.job_id == job_filter) done = true;
      }
    }
    seen = now_gen;
    for (auto& [job_id, tailer] : tailers) {
      for (std::string& line : tailer.ReadLines(1000, done)) {
        v1::WatchEvent msg;
        msg.mutable_log()->set_job_id(job_id);
        msg.mutable_log()->set_source(absl::EndsWith(tailer.path(), "stderr.log") ? "stderr"
                                                                                  : "stdout");
        msg.mutable_log()->set_line(std::move(line));
        if (!sink.write(msg)) return absl::OkStatus();
      }
    }
    if (events.size() == 500) continue;  // more to read before waiting again
  }
  return absl::OkStatus();
}

absl::Status ServerCore::Kill(const Caller& caller, const v1::KillRequest& request,
                              v1::KillResponse* response) {
  EVALD_RETURN_IF_ERROR(CheckId(request.id()));
  EVALD_RETURN_IF_ERROR(RequireRole(caller, Role::kUser, "kill"));
  EVALD_ASSIGN_OR_RETURN(storage::InvocationView view,
                         store_->GetInvocation(InvocationIdOf(request.id())));
  EVALD_RETURN_IF_ERROR(
      RequireOwnerOrAdmin(caller, view.invocation.owner, "kill", request.id()));
  std::vector<EventRecord> events;
  EVALD_ASSIGN_OR_RETURN(std::vector<std::string> jobs,
                         store_->RequestStop(request.id(), NowMs(), &events, caller.user));
  for (const std::string& id : jobs) response->add_job_ids(id);
  spdlog::info("kill requested for {} by {} ({}): {} job(s)", request.id(), caller.user,
               caller.via, jobs.size());
  hub_.NotifyChanged();
  supervisor_->Wake();
  return absl::OkStatus();
}

absl::Status ServerCore::Resume(const Caller& caller, const v1::ResumeRequest& request,
                                v1::ResumeResponse* response) {
  EVALD_RETURN_IF_ERROR(CheckId(request.invocation_id()));
  if (request.invocation_id() != InvocationIdOf(request.invocation_id())) {
    return absl::InvalidArgumentError("resume takes an invocation id; use job_ids for single jobs");
  }
  EVALD_RETURN_IF_ERROR(RequireRole(caller, Role::kUser, "resume"));
  EVALD_ASSIGN_OR_RETURN(storage::InvocationView view,
                         store_->GetInvocation(request.invocation_id()));
  EVALD_RETURN_IF_ERROR(
      RequireOwnerOrAdmin(caller, view.invocation.owner, "resume", request.invocation_id()));
  std::set<std::string> wanted(request.job_ids().begin(), request.job_ids().end());
  std::vector<JobRecord*> targets;
  for (JobRecord& job : view.jobs) {
    bool resumable = job.state == JobState::kFailed || job.state == JobState::kKilled ||
                     job.state == JobState::kLost;
    if (!wanted.empty() && wanted.count(job.id) == 0) continue;
    if (!resumable) {
      if (!wanted.empty()) {
        return absl::FailedPreconditionError(absl::StrCat(
            "job ", job.id, " is ", ToString(job.state), "; only failed, killed or lost jobs resume"));
      }
      continue;
    }
    wanted.erase(job.id);
    targets.push_back(&job);
  }
  if (!request.job_ids().empty() && !wanted.empty()) {
    return absl::NotFoundError(absl::StrCat("no job ", *wanted.begin(), " in invocation ",
                                            request.invocation_id()));
  }
  if (targets.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "nothing to resume in ", request.invocation_id(), ": no job failed, was killed or lost (",
        ToString(view.invocation.state), ")"));
  }
  EVALD_ASSIGN_OR_RETURN(auto stored, store_->GetSecrets(request.invocation_id()));
  std::map<std::string, std::string> secrets;
  std::vector<std::string> missing;
  for (const std::string& name : view.invocation.secret_names) {
    auto sent = request.secrets().find(name);
    if (sent != request.secrets().end()) {
      secrets[name] = sent->second;
    } else if (stored.count(name) > 0) {
      secrets[name] = stored[name];
    } else {
      missing.push_back(name);
    }
  }
  if (!missing.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "resuming needs the value of ", absl::StrJoin(missing, ", "),
        " again (secrets are deleted when an invocation ends); export it and resume again"));
  }
  EVALD_RETURN_IF_ERROR(store_->PutSecrets(request.invocation_id(), secrets));
  // The model servers of resumed jobs come up again.
  for (const DeploymentRecord& d : view.deployments) {
    if (!IsTerminal(d.state)) continue;
    bool needed = false;
    for (const JobRecord* job : targets) needed |= d.job_id.empty() || d.job_id == job->id;
    if (!needed) continue;
    absl::StatusOr<std::vector<EventRecord>> reset = store_->TransitionDeployment(
        {.deployment_id = d.id, .from = d.state, .to = DeploymentState::kPending,
         .message = "resumed on request"},
        NowMs());
    if (!reset.ok()) return reset.status();
  }
  for (JobRecord* job : targets) {
    absl::StatusOr<std::vector<EventRecord>> events = store_->TransitionJob(
        {.job_id = job->id,
         .from = job->state,
         .to = JobState::kPending,
         .message = "resumed on request"},
        NowMs());
    if (!events.ok()) return events.status();
    response->add_job_ids(job->id);
  }
  // Who asked: the job transitions above are the supervisor's vocabulary and carry no actor.
  EventRecord asked;
  asked.time_ms = NowMs();
  asked.invocation_id = request.invocation_id();
  asked.kind = "invocation.resume_requested";
  asked.message = absl::StrCat("resume requested for ", response->job_ids_size(), " job(s)");
  asked.actor = caller.user;
  if (absl::StatusOr<EventRecord> e = store_->AppendEvent(asked); !e.ok()) {
    spdlog::warn("cannot record who resumed {}: {}", request.invocation_id(), e.status().message());
  }
  spdlog::info("resume of {} requested by {} ({}): {} job(s)", request.invocation_id(),
               caller.user, caller.via, response->job_ids_size());
  hub_.NotifyChanged();
  supervisor_->Wake();
  return absl::OkStatus();
}

absl::Status ServerCore::StreamLogs(const v1::StreamLogsRequest& request,
                                    const StreamSink<v1::LogChunk>& sink) {
  EVALD_RETURN_IF_ERROR(CheckId(request.job_id()));
  const std::string job_filter = JobFilterOf(request.job_id());
  EVALD_ASSIGN_OR_RETURN(storage::InvocationView view,
                         store_->GetInvocation(InvocationIdOf(request.job_id())));
  std::vector<std::string> sources;
  std::string source = request.source().empty() ? "stdout" : request.source();
  if (source == "all") {
    sources = {"stdout", "stderr", "server"};
  } else if (source == "stdout" || source == "stderr" || source == "server") {
    sources = {source};
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown log source '", source, "'; use stdout, stderr, server or all"));
  }
  struct Stream {
    std::string job_id;
    std::string source;
    std::string path;
    FileTailer tailer;
    // A job's stdout while its log file does not exist (a Lepton job without shared storage):
    // the executor's own logs (Executor::ReadLogs) from `cursor` on, once it has a handle.
    bool may_use_executor = false;
    bool from_executor = false;
    bool tail_applied = false;
    std::string cursor;
    absl::Time next_read = absl::InfinitePast();
  };
  std::vector<Stream> streams;
  std::set<std::string> seen_paths;  // a shared server log is streamed once
  for (const JobRecord& job : view.jobs) {
    if (!job_filter.empty() && job.id != job_filter) continue;
    for (const std::string& s : sources) {
      std::string path = absl::StrCat(job.output_dir, "/logs/", s, ".log");
      if (s == "server") {
        // The model server's log: the job's own deployment, or the invocation's shared one.
        path.clear();
        for (const DeploymentRecord& d : view.deployments) {
          if (d.job_id.empty() || d.job_id == job.id) path = d.log_path;
        }
        if (path.empty()) continue;
      }
      if (!seen_paths.insert(path).second) continue;
      streams.push_back({.job_id = job.id, .source = s, .path = path, .tailer = FileTailer(path)});
      streams.back().tailer.StartAtLastLines(request.tail_lines());
      streams.back().may_use_executor = s == "stdout";
    }
  }
  if (streams.empty()) {
    if (source == "server") {
      return absl::NotFoundError(
          absl::StrCat(request.job_id(), " has no deployment, so no server log"));
    }
    return absl::NotFoundError(absl::StrCat("no job ", request.job_id()));
  }

  uint64_t seen = hub_.generation();
  while (true) {
    bool finished = true;
    if (request.follow()) {
      absl::StatusOr<storage::InvocationView> now = store_->GetInvocation(view.invocation.id);
      if (now.ok()) {
        for (const JobRecord& job : now->jobs) {
          if (job_filter.empty() || job.id == job_filter) finished &= IsTerminal(job.state);
        }
        view = *std::move(now);
      }
    }
    bool wrote = false;
    for (Stream& s : streams) {
      if (s.may_use_executor && !s.from_executor) {
        if (fs::exists(s.path)) {
          s.may_use_executor = false;
        } else {
          for (const JobRecord& job : view.jobs) {
            if (job.id == s.job_id && !job.handle.executor.empty()) s.from_executor = true;
          }
        }
      }
      if (s.from_executor) {
        const absl::Time now = absl::Now();
        if (now < s.next_read && !finished) continue;
        s.next_read = now + kExecutorLogPoll;
        const JobRecord* job = nullptr;
        for (const JobRecord& j : view.jobs) {
          if (j.id == s.job_id) job = &j;
        }
        if (job == nullptr) continue;
        absl::StatusOr<executors::LogPage> page =
            supervisor_->ReadJobLogs(view.invocation.executor, *job, s.cursor);
        if (absl::IsUnimplemented(page.status())) {
          s.from_executor = s.may_use_executor = false;  // the file, when it appears
          continue;
        }
        if (!page.ok()) {
          if (!request.follow()) return page.status();
          spdlog::warn("logs of {}: {}", s.job_id, page.status().message());
          continue;
        }
        s.cursor = page->cursor;
        std::vector<std::string>& lines = page->lines;
        if (!s.tail_applied && request.tail_lines() > 0 &&
            lines.size() > static_cast<size_t>(request.tail_lines())) {
          lines.erase(lines.begin(), lines.end() - request.tail_lines());
        }
        s.tail_applied = true;
        for (size_t i = 0; i < lines.size(); i += 500) {
          v1::LogChunk chunk;
          chunk.set_job_id(s.job_id);
          chunk.set_source(s.source);
          for (size_t k = i; k < std::min(lines.size(), i + 500); ++k) {
            chunk.add_lines(std::move(lines[k]));
          }
          if (!sink.write(chunk)) return absl::OkStatus();
          wrote = true;
        }
        continue;
      }
      while (true) {
        std::vector<std::string> lines = s.tailer.ReadLines(500, finished);
        if (lines.empty()) break;
        v1::LogChunk chunk;
        chunk.set_job_id(s.job_id);
        chunk.set_source(s.source);
        for (std::string& l : lines) chunk.add_lines(std::move(l));
        if (!sink.write(chunk)) return absl::OkStatus();
        wrote = true;
      }
    }
    if (!request.follow() || (finished && !wrote)) return absl::OkStatus();
    if (sink.cancelled()) return absl::OkStatus();
    if (hub_.shut_down()) return ShuttingDown();
    seen = hub_.WaitForChange(seen, kStreamPoll);
  }
}

absl::Status ServerCore::ListTasks(const v1::ListTasksRequest& request,
                                   v1::ListTasksResponse* response) {
  for (const config::TaskDef& t : catalog_.tasks()) {
    if (!request.harness().empty() && t.harness != request.harness()) continue;
    v1::TaskInfo* info = response->add_tasks();
    info->set_name(t.name);
    info->set_harness(t.harness);
    info->set_container(t.container);
    info->set_endpoint_type(t.endpoint_type);
    for (const std::string& v : t.required_env_vars) info->add_required_env_vars(v);
    info->set_description(t.description);
    info->set_native(t.native());
  }
  return absl::OkStatus();
}

absl::Status ServerCore::GetResults(const v1::GetResultsRequest& request,
                                    v1::GetResultsResponse* response) {
  EVALD_RETURN_IF_ERROR(CheckId(request.id()));
  const std::string job_filter = JobFilterOf(request.id());
  EVALD_ASSIGN_OR_RETURN(storage::InvocationView view,
                         store_->GetInvocation(InvocationIdOf(request.id())));
  EVALD_ASSIGN_OR_RETURN(std::vector<ResultRecord> rows, store_->GetResults(request.id()));
  response->set_invocation_id(view.invocation.id);
  for (const JobRecord& job : view.jobs) {
    if (!job_filter.empty() && job.id != job_filter) continue;
    v1::JobResult* jr = response->add_jobs();
    jr->set_job_id(job.id);
    jr->set_task(job.task);
    jr->set_state(ToProto(job.state));
    jr->set_results_path(job.output_dir + "/artifacts/results.yml");
    for (const ResultRecord& r : rows) {
      if (r.job_id == job.id) ToProto(r, jr->add_metrics());
    }
    if (jr->metrics_size() > 0) {
      // Scores of a job that did not succeed are partial whatever its results.yml says.
      PartialMarker marker = ReadPartialMarker(jr->results_path());
      if (job.state != JobState::kSucceeded || marker.partial) {
        jr->set_partial(true);
        bool counted = marker.samples_total > 0;
        jr->set_samples_scored(counted ? marker.samples_scored : job.progress_done);
        jr->set_samples_total(counted ? marker.samples_total : job.progress_total);
      }
    }
  }
  if (!job_filter.empty() && response->jobs_size() == 0) {
    return absl::NotFoundError(absl::StrCat("no job ", job_filter));
  }
  return absl::OkStatus();
}

absl::Status ServerCore::GetServerInfo(const Caller& caller, const v1::GetServerInfoRequest&,
                                       v1::ServerInfo* response) {
  response->set_caller_user(caller.user);
  response->set_caller_role(std::string(RoleName(caller.role)));
  response->set_version(EVALD_VERSION);
  response->set_api_version("evald.v1");
  response->set_state_dir(config_.state_dir);
  response->set_database_path(store_->path());
  for (const std::string& addr : config_.listen) response->add_listen_addresses(addr);
  for (const std::string& name : registry_.Names()) response->add_executors(name);
  response->set_started_ms(started_ms_);
  response->set_pid(getpid());
  absl::StatusOr<int64_t> count = store_->CountInvocations();
  if (count.ok()) response->set_invocation_count(*count);
  response->set_schema_version(store_->schema_version());
  return absl::OkStatus();
}

absl::Status ServerCore::Backup(const Caller& caller, const v1::BackupRequest& request,
                                v1::BackupResponse* response) {
  EVALD_RETURN_IF_ERROR(RequireRole(caller, Role::kAdmin, "back up the database"));
  absl::Time start = absl::Now();
  EVALD_ASSIGN_OR_RETURN(storage::Store::BackupInfo info,
                         store_->Backup(request.path(), request.overwrite()));
  response->set_path(request.path());
  response->set_bytes(info.bytes);
  response->set_invocation_count(info.invocations);
  response->set_duration_ms(absl::ToInt64Milliseconds(absl::Now() - start));
  spdlog::info("database backed up to {}: {} bytes, {} invocations, {} ms", request.path(),
               info.bytes, info.invocations, response->duration_ms());
  return absl::OkStatus();
}

namespace {

void ToProto(const storage::TokenRecord& t, v1::TokenInfo* out) {
  out->set_id(t.id);
  out->set_user(t.user);
  out->set_role(t.role);
  out->set_created_by(t.created_by);
  out->set_created_ms(t.created_ms);
  out->set_expires_ms(t.expires_ms);
  out->set_revoked_ms(t.revoked_ms);
  out->set_last_used_ms(t.last_used_ms);
}

}  // namespace

absl::Status ServerCore::CreateToken(const Caller& caller, const v1::CreateTokenRequest& request,
                                     v1::CreateTokenResponse* response) {
  EVALD_RETURN_IF_ERROR(RequireRole(caller, Role::kAdmin, "create tokens"));
  if (request.user().empty() || request.user().size() > 64 ||
      request.user().find_first_of(" \t\n\r/:") != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "token user '", request.user(), "' must be 1-64 characters without spaces, '/' or ':'"));
  }
  const std::string role_name = request.role().empty() ? "user" : request.role();
  if (!ParseRole(role_name).has_value()) {
    return absl::InvalidArgumentError(
        absl::StrCat("role '", role_name, "' is not admin, user or viewer"));
  }
  if (request.expires_in_seconds() < 0) {
    return absl::InvalidArgumentError("expires_in_seconds must be >= 0 (0 = never)");
  }
  const std::string value = NewTokenValue();
  storage::TokenRecord t;
  t.id = NewTokenId();
  t.hash = TokenHash(value);
  t.user = request.user();
  t.role = role_name;
  t.created_by = caller.user;
  t.created_ms = NowMs();
  t.expires_ms =
      request.expires_in_seconds() == 0 ? 0 : t.created_ms + request.expires_in_seconds() * 1000;
  EVALD_RETURN_IF_ERROR(store_->CreateToken(t));
  spdlog::info("token {} created for {} ({}) by {} ({})", t.id, t.user, t.role, caller.user,
               caller.via);
  response->set_token(value);
  ToProto(t, response->mutable_info());
  return absl::OkStatus();
}

absl::Status ServerCore::ListTokens(const Caller& caller, const v1::ListTokensRequest& request,
                                    v1::ListTokensResponse* response) {
  EVALD_RETURN_IF_ERROR(RequireRole(caller, Role::kAdmin, "list tokens"));
  EVALD_ASSIGN_OR_RETURN(std::vector<storage::TokenRecord> tokens,
                         store_->ListTokens(request.user()));
  for (const storage::TokenRecord& t : tokens) ToProto(t, response->add_tokens());
  return absl::OkStatus();
}

absl::Status ServerCore::RevokeToken(const Caller& caller, const v1::RevokeTokenRequest& request,
                                     v1::RevokeTokenResponse* response) {
  EVALD_RETURN_IF_ERROR(RequireRole(caller, Role::kAdmin, "revoke tokens"));
  if (request.id().empty() == request.user().empty()) {
    return absl::InvalidArgumentError("name either a token id or a user whose tokens to revoke");
  }
  std::vector<storage::TokenRecord> revoked;
  if (!request.id().empty()) {
    EVALD_ASSIGN_OR_RETURN(storage::TokenRecord t, store_->RevokeToken(request.id(), NowMs()));
    revoked.push_back(std::move(t));
  } else {
    EVALD_ASSIGN_OR_RETURN(revoked, store_->RevokeUserTokens(request.user(), NowMs()));
    if (revoked.empty()) {
      return absl::NotFoundError(absl::StrCat("no unrevoked token of user ", request.user()));
    }
  }
  for (const storage::TokenRecord& t : revoked) {
    spdlog::info("token {} of {} revoked by {} ({})", t.id, t.user, caller.user, caller.via);
    ToProto(t, response->add_revoked());
  }
  return absl::OkStatus();
}

}  // namespace evald::daemon
