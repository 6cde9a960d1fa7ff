#include "proxy/router.h"

#include <re2/re2.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <unordered_map>
#include <unordered_set>

#include "http/request_target.h"
#include "proxy/router_internal.h"

namespace gatehouse::proxy {

namespace {

using namespace detail;

Error configError(std::string msg) {
  return Error::make(ErrorCode::kInvalidArgument, ErrorSource::kConfig, std::move(msg));
}

std::unique_ptr<RE2> compileRegex(const std::string& pattern, const std::string& where,
                                  std::string& error) {
  RE2::Options opts;
  opts.set_log_errors(false);  // the error goes into our message, not to stderr
  auto re = std::make_unique<RE2>(pattern, opts);
  if (!re->ok()) {
    error = where + ": invalid regex '" + pattern + "': " + re->error();
    return nullptr;
  }
  return re;
}

std::string normalizeHost(std::string_view domain) {
  std::string out(domain);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; });
  if (!out.empty() && out.back() == '.') out.pop_back();
  return out;
}

// The first segment every path this route matches must have, or nullopt if there is none.
std::optional<std::string_view> requiredFirstSegment(const CompiledRoute& r) {
  switch (r.path_kind) {
    case PathKind::kExact:
      return firstSegment(r.path);
    case PathKind::kPrefix:
      // "/api" also matches "/apix"; only a '/' after the first segment pins it.
      if (r.path.find('/', 1) == std::string::npos) return std::nullopt;
      return firstSegment(r.path);
    case PathKind::kTemplate:
      if (r.segments.front().is_param) return std::nullopt;
      return std::string_view(r.segments.front().text);
    case PathKind::kAny:
    case PathKind::kRegex:
      break;
  }
  return std::nullopt;
}

// Route literals must be what normalisation produces, or no request could ever equal them.
// `suffix` is appended before checking, so a prefix may end inside a segment ("/." for
// dotfiles, "/api" for "/api/..." and "/apix").
bool checkCanonical(const std::string& literal, std::string_view suffix,
                    const config::PathNormalization& norm, const std::string& where,
                    std::string& error) {
  if (literal.empty() || literal[0] != '/') {
    error = where + ": '" + literal + "' must start with '/'";
    return false;
  }
  const std::string probe = literal + std::string(suffix);
  std::string canonical;
  http::TargetError err;
  if (!http::normalizePath(probe, norm, canonical, err)) {
    error =
        where + ": '" + literal + "' can never match a request (" + std::string(err.reason) + ")";
    return false;
  }
  if (canonical != probe) {
    if (canonical.ends_with(suffix)) canonical.resize(canonical.size() - suffix.size());
    error = where + ": '" + literal + "' is not in normalised form and would never match; write '" +
            canonical + "'";
    return false;
  }
  return true;
}

bool compileTemplate(const std::string& tmpl, const config::PathNormalization& norm,
                     const std::string& where, std::vector<TemplateSegment>& out,
                     std::string& error) {
  if (tmpl.empty() || tmpl[0] != '/') {
    error = where + ": '" + tmpl + "' must start with '/'";
    return false;
  }
  std::string probe;  // the template with each variable replaced by a plain segment
  std::unordered_set<std::string_view> names;
  size_t pos = 1;
  while (true) {
    size_t end = tmpl.find('/', pos);
    if (end == std::string::npos) end = tmpl.size();
    const std::string_view seg(tmpl.data() + pos, end - pos);
    TemplateSegment compiled;
    if (seg.size() > 1 && seg.front() == '{' && seg.back() == '}') {
      const std::string_view name = seg.substr(1, seg.size() - 2);
      const bool valid = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_';
      });
      if (!valid) {
        error = where + ": bad variable name '" + std::string(name) + "' in '" + tmpl + "'";
        return false;
      }
      if (!names.insert(name).second) {
        error = where + ": variable '" + std::string(name) + "' repeats in '" + tmpl + "'";
        return false;
      }
      if (names.size() > kMaxPathParams) {
        error = where + ": more than " + std::to_string(kMaxPathParams) + " variables in '" + tmpl +
                "'";
        return false;
      }
      compiled.text = std::string(name);
      compiled.is_param = true;
      probe += "/x";
    } else if (seg.find_first_of("{}") != std::string_view::npos) {
      error = where + ": a variable must be a whole segment, as in '/a/{id}/b': '" + tmpl + "'";
      return false;
    } else {
      compiled.text = std::string(seg);
      probe += '/';
      probe += seg;
    }
    out.push_back(std::move(compiled));
    if (end == tmpl.size()) break;
    pos = end + 1;
  }
  std::string canonical;
  http::TargetError err;
  if (!http::normalizePath(probe, norm, canonical, err) || canonical != probe) {
    error = where + ": literal segments of '" + tmpl +
            "' are not in normalised form and would never match";
    return false;
  }
  return true;
}

bool compileValueMatcher(const std::string& name, const std::optional<std::string>& exact,
                         const std::optional<std::string>& regex,
                         const std::optional<bool>& present, const std::string& where,
                         ValueMatcher& out, std::string& error) {
  if (name.empty()) {
    error = where + ": name is required";
    return false;
  }
  if (exact && regex) {
    error = where + ": exact and regex are exclusive";
    return false;
  }
  if (present == false && (exact || regex)) {
    error = where + ": present: false cannot be combined with exact or regex";
    return false;
  }
  out.name = name;
  if (exact) {
    out.kind = ValueKind::kExact;
    out.exact = *exact;
  } else if (regex) {
    out.kind = ValueKind::kRegex;
    out.regex = compileRegex(*regex, where + ".regex", error);
    if (!out.regex) return false;
  } else {
    out.kind = present == false ? ValueKind::kAbsent : ValueKind::kPresent;
  }
  return true;
}

// Every header (or query) match of a route, in order; false with `error` at the first bad one.
template <typename Match>
bool compileValueMatchers(const std::vector<Match>& matches, const std::string& where,
                          std::vector<ValueMatcher>& out, std::string& error) {
  for (size_t k = 0; k < matches.size(); ++k) {
    const Match& v = matches[k];
    ValueMatcher vm;
    if (!compileValueMatcher(v.name, v.exact, v.regex, v.present,
                             where + "[" + std::to_string(k) + "]", vm, error)) {
      return false;
    }
    out.push_back(std::move(vm));
  }
  return true;
}

bool compileRoute(const config::Route& route, const config::PathNormalization& norm,
                  const std::string& where, CompiledRoute& out, std::string& error) {
  const config::RouteMatch& m = route.match;
  const std::string mw = where + ".match";
  const int path_matchers =
      static_cast<int>(m.path_exact.has_value()) + static_cast<int>(m.path_prefix.has_value()) +
      static_cast<int>(m.path_regex.has_value()) + static_cast<int>(m.path_template.has_value());
  if (path_matchers > 1) {
    error = mw + ": at most one of path_exact, path_prefix, path_regex, path_template";
    return false;
  }
  if (m.path_exact) {
    out.path_kind = PathKind::kExact;
    out.path = *m.path_exact;
    if (!checkCanonical(out.path, "", norm, mw + ".path_exact", error)) return false;
  } else if (m.path_prefix) {
    out.path_kind = PathKind::kPrefix;
    out.path = *m.path_prefix;
    if (!checkCanonical(out.path, "x", norm, mw + ".path_prefix", error)) return false;
  } else if (m.path_regex) {
    out.path_kind = PathKind::kRegex;
    out.path_regex = compileRegex(*m.path_regex, mw + ".path_regex", error);
    if (!out.path_regex) return false;
  } else if (m.path_template) {
    out.path_kind = PathKind::kTemplate;
    if (!compileTemplate(*m.path_template, norm, mw + ".path_template", out.segments, error)) {
      return false;
    }
  }
  for (size_t k = 0; k < m.methods.size(); ++k) {
    if (m.methods[k].empty()) {
      error = mw + ".methods[" + std::to_string(k) + "]: empty method";
      return false;
    }
  }
  out.methods = m.methods;
  if (!compileValueMatchers(m.headers, mw + ".headers", out.headers, error) ||
      !compileValueMatchers(m.query, mw + ".query", out.query, error)) {
    return false;
  }

  const config::Rewrite& rw = route.rewrite;
  const std::string rww = where + ".rewrite";
  if (rw.strip_prefix && (rw.strip_prefix->empty() || (*rw.strip_prefix)[0] != '/')) {
    error = rww + ".strip_prefix: must start with '/'";
    return false;
  }
  if (rw.regex.has_value() != rw.regex_replace.has_value()) {
    error = rww + ": regex and regex_replace must be given together";
    return false;
  }
  if (rw.regex) {
    out.rewrite_regex = compileRegex(*rw.regex, rww + ".regex", error);
    if (!out.rewrite_regex) return false;
    std::string why;
    if (!out.rewrite_regex->CheckRewriteString(*rw.regex_replace, &why)) {
      error = rww + ".regex_replace: " + why;
      return false;
    }
  }
  return true;
}

// A configured domain in lookup form, validated once per vhost.
struct DomainKey {
  enum Kind { kExact, kWildcard, kAny } kind = kExact;
  std::string key;  // "example.com", ".example.com" for "*.example.com", "" for "*"
  std::string written;
};

bool compileDomain(const std::string& domain, const std::string& where, DomainKey& out,
                   std::string& error) {
  std::string d = normalizeHost(domain);
  out.written = domain;
  if (d == "*") {
    out.kind = DomainKey::kAny;
    return true;
  }
  if (d.starts_with("*.")) {
    out.kind = DomainKey::kWildcard;
    out.key = d.substr(1);
  } else {
    out.kind = DomainKey::kExact;
    out.key = std::move(d);
  }
  const std::string_view name = out.kind == DomainKey::kWildcard
                                    ? std::string_view(out.key).substr(1)
                                    : std::string_view(out.key);
  if (name.empty() || name.find('*') != std::string_view::npos) {
    error = where + ": '" + domain + "': only 'name', '*.suffix' and '*' are supported";
    return false;
  }
  const bool bracketed = name.front() == '[';
  if ((!bracketed && name.find(':') != std::string_view::npos) ||
      (bracketed && name.back() != ']')) {
    error = where + ": '" + domain + "': a domain must not include a port";
    return false;
  }
  return true;
}

bool addDomain(DomainTable& table, const DomainKey& d, size_t vhost,
               const std::vector<config::VirtualHost>& vhosts, const std::string& where,
               std::string& error) {
  std::optional<size_t> existing;
  switch (d.kind) {
    case DomainKey::kAny:
      if (!table.any) table.any = vhost;
      existing = table.any;
      break;
    case DomainKey::kExact:
      existing = table.exact.try_emplace(d.key, vhost).first->second;
      break;
    case DomainKey::kWildcard:
      existing = table.wildcard.try_emplace(d.key, vhost).first->second;
      break;
  }
  if (*existing != vhost) {
    error = where + ": domain '" + d.written + "' is in both virtual hosts '" +
            vhosts[*existing].name + "' and '" + vhosts[vhost].name + "'";
    return false;
  }
  return true;
}

}  // namespace

std::optional<std::string_view> RouteResult::param(std::string_view name) const {
  for (const PathParam& p : params()) {
    if (p.name == name) return p.value;
  }
  return std::nullopt;
}

Router::Router(Passkey) {}
Router::~Router() = default;

size_t Router::routeCount() const {
  return routes_.size();
}
size_t Router::listenerCount() const {
  return listeners_.size();
}
std::string_view Router::routeName(size_t route_id) const {
  return routes_.at(route_id).name;
}
const re2::RE2* Router::rewriteRegex(size_t route_id) const {
  return routes_.at(route_id).rewrite_regex.get();
}

Result<std::shared_ptr<const Router>> Router::build(const config::Config& cfg) {
  auto router = std::make_shared<Router>(Passkey{});
  std::string error;
  std::unordered_map<std::string_view, size_t> vhost_by_name;
  std::vector<std::vector<DomainKey>> vhost_domains(cfg.virtual_hosts.size());

  for (size_t i = 0; i < cfg.virtual_hosts.size(); ++i) {
    const config::VirtualHost& vh = cfg.virtual_hosts[i];
    const std::string vw = "virtual_hosts[" + std::to_string(i) + "]";
    if (!vhost_by_name.emplace(vh.name, i).second) {
      return configError(vw + ": duplicate virtual host name '" + vh.name + "'");
    }
    for (size_t k = 0; k < vh.domains.size(); ++k) {
      DomainKey d;
      if (!compileDomain(vh.domains[k], vw + ".domains[" + std::to_string(k) + "]", d, error)) {
        return configError(error);
      }
      vhost_domains[i].push_back(std::move(d));
    }
    VhostRoutes index;
    index.name = vh.name;
    index.domains = vh.domains;
    for (size_t j = 0; j < vh.routes.size(); ++j) {
      const config::Route& r = vh.routes[j];
      const std::string where =
          r.yaml_path.empty() ? vw + ".routes[" + std::to_string(j) + "]" : r.yaml_path;
      CompiledRoute compiled;
      compiled.vhost_index = i;
      compiled.name = r.name.empty() ? vh.name + "/" + std::to_string(j) : r.name;
      if (!compileRoute(r, cfg.path_normalization, where, compiled, error)) {
        return configError(error);
      }
      const auto id = static_cast<uint32_t>(router->routes_.size());
      index.route_ids.push_back(id);
      if (auto key = requiredFirstSegment(compiled)) {
        index.keyed[std::string(*key)].push_back(id);
      } else {
        index.unkeyed.push_back(id);
      }
      router->routes_.push_back(std::move(compiled));
    }
    router->vhosts_.push_back(std::move(index));
  }

  for (size_t li = 0; li < cfg.listeners.size(); ++li) {
    const config::Listener& l = cfg.listeners[li];
    const std::string lw = "listeners[" + std::to_string(li) + "]";
    std::vector<size_t> view;
    if (l.virtual_hosts.empty()) {
      for (size_t i = 0; i < cfg.virtual_hosts.size(); ++i)
        view.push_back(i);
    }
    for (size_t k = 0; k < l.virtual_hosts.size(); ++k) {
      auto it = vhost_by_name.find(l.virtual_hosts[k]);
      if (it == vhost_by_name.end()) {
        return configError(lw + ".virtual_hosts[" + std::to_string(k) +
                           "]: unknown virtual host '" + l.virtual_hosts[k] + "'");
      }
      view.push_back(it->second);
    }
    DomainTable table;
    table.view = view;
    for (size_t vhost : view) {
      for (const DomainKey& d : vhost_domains[vhost]) {
        if (!addDomain(table, d, vhost, cfg.virtual_hosts, lw, error)) return configError(error);
      }
    }
    router->listeners_.push_back(std::move(table));
  }
  return std::shared_ptr<const Router>(std::move(router));
}

std::optional<size_t> Router::selectVirtualHost(size_t listener_index,
                                                std::string_view host) const {
  if (listener_index >= listeners_.size()) return std::nullopt;
  return listeners_[listener_index].select(host);
}

std::optional<RouteResult> Router::match(size_t listener_index, const RouteRequest& req) const {
  // One named result returned on every path, so it is constructed in place (NRVO).
  std::optional<RouteResult> result;
  const std::optional<size_t> vhost = selectVirtualHost(listener_index, req.host);
  if (!vhost) return result;
  const VhostRoutes& index = vhosts_[*vhost];
  std::span<const uint32_t> keyed;
  if (!index.keyed.empty()) {
    if (auto it = index.keyed.find(firstSegment(req.path)); it != index.keyed.end()) {
      keyed = it->second;
    }
  }
  const std::span<const uint32_t> unkeyed = index.unkeyed;
  RouteResult& out = result.emplace();
  out.vhost_index = *vhost;
  // Merge the two ascending id lists so routes are tried in written order.
  size_t k = 0;
  size_t u = 0;
  while (k < keyed.size() || u < unkeyed.size()) {
    const uint32_t id = (u == unkeyed.size() || (k < keyed.size() && keyed[k] < unkeyed[u]))
                            ? keyed[k++]
                            : unkeyed[u++];
    const CompiledRoute& r = routes_[id];
    out.param_count = 0;  // a template route may have captured before a later matcher failed
    if (matchRoute(r, req, out)) {
      out.route_id = id;
      out.route_name = r.name;
      return result;
    }
  }
  result.reset();
  return result;
}

}  // namespace gatehouse::proxy
