// File: schema.h
//
// The schema of a composed config: one table of key paths with the type each one takes (string,
// integer, number, bool, list, mapping, null), its limits (minimum, maximum, one of a set) and
// whether a mapping may hold keys the table does not list. `execution.*` is checked against the
// keys of the selected executor (each executor declares its own: ExecutorSchema, given by the
// executor registry) and `deployment.*` against those of the
// selected deployment type, so a typo in a SLURM config is caught even though evald cannot run
// SLURM yet. Maps that are passed through to a harness or a platform (evaluation.overrides,
// evaluation.config, env_vars, auto_export.configs, ...) are open; their well-known keys
// (config.params.parallelism, ...) are still type-checked. The top level is open too (Hydra configs
// keep helper values there for interpolation), except that a key one typo away from a section name
// is refused.
//
// Callers: evald Submit (before ParseRunConfig) and evalctl (after composing, so the message names
// the user's file). Every problem is reported, up to 20, one per line, each with the key path, what
// was expected and what was found, plus "did you mean" for unknown keys:
//
//   my.yaml: execution.outptu_dir: unknown key for execution type local; did you mean 'output_dir'?
//
//   EVALD_RETURN_IF_ERROR(CheckConfigSchema(composed, "my.yaml", executors::BuiltinSchemas()));
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_split.h"
#include "yaml-cpp/yaml.h"

namespace evald::config {

// Value kinds a key may take, as bits of SchemaRule::kinds.
struct SchemaKinds {
  static constexpr unsigned kNull = 1u << 0;
  static constexpr unsigned kBool = 1u << 1;
  static constexpr unsigned kInt = 1u << 2;
  static constexpr unsigned kFloat = 1u << 3;
  static constexpr unsigned kStr = 1u << 4;
  static constexpr unsigned kList = 1u << 5;
  static constexpr unsigned kMap = 1u << 6;
  static constexpr unsigned kNum = kInt | kFloat;
  static constexpr unsigned kAny = kNull | kBool | kNum | kStr | kList | kMap;
};

// One row of the schema: a key path and what it takes. Built with SchemaKey(...).Min(1)...
struct SchemaRule {
  std::string path;  // dotted keys from the root; `*` = any key, `[]` = every list item
  unsigned kinds = SchemaKinds::kAny;
  std::vector<std::string> only;    // execution/deployment types the key belongs to; empty = all
  std::vector<std::string> one_of;  // the strings allowed (other kinds are not affected)
  std::optional<double> min, max;   // numbers only
  bool min_exclusive = false;
  bool open = false;     // a mapping that may hold keys the table does not list
  bool lenient = false;  // passed to a harness as text: a string is typed as YAML before checking
  bool hide = false;     // never echo the value (env var names/values)
  std::string expect;    // what is expected, when the generated wording says too little

  SchemaRule& Only(const char* types) {
    std::vector<std::string> v = absl::StrSplit(types, ' ', absl::SkipEmpty());
    only = std::move(v);
    return *this;
  }
  SchemaRule& OneOf(const char* values) {
    std::vector<std::string> v = absl::StrSplit(values, ' ', absl::SkipEmpty());
    one_of = std::move(v);
    return *this;
  }
  SchemaRule& Min(double v) {
    min = v;
    return *this;
  }
  SchemaRule& Above(double v) {
    min = v;
    min_exclusive = true;
    return *this;
  }
  SchemaRule& Range(double lo, double hi) {
    min = lo;
    max = hi;
    return *this;
  }
  SchemaRule& Open() {
    open = true;
    return *this;
  }
  SchemaRule& Lenient() {
    lenient = true;
    return *this;
  }
  SchemaRule& Hide() {
    hide = true;
    return *this;
  }
  SchemaRule& Expect(const char* text) {
    expect = text;
    return *this;
  }
};

inline SchemaRule SchemaKey(std::string path, unsigned kinds) {
  SchemaRule r;
  r.path = std::move(path);
  r.kinds = kinds;
  return r;
}

// What one executor adds under `execution:` (paths from the root, e.g. "execution.hostname").
// Executors declare theirs (executors/<name>/); the registry hands the list to the checker.
struct ExecutorSchema {
  std::string name;  // the execution.type value
  std::vector<SchemaRule> keys;
};

// Checks a composed config (interpolations resolved) against the schema, with `executors` the
// executors this build knows (execution.type must be one of them; each one's keys apply only to
// it). `source` names the config in the message (the user's file, or "<submitted config>").
// Values still `???` are left to ParseRunConfig, which names all of them. InvalidArgument listing
// every problem (at most 20).
absl::Status CheckConfigSchema(const YAML::Node& composed, const std::string& source,
                               const std::vector<ExecutorSchema>& executors);

}  // namespace evald::config
