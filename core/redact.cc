#include "core/redact.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace evald {
namespace {

constexpr size_t kMinRedactedLength = 4;
constexpr absl::string_view kMarkerStart = "<secret:";

}  // namespace

Redactor::Redactor(const std::map<std::string, std::string>& secrets) {
  for (const auto& [name, value] : secrets) {
    if (value.size() >= kMinRedactedLength) {
      replacements_.emplace_back(value, absl::StrCat(kMarkerStart, name, ">"));
    }
  }
  // Longest first, so a value that contains another one is replaced whole.
  std::sort(replacements_.begin(), replacements_.end(),
            [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
}

std::string Redactor::operator()(absl::string_view text) const {
  std::string out(text);
  for (const auto& [value, marker] : replacements_) {
    out = absl::StrReplaceAll(out, {{value, marker}});
  }
  return out;
}

std::string Unredact(absl::string_view text, const std::map<std::string, std::string>& secrets) {
  std::vector<std::pair<std::string, std::string>> back;
  for (const auto& [name, value] : secrets) {
    back.emplace_back(absl::StrCat(kMarkerStart, name, ">"), value);
  }
  // One pass: a value that itself looks like a marker is not replaced again.
  return absl::StrReplaceAll(text, back);
}

bool HasRedactions(absl::string_view text) { return absl::StrContains(text, kMarkerStart); }

}  // namespace evald
