// File: http_probe.h
//
// One HTTP GET of a model server's health URL, with a hard timeout, for the readiness wait of
// core/deployment/readiness.h (which decides what the answers mean). libcurl easy interface;
// no proxy is ever used (a health check of 127.0.0.1 must not go through $http_proxy), redirects
// are never followed (a 3xx is just an answer that is not 200), only http/https are allowed,
// and the body is read and dropped.
//
// Callers: the local executor's deployment supervision, once per tick when a probe is due.
// Thread-safe; blocks for at most `timeout_s`.
//
//   ProbeResult r = HttpGet("http://127.0.0.1:8000/health", 5);
//   if (r.http_status == 200) ...
//   else log(r.error);   // "connection refused", "timed out after 5 s", ...
#pragma once

#include <string>

#include "core/deployment/readiness.h"

namespace evald::executors {

using ::evald::deployment::ProbeResult;

// `http_status` is 0 when no HTTP answer came back; `error` then says why in a few words:
// "connection refused", "timed out after 5 s", "could not resolve host", or libcurl's text.
ProbeResult HttpGet(const std::string& url, double timeout_s);

}  // namespace evald::executors
