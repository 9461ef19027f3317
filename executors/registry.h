// File: registry.h
//
// The executors evald can use, by name. Built once at start-up by RegisterBuiltinExecutors (the
// one list of backends, in builtin_executors.cc) and then only read. A second registration under
// the same name is an error, so two backends can never silently shadow each other.
//
//   ExecutorRegistry registry;
//   EVALD_RETURN_IF_ERROR(RegisterBuiltinExecutors(context, registry));
//   EVALD_ASSIGN_OR_RETURN(Executor* local, registry.Get("local"));
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "executors/executor.h"

namespace evald::executors {

// What executors get from the daemon instead of globals.
struct ExecutorContext {
  std::string runner_path;        // evalrun binary
  std::string container_runtime;  // docker | podman | "" = detect on PATH
  std::string eval_binary = "nv_eval";  // eval-factory CLI inside harness containers
};

class ExecutorRegistry {
 public:
  absl::Status Register(std::unique_ptr<Executor> executor);
  // NotFound naming the available executors.
  absl::StatusOr<Executor*> Get(const std::string& name) const;
  std::vector<std::string> Names() const;

 private:
  std::map<std::string, std::unique_ptr<Executor>> executors_;
};

absl::Status RegisterBuiltinExecutors(const ExecutorContext& context, ExecutorRegistry& registry);

}  // namespace evald::executors
