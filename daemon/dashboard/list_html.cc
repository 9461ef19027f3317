#include "daemon/dashboard/list_html.h"

#include <algorithm>
#include <cstdint>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"

namespace evald::daemon {

std::string HtmlEscape(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string EncodeUriComponent(absl::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (absl::ascii_isalnum(c) ||
        absl::string_view("-_.!~*'()").find(ch) != absl::string_view::npos) {
      out += ch;
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

// The markup below is list.jsx's (ListPage), main.jsx's (App) and widgets.jsx's, element for
// element: keep them in step (list_html.h says why). The controls that need the script (filter
// form, pager) are disabled or read-only until it takes over: its render drops those attributes,
// and nothing typed or clicked before is lost.
std::string ListPageHtml(const v1::ListInvocationsResponse& list, const QueryParams& params) {
  auto param = [&params](const char* name) {
    auto it = params.find(name);
    return it == params.end() ? std::string() : it->second;
  };
  // jobState() in api.js.
  auto state_name = [](v1::JobState s) {
    if (s == v1::JOB_STATE_UNSPECIFIED) return std::string("unknown");
    return absl::AsciiStrToLower(absl::StripPrefix(v1::JobState_Name(s), "JOB_STATE_"));
  };
  const std::string state = param("state");
  std::string h =
      R"(<a class="skip" href="#main">Skip to content</a><header><nav aria-label="Main">)"
      R"(<strong class="brand">evald</strong><a href="/" aria-current="page">Invocations</a>)"
      R"(<a href="/compare">Compare</a><a href="/tasks">Tasks</a></nav>)"
      R"(<div class="auth" aria-live="polite">…</div></header><main id="main" tabindex="-1">)"
      R"(<section aria-labelledby="list-title"><h1 id="list-title">Invocations</h1>)"
      R"(<form class="filters" aria-label="Filter invocations"><label>State <select name="state" )"
      R"(disabled>)";
  for (const char* s :
       {"", "pending", "submitted", "running", "succeeded", "failed", "killed", "lost"}) {
    absl::StrAppend(&h, R"(<option value=")", s, "\"", state == s ? " selected" : "", ">",
                    *s ? s : "any", "</option>");
  }
  h += "</select></label>";
  for (const char* k : {"executor", "owner", "task"}) {
    absl::StrAppend(&h, "<label>", std::string(1, absl::ascii_toupper(k[0])), k + 1,
                    R"( <input name=")", k, R"(" value=")", HtmlEscape(param(k)),
                    R"(" size="10" readonly></label>)");
  }
  absl::StrAppend(&h, R"(<label>Invocation id <input type="search" name="q" value=")",
                  HtmlEscape(param("q")),
                  R"(" size="12" readonly></label><button type="submit" disabled>Apply)",
                  R"(</button></form><p class="muted" aria-live="polite">Live updates: )",
                  R"(<span data-testid="stream-status">connecting</span></p>)",
                  R"(<table class="grid" data-testid="invocations"><caption class="sr-only">)",
                  R"(Invocations, newest first</caption><thead><tr><th scope="col">Invocation)",
                  R"(</th><th scope="col">State</th><th scope="col">Progress</th>)",
                  R"(<th scope="col">Tasks</th><th scope="col">Executor</th>)",
                  R"(<th scope="col">Owner</th><th scope="col">Created</th>)",
                  R"(<th scope="col">Compare</th></tr></thead><tbody>)");
  if (list.invocations().empty()) h += R"(<tr><td colspan="8">No invocations.</td></tr>)";
  for (const v1::Invocation& inv : list.invocations()) {
    const std::string id = HtmlEscape(inv.invocation_id());
    const std::string st = state_name(inv.state());
    int64_t done = 0;
    int64_t total = 0;
    for (const v1::Job& j : inv.jobs()) {
      done += j.progress().done();
      total += j.progress().total();
    }
    std::string progress;
    if (total != 0) {
      const int64_t pct = std::min<int64_t>(100, done * 100 / total);
      progress = absl::StrCat(R"(<span class="progress"><progress max=")", total, R"(" value=")",
                              done, R"(" aria-label=")", done, " of ", total,
                              R"( samples"></progress> <span class="progress-text">)", done, "/",
                              total, " (", pct, "%)</span></span>");
    } else {
      const int n = inv.job_count() != 0 ? inv.job_count() : inv.jobs_size();
      progress = n == 1 ? "1 job" : absl::StrCat(n, " jobs");
    }
    const absl::Time created = absl::FromUnixMillis(inv.created_ms());
    absl::StrAppend(
        &h, R"(<tr data-invocation=")", id, R"("><th scope="row"><a href="/invocations/)",
        HtmlEscape(EncodeUriComponent(inv.invocation_id())), R"(">)", id, "</a></th><td>",
        R"(<span class="state state-)", st, R"(" data-state=")", st, R"(">)", st, "</span></td>",
        R"(<td data-testid="row-progress" data-done=")", done, R"(">)", progress, "</td><td>",
        HtmlEscape(absl::StrJoin(inv.tasks(), ", ")), "</td><td>", HtmlEscape(inv.executor()),
        "</td><td>", HtmlEscape(inv.owner()), R"(</td><td><time datetime=")",
        absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", created, absl::UTCTimeZone()), R"(">)",
        inv.created_ms() == 0 ? ""
                              : absl::FormatTime("%Y-%m-%d %H:%M:%S", created, absl::UTCTimeZone()),
        R"(</time></td><td><input type="checkbox" name="compare" value=")", id,
        R"(" aria-label="Select )", id, R"( to compare"></td></tr>)");
  }
  absl::StrAppend(
      &h, R"(</tbody></table><nav class="pager" aria-label="Pages">)",
      R"(<button type="button" disabled>← Newer</button> )",
      R"(<button type="button" disabled>Older →</button> )",
      R"(<button type="button" disabled>Compare selected</button></nav></section></main>)");
  return h;
}

}  // namespace evald::daemon
