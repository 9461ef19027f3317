// File: json_text.h
//
// Writing JSON text directly into a string, for the runner's hot path (request bodies and
// samples.jsonl lines), where building an nlohmann::json tree per request costs more than the
// rest of the request. Output is always valid JSON: invalid UTF-8 becomes U+FFFD. Used by
// runner.cc; everything that is not per-request keeps using nlohmann::json.
//
//   std::string out = "{\"text\":";
//   AppendJsonString(&out, "a \"quoted\" word\n");
//   out += ",\"t\":";
//   AppendJsonDouble(&out, 0.7);   // 0.7
//   out += '}';
#pragma once

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace evald::runner {

// `s` as a JSON string literal, quotes included.
void AppendJsonString(std::string* out, absl::string_view s);
// Shortest text that reads back as `v`, with ".0" on integral values (non-finite: null).
void AppendJsonDouble(std::string* out, double v);
void AppendJsonInt(std::string* out, int64_t v);

}  // namespace evald::runner
