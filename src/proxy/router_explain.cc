// Router::explain: the route decision of match(), step by step, for tools. It judges with the
// same matchers as match() (router_internal.h) but walks every route of the vhost in written
// order and words each miss, so it stays off the request path.
#include <string>

#include "proxy/router.h"
#include "proxy/router_internal.h"

namespace gatehouse::proxy {

namespace {

using detail::PathKind;
using detail::ValueKind;
using detail::ValueMatcher;

std::string quoted(std::string_view s) {
  return "'" + std::string(s) + "'";
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) {
    if (!out.empty()) out += ", ";
    out += i;
  }
  return out;
}

std::string wants(const ValueMatcher& m) {
  switch (m.kind) {
    case ValueKind::kPresent:
      return "wants it present";
    case ValueKind::kAbsent:
      return "wants it absent";
    case ValueKind::kExact:
      return "wants exact " + quoted(m.exact);
    case ValueKind::kRegex:
      return "wants regex " + quoted(m.regex->pattern());
  }
  return {};
}

std::string templateText(const detail::CompiledRoute& r) {
  std::string t;
  for (const auto& seg : r.segments)
    t += seg.is_param ? "/{" + seg.text + "}" : "/" + seg.text;
  return t;
}

// Why `r`'s path matcher refuses `path`, or empty when it accepts it.
std::string pathMiss(const detail::CompiledRoute& r, std::string_view path) {
  RouteResult scratch;
  switch (r.path_kind) {
    case PathKind::kAny:
      return {};
    case PathKind::kExact:
      if (path == r.path) return {};
      return "path_exact " + quoted(r.path) + " is not " + quoted(path);
    case PathKind::kPrefix:
      if (path.starts_with(r.path)) return {};
      return "path_prefix " + quoted(r.path) + " is not a prefix of " + quoted(path);
    case PathKind::kRegex:
      if (RE2::FullMatch(path, *r.path_regex)) return {};
      return "path_regex " + quoted(r.path_regex->pattern()) + " does not match " + quoted(path);
    case PathKind::kTemplate:
      if (detail::matchTemplate(r.segments, path, scratch)) return {};
      return "path_template " + quoted(templateText(r)) + " does not fit " + quoted(path);
  }
  return {};
}

// Why `m` refuses the request's headers, or empty.
std::string headerMiss(const ValueMatcher& m, const http::HeaderMap* headers) {
  if (detail::headerMatches(m, headers)) return {};
  std::vector<std::string> seen;
  if (headers != nullptr) {
    for (const auto& f : headers->fields()) {
      if (http::iequals(f.name, m.name)) seen.push_back(quoted(f.value));
    }
  }
  const std::string got = seen.empty() ? "is absent" : "is " + joined(seen);
  return "header " + quoted(m.name) + " " + got + " (" + wants(m) + ")";
}

std::string queryMiss(const ValueMatcher& m, std::string_view query) {
  if (detail::queryMatches(m, query)) return {};
  return "query parameter " + quoted(m.name) + " does not satisfy the matcher (" + wants(m) +
         "; query " + (query.empty() ? std::string("is empty") : quoted(query)) + ")";
}

RouteVerdict judge(const detail::CompiledRoute& r, size_t id, const RouteRequest& req) {
  RouteVerdict v;
  v.route_id = id;
  v.route_name = r.name;
  // Same order as detail::matchRoute, so the first reason given is the one match() stops at.
  if (!r.methods.empty() &&
      std::find(r.methods.begin(), r.methods.end(), req.method) == r.methods.end()) {
    v.miss = RouteMiss::kMethod;
    v.detail = "method " + std::string(req.method) + " is not one of " + joined(r.methods);
    return v;
  }
  if (std::string why = pathMiss(r, req.path); !why.empty()) {
    v.miss = RouteMiss::kPath;
    v.detail = std::move(why);
    return v;
  }
  for (const ValueMatcher& h : r.headers) {
    if (std::string why = headerMiss(h, req.headers); !why.empty()) {
      v.miss = RouteMiss::kHeader;
      v.detail = std::move(why);
      return v;
    }
  }
  for (const ValueMatcher& q : r.query) {
    if (std::string why = queryMiss(q, req.query); !why.empty()) {
      v.miss = RouteMiss::kQuery;
      v.detail = std::move(why);
      return v;
    }
  }
  return v;
}

std::string hitDetail(const detail::DomainHit& hit) {
  switch (hit.kind) {
    case detail::DomainHit::kExact:
      return "exact domain " + quoted(hit.host);
    case detail::DomainHit::kWildcard:
      return "wildcard domain '*" + hit.suffix + "'";
    case detail::DomainHit::kAny:
    case detail::DomainHit::kNone:
      break;
  }
  return "catch-all domain '*'";
}

}  // namespace

std::string_view routeMissName(RouteMiss m) {
  switch (m) {
    case RouteMiss::kNone:
      return "none";
    case RouteMiss::kMethod:
      return "method";
    case RouteMiss::kPath:
      return "path";
    case RouteMiss::kHeader:
      return "header";
    case RouteMiss::kQuery:
      return "query";
  }
  return "none";
}

RouteTrace Router::explain(size_t listener_index, const RouteRequest& req) const {
  RouteTrace trace;
  if (listener_index >= listeners_.size()) return trace;
  trace.listener_known = true;
  const detail::DomainTable& table = listeners_[listener_index];
  detail::DomainHit hit;
  trace.vhost_index = table.lookup(req.host, &hit);
  trace.host = hit.host;
  for (size_t vi : table.view) {
    VhostVerdict v;
    v.vhost_index = vi;
    v.name = vhosts_[vi].name;
    v.selected = trace.vhost_index == vi;
    v.detail = v.selected ? hitDetail(hit)
                          : "Host " + quoted(trace.host) + " is not one of its domains [" +
                                joined(vhosts_[vi].domains) + "]";
    trace.vhosts.push_back(std::move(v));
  }
  if (!trace.vhost_index) return trace;
  for (uint32_t id : vhosts_[*trace.vhost_index].route_ids) {
    const detail::CompiledRoute& r = routes_[id];
    RouteVerdict v = judge(r, id, req);
    const bool matched = v.miss == RouteMiss::kNone;
    trace.routes.push_back(std::move(v));
    if (!matched) continue;
    RouteResult& out = trace.match.emplace();
    out.vhost_index = *trace.vhost_index;
    out.route_id = id;
    out.route_name = r.name;
    detail::matchRoute(r, req, out);  // fills the template's params
    break;
  }
  return trace;
}

}  // namespace gatehouse::proxy
