#include "runner/http_client.h"

#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace evald::runner {
namespace {

// A response larger than this is not an OpenAI answer; the transfer is aborted.
constexpr size_t kMaxBodyBytes = 64 << 20;

// The retry hints of one answer: `retry-after-ms` (OpenAI's) and a delta-seconds `Retry-After`.
// curl's CURLINFO_RETRY_AFTER reports both "absent" and "0" as 0, so a server asking for an
// immediate retry would be taken as giving no hint; the HTTP-date form is still left to curl.
struct RetryHints {
  double ms = -1;
  double seconds = -1;
};

// Picks the retry hints out of the response headers.
size_t ReadHeader(char* data, size_t size, size_t nitems, void* user) {
  const size_t n = size * nitems;
  auto* hints = static_cast<RetryHints*>(user);
  auto value_of = [&](absl::string_view name, double* out) {
    if (n <= name.size() || !absl::StartsWithIgnoreCase(absl::string_view(data, n), name)) return;
    std::string value(absl::StripAsciiWhitespace(absl::string_view(data + name.size(),
                                                                   n - name.size())));
    double v = 0;
    if (absl::SimpleAtod(value, &v) && v >= 0) *out = v;
  };
  value_of("retry-after-ms:", &hints->ms);
  value_of("retry-after:", &hints->seconds);
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
  RetryHints retry_after;
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
  c->epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (c->epoll_fd_ < 0) {
    return absl::InternalError(absl::StrCat("epoll_create1: ", std::strerror(errno)));
  }
  if (options.wake_fd >= 0) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = options.wake_fd;
    if (::epoll_ctl(c->epoll_fd_, EPOLL_CTL_ADD, options.wake_fd, &ev) != 0) {
      return absl::InternalError(absl::StrCat("epoll_ctl(wake fd): ", std::strerror(errno)));
    }
  }
  curl_multi_setopt(c->multi_, CURLMOPT_SOCKETFUNCTION, &HttpClient::OnSocket);
  curl_multi_setopt(c->multi_, CURLMOPT_SOCKETDATA, c.get());
  curl_multi_setopt(c->multi_, CURLMOPT_TIMERFUNCTION, &HttpClient::OnTimer);
  curl_multi_setopt(c->multi_, CURLMOPT_TIMERDATA, c.get());
  const long conns = std::max(1, options.max_connections);
  curl_multi_setopt(c->multi_, CURLMOPT_MAX_HOST_CONNECTIONS, conns);
  curl_multi_setopt(c->multi_, CURLMOPT_MAXCONNECTS, conns + 4);
  curl_multi_setopt(c->multi_, CURLMOPT_PIPELINING, static_cast<long>(CURLPIPE_MULTIPLEX));
  c->https_ = absl::StartsWithIgnoreCase(options.url, "https://");
  // With no proxy configured, say so once: otherwise curl reads the proxy variables of the
  // environment again for every transfer.
  c->no_proxy_env_ = true;
  for (const char* name :
       {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"}) {
    const char* v = std::getenv(name);
    if (v != nullptr && *v != '\0') c->no_proxy_env_ = false;
  }

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
  if (epoll_fd_ >= 0) ::close(epoll_fd_);
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
  curl_easy_setopt(e, CURLOPT_HEADERDATA, &t->retry_after);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
  curl_easy_setopt(e, CURLOPT_PRIVATE, t.get());
  curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, &HttpClient::OnCloseSocket);
  curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, this);
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
  if (no_proxy_env_) curl_easy_setopt(e, CURLOPT_PROXY, "");
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
  t->retry_after = {};
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
    if (t->retry_after.ms >= 0) {
      c.retry_after_s = t->retry_after.ms / 1000.0;
    } else if (t->retry_after.seconds >= 0) {
      c.retry_after_s = t->retry_after.seconds;
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

// Registrations are kept while a connection idles between transfers: curl asks to remove the
// socket after every answer and to add it again for the next request on the same keep-alive
// connection; one EPOLL_CTL_MOD replaces the DEL + ADD pair. OnCloseSocket() and events on idle
// sockets drop a registration for good.
int HttpClient::OnSocket(CURL*, curl_socket_t fd, int what, void* client, void*) {
  auto* self = static_cast<HttpClient*>(client);
  if (fd < 0) return 0;
  if (static_cast<size_t>(fd) >= self->fds_.size()) self->fds_.resize(fd + 64);
  FdState& st = self->fds_[fd];
  if (what == CURL_POLL_REMOVE) {
    st.wanted = 0;
    return 0;
  }
  const uint32_t events = ((what & CURL_POLL_IN) ? uint32_t{EPOLLIN} : 0u) |
                          ((what & CURL_POLL_OUT) ? uint32_t{EPOLLOUT} : 0u);
  // Skip the syscall only while curl has watched the fd without a break: after a REMOVE, curl
  // may have closed the fd without our close callback (the threaded resolver's socketpair) and
  // the number may now name a new socket, so the registration is renewed (MOD, or ADD when the
  // kernel dropped it with the old socket).
  const bool watched = st.wanted != 0;
  st.wanted = events | kWanted;
  if (watched && st.registered && st.events == events) return 0;
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  int rc = ::epoll_ctl(self->epoll_fd_, st.registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev);
  if (rc != 0 && errno == ENOENT) rc = ::epoll_ctl(self->epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
  if (rc != 0 && errno == EEXIST) rc = ::epoll_ctl(self->epoll_fd_, EPOLL_CTL_MOD, fd, &ev);
  st.registered = rc == 0;
  st.events = events;
  return 0;
}

int HttpClient::OnCloseSocket(void* client, curl_socket_t fd) {
  auto* self = static_cast<HttpClient*>(client);
  if (fd >= 0 && static_cast<size_t>(fd) < self->fds_.size()) {
    FdState& st = self->fds_[fd];
    if (st.registered) ::epoll_ctl(self->epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
    st = FdState{};
  }
  return ::close(fd);
}

int HttpClient::OnTimer(CURLM*, long timeout_ms, void* client) {
  auto* self = static_cast<HttpClient*>(client);
  self->timer_due_ = timeout_ms < 0
                         ? std::chrono::steady_clock::time_point::max()
                         : std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  return 0;
}

absl::Status HttpClient::Action(curl_socket_t fd, int events) {
  int running = 0;
  CURLMcode mc = curl_multi_socket_action(multi_, fd, events, &running);
  if (mc != CURLM_OK) {
    return absl::InternalError(absl::StrCat("curl_multi_socket_action: ", curl_multi_strerror(mc)));
  }
  return absl::OkStatus();
}

absl::Status HttpClient::Kick() {
  if (timer_due_ > std::chrono::steady_clock::now()) return absl::OkStatus();
  timer_due_ = std::chrono::steady_clock::time_point::max();
  return Action(CURL_SOCKET_TIMEOUT, 0);
}

absl::Status HttpClient::Poll(int timeout_ms, std::vector<Completion>* done) {
  const size_t before = done->size();
  auto now = std::chrono::steady_clock::now();
  // Curl's own timers first: they start newly added transfers and expire timeouts.
  if (timer_due_ <= now) {
    timer_due_ = std::chrono::steady_clock::time_point::max();
    if (absl::Status s = Action(CURL_SOCKET_TIMEOUT, 0); !s.ok()) return s;
  }
  Collect(done);
  int wait_ms = done->size() > before ? 0 : std::max(0, timeout_ms);
  if (timer_due_ != std::chrono::steady_clock::time_point::max()) {
    auto until = std::chrono::duration_cast<std::chrono::milliseconds>(timer_due_ - now).count();
    wait_ms = std::min<int64_t>(wait_ms, std::max<int64_t>(0, until + (until > 0 ? 1 : 0)));
  }
  epoll_event events[256];
  int n = ::epoll_wait(epoll_fd_, events, 256, wait_ms);
  if (n < 0 && errno != EINTR) {
    return absl::InternalError(absl::StrCat("epoll_wait: ", std::strerror(errno)));
  }
  for (int i = 0; i < n; ++i) {
    const int fd = events[i].data.fd;
    if (fd == options_.wake_fd) continue;  // the caller looks at why it was woken
    if (static_cast<size_t>(fd) < fds_.size() && fds_[fd].wanted == 0) {
      // An idle keep-alive socket (the server closed it, say): curl finds out when it next
      // looks at the connection; stop hearing about it until then.
      ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
      fds_[fd].registered = false;
      continue;
    }
    int mask = 0;
    if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLRDHUP)) mask |= CURL_CSELECT_IN;
    if (events[i].events & EPOLLOUT) mask |= CURL_CSELECT_OUT;
    if (events[i].events & EPOLLERR) mask |= CURL_CSELECT_ERR;
    if (absl::Status s = Action(fd, mask); !s.ok()) return s;
  }
  if (timer_due_ <= std::chrono::steady_clock::now()) {
    timer_due_ = std::chrono::steady_clock::time_point::max();
    if (absl::Status s = Action(CURL_SOCKET_TIMEOUT, 0); !s.ok()) return s;
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
