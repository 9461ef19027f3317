// The dashboard assets when the web page was not built: /index.html says how to build it, so
// evald still serves the JSON API and a visitor learns why there is no page.
#include "daemon/dashboard/assets.h"

namespace evald::daemon {

const Asset* FindDashboardAsset(std::string_view path) {
  static const Asset kIndex{
      "text/html; charset=utf-8",
      "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>evald</title></head>"
      "<body><h1>evald</h1><p>dashboard not built: run scripts/build with the dashboard enabled "
      "(see docs/dashboard-api.md). The JSON API is served under /api/v1/.</p></body></html>\n"};
  if (path == "/index.html") return &kIndex;
  return nullptr;
}

}  // namespace evald::daemon
