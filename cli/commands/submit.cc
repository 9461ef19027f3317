// submit / run: compose on this side, collect the secrets the config names, send, print.
#include <sys/stat.h>

#include <ostream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "cli/commands/commands.h"
#include "cli/format.h"

namespace evald::cli {
namespace {

bool FileExists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

// Scrubs secret values from everything the server echoes back, in case a config interpolated one.
void RedactResponse(const Redactor& redact, v1::SubmitResponse* r) {
  r->set_config_yaml(redact(r->config_yaml()));
  r->set_deployment_command(redact(r->deployment_command()));
  for (v1::JobRef& j : *r->mutable_jobs()) {
    j.set_script(redact(j.script()));
    j.set_plan(redact(j.plan()));
  }
}

}  // namespace

std::string RunPrimaryPath(const std::string& config_dir, const std::string& config_name) {
  std::string path = absl::StrCat(
      config_dir, config_dir.empty() || absl::EndsWith(config_dir, "/") ? "" : "/", config_name);
  if (absl::EndsWith(config_name, ".yaml") || absl::EndsWith(config_name, ".yml") ||
      FileExists(path)) {
    return path;
  }
  return path + ".yaml";
}

int RunSubmit(Context& ctx, const SubmitOptions& options, const ComposeFn& compose) {
  std::ostream& out = *ctx.out;
  std::ostream& err = *ctx.err;
  EnvLookup env = Env(ctx);

  ComposeInput input;
  input.primary_path = options.config_path;
  input.search_path = options.config_dirs;
  input.overrides = options.overrides;
  input.working_dir = WorkingDir(ctx);
  input.env = env;
  absl::StatusOr<ComposedConfig> composed = compose(input);
  if (!composed.ok()) {
    err << "evalctl: " << composed.status().message() << "\n";
    return kExitBadInput;
  }

  // Every variable the config names must be set before anything is sent.
  absl::StatusOr<std::map<std::string, std::string>> secrets =
      CollectSecrets(composed->secret_names, composed->secret_uses, env);
  if (!secrets.ok()) {
    err << "evalctl: " << secrets.status().message() << "\n";
    return kExitBadInput;
  }
  Redactor redact(*secrets);

  v1::SubmitRequest req;
  req.set_config_yaml(composed->yaml);
  req.set_composed(true);
  for (const std::string& t : options.tasks) req.add_tasks(t);
  req.set_dry_run(options.dry_run);
  req.mutable_secrets()->insert(secrets->begin(), secrets->end());
  req.set_working_dir(input.working_dir);
  req.set_client(absl::StrCat("evalctl/", EvalctlVersion()));
  // A dry run stores nothing, so it needs no key to be sent twice.
  if (!options.dry_run) {
    req.set_idempotency_key(options.idempotency_key.empty() ? NewIdempotencyKey()
                                                            : options.idempotency_key);
  }

  v1::SubmitResponse resp;
  absl::Status s = ctx.api->Submit(req, &resp);
  bool retried = false;
  if (IsAmbiguousFailure(s)) {
    // evald may have stored the submission before the answer was lost; with the same key a
    // second send returns that invocation instead of storing another.
    err << "evalctl: no answer to submit ("
        << absl::StrReplaceAll(redact(s.message()), {{"\n", " "}})
        << "); sending it once more"
        << (options.dry_run ? "" : " with the same idempotency key") << "\n";
    SleepMs(ctx, kSubmitRetryDelayMs);
    resp.Clear();
    s = ctx.api->Submit(req, &resp);
    retried = true;
  }
  if (!s.ok()) {
    if (IsRequestTooLarge(s)) {
      err << "evalctl: config too large: " << redact(s.message()) << "\n";
      return kExitBadInput;
    }
    err << "evalctl: " << redact(FailureMessage(s, ctx.address)) << "\n";
    if (retried && !options.dry_run && (IsAmbiguousFailure(s) || IsConnectFailure(s))) {
      err << "evalctl: the submission may have been stored; once evald is back, run the same "
             "command with --idempotency-key "
          << req.idempotency_key() << " to get its invocation without submitting twice\n";
    }
    return ExitCodeFor(s);
  }
  RedactResponse(redact, &resp);
  // A dry run is always reported as one, whatever the server set.
  if (options.dry_run) resp.set_dry_run(true);

  if (options.json) {
    out << SubmitJson(resp).dump(2) << "\n";
  } else if (options.dry_run) {
    out << RenderDryRun(resp);
  } else {
    out << RenderSubmitted(resp);
  }
  out.flush();
  if (!options.wait || options.dry_run) return kExitOk;

  if (!options.json) out << "\n";
  WatchOptions watch;
  watch.id = resp.invocation_id();
  watch.to_stderr = options.json;
  return RunWatch(ctx, watch);
}

}  // namespace evald::cli
