// File: overrides.h
//
// Private to core/config: Hydra command-line overrides (`-o` in evalctl). Parses `a.b=v`,
// `+a.b=v`, `++a.b=v`, `~a.b`, `~a.b=v` with Hydra's value grammar (quoted strings, [lists],
// {dicts}, null/true/false/ints/floats, everything else a string), and applies config overrides
// to a composed tree in Hydra's struct mode: setting an unknown key is an error, `+` adds, `++`
// sets or adds, `~` deletes. Group switches (`execution=slurm/default`) are parsed here too but
// applied by compose.cc to the defaults list.
//
//   EVALD_ASSIGN_OR_RETURN(Override o, ParseOverride("execution.walltime=02:00:00"));
//   EVALD_RETURN_IF_ERROR(ApplyOverride(o, root));
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/config/value.h"

namespace evald::config::internal {

struct Override {
  enum class Op { kSet, kAdd, kForceAdd, kDelete };
  std::string text;  // as the user wrote it, for messages
  Op op = Op::kSet;
  std::string key;  // without the +/++/~ prefix
  Path path;        // the key split at '.' and [N]; numeric parts carry both key and index
  bool has_value = false;
  Value value;
};

absl::StatusOr<Override> ParseOverride(const std::string& text);

// Hydra's value grammar; `text` is everything after the first '='.
absl::StatusOr<Value> ParseOverrideValue(absl::string_view text);

// "a.b[0].c" / "a.b.0.c" -> path; numeric parts keep both forms (the container decides).
absl::StatusOr<Path> ParseKeyPath(absl::string_view key);

// Types an unquoted primitive with Hydra's (and OmegaConf's resolver-argument) rules: null, true,
// false (any case), ints and floats as Python writes them; anything else stays a string.
Value TypeHydraPrimitive(const std::string& text);

// Applies a config (non-group) override to `root`.
absl::Status ApplyOverride(const Override& o, Value& root);

// OmegaConf merge of `src` into `dst`: mappings merge key by key (new keys appended), `???` never
// replaces a value, everything else replaces. `where` names the source in messages.
absl::Status MergeValue(Value& dst, const Value& src, Path& path);

}  // namespace evald::config::internal
