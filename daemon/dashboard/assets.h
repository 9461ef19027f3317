// File: assets.h
//
// The dashboard's static files (the Preact page under daemon/dashboard/web/), looked up by URL
// path. Two implementations, chosen by CMake: assets_fallback.cc (a one-page notice that the
// dashboard was not built) and the generated file that embeds the built web assets.
//
// Caller: DashboardApi (dashboard_api.h) for every GET that is not /api/, /metrics or /healthz.
//
//   if (const Asset* a = FindDashboardAsset("/index.html")) res.set_content(...);
#pragma once

#include <string_view>

namespace evald::daemon {

struct Asset {
  std::string_view content_type;
  std::string_view body;
};

// The asset served at `path` ("/index.html", "/assets/app-1a2b3c.js"), or nullptr.
const Asset* FindDashboardAsset(std::string_view path);

}  // namespace evald::daemon
