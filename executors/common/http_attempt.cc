#include "executors/common/http_attempt.h"

#include <curl/curl.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <mutex>
#include <random>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace evald::http {
namespace {

// curl_global_init is not thread-safe; run it once before the first easy handle.
void InitCurlOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

size_t AppendBody(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

size_t ReadRetryAfter(char* data, size_t size, size_t n, void* user) {
  absl::string_view line(data, size * n);
  if (absl::StartsWithIgnoreCase(line, "retry-after:")) {
    double seconds = 0;
    if (absl::SimpleAtod(absl::StripAsciiWhitespace(line.substr(12)), &seconds) && seconds >= 0 &&
        std::isfinite(seconds)) {
      static_cast<HttpAttempt*>(user)->retry_after = absl::Seconds(seconds);
    }
  }
  return size * n;
}

}  // namespace

HttpAttempt PerformHttpAttempt(const HttpRequest& request, absl::Time deadline) {
  InitCurlOnce();
  HttpAttempt out;
  // At least 1 ms: 0 would mean no timeout to curl.
  const absl::Duration timeout =
      std::max(std::min(request.request_timeout, deadline - absl::Now()), absl::Milliseconds(1));
  const absl::Duration connect_timeout = std::min(request.connect_timeout, timeout);
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) {
    out.transport_error = "curl_easy_init failed";
    out.maybe_sent = false;
    return out;
  }
  struct curl_slist* headers = nullptr;
  if (request.bearer_token != nullptr) {
    std::string auth = "Authorization: Bearer " + *request.bearer_token;
    headers = curl_slist_append(headers, auth.c_str());
    // Scrub the token from our copy as soon as curl has its own.
    std::fill(auth.begin(), auth.end(), '\0');
  }
  headers = curl_slist_append(headers, "Accept: application/json");
  std::string content_type = absl::StrCat("Content-Type: ", request.content_type);
  if (request.body != nullptr) headers = curl_slist_append(headers, content_type.c_str());
  headers = curl_slist_append(headers, "Expect:");  // no 100-continue round trip for big bodies
  for (const std::string& h : request.extra_headers)
    headers = curl_slist_append(headers, h.c_str());
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> header_guard(headers,
                                                                           curl_slist_free_all);
  char errbuf[CURL_ERROR_SIZE] = {0};
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(absl::ToInt64Milliseconds(timeout)));
  curl_easy_setopt(
      c, CURLOPT_CONNECTTIMEOUT_MS,
      static_cast<long>(std::max<int64_t>(absl::ToInt64Milliseconds(connect_timeout), 1)));
  curl_easy_setopt(c, CURLOPT_NOPROXY, "localhost,127.0.0.1,::1");
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, AppendBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &out.body);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, ReadRetryAfter);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &out);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  if (request.method == "GET") {
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
  } else {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }
  if (request.body != nullptr) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, request.body->data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body->size()));
  }
  const CURLcode rc = curl_easy_perform(c);
  out.curl_code = rc;
  if (rc != CURLE_OK) {
    out.http_status = 0;
    out.maybe_sent = rc != CURLE_COULDNT_CONNECT && rc != CURLE_COULDNT_RESOLVE_HOST &&
                     rc != CURLE_COULDNT_RESOLVE_PROXY;
    if (rc == CURLE_OPERATION_TIMEDOUT) {
      out.transport_error = absl::StrCat("timed out after ", absl::FormatDuration(timeout));
    } else if (rc == CURLE_GOT_NOTHING) {
      out.transport_error = "connection closed without an answer";
    } else {
      out.transport_error = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc);
    }
    return out;
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out.http_status);
  return out;
}

absl::Duration JitteredBackoff(absl::Duration base, absl::Duration max, int attempt) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  absl::Duration cap = std::min(base * std::pow(2.0, std::min(attempt - 1, 20)), max);
  std::uniform_real_distribution<double> dist(0.5, 1.0);
  return cap * dist(rng);
}

absl::Status CheckHeaderToken(const std::string& token, absl::string_view what) {
  for (char c : token) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " holds a control character (a line break?); check the secret"));
    }
  }
  return absl::OkStatus();
}

std::string UrlEscape(absl::string_view s) {
  // Since curl 7.82 the handle argument is ignored.
  std::unique_ptr<char, decltype(&curl_free)> escaped(
      curl_easy_escape(nullptr, s.data(), static_cast<int>(s.size())), curl_free);
  return escaped ? std::string(escaped.get()) : std::string();
}

}  // namespace evald::http
