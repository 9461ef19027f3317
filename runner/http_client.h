// File: http_client.h
//
// An event-driven HTTP client on libcurl's multi-socket interface and epoll, driven from one
// thread (the runner's loop): many POSTs in flight over a pool of keep-alive connections, HTTP/2
// multiplexing when an https server offers it (ALPN), a per-request timeout, and a wake-up fd so a
// signal handler can interrupt a wait. curl_multi_socket_action() only touches the transfers whose
// sockets are ready, so the cost per answer does not grow with the number in flight (plain
// curl_multi_perform() polls every transfer's socket on each call). It does no retries itself:
// every outcome comes back as a Completion and the runner applies the retry policy. Not
// thread-safe; all calls from the loop thread.
//
//   EVALD_ASSIGN_OR_RETURN(auto client, HttpClient::Create({.url = url, .max_connections = 64}));
//   client->Post(/*tag=*/7, body);
//   std::vector<HttpClient::Completion> done;
//   client->Poll(/*timeout_ms=*/100, &done);   // done[i].tag, .status, .body, .curl_code
#pragma once

#include <curl/curl.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace evald::runner {

class HttpClient {
 public:
  struct Options {
    std::string url;           // where Post() sends unless told otherwise
    std::string bearer_token;  // Authorization: Bearer <token> when not empty
    int max_connections = 16;  // connections to the host (and idle ones kept)
    double timeout_s = 60;     // whole request, connect included
    int wake_fd = -1;          // read end of a pipe; readable => Poll() returns early
  };

  struct Completion {
    uint64_t tag = 0;
    int curl_code = 0;          // CURLE_OK (0) when an HTTP answer arrived
    std::string curl_error;     // curl's message when curl_code != 0
    long status = 0;            // HTTP status (0 when no answer)
    std::string body;           // response body
    double retry_after_s = -1;  // Retry-After header in seconds; -1 when absent
    double elapsed_s = 0;
  };

  static absl::StatusOr<std::unique_ptr<HttpClient>> Create(const Options& options);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Starts a POST of a JSON body. `url` empty: Options::url. `with_auth` false: no
  // Authorization header (progress posts to a third party).
  void Post(uint64_t tag, std::string body, const std::string& url = "", bool with_auth = true);

  // Drives transfers; waits up to `timeout_ms` for one to finish (or the wake fd). Appends
  // finished transfers to `done`.
  absl::Status Poll(int timeout_ms, std::vector<Completion>* done);

  // Hands transfers posted since the last Poll() to the network now (it runs curl's due timers),
  // instead of at the next Poll().
  absl::Status Kick();

  // Aborts every transfer in flight (they produce no Completion).
  void CancelAll();

  size_t in_flight() const { return active_; }
  // Connections curl opened so far (for stats and tests).
  int64_t connections_opened() const { return connects_; }

 private:
  struct Transfer;
  explicit HttpClient(const Options& options);
  Transfer* Acquire();
  void Release(Transfer* t);
  void Collect(std::vector<Completion>* done);
  absl::Status Action(curl_socket_t fd, int events);
  static int OnSocket(CURL* easy, curl_socket_t fd, int what, void* client, void* socket_data);
  static int OnTimer(CURLM* multi, long timeout_ms, void* client);
  static int OnCloseSocket(void* client, curl_socket_t fd);

  // Per-fd epoll bookkeeping (see OnSocket).
  static constexpr uint32_t kWanted = 1u << 31;
  struct FdState {
    uint32_t wanted = 0;  // kWanted | EPOLLIN/EPOLLOUT while curl watches it, else 0
    uint32_t events = 0;  // what the epoll registration asks for
    bool registered = false;
  };
  std::vector<FdState> fds_;

  Options options_;
  CURLM* multi_ = nullptr;
  int epoll_fd_ = -1;
  // When curl wants socket_action(CURL_SOCKET_TIMEOUT) next; max() when it set no timer.
  std::chrono::steady_clock::time_point timer_due_ = std::chrono::steady_clock::time_point::max();
  curl_slist* headers_auth_ = nullptr;
  curl_slist* headers_plain_ = nullptr;
  std::vector<std::unique_ptr<Transfer>> all_;
  std::vector<Transfer*> free_;
  size_t active_ = 0;
  int64_t connects_ = 0;
  bool https_ = false;
  bool no_proxy_env_ = false;
};

}  // namespace evald::runner
