// File: registry.h
//
// The executors evald knows, by name: the one place that maps an `execution.type` to a backend.
// Each backend is described by an ExecutorFactory (its name, its keys under `execution:`, the env
// vars it gives jobs by itself, and how to build it); BuiltinExecutors() in builtin_executors.cc
// is the one list of them. A factory without `create` is a backend whose configs this build
// checks but cannot run (Get says so). Built once at start-up and then only read; a second
// registration under the same name is an error, so two backends never silently shadow each other.
//
// Callers: ServerCore (Submit: schema, executor; reads: Describe), the Supervisor (one driver per
// executor), evalctl (BuiltinSchemas, to check a config before submitting it), tests (a fake
// executor registered by instance).
//
//   ExecutorRegistry registry;
//   EVALD_RETURN_IF_ERROR(RegisterBuiltinExecutors(context, registry));
//   EVALD_ASSIGN_OR_RETURN(Executor* local, registry.Get("local"));
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/config/run_config.h"
#include "core/config/schema.h"
#include "executors/executor.h"
#include "yaml-cpp/yaml.h"

namespace evald::executors {

// What executors get from the daemon instead of globals.
struct ExecutorContext {
  std::string runner_path;              // evalrun binary
  std::string container_runtime;        // docker | podman | "" = detect on PATH
  std::string eval_binary = "nv_eval";  // eval-factory CLI inside harness containers
  // Added to the nice value of the job processes evald starts on its own host, so a burst of job
  // starts (each a bash and an evalrun or container runtime loading) does not take the CPU from
  // the API and the supervisor. Server config `job_nice`.
  int job_nice = 5;
};

struct ExecutorFactory {
  std::string name;  // the execution.type value
  // Its keys under `execution:` beyond the common ones (paths from the root).
  std::function<std::vector<config::SchemaRule>()> execution_keys;
  // Env vars the backend gives every job by itself (satisfy required env vars); may be empty.
  std::function<std::vector<std::string>(const YAML::Node& execution)> job_env;
  // Builds the executor; empty when this build checks the backend's configs but cannot run it.
  std::function<std::unique_ptr<Executor>(const ExecutorContext&)> create;
};

// The one list of backends evald ships (builtin_executors.cc; library evald_executors).
const std::vector<ExecutorFactory>& BuiltinExecutors();
// Their `execution:` keys, for config::CheckConfigSchema, without any backend code (library
// evald_executor_configs: evalctl checks a config before submitting it).
std::vector<config::ExecutorSchema> BuiltinSchemas();

class ExecutorRegistry {
 public:
  // Registers a backend, building its executor when the factory can.
  absl::Status Register(const ExecutorFactory& factory, const ExecutorContext& context);
  // Registers a ready executor under its name() with no keys of its own (tests: fakes).
  absl::Status Register(std::unique_ptr<Executor> executor);
  // NotFound naming the available executors; FailedPrecondition for a backend whose configs are
  // known but which this build cannot run.
  absl::StatusOr<Executor*> Get(const std::string& name) const;
  // The executors that can run jobs here.
  std::vector<std::string> Names() const;
  // Every registered backend's keys (runnable or not), for the schema check.
  const std::vector<config::ExecutorSchema>& schemas() const { return schemas_; }
  // For ParseRunConfig: the env vars the named backend gives its jobs.
  config::ExecutorJobEnv JobEnv() const;

 private:
  std::map<std::string, std::unique_ptr<Executor>> executors_;
  std::map<std::string, ExecutorFactory> known_;
  std::vector<config::ExecutorSchema> schemas_;
};

absl::Status RegisterBuiltinExecutors(const ExecutorContext& context, ExecutorRegistry& registry);

}  // namespace evald::executors
