// admin tokens create|ls|revoke: API tokens for callers on evald's TCP port (admins only, evald
// checks). A new token's value is printed once here and stored by evald only as a hash; ls and
// revoke never see a value.
#include <cstdio>
#include <ostream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "cli/commands/commands.h"
#include "nlohmann/json.hpp"

namespace evald::cli {
namespace {

std::string When(int64_t ms) {
  if (ms == 0) return "-";
  return absl::FormatTime("%Y-%m-%d %H:%M", absl::FromUnixMillis(ms), absl::UTCTimeZone());
}

nlohmann::json TokenJson(const v1::TokenInfo& t) {
  return {{"id", t.id()},
          {"user", t.user()},
          {"role", t.role()},
          {"created_by", t.created_by()},
          {"created_ms", t.created_ms()},
          {"expires_ms", t.expires_ms()},
          {"revoked_ms", t.revoked_ms()},
          {"last_used_ms", t.last_used_ms()}};
}

}  // namespace

absl::StatusOr<int64_t> ParseExpiry(const std::string& text) {
  const absl::Status bad = absl::InvalidArgumentError(absl::StrCat(
      "invalid --expires '", text, "': expected a positive number and a unit, e.g. 90d, 12h, 30m"));
  if (text.size() < 2) return bad;
  int64_t n = 0;
  if (!absl::SimpleAtoi(text.substr(0, text.size() - 1), &n) || n <= 0) return bad;
  switch (text.back()) {
    case 's':
      return n;
    case 'm':
      return n * 60;
    case 'h':
      return n * 3600;
    case 'd':
      return n * 86400;
    case 'w':
      return n * 7 * 86400;
    default:
      return bad;
  }
}

int RunAdminTokensCreate(Context& ctx, const AdminTokensOptions& options) {
  v1::CreateTokenRequest req;
  req.set_user(options.user);
  req.set_role(options.role);
  if (!options.expires.empty()) {
    absl::StatusOr<int64_t> seconds = ParseExpiry(options.expires);
    if (!seconds.ok()) {
      *ctx.err << "evalctl: " << seconds.status().message() << "\n";
      return kExitBadInput;
    }
    req.set_expires_in_seconds(*seconds);
  }
  v1::CreateTokenResponse resp;
  absl::Status s = ctx.api->CreateToken(req, &resp);
  if (!s.ok()) return ReportFailure(s, ctx.address, *ctx.err);
  if (options.json) {
    nlohmann::json j = TokenJson(resp.info());
    j["token"] = resp.token();
    *ctx.out << j.dump(2) << "\n";
    return kExitOk;
  }
  *ctx.out << resp.token() << "\n";
  *ctx.err << "Token " << resp.info().id() << " for " << resp.info().user() << " ("
           << resp.info().role() << "), expires " << When(resp.info().expires_ms())
           << ". Shown once: evald keeps only its hash. Give it to " << resp.info().user()
           << " for EVALD_TOKEN or `evalctl login`.\n";
  return kExitOk;
}

int RunAdminTokensList(Context& ctx, const AdminTokensOptions& options) {
  v1::ListTokensRequest req;
  req.set_user(options.user);
  v1::ListTokensResponse resp;
  absl::Status s = ctx.api->ListTokens(req, &resp);
  if (!s.ok()) return ReportFailure(s, ctx.address, *ctx.err);
  if (options.json) {
    nlohmann::json list = nlohmann::json::array();
    for (const v1::TokenInfo& t : resp.tokens()) list.push_back(TokenJson(t));
    *ctx.out << nlohmann::json{{"tokens", list}}.dump(2) << "\n";
    return kExitOk;
  }
  char line[256];
  std::snprintf(line, sizeof(line), "%-12s  %-16s  %-6s  %-16s  %-16s  %-16s  %s\n", "ID", "USER",
                "ROLE", "CREATED", "EXPIRES", "LAST USED", "REVOKED");
  *ctx.out << line;
  for (const v1::TokenInfo& t : resp.tokens()) {
    std::snprintf(line, sizeof(line), "%-12s  %-16s  %-6s  %-16s  %-16s  %-16s  %s\n",
                  t.id().c_str(), t.user().c_str(), t.role().c_str(), When(t.created_ms()).c_str(),
                  When(t.expires_ms()).c_str(), When(t.last_used_ms()).c_str(),
                  When(t.revoked_ms()).c_str());
    *ctx.out << line;
  }
  return kExitOk;
}

int RunAdminTokensRevoke(Context& ctx, const AdminTokensOptions& options) {
  if (options.id.empty() == options.user.empty()) {
    *ctx.err << "evalctl: name a token id or --user NAME (every token of that user)\n";
    return kExitBadInput;
  }
  v1::RevokeTokenRequest req;
  req.set_id(options.id);
  req.set_user(options.user);
  v1::RevokeTokenResponse resp;
  absl::Status s = ctx.api->RevokeToken(req, &resp);
  if (!s.ok()) return ReportFailure(s, ctx.address, *ctx.err);
  for (const v1::TokenInfo& t : resp.revoked()) {
    *ctx.out << "Revoked token " << t.id() << " of " << t.user() << ".\n";
  }
  return kExitOk;
}

}  // namespace evald::cli
