// The list page's first screen as evald writes it into GET / (daemon/dashboard/list_html.h):
// list.jsx's rows and columns, and every stored string escaped.
#include <catch2/catch.hpp>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "daemon/dashboard/list_html.h"

namespace evald::daemon {
namespace {

int Count(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t pos = text.find(needle); pos != std::string::npos;
       pos = text.find(needle, pos + needle.size())) {
    ++n;
  }
  return n;
}

TEST_CASE("dashboard list html: one row per invocation with list.jsx's columns") {
  v1::ListInvocationsResponse list;
  for (int i = 0; i < 50; ++i) {
    v1::Invocation* inv = list.add_invocations();
    inv->set_invocation_id(absl::StrCat("inv", i));
    inv->set_state(i == 0 ? v1::JOB_STATE_RUNNING : v1::JOB_STATE_SUCCEEDED);
    inv->set_executor("local");
    inv->set_owner("alice");
    inv->add_tasks("gsm8k");
    inv->add_tasks("mmlu");
    inv->set_job_count(i == 1 ? 1 : 2);
    inv->set_created_ms(1765000000123);
  }
  v1::Job* job = list.mutable_invocations(0)->add_jobs();
  job->mutable_progress()->set_done(3);
  job->mutable_progress()->set_total(8);
  list.set_next_page_token("tok");
  const std::string html = ListPageHtml(list, {{"owner", "alice"}});
  CHECK(Count(html, "<tr data-invocation=") == 50);
  CHECK(absl::StrContains(html, R"(<table class="grid" data-testid="invocations">)"));
  CHECK(absl::StrContains(html, R"(<tr data-invocation="inv0"><th scope="row">)"
                                R"(<a href="/invocations/inv0">inv0</a></th>)"));
  CHECK(absl::StrContains(
      html, R"(<span class="state state-running" data-state="running">running</span>)"));
  CHECK(absl::StrContains(html, R"(<td data-testid="row-progress" data-done="3">)"
                                R"(<span class="progress"><progress max="8" value="3" )"
                                R"(aria-label="3 of 8 samples"></progress> )"
                                R"(<span class="progress-text">3/8 (37%)</span></span></td>)"));
  CHECK(absl::StrContains(html, R"(data-done="0">1 job</td>)"));
  CHECK(absl::StrContains(html, R"(data-done="0">2 jobs</td>)"));
  CHECK(absl::StrContains(html, "<td>gsm8k, mmlu</td><td>local</td><td>alice</td>"));
  CHECK(absl::StrContains(
      html, R"(<time datetime="2025-12-06T05:46:40.123Z">2025-12-06 05:46:40</time>)"));
  CHECK(absl::StrContains(html, R"(<input type="checkbox" name="compare" value="inv7" )"
                                R"(aria-label="Select inv7 to compare">)"));
  // The filter form shows the URL's filters; it and the pager wait for the script.
  CHECK(absl::StrContains(html, R"(<input name="owner" value="alice" size="10" readonly>)"));
  CHECK(absl::StrContains(html, R"(<button type="submit" disabled>Apply</button>)"));
  CHECK(absl::StrContains(html, R"(<button type="button" disabled>← Newer</button>)"));
  CHECK(absl::StrContains(html, R"(<button type="button" disabled>Older →</button>)"));
  // No whitespace between elements: the page's render reuses them without stray text nodes.
  CHECK(!absl::StrContains(html, "\n"));

  const std::string empty = ListPageHtml(v1::ListInvocationsResponse(), {{"state", "failed"}});
  CHECK(absl::StrContains(empty, R"(<tr><td colspan="8">No invocations.</td></tr>)"));
  CHECK(absl::StrContains(empty, R"(<option value="failed" selected>failed</option>)"));
}

TEST_CASE("dashboard list html: stored strings and the URL's filters are escaped") {
  const std::string evil = R"(<script>alert(1)</script>"'&<img src=x onerror=alert(2)>)";
  const std::string escaped =
      "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;&lt;img src=x "
      "onerror=alert(2)&gt;";
  v1::ListInvocationsResponse list;
  v1::Invocation* inv = list.add_invocations();
  inv->set_invocation_id(evil);
  inv->set_executor(evil);
  inv->set_owner(evil);
  inv->add_tasks(evil);
  inv->set_job_count(1);
  const std::string html = ListPageHtml(
      list, {{"q", evil}, {"executor", evil}, {"task", evil}, {"state", evil}, {"owner", evil}});
  // Nothing of the value is markup: no tag, no attribute ends early.
  CHECK(!absl::StrContains(html, "<script"));
  CHECK(!absl::StrContains(html, "<img"));
  CHECK(!absl::StrContains(html, "\"'"));
  // id (row attribute, link text, checkbox), tasks, executor, owner, and the 5 filter inputs.
  CHECK(Count(html, escaped) == 4 + 3 + 4);
  CHECK(absl::StrContains(html, absl::StrCat(R"(<tr data-invocation=")", escaped, R"(">)")));
  // The link is the id through encodeURIComponent, then escaped for the attribute.
  CHECK(absl::StrContains(html,
                          "href=\"/invocations/"
                          "%3Cscript%3Ealert(1)%3C%2Fscript%3E%22&#39;%26%3Cimg%20src%3Dx%"
                          "20onerror%3Dalert(2)%3E\""));
  CHECK(HtmlEscape("a&b<c>d\"e'f") == "a&amp;b&lt;c&gt;d&quot;e&#39;f");
  CHECK(EncodeUriComponent("a b/é-_.!~*'()") == "a%20b%2F%C3%A9-_.!~*'()");
}

}  // namespace
}  // namespace evald::daemon
