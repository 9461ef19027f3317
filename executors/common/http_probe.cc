#include "executors/common/http_probe.h"

#include <curl/curl.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <mutex>

#include "absl/strings/str_cat.h"

namespace evald::executors {
namespace {

// curl_global_init is not thread-safe; run it once before the first easy handle.
void GlobalInitOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

size_t DiscardBody(char* /*data*/, size_t size, size_t nmemb, void* /*user*/) {
  return size * nmemb;
}

struct CurlDeleter {
  void operator()(CURL* curl) const { curl_easy_cleanup(curl); }
};

}  // namespace

ProbeResult HttpGet(const std::string& url, double timeout_s) {
  GlobalInitOnce();
  ProbeResult result;
  const auto start = std::chrono::steady_clock::now();
  auto finish = [&]() {
    result.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return result;
  };

  std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
  if (!curl) {
    result.error = "cannot create an HTTP client (curl_easy_init failed)";
    return finish();
  }
  // Clamped before the cast: NaN or huge values must not reach an integer conversion.
  const double wanted_ms = std::isfinite(timeout_s) ? timeout_s * 1000 : 1;
  const long timeout_ms = static_cast<long>(std::clamp(wanted_ms, 1.0, 86400e3));
  char errbuf[CURL_ERROR_SIZE] = {0};
  CURL* h = curl.get();
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);  // no SIGALRM from a daemon thread
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &DiscardBody);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "evald-health-probe");

  const CURLcode code = curl_easy_perform(h);
  if (code == CURLE_OK) {
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    result.http_status = static_cast<int>(status);
    return finish();
  }
  switch (code) {
    case CURLE_COULDNT_CONNECT:
      result.error = "connection refused";
      break;
    case CURLE_OPERATION_TIMEDOUT:
      result.error =
          absl::StrCat("timed out after ", ::evald::deployment::FormatSeconds(timeout_s), " s");
      break;
    case CURLE_COULDNT_RESOLVE_HOST:
      result.error = "could not resolve host";
      break;
    case CURLE_GOT_NOTHING:
      result.error = "connection closed without an answer";
      break;
    default:
      result.error = errbuf[0] != '\0' ? std::string(errbuf) : curl_easy_strerror(code);
      break;
  }
  return finish();
}

}  // namespace evald::executors
