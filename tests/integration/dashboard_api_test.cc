// The web dashboard's HTTP API (docs/dashboard-api.md) against a real evald on real sockets and
// SQLite, with the reference model: list, filters and paging, detail with a masked secret,
// compare, the SSE stream (state change, progress, Last-Event-ID), roles and the CSRF header,
// anonymous loopback reads, login/logout, the stream cap and the http_auth modes.
#include <httplib.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "core/ids.h"
#include "executors/common/net.h"
#include "nlohmann/json.hpp"
#include "storage/store.h"
#include "tests/integration/fixture.h"

namespace evald::testing {
namespace {

using Clock = std::chrono::steady_clock;

int FreePort() {
  absl::StatusOr<int> port = executors::PickFreePort();
  REQUIRE(port.ok());
  return *port;
}

// An HTTP client of evald's dashboard port that remembers every /api body it read, so a test
// can check that a secret never appears in any of them.
class Api {
 public:
  explicit Api(int port) : port_(port) {}

  httplib::Result Get(const std::string& path, const std::string& token = "",
                      httplib::Headers headers = {}) {
    httplib::Client cli("127.0.0.1", port_);
    cli.set_read_timeout(30, 0);
    if (!token.empty()) headers.emplace("Authorization", "Bearer " + token);
    httplib::Result r = cli.Get(path.c_str(), headers);
    if (r) seen_ += r->body;
    return r;
  }
  nlohmann::json Json(const std::string& path, const std::string& token = "") {
    httplib::Result r = Get(path, token);
    REQUIRE(r);
    INFO(path << " -> " << r->status << " " << r->body);
    REQUIRE(r->status == 200);
    return nlohmann::json::parse(r->body);
  }
  // POST with the CSRF header unless `csrf` is false.
  httplib::Result Post(const std::string& path, const std::string& token,
                       const std::string& body = "{}", bool csrf = true,
                       httplib::Headers headers = {}) {
    httplib::Client cli("127.0.0.1", port_);
    cli.set_read_timeout(60, 0);
    if (!token.empty()) headers.emplace("Authorization", "Bearer " + token);
    if (csrf) headers.emplace("X-Evald-Request", "1");
    httplib::Result r = cli.Post(path.c_str(), headers, body, "application/json");
    if (r) seen_ += r->body;
    return r;
  }
  const std::string& seen() const { return seen_; }

 private:
  int port_;
  std::string seen_;
};

std::string Token(const Evald& evald, const std::string& user, const std::string& role) {
  CommandResult r = evald.Ctl({"admin", "tokens", "create", "--user", user, "--role", role});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  return std::string(absl::StripAsciiWhitespace(r.out));
}

std::string Submit(const Evald& evald, const std::string& cfg,
                   std::map<std::string, std::string> env = {}) {
  CommandResult r = evald.Ctl({"submit", cfg, "--json"}, std::move(env));
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  return InvocationIdFromJson(r.out);
}

std::set<std::string> Ids(const nlohmann::json& list) {
  std::set<std::string> ids;
  for (const auto& inv : list["invocations"]) ids.insert(inv["invocationId"].get<std::string>());
  return ids;
}

// An open GET /api/v1/stream collecting its text on a thread of its own.
class SseReader {
 public:
  SseReader(int port, const std::string& path, httplib::Headers headers = {})
      : cli_("127.0.0.1", port) {
    cli_.set_read_timeout(120, 0);
    thread_ = std::thread([this, path, headers] {
      httplib::Result r = cli_.Get(path.c_str(), headers, [this](const char* data, size_t n) {
        std::lock_guard<std::mutex> lock(mu_);
        text_.append(data, n);
        return true;
      });
      std::lock_guard<std::mutex> lock(mu_);
      ended_ = true;
      if (r) status_ = r->status;
    });
  }
  ~SseReader() { Close(); }
  void Close() {
    cli_.stop();
    if (thread_.joinable()) thread_.join();
  }
  std::string text() {
    std::lock_guard<std::mutex> lock(mu_);
    return text_;
  }
  bool ended() {
    std::lock_guard<std::mutex> lock(mu_);
    return ended_;
  }
  // Waits until the text contains `needle`; false after `seconds`.
  bool WaitFor(const std::string& needle, double seconds) {
    auto until = Clock::now() + std::chrono::milliseconds(static_cast<int>(seconds * 1000));
    while (Clock::now() < until) {
      if (absl::StrContains(text(), needle)) return true;
      usleep(5 * 1000);
    }
    return absl::StrContains(text(), needle);
  }

 private:
  httplib::Client cli_;
  std::mutex mu_;
  std::string text_;
  bool ended_ = false;
  int status_ = 0;
  std::thread thread_;
};

// The JSON GET / embeds for the page's first screen (#evald-boot), or null when there is none.
nlohmann::json BootData(const std::string& html) {
  const std::string open = R"(<script type="application/json" id="evald-boot">)";
  const size_t start = html.find(open);
  if (start == std::string::npos) return nullptr;
  const size_t end = html.find("</script>", start);
  REQUIRE(end != std::string::npos);
  return nlohmann::json::parse(html.substr(start + open.size(), end - start - open.size()));
}

// The `data:` payloads of one event type, parsed.
std::vector<nlohmann::json> SseData(const std::string& text, const std::string& type) {
  std::vector<nlohmann::json> out;
  size_t pos = 0;
  const std::string marker = "event: " + type + "\ndata: ";
  while ((pos = text.find(marker, pos)) != std::string::npos) {
    pos += marker.size();
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) break;
    out.push_back(nlohmann::json::parse(text.substr(pos, end - pos)));
    pos = end;
  }
  return out;
}

TEST_CASE("dashboard API: list, filters, paging, detail with a masked secret, compare") {
  TempDir dir;
  RefEndpoint good(dir, ArithModelFlags());
  RefEndpoint worse(dir, ArithModelFlags({"--accuracy", "0.5", "--seed", "7"}));
  const int port = FreePort();
  Evald evald(dir, {"--metrics-listen", absl::StrCat("127.0.0.1:", port)});
  Api api(port);

  // A credential the config reads with oc.env is a secret: masked in the stored config.
  const std::string canary = "aws-canary-Dashboard-0123456789";
  std::string secret_cfg = ArithConfig(dir, good, {.limit_samples = 40});
  const std::string anchor = "execution:\n";
  secret_cfg.replace(secret_cfg.find(anchor), anchor.size(),
                     "execution:\n  auto_export:\n    configs:\n      local:\n"
                     "        extra_metadata:\n          aws: ${oc.env:AWS_SECRET_ACCESS_KEY}\n");
  const std::string a =
      Submit(evald, WriteConfig(dir, "a.yaml", secret_cfg), {{"AWS_SECRET_ACCESS_KEY", canary}});
  const std::string b =
      Submit(evald, WriteConfig(dir, "b.yaml", ArithConfig(dir, worse, {.limit_samples = 40})));
  std::vector<std::string> small;
  for (int i = 0; i < 3; ++i) {
    small.push_back(Submit(evald, WriteConfig(dir, absl::StrCat("s", i, ".yaml"),
                                              ArithConfig(dir, good, {.limit_samples = 2}))));
  }
  for (const std::string& id : {a, b}) {
    REQUIRE(evald.WaitTerminal(id).state() == v1::JOB_STATE_SUCCEEDED);
  }
  for (const std::string& id : small) {
    REQUIRE(evald.WaitTerminal(id).state() == v1::JOB_STATE_SUCCEEDED);
  }
  const std::set<std::string> all = {a, b, small[0], small[1], small[2]};

  // Anonymous on loopback: reads are allowed, as a viewer.
  nlohmann::json who = api.Json("/api/v1/whoami");
  CHECK(who["anonymous"] == true);
  CHECK(who["role"] == "viewer");
  // A rebound foreign name reaching the loopback port is not a local reader.
  httplib::Result rebound = api.Get("/api/v1/invocations", "", {{"Host", "evil.example"}});
  REQUIRE(rebound);
  CHECK(rebound->status == 401);
  httplib::Result lookalike = api.Get("/api/v1/whoami", "", {{"Host", "127.0.0.1.evil.example"}});
  REQUIRE(lookalike);
  CHECK(lookalike->status == 401);
  httplib::Result localhost = api.Get("/api/v1/whoami", "", {{"Host", "localhost:1234"}});
  REQUIRE(localhost);
  CHECK(localhost->status == 200);

  nlohmann::json list = api.Json("/api/v1/invocations");
  CHECK(Ids(list) == all);
  REQUIRE(list["invocations"].size() == 5);
  CHECK(list["invocations"][0]["invocationId"] == small[2]);  // newest first
  CHECK(list["invocations"][0]["state"] == "JOB_STATE_SUCCEEDED");
  CHECK(list["invocations"][0]["jobCount"] == 1);

  // Keyset paging: each page continues the last, no row twice, all rows once.
  std::set<std::string> paged;
  std::string token;
  int pages = 0;
  do {
    nlohmann::json page = api.Json(
        absl::StrCat("/api/v1/invocations?limit=2", token.empty() ? "" : "&page_token=", token));
    CHECK(page["invocations"].size() <= 2);
    for (const auto& inv : page["invocations"]) {
      CHECK(paged.insert(inv["invocationId"].get<std::string>()).second);
    }
    token = page["nextPageToken"].get<std::string>();
    ++pages;
  } while (!token.empty() && pages < 10);
  CHECK(pages == 3);
  CHECK(paged == all);

  CHECK(Ids(api.Json("/api/v1/invocations?state=succeeded")) == all);
  CHECK(api.Json("/api/v1/invocations?state=running")["invocations"].empty());
  CHECK(Ids(api.Json("/api/v1/invocations?task=arith")) == all);
  CHECK(api.Json("/api/v1/invocations?task=arit")["invocations"].empty());
  CHECK(api.Json("/api/v1/invocations?executor=local")["invocations"].size() == 5);
  CHECK(api.Json("/api/v1/invocations?owner=nobody")["invocations"].empty());
  CHECK(Ids(api.Json("/api/v1/invocations?q=" + a)) == std::set<std::string>{a});
  httplib::Result bad = api.Get("/api/v1/invocations?state=bogus");
  REQUIRE(bad);
  CHECK(bad->status == 400);
  CHECK(nlohmann::json::parse(bad->body)["code"] == "INVALID_ARGUMENT");

  // Detail: config with the secret masked, jobs with progress and backend id, events, results.
  nlohmann::json inv = api.Json("/api/v1/invocations/" + a);
  const std::string config = inv["configYaml"].get<std::string>();
  CHECK(absl::StrContains(config, "aws:"));
  CHECK_FALSE(absl::StrContains(config, canary));
  REQUIRE(inv["jobs"].size() == 1);
  CHECK(inv["jobs"][0]["state"] == "JOB_STATE_SUCCEEDED");
  CHECK(inv["jobs"][0]["attempt"] == 1);
  CHECK(inv["jobs"][0]["progress"]["done"] == "40");  // int64 as a string (proto3 JSON)
  CHECK_FALSE(inv["jobs"][0]["backendId"].get<std::string>().empty());
  nlohmann::json events = api.Json("/api/v1/invocations/" + a + "/events");
  REQUIRE_FALSE(events["events"].empty());
  CHECK(events["events"][0]["kind"] == "invocation.submitted");
  nlohmann::json results = api.Json("/api/v1/invocations/" + a + "/results");
  REQUIRE(results["jobs"].size() == 1);
  CHECK_FALSE(results["jobs"][0]["metrics"].empty());
  httplib::Result logs = api.Get("/api/v1/invocations/" + a + "/logs?job=" + a + ".0&tail=5");
  REQUIRE(logs);
  CHECK(logs->status == 200);
  CHECK(absl::StartsWith(logs->get_header_value("Content-Type"), "text/plain"));
  httplib::Result missing = api.Get("/api/v1/invocations/ffffffff");
  REQUIRE(missing);
  CHECK(missing->status == 404);
  CHECK(nlohmann::json::parse(missing->body)["code"] == "NOT_FOUND");

  // Compare: the same computation as evalctl compare (tests/integration/compare_test.cc).
  nlohmann::json cmp = api.Json(absl::StrCat("/api/v1/compare?ids=", a, ",", b));
  REQUIRE(cmp["metrics"].size() == 1);
  const nlohmann::json& m = cmp["metrics"][0];
  CHECK(m["valueA"] == 1.0);
  CHECK(m["valueB"].get<double>() < 0.8);
  CHECK(m["diff"].get<double>() == Approx(m["valueB"].get<double>() - 1.0));
  CHECK(m["method"] == "mcnemar_exact");
  CHECK(m["pairedSamples"] == "40");
  CHECK(m["significant"] == true);
  nlohmann::json three = api.Json(absl::StrCat("/api/v1/compare?ids=", a, ",", b, ",", small[0]));
  CHECK(three["baseline"] == a);
  CHECK(three["comparisons"].size() == 2);
  CHECK(api.Json("/api/v1/tasks")["tasks"].size() > 0);

  // Anonymous actions: the CSRF header first (403), then a token (401).
  httplib::Result no_header = api.Post("/api/v1/invocations/" + a + "/kill", "", "{}", false);
  REQUIRE(no_header);
  CHECK(no_header->status == 403);
  httplib::Result anon_kill = api.Post("/api/v1/invocations/" + a + "/kill", "");
  REQUIRE(anon_kill);
  CHECK(anon_kill->status == 401);
  CHECK(nlohmann::json::parse(anon_kill->body)["code"] == "UNAUTHENTICATED");

  // Deep links get the page; hashed assets that do not exist are 404.
  httplib::Result page = api.Get("/invocations/" + a);
  REQUIRE(page);
  CHECK(page->status == 200);
  CHECK(absl::StrContains(page->get_header_value("Content-Type"), "text/html"));
  CHECK(page->get_header_value("Content-Security-Policy") == "default-src 'self'");
  CHECK(page->get_header_value("X-Content-Type-Options") == "nosniff");
  httplib::Result asset = api.Get("/assets/no-such-file-0000.js");
  REQUIRE(asset);
  CHECK(asset->status == 404);

  // GET / carries its first screen (whoami and the list page its URL asks for) so the page
  // draws it without an API round trip; deep links and foreign Host names get none.
  httplib::Result root = api.Get("/");
  REQUIRE(root);
  if (!absl::StrContains(root->body, "/assets/")) {
    WARN("evald was built without build-web/ (the notice page): no boot data to check");
  } else {
    nlohmann::json boot = BootData(root->body);
    REQUIRE(boot.is_object());
    CHECK(boot["whoami"]["anonymous"] == true);
    CHECK(boot["search"] == "");
    CHECK(boot["seq"].get<int64_t>() > 0);  // the stream resumes after it
    CHECK(Ids(boot["list"]) == all);
    CHECK(boot["list"]["invocations"][0]["invocationId"] == small[2]);
    nlohmann::json filtered = BootData(api.Get("/?state=running&limit=2&prev=x")->body);
    CHECK(filtered["search"] == "?state=running&limit=2&prev=x");
    CHECK(filtered["list"]["invocations"].empty());
    nlohmann::json paged_boot = BootData(api.Get("/?limit=2")->body);
    CHECK(paged_boot["list"]["invocations"].size() == 2);
    CHECK_FALSE(paged_boot["list"]["nextPageToken"].get<std::string>().empty());
    CHECK(BootData(api.Get("/invocations/" + a)->body).is_null());
    httplib::Result foreign = api.Get("/", "", {{"Host", "evil.example"}});
    REQUIRE(foreign);
    CHECK(foreign->status == 200);
    CHECK(BootData(foreign->body).is_null());
  }

  CHECK_FALSE(absl::StrContains(api.seen(), canary));
}

// A run slow enough to watch: 30 samples, one at a time, 100 ms each.
std::string SlowConfig(const TempDir& dir, const RefEndpoint& model, const std::string& name,
                       int samples = 30) {
  return WriteConfig(dir, name,
                     ArithConfig(dir, model, {.limit_samples = samples, .parallelism = 1}));
}

TEST_CASE("dashboard API: roles, ownership, the CSRF header, login and logout") {
  TempDir dir;
  RefEndpoint model(dir, ArithModelFlags({"--latency-ms", "300"}));
  const int port = FreePort();
  // Token users may write only under the server's output roots.
  Evald evald(dir, {"--metrics-listen", absl::StrCat("127.0.0.1:", port), "--output-root",
                    dir.path() + "/out"});
  Api api(port);
  const std::string alice = Token(evald, "alice", "user");
  const std::string bob = Token(evald, "bob", "user");
  const std::string carol = Token(evald, "carol", "viewer");
  const std::string root = Token(evald, "root", "admin");
  const std::string mine =
      Submit(evald, SlowConfig(dir, model, "alice.yaml"), {{"EVALD_TOKEN", alice}});
  const std::string theirs =
      Submit(evald, SlowConfig(dir, model, "bob.yaml"), {{"EVALD_TOKEN", bob}});
  CHECK(api.Json("/api/v1/invocations/" + mine)["owner"] == "alice");
  CHECK(Ids(api.Json("/api/v1/invocations?owner=bob", carol)) == std::set<std::string>{theirs});

  nlohmann::json who = api.Json("/api/v1/whoami", carol);
  CHECK(who["user"] == "carol");
  CHECK(who["role"] == "viewer");
  CHECK(who["anonymous"] == false);

  auto kill = [&](const std::string& id, const std::string& token) {
    httplib::Result r = api.Post("/api/v1/invocations/" + id + "/kill", token);
    REQUIRE(r);
    INFO(r->body);
    return std::make_pair(r->status, nlohmann::json::parse(r->body));
  };
  auto [viewer_status, viewer_body] = kill(mine, carol);
  CHECK(viewer_status == 403);
  CHECK(viewer_body["code"] == "PERMISSION_DENIED");
  CHECK(absl::StrContains(viewer_body["error"].get<std::string>(), "needs the user role"));
  auto [other_status, other_body] = kill(mine, bob);
  CHECK(other_status == 403);
  CHECK(absl::StrContains(other_body["error"].get<std::string>(), "belongs to alice"));
  // A forged request without the header is refused before anything else.
  httplib::Result forged = api.Post("/api/v1/invocations/" + mine + "/kill", alice, "{}", false);
  REQUIRE(forged);
  CHECK(forged->status == 403);
  CHECK(api.Json("/api/v1/invocations/" + mine)["desired"] == "DESIRED_STATE_RUN");

  auto [own_status, own_body] = kill(mine, alice);
  CHECK(own_status == 200);
  CHECK(own_body["jobIds"].size() == 1);
  CHECK(evald.WaitTerminal(mine, 60).state() == v1::JOB_STATE_KILLED);
  auto [admin_status, admin_body] = kill(theirs, root);
  CHECK(admin_status == 200);
  CHECK(evald.WaitTerminal(theirs, 60).state() == v1::JOB_STATE_KILLED);
  CHECK(kill("ffffffff", alice).first == 404);
  // Resume: the owner may; a viewer may not.
  httplib::Result viewer_resume = api.Post("/api/v1/invocations/" + mine + "/resume", carol);
  REQUIRE(viewer_resume);
  CHECK(viewer_resume->status == 403);
  httplib::Result resumed = api.Post("/api/v1/invocations/" + mine + "/resume", alice);
  REQUIRE(resumed);
  INFO(resumed->body);
  CHECK(resumed->status == 200);
  CHECK(kill(mine, alice).first == 200);
  httplib::Result viewer_export =
      api.Post("/api/v1/invocations/" + theirs + "/export", carol, R"({"dest": "local"})");
  REQUIRE(viewer_export);
  CHECK(viewer_export->status == 403);

  // Bad tokens are 401 even on loopback (no silent fallback to anonymous).
  httplib::Result bad = api.Get("/api/v1/whoami", "evt_not-a-real-token");
  REQUIRE(bad);
  CHECK(bad->status == 401);

  // Login sets the HttpOnly cookie; the cookie then names the caller; logout clears it.
  httplib::Result login_no_csrf =
      api.Post("/api/v1/login", "", nlohmann::json{{"token", carol}}.dump(), false);
  REQUIRE(login_no_csrf);
  CHECK(login_no_csrf->status == 403);
  httplib::Result wrong = api.Post("/api/v1/login", "", R"({"token": "evt_wrong"})");
  REQUIRE(wrong);
  CHECK(wrong->status == 401);
  httplib::Result login = api.Post("/api/v1/login", "", nlohmann::json{{"token", alice}}.dump());
  REQUIRE(login);
  CHECK(login->status == 200);
  CHECK_FALSE(absl::StrContains(login->body, alice));
  const std::string cookie = login->get_header_value("Set-Cookie");
  CHECK(absl::StartsWith(cookie, "evald_session=" + alice + ";"));
  CHECK(absl::StrContains(cookie, "HttpOnly"));
  CHECK(absl::StrContains(cookie, "SameSite=Strict"));
  CHECK(absl::StrContains(cookie, "Path=/"));
  CHECK_FALSE(absl::StrContains(cookie, "Secure"));  // plain HTTP: a Secure cookie never returns
  // Behind a TLS proxy that says so, the cookie is Secure.
  httplib::Result proxied = api.Post("/api/v1/login", "", nlohmann::json{{"token", alice}}.dump(),
                                     true, {{"X-Forwarded-Proto", "https"}});
  REQUIRE(proxied);
  CHECK(absl::StrContains(proxied->get_header_value("Set-Cookie"), "; Secure"));
  httplib::Result as_cookie = api.Get("/api/v1/whoami", "", {{"Cookie", "evald_session=" + alice}});
  REQUIRE(as_cookie);
  CHECK(nlohmann::json::parse(as_cookie->body)["user"] == "alice");
  httplib::Result cookie_kill = api.Post("/api/v1/invocations/" + theirs + "/kill", "", "{}", true,
                                         {{"Cookie", "evald_session=" + alice}});
  REQUIRE(cookie_kill);
  CHECK(cookie_kill->status == 403);  // the cookie's user, bob's run
  httplib::Result logout = api.Post("/api/v1/logout", "");
  REQUIRE(logout);
  CHECK(logout->status == 200);
  CHECK(absl::StrContains(logout->get_header_value("Set-Cookie"), "evald_session=;"));
  CHECK(absl::StrContains(logout->get_header_value("Set-Cookie"), "Max-Age=0"));

  // No token value in any response or in evald's log.
  for (const std::string& t : {bob, carol, root}) CHECK_FALSE(absl::StrContains(api.seen(), t));
  evald.Terminate();
  for (const std::string& t : {alice, bob, carol, root}) {
    CHECK_FALSE(absl::StrContains(evald.process().Stderr(), t));
  }
}

TEST_CASE("dashboard API: the event stream carries state changes and progress live") {
  TempDir dir;
  RefEndpoint model(dir, ArithModelFlags({"--latency-ms", "100"}));
  const int port = FreePort();
  Spit(dir.path() + "/evald.yaml", "http_max_streams: 3\n");
  Evald evald(dir, {"--metrics-listen", absl::StrCat("127.0.0.1:", port), "--config",
                    dir.path() + "/evald.yaml"});
  Api api(port);

  SseReader all(port, "/api/v1/stream");
  REQUIRE(all.WaitFor(": open", 10));
  CommandResult submitted = evald.Ctl({"submit", SlowConfig(dir, model, "run.yaml"), "--json"});
  const auto submit_returned = Clock::now();
  REQUIRE(submitted.exit_code == 0);
  const std::string id = InvocationIdFromJson(submitted.out);
  // The submit's event was committed before evalctl's call returned: it is on the stream at once.
  REQUIRE(all.WaitFor("\"kind\":\"invocation.submitted\"", 10));
  const auto latency =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - submit_returned);
  INFO("invocation.submitted reached the stream " << latency.count() << " ms after evalctl");
  CHECK(latency.count() < 200);

  // From the invocation's first event (lastEventId=0): a stream opened plainly starts after the
  // newest event, and under ASan the job can be running before this line, leaving fewer events
  // than the checks below read.
  SseReader one(port, "/api/v1/stream?invocation=" + id + "&lastEventId=0");
  REQUIRE(one.WaitFor(": open", 10));
  REQUIRE(one.WaitFor("event: progress", 30));
  std::vector<nlohmann::json> progress = SseData(one.text(), "progress");
  REQUIRE_FALSE(progress.empty());
  CHECK(progress.back()["invocationId"] == id);
  CHECK(progress.back()["jobId"] == id + ".0");
  CHECK(progress.back()["total"] == 30);
  // /healthz and /metrics answer while streams are open.
  httplib::Result health = api.Get("/healthz");
  REQUIRE(health);
  CHECK(health->status == 200);
  // The cap: two streams are open, a third is allowed, a fourth gets 503.
  SseReader third(port, "/api/v1/stream");
  REQUIRE(third.WaitFor(": open", 10));
  httplib::Result refused = api.Get("/api/v1/stream");
  REQUIRE(refused);
  CHECK(refused->status == 503);
  third.Close();

  REQUIRE(evald.WaitTerminal(id, 60).state() == v1::JOB_STATE_SUCCEEDED);
  REQUIRE(one.WaitFor("\"toJobState\":\"JOB_STATE_SUCCEEDED\"", 10));
  REQUIRE(all.WaitFor("\"kind\":\"invocation.state\"", 10));
  // List rows update live: the invocation's summary arrives with its final state.
  bool final_row = false;
  for (int i = 0; i < 200 && !final_row; ++i) {
    for (const nlohmann::json& row : SseData(all.text(), "invocation")) {
      final_row |= row["invocationId"] == id && row["state"] == "JOB_STATE_SUCCEEDED";
    }
    if (!final_row) usleep(50 * 1000);
  }
  CHECK(final_row);
  std::vector<nlohmann::json> events = SseData(one.text(), "event");
  REQUIRE(events.size() >= 3);
  // Every event carries its seq as the SSE id.
  const std::string seq = events[1]["seq"].get<std::string>();
  CHECK(absl::StrContains(one.text(), "id: " + seq + "\nevent: event\n"));

  // Resume from Last-Event-ID: exactly the events after it, at once.
  SseReader resumed(port, "/api/v1/stream?invocation=" + id, {{"Last-Event-ID", seq}});
  const std::string last_seq = events.back()["seq"].get<std::string>();
  REQUIRE(resumed.WaitFor("id: " + last_seq + "\n", 10));
  std::vector<nlohmann::json> again = SseData(resumed.text(), "event");
  REQUIRE(again.size() == events.size() - 2);
  CHECK(again[0]["seq"] == events[2]["seq"]);

  resumed.Close();  // http_max_streams is 3

  // log=<job>:stdout follows the job's log: lines appended after the stream opened arrive.
  const std::string out_dir =
      api.Json("/api/v1/invocations/" + id)["jobs"][0]["outputDir"].get<std::string>();
  // The closed stream's slot frees once evald's liveness probe (1 s) finds the peer gone.
  std::unique_ptr<SseReader> follow;
  for (int attempt = 0; attempt < 20; ++attempt) {
    follow = std::make_unique<SseReader>(
        port, absl::StrCat("/api/v1/stream?invocation=", id, "&log=", id, ".0:stdout"));
    if (follow->WaitFor(": open", 1)) break;
  }
  REQUIRE(follow->WaitFor(": open", 1));
  {
    std::ofstream log(out_dir + "/logs/stdout.log", std::ios::app);
    log << "dashboard-log-probe 1\r\ndashboard-log-probe 2\n";
  }
  CHECK(follow->WaitFor("event: log\ndata: dashboard-log-probe 1\n\n", 10));
  CHECK(follow->WaitFor("event: log\ndata: dashboard-log-probe 2\n\n", 10));
  httplib::Result no_log = api.Get(absl::StrCat("/api/v1/stream?log=", id, ".7:stdout"));
  REQUIRE(no_log);
  CHECK(no_log->status == 404);
  follow->Close();

  // evald's shutdown ends open streams and evald exits cleanly.
  const auto stop_started = Clock::now();
  CHECK(evald.Terminate() == 0);
  CHECK(Clock::now() - stop_started < std::chrono::seconds(5));
  for (int i = 0; i < 100 && !(all.ended() && one.ended()); ++i) {
    usleep(50 * 1000);
  }
  CHECK(all.ended());
  CHECK(one.ended());
}

TEST_CASE(
    "dashboard API: off loopback every /api call needs a token, and so does /metrics with "
    "http_auth tokens") {
  TempDir dir;
  const int port = FreePort();
  Evald open(dir, {"--metrics-listen", absl::StrCat("0.0.0.0:", port)});
  Api api(port);
  httplib::Result who = api.Get("/api/v1/whoami");
  REQUIRE(who);
  CHECK(who->status == 401);
  httplib::Result list = api.Get("/api/v1/invocations");
  REQUIRE(list);
  CHECK(list->status == 401);
  const std::string viewer = Token(open, "vera", "viewer");
  CHECK(api.Json("/api/v1/whoami", viewer)["user"] == "vera");
  httplib::Result metrics = api.Get("/metrics");  // http_auth: auto leaves /metrics open
  REQUIRE(metrics);
  CHECK(metrics->status == 200);
  open.Terminate();

  TempDir dir2;
  const int port2 = FreePort();
  Spit(dir2.path() + "/evald.yaml", "http_auth: tokens\n");
  Evald strict(dir2, {"--metrics-listen", absl::StrCat("127.0.0.1:", port2), "--config",
                      dir2.path() + "/evald.yaml"});
  Api api2(port2);
  httplib::Result anon = api2.Get("/api/v1/invocations");
  REQUIRE(anon);
  CHECK(anon->status == 401);
  // The page itself loads (it shows the login box), without the list in it.
  httplib::Result page = api2.Get("/");
  REQUIRE(page);
  CHECK(page->status == 200);
  CHECK(BootData(page->body).is_null());
  httplib::Result closed = api2.Get("/metrics");
  REQUIRE(closed);
  CHECK(closed->status == 401);
  httplib::Result health = api2.Get("/healthz");
  REQUIRE(health);
  CHECK(health->status != 401);
  const std::string token = Token(strict, "vera", "viewer");
  httplib::Result with_token = api2.Get("/", token);
  REQUIRE(with_token);
  if (absl::StrContains(with_token->body, "/assets/")) {
    CHECK(BootData(with_token->body)["whoami"]["user"] == "vera");
  }
  httplib::Result scraped = api2.Get("/metrics", token);
  REQUIRE(scraped);
  CHECK(scraped->status == 200);
  CHECK(absl::StrContains(scraped->body, "evald_db_size_bytes"));
}

}  // namespace
}  // namespace evald::testing

namespace evald::testing {
namespace {

TEST_CASE("dashboard API: 64 open streams leave metrics and healthz answering, the 65th is 503") {
  TempDir dir;
  const int port = FreePort();
  Evald evald(dir, {"--metrics-listen", absl::StrCat("127.0.0.1:", port)});
  Api api(port);
  std::vector<std::unique_ptr<SseReader>> streams;
  for (int i = 0; i < 64; ++i) {
    streams.push_back(std::make_unique<SseReader>(port, "/api/v1/stream"));
  }
  int open = 0;
  for (auto& s : streams) open += s->WaitFor(": open", 10) ? 1 : 0;
  CHECK(open == 64);
  const auto t = Clock::now();
  httplib::Result health = api.Get("/healthz");
  httplib::Result metrics = api.Get("/metrics");
  httplib::Result list = api.Get("/api/v1/invocations");
  CHECK(Clock::now() - t < std::chrono::seconds(2));
  REQUIRE(health);
  REQUIRE(metrics);
  REQUIRE(list);
  CHECK(metrics->status == 200);
  CHECK(list->status == 200);
  httplib::Result refused = api.Get("/api/v1/stream");
  REQUIRE(refused);
  CHECK(refused->status == 503);
  CHECK(nlohmann::json::parse(refused->body)["code"] == "UNAVAILABLE");
  // SIGTERM ends all of them and evald exits cleanly and soon.
  const auto stop_started = Clock::now();
  CHECK(evald.Terminate() == 0);
  CHECK(Clock::now() - stop_started < std::chrono::seconds(5));
}

}  // namespace
}  // namespace evald::testing

namespace evald::testing {
namespace {

// `n` finished invocations straight into a new state dir's store (as bench/dashboard's filler
// does), the newest first in the list; `owner(i)`, `task(i)` and `id(i)` name each one.
void PopulateStore(const std::string& state_dir, int n, const std::function<std::string(int)>& id,
                   const std::function<std::string(int)>& owner,
                   const std::function<std::string(int)>& task) {
  std::filesystem::create_directories(state_dir);
  auto store = storage::Store::Open(
      {.db_path = state_dir + "/evald.db", .key_path = state_dir + "/secrets.key"});
  REQUIRE(store.ok());
  for (int i = 0; i < n; ++i) {
    InvocationRecord inv;
    inv.id = id(i);
    inv.executor = "local";
    inv.config_yaml = "execution:\n  type: local\n";
    inv.run_dir = absl::StrCat(state_dir, "/out", i);
    inv.mode = "parallel";
    inv.tasks = {task(i)};
    inv.owner = owner(i);
    inv.created_ms = 1'700'000'000'000 + static_cast<int64_t>(i) * 1000;
    JobRecord job;
    job.id = JobId(inv.id, 0);
    job.invocation_id = inv.id;
    job.task = task(i);
    job.harness = "lm-evaluation-harness";
    job.output_dir = inv.run_dir;
    job.created_ms = inv.created_ms;
    absl::Status created = (*store)->CreateInvocation(inv, {job}, {}, {}, inv.created_ms, nullptr);
    INFO(created);
    REQUIRE(created.ok());
    for (auto [from, to] : {std::pair{JobState::kPending, JobState::kRunning},
                            std::pair{JobState::kRunning, JobState::kSucceeded}}) {
      REQUIRE((*store)
                  ->TransitionJob({.job_id = job.id, .from = from, .to = to}, inv.created_ms + 500)
                  .ok());
    }
  }
}

// The data-invocation attributes of the rows of the invocations table, in order.
std::vector<std::string> TableRows(const std::string& html) {
  std::vector<std::string> rows;
  const size_t table = html.find(R"(<table class="grid" data-testid="invocations">)");
  if (table == std::string::npos) return rows;
  const size_t end = html.find("</table>", table);
  const std::string marker = R"(<tr data-invocation=")";
  for (size_t pos = html.find(marker, table); pos < end; pos = html.find(marker, pos)) {
    pos += marker.size();
    rows.push_back(html.substr(pos, html.find('"', pos) - pos));
  }
  return rows;
}

TEST_CASE("dashboard API: GET / has the list's first page as HTML rows, every value escaped") {
  TempDir dir;
  const std::string evil = R"(<script>window.pwned=1</script>"'&<img src=x onerror=pwned=2>)";
  const std::string escaped =
      "&lt;script&gt;window.pwned=1&lt;/script&gt;&quot;&#39;&amp;&lt;img src=x "
      "onerror=pwned=2&gt;";
  // 60 invocations; the newest (59) has a hostile owner and task, 58 a hostile owner. (The
  // store takes only 8 hex digits as an id.)
  auto id = [](int i) { return absl::StrCat(absl::Hex(0xaa000000 + i, absl::kZeroPad8)); };
  PopulateStore(
      dir.path() + "/state", 60, id, [&](int i) { return i >= 58 ? evil : "alice"; },
      [&](int i) { return i == 59 ? evil : "gsm8k"; });
  const int port = FreePort();
  Evald evald(dir, {"--metrics-listen", absl::StrCat("127.0.0.1:", port)});
  Api api(port);
  httplib::Result page = api.Get("/");
  REQUIRE(page);
  REQUIRE(page->status == 200);
  if (!absl::StrContains(page->body, "/assets/")) {
    WARN("evald was built without the web build (build-web/): GET / is the fallback page");
    return;
  }
  const std::string& html = page->body;
  // The first 50 rows, newest first, are in the HTML itself, in #app, in the boot list's order.
  std::vector<std::string> rows = TableRows(html);
  REQUIRE(rows.size() == 50);
  CHECK(html.find(R"(<div id="app"><a class="skip")") != std::string::npos);
  CHECK(rows[0] == id(59));
  CHECK(rows[1] == id(58));
  CHECK(rows[49] == id(10));
  nlohmann::json boot = BootData(html);
  REQUIRE(boot["list"]["invocations"].size() == 50);
  CHECK(boot["list"]["invocations"][0]["owner"] == evil);
  CHECK(boot["list"]["invocations"][49]["invocationId"] == id(10));
  // The hostile values are text: no tag of theirs is in the page, and their escaped form is.
  CHECK(!absl::StrContains(html, "<script>window"));
  CHECK(!absl::StrContains(html, "<img src=x"));
  CHECK(absl::StrContains(
      html, absl::StrCat("<td>", escaped, "</td><td>local</td><td>", escaped, "</td>")));
  CHECK(absl::StrContains(
      html, absl::StrCat(R"(<a href="/invocations/)", id(58), R"(">)", id(58), "</a>")));

  // The URL's filters and limit are the rows' too; a bad query leaves the page to the script.
  CHECK(TableRows(api.Get("/?limit=5")->body).size() == 5);
  httplib::Result owned = api.Get("/?owner=" + httplib::detail::encode_query_param(evil));
  REQUIRE(owned);
  CHECK(TableRows(owned->body) == std::vector<std::string>{id(59), id(58)});
  CHECK(absl::StrContains(owned->body,
                          absl::StrCat(R"(<input name="owner" value=")", escaped, R"(")")));
  CHECK(absl::StrContains(api.Get("/?task=nothing")->body, "No invocations."));
  for (const std::string& other :
       {std::string("/?limit=abc"), "/invocations/" + id(1),
        absl::StrCat("/compare?ids=", id(1), ",", id(2)), std::string("/tasks")}) {
    httplib::Result r = api.Get(other);
    REQUIRE(r);
    INFO(other);
    CHECK(r->status == 200);
    CHECK(!absl::StrContains(r->body, "data-testid=\"invocations\""));
    CHECK(absl::StrContains(r->body, R"(<div id="app"></div>)"));
  }
}

TEST_CASE("dashboard API: a browser that accepts brotli gets gzip, never brotli") {
  // Debian's cpp-httplib compresses brotli at quality 11: 60-90 ms of evald's CPU for the list
  // page, which was most of a reload's time in bench/dashboard.
  TempDir dir;
  const int port = FreePort();
  Evald evald(dir, {"--metrics-listen", absl::StrCat("127.0.0.1:", port)});
  for (const char* path : {"/", "/api/v1/invocations?limit=50", "/api/v1/whoami"}) {
    for (const char* accept : {"gzip, deflate, br, zstd", "br;q=1.0, gzip;q=0.8", "BR,gzip"}) {
      httplib::Client cli("127.0.0.1", port);
      cli.set_decompress(false);
      httplib::Result r = cli.Get(path, {{"Accept-Encoding", accept}});
      REQUIRE(r);
      INFO(path << " with Accept-Encoding: " << accept);
      CHECK(r->status == 200);
      CHECK(r->get_header_value("Content-Encoding") == "gzip");
    }
    httplib::Client cli("127.0.0.1", port);
    cli.set_decompress(false);
    httplib::Result only_br = cli.Get(path, {{"Accept-Encoding", "br"}});
    REQUIRE(only_br);
    CHECK(only_br->status == 200);
    CHECK(!only_br->has_header("Content-Encoding"));
  }
}

}  // namespace
}  // namespace evald::testing
