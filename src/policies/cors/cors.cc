#include "policies/cors/cors.h"

#include <yaml-cpp/yaml.h>

#include <string>
#include <utility>
#include <vector>

#include "core/strings.h"
#include "http/headers.h"
#include "policies/access.h"
#include "policies/policy_yaml.h"

namespace gatehouse::policies::cors {
namespace {

// One `origins` entry: "*", an exact origin ("https://app.example.com:8443"), or a wildcard
// host ("*.example.com" for any scheme, "https://*.example.com" for one). A wildcard matches one
// or more labels in front of the suffix, never the bare suffix itself.
struct OriginRule {
  std::string scheme;  // empty: any of http, https (wildcards only)
  std::string host;    // exact "host[:port]", or for wildcards the suffix ".example.com"
  bool wildcard = false;

  bool matches(std::string_view origin) const {
    size_t sep = origin.find("://");
    if (sep == std::string_view::npos) return false;
    std::string_view scheme_part = origin.substr(0, sep);
    std::string_view rest = origin.substr(sep + 3);
    if (scheme.empty()) {
      if (!http::iequals(scheme_part, "http") && !http::iequals(scheme_part, "https")) {
        return false;
      }
    } else if (!http::iequals(scheme_part, scheme)) {
      return false;
    }
    if (!wildcard) return http::iequals(rest, host);
    return rest.size() > host.size() && http::iequals(rest.substr(rest.size() - host.size()), host);
  }
};

struct Options {
  bool any_origin = false;
  std::vector<OriginRule> origins;
  std::vector<std::string> methods;
  bool any_method = false;
  std::vector<std::string> headers;  // lowercase
  bool any_header = false;
  std::string methods_value;  // joined, for Access-Control-Allow-Methods
  std::string headers_value;
  std::string expose_value;
  bool credentials = false;
  std::string max_age;  // empty: not sent
};

bool isPreflight(const http::Request& req) {
  return req.method == "OPTIONS" && req.headers.has("origin") &&
         req.headers.has("access-control-request-method");
}

class CorsFilter final : public http::StatelessFilter {
 public:
  explicit CorsFilter(Options o) : opts_(std::move(o)) {}
  http::Verdict onRequestHeaders(http::RequestContext& ctx) const override {
    if (!isPreflight(ctx.request)) return http::Verdict::kContinue;
    std::string_view origin = ctx.request.headers.get("origin");
    std::string_view method = ctx.request.headers.get("access-control-request-method");
    std::string_view req_headers = ctx.request.headers.get("access-control-request-headers");
    if (!originAllowed(origin) || !methodAllowed(method) || !headersAllowed(req_headers)) {
      // A failed preflight gets no CORS headers, so the browser refuses the actual request; a
      // 403 (rather than a bare 204) tells whoever debugs it that the gateway said no.
      counters_.local().preflight_rejected.inc();
      http::Verdict v = ctx.respondError(403, "CORS preflight rejected");
      ctx.local_reply.headers.add("vary", kPreflightVary);
      return v;
    }
    counters_.local().preflight_allowed.inc();
    http::Verdict v = ctx.respond(204, {});
    auto& h = ctx.local_reply.headers;
    h.clear();
    addAllowOrigin(h, origin);
    h.add("access-control-allow-methods", opts_.any_method ? method : opts_.methods_value);
    if (opts_.any_header) {
      if (!req_headers.empty()) h.add("access-control-allow-headers", req_headers);
    } else if (!opts_.headers_value.empty()) {
      h.add("access-control-allow-headers", opts_.headers_value);
    }
    if (!opts_.max_age.empty()) h.add("access-control-max-age", opts_.max_age);
    h.add("vary", kPreflightVary);
    return v;
  }

  http::Verdict onResponseHeaders(http::RequestContext& ctx) const override {
    // Preflights were answered (or refused) in the request phase.
    if (isPreflight(ctx.request)) return http::Verdict::kContinue;
    auto& h = ctx.response.headers;
    // The gateway is the one CORS authority for the route: the upstream cannot widen it.
    h.remove("access-control-allow-origin");
    h.remove("access-control-allow-credentials");
    h.remove("access-control-expose-headers");
    if (dependsOnOrigin()) h.add("vary", "Origin");
    std::string_view origin = ctx.request.headers.get("origin");
    if (origin.empty()) return http::Verdict::kContinue;
    if (!originAllowed(origin)) {
      counters_.local().actual_rejected.inc();
      return http::Verdict::kContinue;
    }
    counters_.local().actual_allowed.inc();
    // addAllowOrigin's Vary is already covered above.
    h.add("access-control-allow-origin", allowOriginValue(origin));
    if (opts_.credentials) h.add("access-control-allow-credentials", "true");
    if (!opts_.expose_value.empty()) h.add("access-control-expose-headers", opts_.expose_value);
    return http::Verdict::kContinue;
  }

  const Counters& counters() const { return counters_; }

 private:
  static constexpr std::string_view kPreflightVary =
      "Origin, Access-Control-Request-Method, Access-Control-Request-Headers";

  // "*" cannot be combined with credentials (Fetch §3.2.5): then the origin is echoed.
  bool dependsOnOrigin() const { return !opts_.any_origin || opts_.credentials; }
  std::string_view allowOriginValue(std::string_view origin) const {
    return dependsOnOrigin() ? origin : std::string_view("*");
  }
  void addAllowOrigin(http::HeaderMap& h, std::string_view origin) const {
    h.add("access-control-allow-origin", allowOriginValue(origin));
    if (opts_.credentials) h.add("access-control-allow-credentials", "true");
  }

  bool originAllowed(std::string_view origin) const {
    if (origin.empty()) return false;
    if (opts_.any_origin) return true;
    for (const auto& r : opts_.origins) {
      if (r.matches(origin)) return true;
    }
    return false;
  }

  bool methodAllowed(std::string_view method) const {
    if (method.empty()) return false;
    // CORS-safelisted methods never need the server's permission (Fetch §2.2.1).
    if (method == "GET" || method == "HEAD" || method == "POST") return true;
    if (opts_.any_method) return true;
    for (const auto& m : opts_.methods) {
      if (m == method) return true;  // methods are case-sensitive
    }
    return false;
  }

  bool headersAllowed(std::string_view list) const {
    if (opts_.any_header) return true;
    while (!list.empty()) {
      size_t comma = list.find(',');
      std::string_view name = strings::trimSpaces(list.substr(0, comma));
      list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
      if (name.empty()) continue;
      bool ok = false;
      for (const auto& allowed : opts_.headers)
        ok = ok || http::iequals(allowed, name);
      if (!ok) return false;
    }
    return true;
  }

  const Options opts_;
  Counters counters_;  // per-thread cells: every worker counts in its own
};

bool isHostChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == ':' || c == '[' || c == ']';
}

Result<OriginRule> parseOrigin(std::string_view text, const std::string& what) {
  auto bad = [&](std::string_view why) {
    return configError(what + ": '" + std::string(text) + "' " + std::string(why));
  };
  OriginRule r;
  std::string_view rest = text;
  size_t sep = text.find("://");
  if (sep != std::string_view::npos) {
    r.scheme.assign(text.substr(0, sep));
    if (r.scheme != "http" && r.scheme != "https") return bad("must use http or https");
    rest = text.substr(sep + 3);
  }
  if (rest.substr(0, 2) == "*.") {
    r.wildcard = true;
    rest.remove_prefix(1);  // keep the dot: ".example.com"
    if (rest.size() < 2) return bad("has an empty wildcard suffix");
  } else if (r.scheme.empty()) {
    return bad("is not an origin: expected scheme://host[:port], *.domain or *");
  }
  if (rest.empty()) return bad("has no host");
  for (char c : rest) {
    if (c == '/') return bad("must not contain a path (an origin is scheme://host[:port])");
    if (!isHostChar(c)) return bad("contains an invalid character");
  }
  r.host.assign(rest);
  return r;
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) {
    if (!out.empty()) out += ", ";
    out += s;
  }
  return out;
}

}  // namespace

const Counters* countersOf(const http::FilterFactory& factory) {
  return policies::countersOf<CorsFilter>(factory);
}

Result<http::FilterFactoryPtr> build(const YAML::Node& config) {
  if (!config || !config.IsMap()) return configError("expected a map with at least 'origins'");
  if (auto st = checkKeys(
          config, {"origins", "methods", "headers", "expose_headers", "credentials", "max_age"});
      !st.ok()) {
    return st.error();
  }
  Options o;
  if (auto st = readOptional(config, "credentials", o.credentials); !st.ok()) return st.error();
  if (!config["origins"]) return configError("'origins' is required");
  auto origins = readNonEmptyList(config["origins"], "origins");
  if (!origins.ok()) return origins.error();
  for (size_t i = 0; i < origins->size(); ++i) {
    const std::string& s = (*origins)[i];
    if (s == "*") {
      o.any_origin = true;
      continue;
    }
    auto r = parseOrigin(s, "origins[" + std::to_string(i) + "]");
    if (!r.ok()) return r.error();
    o.origins.push_back(std::move(*r));
  }
  if (o.any_origin && !o.origins.empty()) {
    return configError("origins: '*' already allows every origin; remove the other entries");
  }
  std::vector<std::string> methods = {"GET", "HEAD", "POST"};
  if (const auto& m = config["methods"]) {
    auto v = readNonEmptyList(m, "methods");
    if (!v.ok()) return v.error();
    methods = std::move(*v);
  }
  for (size_t i = 0; i < methods.size(); ++i) {
    if (methods[i] == "*") {
      o.any_method = true;
    } else if (!isHeaderName(methods[i])) {  // a method is a token, like a header name
      return configError("methods[" + std::to_string(i) + "]: invalid method '" + methods[i] + "'");
    }
  }
  if (o.any_method && methods.size() > 1) {
    return configError("methods: '*' already allows every method; remove the other entries");
  }
  o.methods = methods;
  o.methods_value = join(methods);
  if (const auto& h = config["headers"]) {
    auto v = readNonEmptyList(h, "headers");
    if (!v.ok()) return v.error();
    for (size_t i = 0; i < v->size(); ++i) {
      std::string& name = (*v)[i];
      if (name == "*") {
        o.any_header = true;
      } else if (!isHeaderName(name)) {
        return configError("headers[" + std::to_string(i) + "]: invalid header name '" + name +
                           "'");
      }
      for (auto& ch : name)
        ch = static_cast<char>(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
    }
    if (o.any_header && v->size() > 1) {
      return configError("headers: '*' already allows every header; remove the other entries");
    }
    o.headers = std::move(*v);
    if (!o.any_header) o.headers_value = join(o.headers);
  }
  if (const auto& e = config["expose_headers"]) {
    auto v = readNonEmptyList(e, "expose_headers");
    if (!v.ok()) return v.error();
    for (size_t i = 0; i < v->size(); ++i) {
      const std::string& name = (*v)[i];
      if (name == "*" && o.credentials) {
        // With credentials a "*" is taken literally by browsers (Fetch §3.2.3): it would expose
        // nothing. Better to say so than to ship a silently broken policy.
        return configError(
            "expose_headers: '*' does not work with credentials: true; list the "
            "headers");
      }
      if (name != "*" && !isHeaderName(name)) {
        return configError("expose_headers[" + std::to_string(i) + "]: invalid header name '" +
                           name + "'");
      }
    }
    o.expose_value = join(*v);
  }
  if (const auto& a = config["max_age"]) {
    auto v = readInt(a, "max_age", 0, 86400);
    if (!v.ok()) return v.error();
    o.max_age = std::to_string(*v);
  }
  return http::FilterFactoryPtr(std::make_shared<http::StatelessFactory<CorsFilter>>(std::move(o)));
}

}  // namespace gatehouse::policies::cors
