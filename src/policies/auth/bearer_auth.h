#pragma once
// Pieces shared by the bearer-token policies (jwt_auth, oauth2_introspection): where a token is
// read from, scope and claim rules, the per-worker verified-token cache and 401/403/503 answers.
// Their rejection counters are in policies/auth/auth_rejections.h.
#include <yaml-cpp/yaml.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/result.h"
#include "http/filter.h"
#include "policies/auth/consumers.h"

namespace gatehouse::policies::bearer {

// ---- Token sources ---------------------------------------------------------------------------

struct TokenSource {
  std::string header = "authorization";  // empty: not read; "authorization" wants "Bearer "
  std::string cookie;                    // empty: not read
  std::string query;                     // empty: not read
};
// Options `header`, `cookie`, `query` of a policy config.
Status parseTokenSource(const YAML::Node& config, TokenSource& out);

enum class Extract { kNone, kFound, kMalformed };
// The token from the first source that carries one. More than one value in that source
// (two Authorization headers, a repeated cookie or parameter) or a non-Bearer Authorization is
// kMalformed: the upstream might trust another copy.
Extract extractToken(const http::Request& req, const TokenSource& src, std::string& out);

// Removes the token from every configured source (header, the cookie from Cookie headers, the
// query parameter), so the upstream never sees it. For policies' `strip_token` option.
void stripToken(http::Request& req, const TokenSource& src);

// ---- Scope and claim rules -------------------------------------------------------------------

struct ClaimRule {
  std::string path;                 // dotted: "realm_access.roles"
  std::vector<std::string> values;  // the claim (or an element of it) must equal one of these
};

struct Rules {
  std::vector<std::string> scopes;  // all required
  std::vector<ClaimRule> claims;    // all must pass
  bool empty() const { return scopes.empty() && claims.empty(); }
};
// Options `scopes` (list) and `claims` (map of claim path -> value or list of values).
Status parseRules(const YAML::Node& config, Rules& out);

// The value at a dotted path, or nullptr.
const nlohmann::json* claimAt(const nlohmann::json& claims, std::string_view path);
// Scopes granted by `scope` (space-separated string) and/or `scp` (array or string).
std::vector<std::string_view> grantedScopes(const nlohmann::json& claims);
bool rulesPass(const Rules& rules, const nlohmann::json& claims);
// A claim rendered for a header: strings as is, arrays of strings joined by ',', other JSON
// compact. Control characters make it unusable (nullopt).
bool claimHeaderValue(const nlohmann::json& v, std::string& out);

// ---- Verified-token cache --------------------------------------------------------------------

// What a verified token resolved to; re-used until `expires` (unix seconds).
struct Identity {
  int64_t expires = 0;
  int64_t not_before = 0;  // unix seconds; a cached token is still refused before this
  int status = 200;        // 200 ok, 403 rules failed, 401 (negative cache: inactive token)
  std::string consumer;
  std::vector<std::string> groups;
  std::vector<std::pair<std::string, std::string>> headers;  // to add to the request
  std::shared_ptr<const http::TokenClaims> claims;           // for ctx.claims
};

// A verified token's identity on the request: its derived headers, consumer, groups, claims.
void setIdentity(http::RequestContext& ctx, const Identity& id);

// claim path -> request header, set from a verified token.
using ClaimHeaders = std::vector<std::pair<std::string, std::string>>;
// Removes the headers derived from claims: a client must not be able to send them itself.
void stripClaimHeaders(http::Request& req, const ClaimHeaders& forward);
// A request without a token admitted as the `anonymous` consumer (the derived headers removed).
http::Verdict admitAnonymous(http::RequestContext& ctx, const std::string& anonymous,
                             const ClaimHeaders& forward);
// A verified identity that passed the rules admitted: derived headers replaced, the token
// stripped when asked, the identity set.
http::Verdict admit(http::RequestContext& ctx, const Identity& id, const ClaimHeaders& forward,
                    bool strip_token, const TokenSource& source);

// Fills `id` from a verified token's claims: its scalar claims, its groups (`groups_claim`, a
// string or an array of strings; empty: none) and the headers derived from `forward`.
void resolveClaims(const nlohmann::json& claims, const std::string& groups_claim,
                   const ClaimHeaders& forward, Identity& id);

// The options both bearer policies read the same way.
struct BearerOptions {
  TokenSource source;            // header, cookie, query
  Rules rules;                   // scopes, claims
  std::string groups_claim;      // empty: no groups
  std::string anonymous;         // the consumer of requests without a token; empty: none
  ClaimHeaders forward;          // forward_claims: claim path -> header name
  bool strip_token = false;      // remove the token before proxying
  size_t cache_entries = 10000;  // cache_size: verified tokens per worker
};
Status parseBearerOptions(const YAML::Node& config, BearerOptions& out);

// The top-level string and integer claims of `payload` (bounded: 64 claims, 256-byte values).
std::shared_ptr<const http::TokenClaims> scalarClaims(const nlohmann::json& payload);

// A bounded FIFO map keyed by the token's SHA-256. Single-threaded: use through WorkerCaches.
class TokenCache {
 public:
  explicit TokenCache(size_t max_entries) : max_(max_entries) {}
  // The entry for `key` if it has not expired at `now` (expired entries are dropped).
  const Identity* find(const Sha256Digest& key, int64_t now);
  void put(const Sha256Digest& key, Identity id);
  size_t size() const { return map_.size(); }

 private:
  struct Hash {
    size_t operator()(const Sha256Digest& d) const {
      size_t h;
      static_assert(sizeof h <= sizeof d);
      __builtin_memcpy(&h, d.data(), sizeof h);
      return h;
    }
  };
  size_t max_;
  std::unordered_map<Sha256Digest, Identity, Hash> map_;
  std::deque<Sha256Digest> order_;  // insertion order, for eviction
};

// One TokenCache per worker thread for one policy instance: the request path takes no lock.
// A worker's cache is created on its first use; caches of destroyed instances are swept when a
// worker meets a new instance (after a reload).
class WorkerCaches {
 public:
  explicit WorkerCaches(size_t max_entries);
  TokenCache& local() const;

 private:
  uint64_t id_;
  size_t max_;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

// Seconds since the epoch (claims are in unix time).
int64_t unixNow();

// ---- Answers ---------------------------------------------------------------------------------

// 401 with WWW-Authenticate: Bearer realm="gatehouse"[, error="invalid_token"] and a JSON body.
http::Verdict unauthorized(http::RequestContext& ctx, bool token_present);
// 403 insufficient_scope.
http::Verdict forbidden(http::RequestContext& ctx);
// 503: the authority that judges tokens cannot be reached (never a 401 for an outage).
http::Verdict unavailable(http::RequestContext& ctx);

}  // namespace gatehouse::policies::bearer
