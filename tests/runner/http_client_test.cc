#include "runner/http_client.h"

#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <mutex>
#include <set>
#include <thread>

#include "runner/retry_policy.h"

namespace evald::runner {
namespace {

// A loopback server on an ephemeral port, stopped at scope exit.
class TestServer {
 public:
  TestServer() {
    server_.set_keep_alive_max_count(100000);
    server_.new_task_queue = [] { return new httplib::ThreadPool(16); };
  }
  ~TestServer() {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }
  httplib::Server& server() { return server_; }
  std::string Start() {
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return "http://127.0.0.1:" + std::to_string(port_);
  }

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
};

std::vector<HttpClient::Completion> RunAll(HttpClient& client, size_t expected) {
  std::vector<HttpClient::Completion> done;
  while (done.size() < expected) REQUIRE(client.Poll(1000, &done).ok());
  return done;
}

// A port nothing listens on: bound, then closed.
int ClosedPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

TEST_CASE("http client: many requests reuse a bounded pool of keep-alive connections") {
  TestServer ts;
  std::atomic<int> requests{0};
  // The server answers on several threads at once.
  std::mutex mu;
  std::string seen_auth, seen_type, seen_expect = "unset";
  ts.server().Post("/v1/chat/completions",
                   [&](const httplib::Request& req, httplib::Response& res) {
                     ++requests;
                     std::lock_guard<std::mutex> lock(mu);
                     seen_auth = req.get_header_value("Authorization");
                     seen_type = req.get_header_value("Content-Type");
                     if (req.has_header("Expect")) seen_expect = req.get_header_value("Expect");
                     res.set_content(req.body, "application/json");  // echo
                   });
  const std::string url = ts.Start() + "/v1/chat/completions";
  auto client = HttpClient::Create({.url = url, .bearer_token = "sk-test", .max_connections = 4});
  REQUIRE(client.ok());
  const std::string big(4096, 'x');  // over 1 kB: curl would send Expect: 100-continue
  for (uint64_t i = 0; i < 200; ++i) {
    (*client)->Post(i, "{\"i\":" + std::to_string(i) + ",\"pad\":\"" + big + "\"}");
  }
  CHECK((*client)->in_flight() == 200);
  auto done = RunAll(**client, 200);
  std::set<uint64_t> tags;
  for (const auto& c : done) {
    CHECK(c.curl_code == 0);
    CHECK(c.status == 200);
    CHECK(c.body.find("\"i\":" + std::to_string(c.tag) + ",") != std::string::npos);
    tags.insert(c.tag);
  }
  CHECK(tags.size() == 200);
  CHECK(requests == 200);
  CHECK((*client)->connections_opened() <= 4);
  CHECK(seen_auth == "Bearer sk-test");
  CHECK(seen_type == "application/json");
  CHECK(seen_expect == "unset");
  CHECK((*client)->in_flight() == 0);
}

TEST_CASE("http client: status, body and Retry-After of error answers") {
  TestServer ts;
  ts.server().Post("/limited", [](const httplib::Request&, httplib::Response& res) {
    res.status = 429;
    res.set_header("Retry-After", "3");
    res.set_content("{\"error\":{\"message\":\"slow down\"}}", "application/json");
  });
  ts.server().Post("/limited-ms", [](const httplib::Request&, httplib::Response& res) {
    res.status = 429;
    res.set_header("Retry-After", "1");
    res.set_header("retry-after-ms", "250");
    res.set_content("{}", "application/json");
  });
  ts.server().Post("/now", [](const httplib::Request&, httplib::Response& res) {
    res.status = 503;
    res.set_header("Retry-After", "0");
    res.set_content("{}", "application/json");
  });
  ts.server().Post("/bad", [](const httplib::Request&, httplib::Response& res) {
    res.status = 400;
    res.set_content("{\"error\":{\"message\":\"bad request\"}}", "application/json");
  });
  const std::string base = ts.Start();
  auto client = HttpClient::Create({.url = base + "/limited"});
  REQUIRE(client.ok());
  (*client)->Post(1, "{}");
  (*client)->Post(2, "{}", base + "/bad");
  (*client)->Post(3, "{}", base + "/limited-ms");
  (*client)->Post(4, "{}", base + "/now");
  auto done = RunAll(**client, 4);
  for (const auto& c : done) {
    if (c.tag == 1) {
      CHECK(c.status == 429);
      CHECK(c.retry_after_s == 3.0);
      CHECK(ClassifyHttp(c.curl_code, c.status) == FailureKind::kThrottled);
    } else if (c.tag == 3) {
      CHECK(c.retry_after_s == 0.25);  // OpenAI's retry-after-ms is finer than Retry-After
    } else if (c.tag == 4) {
      CHECK(c.status == 503);
      CHECK(c.retry_after_s == 0.0);  // "retry now", not "no hint"
    } else {
      CHECK(c.status == 400);
      CHECK(c.retry_after_s < 0);
      CHECK(c.body.find("bad request") != std::string::npos);
      CHECK(ClassifyHttp(c.curl_code, c.status) == FailureKind::kClientError);
    }
  }
}

TEST_CASE("http client: per-request timeout and refused connections are connection errors") {
  TestServer ts;
  std::atomic<bool> release{false};
  ts.server().Post("/hang", [&](const httplib::Request&, httplib::Response& res) {
    while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    res.set_content("{}", "application/json");
  });
  const std::string base = ts.Start();
  auto client = HttpClient::Create({.url = base + "/hang", .timeout_s = 0.2});
  REQUIRE(client.ok());
  (*client)->Post(1, "{}");
  (*client)->Post(2, "{}", "http://127.0.0.1:" + std::to_string(ClosedPort()) + "/v1");
  auto done = RunAll(**client, 2);
  release = true;
  for (const auto& c : done) {
    CHECK(c.curl_code != 0);
    CHECK_FALSE(c.curl_error.empty());
    CHECK(ClassifyHttp(c.curl_code, c.status) == FailureKind::kConnection);
    if (c.tag == 1) CHECK(c.curl_code == CURLE_OPERATION_TIMEDOUT);
    if (c.tag == 2) CHECK(c.curl_code == CURLE_COULDNT_CONNECT);
  }
}

TEST_CASE("http client: the wake fd interrupts a wait, CancelAll drops transfers") {
  TestServer ts;
  std::atomic<bool> release{false};
  ts.server().Post("/slow", [&](const httplib::Request&, httplib::Response& res) {
    while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    res.set_content("{}", "application/json");
  });
  const std::string base = ts.Start();
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  auto client = HttpClient::Create({.url = base + "/slow", .wake_fd = fds[0]});
  REQUIRE(client.ok());
  (*client)->Post(1, "{}");
  std::vector<HttpClient::Completion> done;
  REQUIRE((*client)->Poll(0, &done).ok());
  REQUIRE(::write(fds[1], "x", 1) == 1);
  // Would block for a minute (and fail the test by its timeout) without the wake fd.
  REQUIRE((*client)->Poll(60000, &done).ok());
  CHECK(done.empty());
  CHECK((*client)->in_flight() == 1);
  (*client)->CancelAll();
  CHECK((*client)->in_flight() == 0);
  release = true;
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST_CASE("http client: a keep-alive connection the server closed while idle is replaced") {
  TestServer ts;
  ts.server().set_keep_alive_timeout(1);  // the server drops idle connections after 1 s
  std::atomic<int> requests{0};
  ts.server().Post("/v1", [&](const httplib::Request&, httplib::Response& res) {
    ++requests;
    res.set_content("{}", "application/json");
  });
  const std::string url = ts.Start() + "/v1";
  auto client = HttpClient::Create({.url = url, .max_connections = 1});
  REQUIRE(client.ok());
  (*client)->Post(1, "{}");
  auto first = RunAll(**client, 1);
  REQUIRE(first[0].status == 200);
  // Idle past the server's keep-alive timeout, polling meanwhile: the close of the idle socket
  // must not keep waking the loop, and must not break the next request.
  std::vector<HttpClient::Completion> none;
  for (int i = 0; i < 30; ++i) REQUIRE((*client)->Poll(100, &none).ok());
  CHECK(none.empty());
  (*client)->Post(2, "{}");
  auto second = RunAll(**client, 1);
  CHECK(second[0].status == 200);
  CHECK(second[0].curl_code == 0);
  CHECK(requests == 2);
  CHECK((*client)->connections_opened() == 2);
}

TEST_CASE("http client: a server that closes every connection, reached by host name") {
  TestServer ts;
  ts.server().set_keep_alive_max_count(1);  // one request per connection: fds come and go
  std::atomic<int> requests{0};
  ts.server().Post("/v1", [&](const httplib::Request&, httplib::Response& res) {
    ++requests;
    res.set_content("{}", "application/json");
  });
  std::string url = ts.Start() + "/v1";
  url.replace(url.find("127.0.0.1"), 9, "localhost");  // goes through curl's resolver
  auto client = HttpClient::Create({.url = url, .max_connections = 4});
  REQUIRE(client.ok());
  for (uint64_t i = 0; i < 60; ++i) (*client)->Post(i, "{}");
  auto done = RunAll(**client, 60);
  int ok = 0;
  for (const auto& c : done) ok += c.curl_code == 0 && c.status == 200;
  CHECK(ok == 60);
  CHECK(requests == 60);
}

}  // namespace
}  // namespace evald::runner
