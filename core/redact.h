// File: redact.h
//
// The one masking of secret values in text shown to people or stored: every secret value (4
// characters or longer) becomes `<secret:NAME>`. Values shorter than that are left alone (they
// would mangle ordinary text). Unredact is the inverse, for the one place that needs the real
// text back: evald stores an invocation's config redacted and puts the values back, from the
// encrypted secrets, only to plan a job.
//
// Callers: evalctl (everything it prints after submit/resume), evald (the config it stores and
// returns, dry runs included; the job planner unredacts).
//
//   Redactor redact({{"HF_TOKEN", "hf_abc123"}});
//   std::string shown = redact("token: hf_abc123");   // "token: <secret:HF_TOKEN>"
//   std::string back = Unredact(shown, {{"HF_TOKEN", "hf_abc123"}});
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace evald {

class Redactor {
 public:
  Redactor() = default;
  explicit Redactor(const std::map<std::string, std::string>& secrets);
  std::string operator()(absl::string_view text) const;

 private:
  std::vector<std::pair<std::string, std::string>> replacements_;  // value -> marker
};

// Replaces each `<secret:NAME>` whose NAME is in `secrets` with its value; other text unchanged.
std::string Unredact(absl::string_view text, const std::map<std::string, std::string>& secrets);

// True when the text holds a `<secret:...>` marker.
bool HasRedactions(absl::string_view text);

}  // namespace evald
