#pragma once
// Route matching compiled from one config snapshot.
//
// Router::build runs on the control thread while a snapshot is built. The result is immutable
// and shared read-only by every worker through shared_ptr<const Router>: match() touches no
// mutable state and takes no lock of ours. (RE2 keeps an internal, lazily filled DFA cache behind
// its own reader lock; only regex matchers touch it.)
//
// Ids: every route gets route_id = its index in the flattened order (virtual hosts in config
// order, then their routes in order), so the core can index its per-route filter chains and
// clusters by route_id. A vhost's index is its index in Config::virtual_hosts.
//
// Listeners: one Router serves all listeners. match() takes the listener's index in
// Config::listeners and looks only at the virtual hosts that listener lists (all when its list
// is empty). Domains must be unambiguous within each listener's view, not globally, so two
// listeners may each have their own "*" vhost.
//
// Matching, per request:
//   1. Virtual host: Host lower-cased, port stripped ("[::1]:8080" -> "[::1]"), trailing dot
//      dropped; then exact domain, then the longest "*.suffix" wildcard ("*.example.com"
//      matches "a.example.com" and "a.b.example.com", not "example.com"), then "*".
//   2. Routes of that vhost in written order; the first whose matchers all pass wins. (Routes
//      are indexed by the first path segment they require, so only candidates are tried; the
//      index keeps the written order.)
//      path_exact   byte-equal to the normalised path
//      path_prefix  plain string prefix, not segment-aware: "/api" matches "/api/x" and
//                   "/apix" (as Envoy's prefix); write "/api/" to require the boundary
//      path_regex   RE2 full match on the normalised path
//      path_template "/users/{id}/orders/{oid}": each {var} is exactly one non-empty segment;
//                   literal segments are byte-equal; segment counts must agree, so a trailing
//                   slash matters
//      none         any path
//      methods      case-sensitive; empty = any
//      headers      name case-insensitive; exact value / RE2 full match / present / absent.
//                   Each field line is one value (no splitting on ','); with repeated fields
//                   the matcher passes if any one value matches.
//      query        parsed from the raw query on '&' and the first '='; names and values are
//                   percent-decoded before comparing ('+' is not a space, invalid escapes stay
//                   literal); exact / regex / present / absent; any occurrence may match.
// Path literals in config (exact, prefix, template segments) must already be in the canonical
// form http::normalizePath produces for Config::path_normalization: a literal no normalised
// request can equal is a silent hole in an auth rule, so build() rejects it with the fix.
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config/model.h"
#include "core/result.h"
#include "http/headers.h"

namespace re2 {
class RE2;
}

namespace gatehouse::proxy {

namespace detail {
struct CompiledRoute;  // defined in router.cc
struct DomainTable;
struct VhostRoutes;
}  // namespace detail

// What match() looks at. All views are owned by the caller and must outlive the call; the
// result's param values point into `path`.
struct RouteRequest {
  std::string_view host;  // Host header value, or the absolute-form authority; may have :port
  std::string_view method;
  std::string_view path;                     // normalised (http::parseTarget)
  std::string_view query;                    // raw, without '?'
  const http::HeaderMap* headers = nullptr;  // nullptr = no headers
};

struct PathParam {
  std::string_view name;   // into the Router
  std::string_view value;  // into RouteRequest::path, still percent-encoded as in the path
};

// Templates with more variables are rejected by build(), so params never spill to the heap.
inline constexpr size_t kMaxPathParams = 8;

struct RouteResult {
  size_t route_id = 0;
  size_t vhost_index = 0;
  std::string_view route_name;  // into the Router
  std::array<PathParam, kMaxPathParams> param_storage{};
  size_t param_count = 0;

  std::span<const PathParam> params() const { return {param_storage.data(), param_count}; }
  // Value of template variable `name`, or nullopt.
  std::optional<std::string_view> param(std::string_view name) const;
};

// Why a route did not take a request (Router::explain), in the order match() checks: kNone for
// the route that did.
enum class RouteMiss : uint8_t { kNone, kMethod, kPath, kHeader, kQuery };
std::string_view routeMissName(RouteMiss m);  // "method", "path", "header", "query"

// One route of the selected virtual host as the explain walk judged it.
struct RouteVerdict {
  size_t route_id = 0;
  std::string_view route_name;  // into the Router
  RouteMiss miss = RouteMiss::kNone;
  // What failed, in words: "path_prefix '/api/' is not a prefix of '/web'",
  // "method GET is not one of POST, PUT", "header 'x-env' is absent (wants exact 'qa')".
  std::string detail;
};

// One virtual host a listener serves, and whether the Host took it.
struct VhostVerdict {
  size_t vhost_index = 0;
  std::string_view name;  // into the Router
  bool selected = false;
  std::string detail;  // "exact domain 'api.example.com'", "no domain of [a.com, b.com]"
};

// The whole decision of match(), step by step (Router::explain).
struct RouteTrace {
  bool listener_known = false;
  std::string host;                  // the Host in lookup form (lower case, no port)
  std::vector<VhostVerdict> vhosts;  // the listener's virtual hosts, in config order
  std::optional<size_t> vhost_index;
  // Every route of the selected vhost in written order, up to and including the one that
  // matched (all of them when none did).
  std::vector<RouteVerdict> routes;
  std::optional<RouteResult> match;  // the same answer as match(); params point into req.path
};

class Router {
  struct Passkey {};

 public:
  // Compiles every virtual host, route and listener view of `cfg`. Errors (bad regex, bad
  // template, non-canonical path literal, ambiguous domains, unknown vhost names) are
  // kInvalidArgument/kConfig with a message that names the YAML path. The Router keeps no
  // reference to `cfg`.
  static Result<std::shared_ptr<const Router>> build(const config::Config& cfg);

  explicit Router(Passkey);
  ~Router();
  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

  // The route for a request that arrived on listener `listener_index` (index into
  // Config::listeners). nullopt when the listener is unknown, no virtual host takes the Host,
  // or no route of that vhost matches; the core answers 404. Allocates nothing unless a
  // query matcher has to regex-match a percent-encoded value.
  std::optional<RouteResult> match(size_t listener_index, const RouteRequest& req) const;

  // match(), explained: every virtual host of the listener and every route of the chosen one
  // up to the match, each with why it did or did not take the request. For tools (the admin
  // API's explain endpoint, `gatehouse explain`), never the request path: it walks all routes
  // in written order instead of the index, and allocates freely. Any thread.
  RouteTrace explain(size_t listener_index, const RouteRequest& req) const;

  // Step 1 of match() alone: the vhost index for `host` on a listener, or nullopt.
  std::optional<size_t> selectVirtualHost(size_t listener_index, std::string_view host) const;

  size_t routeCount() const;
  size_t listenerCount() const;
  std::string_view routeName(size_t route_id) const;
  // The route's compiled Rewrite::regex for rewritePath(), or nullptr if it has none.
  const re2::RE2* rewriteRegex(size_t route_id) const;

 private:
  std::vector<detail::CompiledRoute> routes_;   // by route_id
  std::vector<detail::VhostRoutes> vhosts_;     // by vhost index
  std::vector<detail::DomainTable> listeners_;  // by listener index
};

}  // namespace gatehouse::proxy
