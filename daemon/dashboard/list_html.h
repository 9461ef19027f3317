// File: list_html.h
//
// The invocation list page's first screen as HTML, written by evald into GET /'s
// <div id="app"> next to the #evald-boot JSON (dashboard_api.cc, Static).
//
// Why it exists: issue 15 wants the list page on screen in < 300 ms with 100,000 invocations.
// With the rows only in #evald-boot the browser had to fetch, compile and run the page's script
// before the first row existed (about 100-150 ms over a static page of the same rows,
// bench/dashboard/README.md). With this markup the rows are in the HTML itself; the script then
// renders the same page into #app, and Preact reuses the elements it finds there (a render into
// a non-empty container repairs attributes and text, it is not hydration), so behaviour after
// load is the page's own.
//
// It MUST follow the markup of daemon/dashboard/web/src/list.jsx (ListPage), main.jsx (App's
// skip link, header, main) and widgets.jsx (StateBadge, ProgressBar): same elements, classes,
// data-testid, columns and links, so the page looks the same before and after its script runs
// and the browser tests' selectors find the rows at once. Differences are repaired by the
// script's first render; the known ones are the Created column's text, in UTC here and in the
// browser's time zone after, and the filter form and pager, read-only or disabled here until the
// script takes over. Every string from the store is HTML-escaped.
//
//   std::string html = ListPageHtml(response, req.params);
#pragma once

#include <string>

#include "daemon/dashboard/http_util.h"
#include "evald/v1/evald.pb.h"

namespace evald::daemon {

// `list` is the page of rows GET / lists for `params` (the URL's query: state, executor, owner,
// task and q fill the filter form).
std::string ListPageHtml(const v1::ListInvocationsResponse& list, const QueryParams& params);

// HTML text or double-quoted attribute value: & < > " ' as character references.
std::string HtmlEscape(absl::string_view text);
// JavaScript's encodeURIComponent over the UTF-8 bytes of `text`.
std::string EncodeUriComponent(absl::string_view text);

}  // namespace evald::daemon
