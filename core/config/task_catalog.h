// File: task_catalog.h
//
// The task catalog: which tasks exist, which harness and container run them, their endpoint type
// and required env vars. Loaded from `configs/tasks/*.toml`, which use the reference launcher's
// mapping.toml layout:
//
//   [<harness>]
//   container = "nvcr.io/nvidia/eval-factory/<image>:25.08.1"
//   [<harness>.tasks.<endpoint_type>.<task_name>]
//   required_env_vars = ["HF_TOKEN"]
//   description = "..."            # optional; other keys are kept as extras
//
// Tasks of harness `native` run in evalrun (no container). Lookup follows the reference:
// `task` (must be unique across harnesses) or `harness.task`, with its ambiguity and not-found
// errors, plus "did you mean" suggestions.
//
//   EVALD_ASSIGN_OR_RETURN(TaskCatalog cat, TaskCatalog::LoadDir(PackagedConfigDir() + "/tasks"));
//   EVALD_ASSIGN_OR_RETURN(const TaskDef* t, cat.Find("gsm8k"));
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace evald::config {

struct TaskDef {
  std::string name;  // bare task name
  std::string harness;
  std::string container;      // empty for native tasks
  std::string endpoint_type;  // chat | completions | vlm
  std::vector<std::string> required_env_vars;
  std::string description;
  std::map<std::string, std::string> extra;  // other keys, stringified
  bool native() const { return harness == "native"; }
  std::string qualified_name() const { return harness + "." + name; }
};

class TaskCatalog {
 public:
  // Every *.toml in `dir`, in file-name order. Duplicate (harness, task) across or within files
  // is an error naming both places; a reserved extra key (task, harness, container,
  // endpoint_type) too.
  static absl::StatusOr<TaskCatalog> LoadDir(const std::string& dir);
  static absl::StatusOr<TaskCatalog> FromToml(const std::string& text, const std::string& source);

  // `name` or `harness.name`. Errors (InvalidArgument), as the reference words them, improved:
  //   "task 'gsm8kk' does not exist in the catalog; did you mean 'gsm8k'?"
  //   "there are multiple tasks named 'mmlu' in the catalog, please select one of
  //    ['lm-evaluation-harness.mmlu', 'simple_evals.mmlu']"
  //   "harness.task 'foo.bar' does not exist in the catalog"
  //   "invalid task 'a.b.c': it must contain zero or one '.'"
  absl::StatusOr<const TaskDef*> Find(const std::string& query) const;

  const std::vector<TaskDef>& tasks() const { return tasks_; }  // file order, then mapping order

 private:
  std::vector<TaskDef> tasks_;
};

}  // namespace evald::config
