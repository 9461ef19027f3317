#include "runner/http_client.h"

#include <cstdlib>
#include <mutex>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace evald::runner {
namespace {

// A response larger than this is not an OpenAI answer; the transfer is aborted.
constexpr size_t kMaxBodyBytes = 64 << 20;

// Picks `retry-after-ms` out of the response headers; Retry-After itself comes from
// CURLINFO_RETRY_AFTER.
size_t ReadHeader(char* data, size_t size, size_t nitems, void* user) {
  const size_t n = size * nitems;
  constexpr char kName[] = "retry-after-ms:";
  constexpr size_t kLen = sizeof(kName) - 1;
  if (n > kLen && absl::StartsWithIgnoreCase(absl::string_view(data, kLen), kName)) {
    std::string value(data + kLen, n - kLen);
    char* end = nullptr;
    double ms = std::strtod(value.c_str(), &end);
    if (end != value.c_str() && ms >= 0) *static_cast<double*>(user) = ms;
  }
  return n;
}

size_t WriteBody(char* data, size_t size, size_t nmemb, void* user) {
  auto* body = static_cast<std::string*>(user);
  size_t n = size * nmemb;
  if (body->size() + n > kMaxBodyBytes) return 0;
  body->append(data, n);
  return n;
}

}  // namespace

struct HttpClient::Transfer {
  double retry_after_ms = -1;  // from a `retry-after-ms` header (OpenAI's, finer than seconds)
  CURL* easy = nullptr;
  uint64_t tag = 0;
  bool in_use = false;
  std::string request;
  std::string response;
  char errbuf[CURL_ERROR_SIZE] = {0};
  std::chrono::steady_clock::time_point start;
};

HttpClient::HttpClient(const Options& options) : options_(options) {}

absl::StatusOr<std::unique_ptr<HttpClient>> HttpClient::Create(const Options& options) {
  static std::once_flag once;
  static CURLcode global = CURLE_OK;
  std::call_once(once, [] { global = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (global != CURLE_OK) {
    return absl::InternalError(
        absl::StrCat("curl_global_init failed: ", curl_easy_strerror(global)));
  }
  std::unique_ptr<HttpClient> c(new HttpClient(options));
  c->multi_ = curl_multi_init();
  if (c->multi_ == nullptr) return absl::InternalError("curl_multi_init failed");
  const long conns = std::max(1, options.max_connections);
  curl_multi_setopt(c->multi_, CURLMOPT_MAX_HOST_CONNECTIONS, conns);
  curl_multi_setopt(c->multi_, CURLMOPT_MAXCONNECTS, conns + 4);
  curl_multi_setopt(c->multi_, CURLMOPT_PIPELINING, static_cast<long>(CURLPIPE_MULTIPLEX));
  c->https_ = absl::StartsWithIgnoreCase(options.url, "https://");

  // "Expect:" turns off curl's 100-continue wait for bodies over 1 kB (a full RTT, or 1 s with
  // servers that ignore it).
  for (curl_slist** h : {&c->headers_auth_, &c->headers_plain_}) {
    *h = curl_slist_append(*h, "Content-Type: application/json");
    *h = curl_slist_append(*h, "Accept: application/json");
    *h = curl_slist_append(*h, "Expect:");
  }
  if (!options.bearer_token.empty()) {
    c->headers_auth_ = curl_slist_append(c->headers_auth_,
                                         ("Authorization: Bearer " + options.bearer_token).c_str());
  }
  return c;
}

HttpClient::~HttpClient() {
  CancelAll();
  for (auto& t : all_) curl_easy_cleanup(t->easy);
  if (multi_ != nullptr) curl_multi_cleanup(multi_);
  curl_slist_free_all(headers_auth_);
  curl_slist_free_all(headers_plain_);
}

HttpClient::Transfer* HttpClient::Acquire() {
  if (!free_.empty()) {
    Transfer* t = free_.back();
    free_.pop_back();
    return t;
  }
  auto t = std::make_unique<Transfer>();
  t->easy = curl_easy_init();
  CURL* e = t->easy;
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &WriteBody);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &t->response);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &ReadHeader);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, &t->retry_after_ms);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
  curl_easy_setopt(e, CURLOPT_PRIVATE, t.get());
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_2TLS));
  const long timeout_ms = std::max(1L, static_cast<long>(options_.timeout_s * 1000));
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, std::min(timeout_ms, 30000L));
  curl_easy_setopt(e, CURLOPT_USERAGENT, "evalrun/0.1");
  // Over TLS, wait for a connection that may multiplex (HTTP/2) instead of opening one per
  // request; plain http is HTTP/1.1, one request per connection, and must not wait.
  if (https_) curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
  Transfer* raw = t.get();
  all_.push_back(std::move(t));
  return raw;
}

void HttpClient::Release(Transfer* t) {
  t->in_use = false;
  t->request.clear();
  t->response.clear();
  if (t->response.capacity() > (1 << 20)) std::string().swap(t->response);
  if (t->request.capacity() > (1 << 20)) std::string().swap(t->request);
  free_.push_back(t);
}

void HttpClient::Post(uint64_t tag, std::string body, const std::string& url, bool with_auth) {
  Transfer* t = Acquire();
  t->tag = tag;
  t->in_use = true;
  t->request = std::move(body);
  t->errbuf[0] = '\0';
  t->retry_after_ms = -1;
  t->start = std::chrono::steady_clock::now();
  CURL* e = t->easy;
  curl_easy_setopt(e, CURLOPT_URL, url.empty() ? options_.url.c_str() : url.c_str());
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, with_auth ? headers_auth_ : headers_plain_);
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, t->request.data());
  curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(t->request.size()));
  curl_multi_add_handle(multi_, e);
  ++active_;
}

void HttpClient::Collect(std::vector<Completion>* done) {
  int queued = 0;
  while (CURLMsg* msg = curl_multi_info_read(multi_, &queued)) {
    if (msg->msg != CURLMSG_DONE) continue;
    CURL* e = msg->easy_handle;
    Transfer* t = nullptr;
    curl_easy_getinfo(e, CURLINFO_PRIVATE, reinterpret_cast<char**>(&t));
    Completion c;
    c.tag = t->tag;
    c.curl_code = msg->data.result;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &c.status);
    if (c.curl_code != CURLE_OK) {
      c.curl_error = t->errbuf[0] != '\0' ? t->errbuf : curl_easy_strerror(msg->data.result);
    }
    curl_off_t retry_after = 0;
    if (t->retry_after_ms >= 0) {
      c.retry_after_s = t->retry_after_ms / 1000.0;
    } else if (curl_easy_getinfo(e, CURLINFO_RETRY_AFTER, &retry_after) == CURLE_OK &&
               retry_after > 0) {
      c.retry_after_s = static_cast<double>(retry_after);
    }
    long connects = 0;
    curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &connects);
    connects_ += connects;
    c.elapsed_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t->start).count();
    c.body.swap(t->response);
    curl_multi_remove_handle(multi_, e);
    --active_;
    Release(t);
    done->push_back(std::move(c));
  }
}

absl::Status HttpClient::Poll(int timeout_ms, std::vector<Completion>* done) {
  const size_t before = done->size();
  int running = 0;
  CURLMcode mc = curl_multi_perform(multi_, &running);
  if (mc != CURLM_OK) {
    return absl::InternalError(absl::StrCat("curl_multi_perform: ", curl_multi_strerror(mc)));
  }
  Collect(done);
  if (done->size() > before || timeout_ms <= 0) return absl::OkStatus();
  curl_waitfd extra[1];
  unsigned int nextra = 0;
  if (options_.wake_fd >= 0) {
    extra[0].fd = options_.wake_fd;
    extra[0].events = CURL_WAIT_POLLIN;
    extra[0].revents = 0;
    nextra = 1;
  }
  mc = curl_multi_poll(multi_, extra, nextra, timeout_ms, nullptr);
  if (mc != CURLM_OK) {
    return absl::InternalError(absl::StrCat("curl_multi_poll: ", curl_multi_strerror(mc)));
  }
  mc = curl_multi_perform(multi_, &running);
  if (mc != CURLM_OK) {
    return absl::InternalError(absl::StrCat("curl_multi_perform: ", curl_multi_strerror(mc)));
  }
  Collect(done);
  return absl::OkStatus();
}

void HttpClient::CancelAll() {
  for (auto& t : all_) {
    if (!t->in_use) continue;
    curl_multi_remove_handle(multi_, t->easy);
    --active_;
    Release(t.get());
  }
}

}  // namespace evald::runner
