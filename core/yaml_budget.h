// File: yaml_budget.h
//
// Bounds a YAML text by what it becomes, before anyone builds it. yaml-cpp shares an anchored node
// among its aliases, so 300 bytes (`b: &b [*a, *a, ...]`, nested 8 times) stand for 10^8 nodes
// that appear only when a caller walks the tree: converting it to config Values or JSON, or
// emitting it. MeasureYaml runs yaml-cpp's event parser over the text, sums every node as those
// callers would see it (an alias adds the size of its anchor, remembered once per anchor), and
// stops at the first limit passed. Its memory is one entry per anchor and per open level, its
// time one pass over the text, whatever the expanded size.
//
// Callers: config::ParseYaml (every config, task file and override evald and evalctl read) and
// runner::YamlDoc::Parse (evalrun's plan and user task files), each before YAML::Load.
//
//   EVALD_RETURN_IF_ERROR(CheckYamlLimits(text, "x.yaml"));
//   YAML::Node node = YAML::Load(text);
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace evald {

// The defaults bound one config's cost in evald (parsed, composed, validated, printed) to about
// 20 MB and 0.3 s: the largest example config composes to 115 nodes and 1.2 KB of text. 4 MiB is
// also evald's default max_request_bytes; 200 levels is what config::ValueFromYaml allows.
struct YamlLimits {
  uint64_t max_nodes = 20000;
  uint64_t max_scalar_bytes = 4 << 20;
  int max_depth = 200;
};

// A document's first YAML document with its aliases expanded.
struct YamlSize {
  uint64_t nodes = 0;         // scalars, nulls, sequences and mappings, keys included
  uint64_t scalar_bytes = 0;  // the text of its scalars, keys included
  int depth = 0;              // the most sequences and mappings around one node
};

// The expanded size of `text`, or InvalidArgument "<source>:<line>:<column>: <key path>: too many
// nodes after alias expansion (limit N)" (or "... scalar text ...", "nested deeper than N
// levels", "alias *x refers to the node that contains it") at the node that passed the limit.
// Syntax errors are left to the caller's YAML::Load, which reports them in its own words: the
// size returned then covers the text before the error.
absl::StatusOr<YamlSize> MeasureYaml(absl::string_view text, absl::string_view source_name,
                                     const YamlLimits& limits = {});

// MeasureYaml's verdict without its counts, and without the parse when the text alone proves it
// within the limits (no alias, few bytes, few nesting indicators), as an ordinary config does:
// measuring costs about half a YAML::Load.
absl::Status CheckYamlLimits(absl::string_view text, absl::string_view source_name,
                             const YamlLimits& limits = {});

}  // namespace evald
