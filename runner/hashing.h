// File: hashing.h
//
// SHA-256 (OpenSSL) as lowercase hex. Used for the response-cache key and the dataset download
// cache file names.
//
//   std::string key = Sha256Hex(canonical_request_json);
#pragma once

#include <string>

#include "absl/strings/string_view.h"

namespace evald::runner {

std::string Sha256Hex(absl::string_view data);

}  // namespace evald::runner
