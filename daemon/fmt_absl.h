// File: fmt_absl.h
//
// Lets spdlog/fmt 9 format absl::string_view (Debian's Abseil keeps its own string_view type, so
// fmt does not know it). Include it where log lines print ToString(state) or status.message().
#pragma once

#include "absl/strings/string_view.h"
#include "fmt/format.h"

template <>
struct fmt::formatter<absl::string_view> : fmt::formatter<fmt::string_view> {
  template <typename FormatContext>
  auto format(absl::string_view s, FormatContext& ctx) const {
    return fmt::formatter<fmt::string_view>::format(fmt::string_view(s.data(), s.size()), ctx);
  }
};
