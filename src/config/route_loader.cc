#include "config/route_loader.h"

#include <re2/re2.h>

#include <algorithm>
#include <array>
#include <span>

#include "config/retry_loader.h"
#include "config/split_loader.h"
#include "config/syntax.h"

namespace gatehouse::config {

namespace {

constexpr std::string_view kRouteKeys[] = {
    "name",    "match",    "cluster", "clusters", "direct_response", "redirect", "rewrite",
    "timeout", "policies", "canary",  "mirror",   "retry",           "timeouts", "websocket",
    "tracing"};
constexpr std::string_view kRouteTimeoutKeys[] = {"request_total", "grpc_unary", "grpc_stream_idle",
                                                  "sse_idle", "sse_max_lifetime"};
constexpr std::string_view kWebSocketKeys[] = {"idle_timeout", "max_lifetime", "max_connections"};
constexpr std::string_view kActionKeys[] = {"cluster", "clusters", "direct_response", "redirect"};
constexpr std::string_view kMatchKeys[] = {
    "path_exact", "path_prefix", "path_regex", "path_template", "methods", "headers", "query"};
constexpr std::string_view kPathMatchKeys[] = {"path_exact", "path_prefix", "path_regex",
                                               "path_template"};
constexpr std::string_view kValueMatchKeys[] = {"name", "exact", "regex", "present"};
constexpr std::string_view kRewriteKeys[] = {"strip_prefix", "regex", "regex_replace", "host"};
constexpr std::string_view kRedirectKeys[] = {"status", "location", "scheme",     "host",
                                              "path",   "port",     "strip_query"};
constexpr std::string_view kRedirectPartKeys[] = {"scheme", "host", "path", "port", "strip_query"};
constexpr std::string_view kDirectResponseKeys[] = {"status", "body", "content_type"};
constexpr std::string_view kPolicyKeys[] = {"name", "config"};
constexpr std::array<int, 5> kRedirectStatuses = {301, 302, 303, 307, 308};

// The keys among `keys` that `m` has, in the order they were written, so that a conflict is
// reported at the later key.
std::vector<std::string_view> presentKeys(const MapReader& m,
                                          std::span<const std::string_view> keys) {
  std::vector<std::string_view> out;
  for (std::string_view k : keys) {
    if (m.has(k)) out.push_back(k);
  }
  std::stable_sort(out.begin(), out.end(), [&](std::string_view a, std::string_view b) {
    return m.findKey(a)->Mark().pos < m.findKey(b)->Mark().pos;
  });
  return out;
}

void reportValue(const MapReader& m, std::string_view key, std::string message) {
  m.diag().add(*m.find(key), m.path(key), std::move(message));
}

// Reads `key` as a path and checks it with `check`; leaves `out` empty if invalid.
void readPathLike(const MapReader& m, std::string_view key, std::optional<std::string>& out,
                  Status (*check)(std::string_view)) {
  m.read(key, out);
  if (!out) return;
  if (Status s = check(*out); !s) {
    reportValue(m, key, s.error().message);
    out.reset();
  }
}

// Header and query matchers share one shape; header names are also HTTP tokens.
template <typename T>
std::vector<T> readValueMatches(Diagnostics& diag, const YAML::Node& node, const std::string& path,
                                bool is_header) {
  std::vector<T> out;
  forEachMap(diag, node, path, kValueMatchKeys, [&](const MapReader& m) {
    T match;
    if (m.require("name")) m.read("name", match.name);
    if (is_header && !match.name.empty()) {
      if (!isHttpToken(match.name)) {
        reportValue(m, "name", "'" + match.name + "' is not a valid header name");
      }
      match.name = toLowerAscii(match.name);  // header names compare case-insensitively
    }
    m.read("exact", match.exact, /*allow_empty=*/true);
    m.read("regex", match.regex);
    if (match.regex) checkRegex(diag, *m.find("regex"), m.path("regex"), *match.regex);
    if (const YAML::Node* v = m.find("present"))
      match.present = readBool(diag, *v, m.path("present"));
    constexpr std::string_view kOneOf[] = {"exact", "regex", "present"};
    if (presentKeys(m, kOneOf).size() != 1) {
      diag.add(m.node(), m.path(), "needs exactly one of exact, regex, present");
    }
    out.push_back(std::move(match));
  });
  return out;
}

std::vector<std::string> readMethods(Diagnostics& diag, const YAML::Node& node,
                                     const std::string& path) {
  std::vector<std::string> out;
  if (!expectList(diag, node, path)) return out;
  size_t index = 0;
  for (const auto& item : node) {
    std::string item_path = indexPath(path, index++);
    std::optional<std::string> method = readString(diag, item, item_path);
    if (!method) continue;
    if (!isHttpToken(*method)) {
      diag.add(item, item_path, "'" + *method + "' is not a valid HTTP method");
      continue;
    }
    std::string upper = toUpperAscii(*method);
    if (std::find(out.begin(), out.end(), upper) != out.end()) {
      diag.add(item, item_path, "duplicate method '" + upper + "'");
      continue;
    }
    out.push_back(std::move(upper));
  }
  return out;
}

RouteMatch readMatch(Diagnostics& diag, const YAML::Node& node, const std::string& path) {
  RouteMatch match;
  MapReader m(diag, node, path, kMatchKeys);
  if (!m.isMap()) return match;
  std::vector<std::string_view> path_keys = presentKeys(m, kPathMatchKeys);
  for (size_t i = 1; i < path_keys.size(); ++i) {
    diag.add(*m.findKey(path_keys[i]), m.path(path_keys[i]),
             "only one path matcher is allowed per route; '" + std::string(path_keys[0]) +
                 "' is already set");
  }
  readPathLike(m, "path_exact", match.path_exact, checkPath);
  readPathLike(m, "path_prefix", match.path_prefix, checkPath);
  readPathLike(m, "path_template", match.path_template, checkPathTemplate);
  m.read("path_regex", match.path_regex);
  if (match.path_regex) {
    checkRegex(diag, *m.find("path_regex"), m.path("path_regex"), *match.path_regex);
  }
  // No path matcher means every path; say so explicitly so the router has one case less.
  if (path_keys.empty()) match.path_prefix = "/";
  if (const YAML::Node* v = m.find("methods"))
    match.methods = readMethods(diag, *v, m.path("methods"));
  if (const YAML::Node* v = m.find("headers")) {
    match.headers = readValueMatches<HeaderMatch>(diag, *v, m.path("headers"), true);
  }
  if (const YAML::Node* v = m.find("query")) {
    match.query = readValueMatches<QueryMatch>(diag, *v, m.path("query"), false);
  }
  return match;
}

DirectResponse readDirectResponse(Diagnostics& diag, const YAML::Node& node,
                                  const std::string& path) {
  DirectResponse out;
  MapReader m(diag, node, path, kDirectResponseKeys);
  if (!m.isMap()) return out;
  m.readInt("status", 200, 599, out.status);
  m.read("body", out.body, /*allow_empty=*/true);
  m.read("content_type", out.content_type);
  if (m.has("content_type") && hasControlChars(out.content_type)) {
    reportValue(m, "content_type", "must not contain control characters");
  }
  return out;
}

Redirect readRedirect(Diagnostics& diag, const YAML::Node& node, const std::string& path) {
  Redirect out;
  MapReader m(diag, node, path, kRedirectKeys);
  if (!m.isMap()) return out;
  if (const YAML::Node* v = m.find("status")) {
    if (auto status = readInt(diag, *v, m.path("status"), 0, 999)) {
      if (std::find(kRedirectStatuses.begin(), kRedirectStatuses.end(), *status) ==
          kRedirectStatuses.end()) {
        reportValue(m, "status", "must be one of 301, 302, 303, 307, 308, got " + v->Scalar());
      } else {
        out.status = static_cast<int>(*status);
      }
    }
  }
  m.read("location", out.location);
  if (out.location) {
    bool has_space = out.location->find(' ') != std::string::npos;
    if (has_space || hasControlChars(*out.location)) {
      reportValue(m, "location", "must not contain spaces or control characters");
    }
  }
  m.read("scheme", out.scheme);
  if (out.scheme) {
    *out.scheme = toLowerAscii(*out.scheme);
    if (*out.scheme != "http" && *out.scheme != "https") {
      reportValue(m, "scheme", "must be http or https, got '" + *out.scheme + "'");
    }
  }
  m.read("host", out.host);
  if (out.host && !isHostHeaderValue(*out.host)) {
    reportValue(m, "host", "'" + *out.host + "' is not a valid host[:port]");
  }
  readPathLike(m, "path", out.path, checkPath);
  if (m.has("port")) {
    uint16_t port = 0;
    m.readInt("port", 1, 65535, port);
    if (port != 0) out.port = port;
  }
  m.read("strip_query", out.strip_query);

  std::vector<std::string_view> parts = presentKeys(m, kRedirectPartKeys);
  if (m.has("location")) {
    for (std::string_view part : parts) {
      diag.add(*m.findKey(part), m.path(part),
               "'location' is a full URL; it cannot be combined with '" + std::string(part) + "'");
    }
  } else if (parts.empty() ||
             (parts.size() == 1 && parts[0] == "strip_query" && !out.strip_query)) {
    // Nothing would change: the client would be sent back to the same URL.
    diag.add(node, path,
             "redirect needs 'location' or at least one of scheme, host, path, port, "
             "strip_query: true");
  }
  return out;
}

Rewrite readRewrite(Diagnostics& diag, const YAML::Node& node, const std::string& path) {
  Rewrite out;
  MapReader m(diag, node, path, kRewriteKeys);
  if (!m.isMap()) return out;
  readPathLike(m, "strip_prefix", out.strip_prefix, checkPath);
  m.read("regex", out.regex);
  m.read("regex_replace", out.regex_replace);
  if (m.has("strip_prefix") && m.has("regex")) {
    diag.add(*m.findKey("regex"), m.path("regex"), "use either strip_prefix or regex, not both");
  }
  if (m.has("regex") != m.has("regex_replace")) {
    std::string_view missing = m.has("regex") ? "regex_replace" : "regex";
    std::string_view given = m.has("regex") ? "regex" : "regex_replace";
    diag.add(*m.findKey(given), m.path(given),
             "'" + std::string(given) + "' needs '" + std::string(missing) + "'");
  }
  if (out.regex) {
    RE2::Options options;
    options.set_log_errors(false);
    RE2 re(*out.regex, options);
    if (!re.ok()) {
      reportValue(m, "regex", "invalid regex: " + re.error());
    } else if (out.regex_replace) {
      std::string error;
      if (!re.CheckRewriteString(*out.regex_replace, &error)) {
        reportValue(m, "regex_replace", error);
      }
    }
  }
  if (out.regex_replace && hasControlChars(*out.regex_replace)) {
    reportValue(m, "regex_replace", "must not contain control characters");
  }
  m.read("host", out.host);
  if (out.host && !isHostHeaderValue(*out.host)) {
    reportValue(m, "host", "'" + *out.host + "' is not a valid host[:port]");
  }
  return out;
}

}  // namespace

bool checkRegex(Diagnostics& diag, const YAML::Node& at, const std::string& path,
                const std::string& pattern) {
  RE2::Options options;
  options.set_log_errors(false);  // the error goes into the ConfigError instead of stderr
  RE2 re(pattern, options);
  if (re.ok()) return true;
  diag.add(at, path, "invalid regex: " + re.error());
  return false;
}

std::vector<PolicySpec> readPolicies(Diagnostics& diag, const YAML::Node& node,
                                     const std::string& path) {
  std::vector<PolicySpec> out;
  forEachMap(diag, node, path, kPolicyKeys, [&](const MapReader& m) {
    PolicySpec spec;
    if (m.require("name")) m.read("name", spec.name);
    // Not a clone: a clone loses the marks, and a policy's builder names the line of a bad
    // option inside its config (a template). The node keeps the document alive, which is
    // read only on the control thread.
    const YAML::Node* config = m.find("config");
    spec.config =
        std::make_shared<const YAML::Node>(config ? *config : YAML::Node(YAML::NodeType::Null));
    spec.yaml_path = m.path();
    spec.file = diag.file();
    spec.line = m.node().Mark().line + 1;
    out.push_back(std::move(spec));
  });
  return out;
}

Route readRoute(Diagnostics& diag, const YAML::Node& node, const std::string& path,
                std::string default_name, const std::set<std::string, std::less<>>& clusters) {
  Route route;
  route.name = std::move(default_name);
  route.yaml_path = path;
  route.line = node.Mark().line + 1;
  route.match.path_prefix = "/";
  MapReader m(diag, node, path, kRouteKeys);
  if (!m.isMap()) return route;

  m.read("name", route.name);
  m.read("tracing", route.tracing);
  if (const YAML::Node* v = m.find("match")) route.match = readMatch(diag, *v, m.path("match"));

  std::vector<std::string_view> actions = presentKeys(m, kActionKeys);
  // Without an action, a policy must answer or pick a cluster (aggregate, version); the
  // snapshot builder checks that, as only it knows what each policy does.
  if (actions.empty() && !m.find("policies")) {
    diag.add(node, path,
             "route needs exactly one action: cluster, clusters, direct_response or redirect");
  }
  for (size_t i = 1; i < actions.size(); ++i) {
    diag.add(*m.findKey(actions[i]), m.path(actions[i]),
             "a route has exactly one action; '" + std::string(actions[0]) + "' is already set");
  }
  m.read("cluster", route.cluster);
  if (route.cluster && !clusters.contains(*route.cluster)) {
    reportValue(m, "cluster", "unknown cluster '" + *route.cluster + "'");
  }
  if (const YAML::Node* v = m.find("direct_response")) {
    route.direct_response = readDirectResponse(diag, *v, m.path("direct_response"));
  }
  if (const YAML::Node* v = m.find("redirect")) {
    route.redirect = readRedirect(diag, *v, m.path("redirect"));
  }

  // rewrite and timeout shape the upstream request; without a cluster they would be ignored.
  bool forwards = actions.empty() || m.has("cluster") || m.has("clusters");
  for (std::string_view key :
       {std::string_view("rewrite"), std::string_view("timeout"), std::string_view("canary"),
        std::string_view("mirror"), std::string_view("retry"), std::string_view("timeouts"),
        std::string_view("websocket")}) {
    if (m.has(key) && !forwards) {
      diag.add(*m.findKey(key), m.path(key),
               "'" + std::string(key) + "' applies only to routes that forward to a cluster");
    }
  }
  if (forwards) readTrafficSplit(m, route, clusters);
  if (const YAML::Node* v = m.find("rewrite"))
    route.rewrite = readRewrite(diag, *v, m.path("rewrite"));
  m.readDuration("timeout", Millis(1), kMaxDuration, route.timeout);
  if (const YAML::Node* v = m.find("retry")) route.retry = readRetry(diag, *v, m.path("retry"));
  if (const YAML::Node* v = m.find("timeouts")) {
    // 0 = unlimited, as in the global `timeouts:`.
    MapReader t(diag, *v, m.path("timeouts"), kRouteTimeoutKeys);
    t.readDuration("request_total", Millis(0), kMaxDuration, route.timeouts.request_total);
    t.readDuration("grpc_unary", Millis(0), kMaxDuration, route.timeouts.grpc_unary);
    t.readDuration("grpc_stream_idle", Millis(0), kMaxDuration, route.timeouts.grpc_stream_idle);
    t.readDuration("sse_idle", Millis(0), kMaxDuration, route.timeouts.sse_idle);
    t.readDuration("sse_max_lifetime", Millis(0), kMaxDuration, route.timeouts.sse_max_lifetime);
  }
  if (const YAML::Node* v = m.find("websocket")) {
    MapReader ws(diag, *v, m.path("websocket"), kWebSocketKeys);
    WebSocketOptions o;
    ws.readDuration("idle_timeout", Millis(0), kMaxDuration, o.idle_timeout);
    ws.readDuration("max_lifetime", Millis(0), kMaxDuration, o.max_lifetime);
    ws.readInt("max_connections", 0, 10000000, o.max_connections);
    route.websocket = o;
  }
  if (const YAML::Node* v = m.find("policies")) {
    route.policies = readPolicies(diag, *v, m.path("policies"));
  }
  return route;
}

}  // namespace gatehouse::config
