#include "config/loader.h"

#include "config/admin_loader.h"
#include "config/admin_options.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <utility>

#include <yaml-cpp/depthguard.h>

#include "config/breaker_loader.h"
#include "config/consumers_loader.h"
#include "config/discovery_loader.h"
#include "config/health_loader.h"
#include "config/http_options_loader.h"
#include "config/lb_options_loader.h"
#include "config/openapi_routes_loader.h"
#include "config/proxy_protocol_loader.h"
#include "config/retry_loader.h"
#include "config/route_loader.h"
#include "config/syntax.h"
#include "config/tcp_listener_loader.h"
#include "config/tls_loader.h"
#include "config/tracing_loader.h"
#include "config/yaml_document.h"
#include "config/yaml_helpers.h"

namespace gatehouse::config {

namespace {

constexpr std::string_view kTopKeys[] = {
    "workers",    "watch",     "listeners",     "admin",
    "access_log", "timeouts",  "limits",        "path_normalization",
    "forwarded",  "clusters",  "virtual_hosts", "routes",
    "http2",      "consumers", "streams",       "routes_from_openapi", "node",
    "tracing"};
constexpr std::string_view kStreamKeys[] = {"max_drain_age"};
constexpr std::string_view kListenerKeys[] = {"name",
                                              "address",
                                              "port",
                                              "virtual_hosts",
                                              "tls",
                                              "https_redirect",
                                              "underscores_in_headers",
                                              "protocol",
                                              "proxy_protocol",
                                              "mode",
                                              "tcp",
                                              "udp"};
// In the order of their enums (readEnum).
constexpr std::string_view kUnderscoreHeaders[] = {"reject_framing", "drop", "reject"};
constexpr std::string_view kListenerProtocols[] = {"auto", "http1", "h2c"};
constexpr std::string_view kAdminKeys[] = {"enabled",     "address",     "port",
                                           "tokens_file", "tokens_env",  "tls",
                                           "cert_roles",  "generations", "audit_log"};
constexpr std::string_view kAccessLogKeys[] = {"enabled", "path", "fields"};
constexpr std::string_view kTimeoutKeys[] = {
    "client_header",     "client_body",      "keepalive_idle", "upstream_connect",
    "upstream_response", "upstream_idle",    "request_total",  "drain",
    "grpc_unary",        "grpc_stream_idle", "websocket_idle", "websocket_max_lifetime",
    "sse_idle",          "sse_max_lifetime"};
constexpr std::string_view kLimitKeys[] = {"max_request_line", "max_header_bytes", "max_headers",
                                           "max_body_bytes"};
constexpr std::string_view kPathNormalizationKeys[] = {"merge_slashes", "decode_unreserved",
                                                       "reject_encoded_slash",
                                                       "reject_double_encoding", "path_parameters"};
constexpr std::string_view kPathParameters[] = {"reject", "strip", "keep"};  // PathParameters
constexpr std::string_view kForwardedKeys[] = {"trusted_proxies", "request_id",
                                               "request_id_header"};
constexpr std::string_view kClusterKeys[] = {"name",
                                             "lb",
                                             "lb_options",
                                             "pool_max_per_endpoint",
                                             "pool_max_idle_per_endpoint",
                                             "connect_timeout",
                                             "response_timeout",
                                             "idle_timeout",
                                             "tls",
                                             "endpoints",
                                             "dns",
                                             "health_check",
                                             "outlier_detection",
                                             "slow_start",
                                             "circuit_breakers",
                                             "sticky",
                                             "locality",
                                             "panic_threshold",
                                             "priority_failover_threshold",
                                             "protocol",
                                             "proxy_protocol",
                                             "retry"};
constexpr std::string_view kUpstreamProtocols[] = {"http1", "h2", "h2c", "auto"};
constexpr std::string_view kEndpointKeys[] = {"host", "port", "weight", "priority", "zone"};
constexpr std::string_view kVirtualHostKeys[] = {"name", "domains", "policies", "routes",
                                                 "routes_from_openapi"};

constexpr int kMaxWorkers = 1024;
constexpr int64_t kMaxPort = 65535;
constexpr int64_t kMaxWeight = 10000;
constexpr int64_t kMaxPriority = 100;
constexpr int64_t kMaxPoolSize = 100000;
constexpr uint64_t kMaxBodyBytes = uint64_t{1} << 40;
constexpr std::string_view kImplicitVirtualHost = "default";

// Where a value was written, for errors found after the value was read.
struct Located {
  YAML::Mark mark;
  std::string path;
};

bool contains(std::span<const std::string_view> list, std::string_view s) {
  return std::find(list.begin(), list.end(), s) != list.end();
}

std::string endpointText(const IpAddress& ip, std::string_view address, uint16_t port) {
  return (ip.v6 ? "[" + std::string(address) + "]" : std::string(address)) + ":" +
         std::to_string(port);
}

// True when binding both would collide (or be silently shared by SO_REUSEPORT). "::" is taken
// as dual-stack, so it overlaps IPv4 addresses too.
bool bindOverlaps(const IpAddress& a, uint16_t port_a, const IpAddress& b, uint16_t port_b) {
  if (port_a != port_b) return false;
  if (a == b) return true;
  if ((a.v6 && a.isUnspecified()) || (b.v6 && b.isUnspecified())) return true;
  return a.v6 == b.v6 && (a.isUnspecified() || b.isUnspecified());
}

class Loader {
 public:
  explicit Loader(Diagnostics& diag) : diag_(diag) {}

  Config load(const YAML::Node& root) {
    Config config;
    config.source_file = diag_.file();
    // An empty file is a valid config: every option has a default.
    if (root.IsNull()) {
      config.listeners.push_back(defaultListener());
      return config;
    }
    MapReader m(diag_, root, "", kTopKeys, MapReader::Extensions::kIgnore);
    if (!m.isMap()) return config;
    m.readInt("workers", 0, kMaxWorkers, config.workers);
    m.read("watch", config.watch);
    if (const YAML::Node* v = m.find("timeouts")) readTimeouts(*v, config.timeouts);
    if (const YAML::Node* v = m.find("streams")) {
      MapReader s(diag_, *v, "streams", kStreamKeys);
      s.readDuration("max_drain_age", Millis(0), kMaxDuration, config.streams.max_drain_age);
    }
    if (const YAML::Node* v = m.find("limits")) readLimits(*v, config.limits);
    if (const YAML::Node* v = m.find("node")) readNode(diag_, *v, config.node);
    if (const YAML::Node* v = m.find("http2")) readHttp2(diag_, *v, config.http2);
    if (const YAML::Node* v = m.find("path_normalization")) {
      readPathNormalization(*v, config.path_normalization);
    }
    if (const YAML::Node* v = m.find("forwarded")) readForwarded(*v, config.forwarded);
    config.access_log.fields.assign(kDefaultAccessLogFields.begin(), kDefaultAccessLogFields.end());
    if (const YAML::Node* v = m.find("access_log")) readAccessLog(*v, config.access_log);
    if (const YAML::Node* v = m.find("tracing")) {
      readTracing(diag_, *v, config.tracing);
      // The default log line carries the trace id once there is one; a list given in the
      // config is kept as written.
      const YAML::Node* log = m.find("access_log");
      const bool listed = log && log->IsMap() && (*log)["fields"];
      if (config.tracing.enabled && !listed) config.access_log.fields.emplace_back("trace_id");
    }
    if (const YAML::Node* v = m.find("consumers")) {
      config.consumers = readConsumers(diag_, *v, "consumers");
    }
    // Clusters before routes, and virtual hosts before listeners, so references resolve.
    if (const YAML::Node* v = m.find("clusters")) readClusters(*v, config.clusters);
    if (const YAML::Node* v = m.find("virtual_hosts")) readVirtualHosts(*v, config.virtual_hosts);
    const YAML::Node* top_routes = m.find("routes");
    const YAML::Node* top_openapi = m.find("routes_from_openapi");
    if (top_routes || top_openapi) {
      const YAML::Node& key = *m.findKey(top_routes ? "routes" : "routes_from_openapi");
      config.virtual_hosts.push_back(implicitVirtualHost(key, top_routes, top_openapi));
    }
    if (const YAML::Node* v = m.find("listeners")) {
      readListeners(*v, config, config.listeners);
    } else {
      config.listeners.push_back(defaultListener());
      listener_where_.push_back(Located{YAML::Mark::null_mark(), "listeners"});
    }
    checkDomainConflicts(config);
    const YAML::Node* admin = m.find("admin");
    readAdmin(admin, admin ? *m.findKey("admin") : root, config);
    return config;
  }

  AdminAccess takeAdminAccess() { return std::move(admin_access_); }

 private:
  static Listener defaultListener() {
    Listener l;
    l.name = "default";
    return l;
  }

  void readTimeouts(const YAML::Node& node, Timeouts& t) {
    MapReader m(diag_, node, "timeouts", kTimeoutKeys);
    const Millis one(1);
    m.readDuration("client_header", one, kMaxDuration, t.client_header);
    m.readDuration("client_body", one, kMaxDuration, t.client_body);
    m.readDuration("keepalive_idle", one, kMaxDuration, t.keepalive_idle);
    m.readDuration("upstream_connect", one, kMaxDuration, t.upstream_connect);
    m.readDuration("upstream_response", one, kMaxDuration, t.upstream_response);
    m.readDuration("upstream_idle", one, kMaxDuration, t.upstream_idle);
    // Only these two have a meaning for 0: no overall deadline, and close at once on drain.
    m.readDuration("request_total", Millis(0), kMaxDuration, t.request_total);
    m.readDuration("drain", Millis(0), kMaxDuration, t.drain);
    // Protocol timeouts: 0 = unlimited.
    m.readDuration("grpc_unary", Millis(0), kMaxDuration, t.grpc_unary);
    m.readDuration("grpc_stream_idle", Millis(0), kMaxDuration, t.grpc_stream_idle);
    m.readDuration("websocket_idle", Millis(0), kMaxDuration, t.websocket_idle);
    m.readDuration("websocket_max_lifetime", Millis(0), kMaxDuration, t.websocket_max_lifetime);
    m.readDuration("sse_idle", Millis(0), kMaxDuration, t.sse_idle);
    m.readDuration("sse_max_lifetime", Millis(0), kMaxDuration, t.sse_max_lifetime);
  }

  void readLimits(const YAML::Node& node, HttpLimits& l) {
    MapReader m(diag_, node, "limits", kLimitKeys);
    m.readSize("max_request_line", 256, uint64_t{1} << 20, l.max_request_line);
    m.readSize("max_header_bytes", 1024, uint64_t{16} << 20, l.max_header_bytes);
    m.readInt("max_headers", 1, 10000, l.max_headers);
    m.readSize("max_body_bytes", 0, kMaxBodyBytes, l.max_body_bytes);
  }

  void readPathNormalization(const YAML::Node& node, PathNormalization& p) {
    MapReader m(diag_, node, "path_normalization", kPathNormalizationKeys);
    m.read("merge_slashes", p.merge_slashes);
    m.read("decode_unreserved", p.decode_unreserved);
    m.read("reject_encoded_slash", p.reject_encoded_slash);
    m.read("reject_double_encoding", p.reject_double_encoding);
    readEnum(m, "path_parameters", kPathParameters, p.path_parameters);
  }

  void readForwarded(const YAML::Node& node, ForwardedHeaders& f) {
    MapReader m(diag_, node, "forwarded", kForwardedKeys);
    if (const YAML::Node* list = m.find("trusted_proxies")) {
      readCidrList(diag_, *list, m.path("trusted_proxies"), f.trusted_proxies);
    }
    m.read("request_id", f.request_id);
    m.read("request_id_header", f.request_id_header);
    if (m.has("request_id_header")) {
      if (!isHttpToken(f.request_id_header)) {
        diag_.add(*m.find("request_id_header"), m.path("request_id_header"),
                  "'" + f.request_id_header + "' is not a valid header name");
      }
      f.request_id_header = toLowerAscii(f.request_id_header);
    }
  }

  void readAccessLog(const YAML::Node& node, AccessLog& a) {
    MapReader m(diag_, node, "access_log", kAccessLogKeys);
    m.read("enabled", a.enabled);
    m.read("path", a.path);
    if (m.has("path") && hasControlChars(a.path)) {
      diag_.add(*m.find("path"), m.path("path"), "must not contain control characters");
    }
    const YAML::Node* list = m.find("fields");
    if (!list) return;
    std::string path = m.path("fields");
    if (!expectNonEmptyList(diag_, *list, path,
                            "must not be empty; leave it out for the default fields")) {
      return;
    }
    a.fields.clear();
    forEachString(
        diag_, *list, path,
        [&](const YAML::Node& item, const std::string& item_path, std::string field) {
          if (!contains(kAccessLogFields, field)) {
            diag_.add(
                item, item_path,
                "unknown field '" + field + "'; expected one of: " + joinNames(kAccessLogFields));
          } else if (std::find(a.fields.begin(), a.fields.end(), field) != a.fields.end()) {
            diag_.add(item, item_path, "duplicate field '" + field + "'");
          } else {
            a.fields.push_back(std::move(field));
          }
        });
  }

  // "10.0.0.1:80", "[::1]:80" or "name:80".
  std::optional<Endpoint> parseEndpointShorthand(const YAML::Node& node, const std::string& path) {
    std::optional<std::string> text = readString(diag_, node, path);
    if (!text) return std::nullopt;
    std::string_view s = *text;
    std::string_view host;
    std::string_view port;
    if (s.starts_with('[')) {
      size_t close = s.find(']');
      if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':') {
        diag_.add(node, path, "expected [ipv6]:port, got '" + *text + "'");
        return std::nullopt;
      }
      host = s.substr(1, close - 1);
      port = s.substr(close + 2);
    } else {
      size_t colon = s.rfind(':');
      if (colon == std::string_view::npos) {
        diag_.add(node, path, "expected host:port, got '" + *text + "'");
        return std::nullopt;
      }
      host = s.substr(0, colon);
      port = s.substr(colon + 1);
      if (host.find(':') != std::string_view::npos) {
        diag_.add(node, path, "an IPv6 endpoint needs brackets, like [::1]:9003");
        return std::nullopt;
      }
    }
    std::optional<int64_t> port_number = parseInt(port);
    if (!port_number || *port_number < 1 || *port_number > kMaxPort) {
      diag_.add(node, path, "port must be between 1 and 65535 in '" + *text + "'");
      return std::nullopt;
    }
    Endpoint e;
    e.host = std::string(host);
    e.port = static_cast<uint16_t>(*port_number);
    if (!checkEndpointHost(node, path, e.host)) return std::nullopt;
    return e;
  }

  bool checkEndpointHost(const YAML::Node& at, const std::string& path, std::string& host) {
    // Brackets are accepted in the map form too, and dropped: the model holds the bare literal.
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
      host = host.substr(1, host.size() - 2);
      if (!parseIp(host) || !parseIp(host)->v6) {
        diag_.add(at, path, "'[" + host + "]' is not an IPv6 address");
        return false;
      }
    }
    if (isIpLiteral(host) || isDnsName(host)) return true;
    diag_.add(at, path, "'" + host + "' is not an IP address or a valid DNS name");
    return false;
  }

  std::optional<Endpoint> readEndpoint(const YAML::Node& node, const std::string& path) {
    if (node.IsScalar()) return parseEndpointShorthand(node, path);
    MapReader m(diag_, node, path, kEndpointKeys);
    if (!m.isMap()) return std::nullopt;
    Endpoint e;
    bool ok = m.require("host");
    ok = m.require("port") && ok;
    size_t errors_before = diag_.count();
    m.read("host", e.host);
    if (m.has("host") && !e.host.empty()) {
      checkEndpointHost(*m.find("host"), m.path("host"), e.host);
    }
    m.readInt("port", 1, kMaxPort, e.port);
    m.readInt("weight", 1, kMaxWeight, e.weight);
    m.readInt("priority", 0, kMaxPriority, e.priority);
    m.readChecked("zone", e.zone, validZoneName, [](const std::string& z) {
      return "'" + z + "' is not a zone name (up to 64 letters, digits, '-', '_', '.')";
    });
    if (!ok || diag_.count() != errors_before) return std::nullopt;
    return e;
  }

  void readClusters(const YAML::Node& node, std::vector<Cluster>& out) {
    std::map<std::string, int, std::less<>> seen;  // name -> line
    forEachMap(diag_, node, "clusters", kClusterKeys, [&](const MapReader& m) {
      Cluster c;
      c.line = m.node().Mark().line + 1;
      c.yaml_path = m.path();
      if (m.require("name")) m.read("name", c.name);
      if (!c.name.empty()) {
        auto [it, inserted] = seen.emplace(c.name, c.line);
        if (inserted) {
          cluster_names_.insert(c.name);
        } else {
          diag_.add(*m.find("name"), m.path("name"),
                    "duplicate cluster name '" + c.name + "' (first at line " +
                        std::to_string(it->second) + ")");
        }
      }
      m.read("lb", c.lb);
      if (m.has("lb") && !contains(kLbAlgorithms, c.lb)) {
        diag_.add(
            *m.find("lb"), m.path("lb"),
            "unknown lb algorithm '" + c.lb + "'; expected one of: " + joinNames(kLbAlgorithms));
      }
      m.readInt("pool_max_per_endpoint", 1, kMaxPoolSize, c.pool_max_per_endpoint);
      m.readInt("pool_max_idle_per_endpoint", 0, kMaxPoolSize, c.pool_max_idle_per_endpoint);
      if (c.pool_max_idle_per_endpoint > c.pool_max_per_endpoint) {
        const YAML::Node* at = m.find("pool_max_idle_per_endpoint");
        diag_.add(at ? *at : m.node(), m.path("pool_max_idle_per_endpoint"),
                  "must not exceed pool_max_per_endpoint (" +
                      std::to_string(c.pool_max_per_endpoint) + ")");
      }
      m.readDuration("connect_timeout", Millis(1), kMaxDuration, c.connect_timeout);
      m.readDuration("response_timeout", Millis(1), kMaxDuration, c.response_timeout);
      m.readDuration("idle_timeout", Millis(1), kMaxDuration, c.idle_timeout);
      if (m.has("dns") && m.has("endpoints")) {
        diag_.add(*m.findKey("dns"), m.path("dns"),
                  "a cluster has either 'endpoints' or 'dns', not both");
      } else if (const YAML::Node* v = m.find("dns")) {
        readDnsDiscovery(diag_, *v, m.path("dns"), c);
      } else if (m.require("endpoints")) {
        readEndpoints(*m.find("endpoints"), m.path("endpoints"), c);
      }
      if (const YAML::Node* v = m.find("tls")) c.tls = readUpstreamTls(diag_, *v, m.path("tls"));
      if (m.has("protocol")) {
        m.read("protocol", c.protocol);
        const YAML::Node& at = *m.find("protocol");
        if (!contains(kUpstreamProtocols, c.protocol)) {
          diag_.add(at, m.path("protocol"),
                    "unknown protocol '" + c.protocol + "'; expected one of: http1, h2, h2c, auto");
        } else if (c.protocol == "h2" && !c.tls) {
          diag_.add(at, m.path("protocol"), "h2 needs `tls` (use h2c for cleartext HTTP/2)");
        } else if (c.protocol == "h2c" && c.tls) {
          diag_.add(at, m.path("protocol"), "h2c is cleartext: remove `tls` or use h2");
        }
      }
      if (const YAML::Node* v = m.find("proxy_protocol")) {
        readClusterProxyProtocol(diag_, *v, m.path("proxy_protocol"), c);
      }
      // After `lb` and the endpoints, which some checks need.
      if (const YAML::Node* v = m.find("lb_options")) {
        readLbOptions(diag_, *v, m.path("lb_options"), c);
      }
      if (const YAML::Node* v = m.find("health_check")) {
        readHealthCheck(diag_, *v, m.path("health_check"), c);
      }
      if (const YAML::Node* v = m.find("outlier_detection")) {
        readOutlierDetection(diag_, *v, m.path("outlier_detection"), c);
      }
      if (const YAML::Node* v = m.find("slow_start")) {
        readSlowStart(diag_, *v, m.path("slow_start"), c);
      }
      if (const YAML::Node* v = m.find("sticky")) readSticky(diag_, *v, m.path("sticky"), c);
      if (const YAML::Node* v = m.find("locality")) readLocality(diag_, *v, m.path("locality"), c);
      if (const YAML::Node* v = m.find("circuit_breakers")) {
        readCircuitBreakers(diag_, *v, m.path("circuit_breakers"), c);
      }
      m.readInt("panic_threshold", 0, 100, c.panic_threshold);
      m.readInt("priority_failover_threshold", 1, 100, c.priority_failover_threshold);
      if (const YAML::Node* v = m.find("retry")) c.retry = readRetry(diag_, *v, m.path("retry"));
      out.push_back(std::move(c));
    });
  }

  void readEndpoints(const YAML::Node& node, const std::string& path, Cluster& c) {
    if (!expectNonEmptyList(diag_, node, path, "a cluster needs at least one endpoint")) return;
    size_t index = 0;
    for (const auto& item : node) {
      std::string item_path = indexPath(path, index++);
      std::optional<Endpoint> e = readEndpoint(item, item_path);
      if (!e) continue;
      auto same = [&](const Endpoint& x) { return x.host == e->host && x.port == e->port; };
      if (std::any_of(c.endpoints.begin(), c.endpoints.end(), same)) {
        diag_.add(item, item_path, "duplicate endpoint " + e->host + ":" + std::to_string(e->port));
        continue;
      }
      c.endpoints.push_back(std::move(*e));
    }
  }

  void readVirtualHosts(const YAML::Node& node, std::vector<VirtualHost>& out) {
    forEachMap(diag_, node, "virtual_hosts", kVirtualHostKeys, [&](const MapReader& m) {
      VirtualHost vh;
      if (m.require("name")) m.read("name", vh.name);
      addVirtualHostName(vh.name, m.find("name") ? m.find("name")->Mark() : m.node().Mark(),
                         m.path("name"));
      std::vector<Located> domains;
      if (const YAML::Node* v = m.find("domains")) {
        readDomains(*v, m.path("domains"), vh.domains, domains);
      } else {
        vh.domains.push_back("*");
        domains.push_back(Located{m.node().Mark(), m.path("domains")});
      }
      if (const YAML::Node* v = m.find("policies")) {
        vh.policies = readPolicies(diag_, *v, m.path("policies"));
      }
      if (const YAML::Node* v = m.find("routes_from_openapi")) {
        readOpenApiBlocks(*v, m.path("routes_from_openapi"), vh);
      }
      if (const YAML::Node* v = m.find("routes")) readRoutes(*v, m.path("routes"), vh);
      out.push_back(std::move(vh));
      vhost_domains_.push_back(std::move(domains));
    });
  }

  VirtualHost implicitVirtualHost(const YAML::Node& key, const YAML::Node* routes,
                                  const YAML::Node* openapi) {
    VirtualHost vh;
    vh.name = std::string(kImplicitVirtualHost);
    vh.domains.push_back("*");
    addVirtualHostName(vh.name, key.Mark(), "routes");
    vhost_domains_.push_back({Located{key.Mark(), "routes"}});
    if (openapi) readOpenApiBlocks(*openapi, "routes_from_openapi", vh);
    if (routes) readRoutes(*routes, "routes", vh);
    return vh;
  }

  // One `routes_from_openapi` map, or a list of them (one per document). Their routes come
  // before the vhost's own `routes`, which can then add paths the document lacks.
  void readOpenApiBlocks(const YAML::Node& node, const std::string& path, VirtualHost& vh) {
    std::vector<Route> generated;
    if (node.IsSequence()) {
      size_t index = 0;
      for (const auto& item : node) {
        readRoutesFromOpenApi(diag_, item, indexPath(path, index++), cluster_names_, generated);
      }
    } else {
      readRoutesFromOpenApi(diag_, node, path, cluster_names_, generated);
    }
    std::map<std::string, int, std::less<>> seen;  // name -> line
    for (Route& r : generated) {
      if (auto [it, fresh] = seen.emplace(r.name, r.line); !fresh) {
        YAML::Mark at;
        at.line = r.line - 1;
        diag_.add(at, r.yaml_path,
                  "duplicate route name '" + r.name + "' in virtual host '" + vh.name +
                      "' (first at line " + std::to_string(it->second) + ")");
      }
      vh.routes.push_back(std::move(r));
    }
  }

  void addVirtualHostName(const std::string& name, const YAML::Mark& mark,
                          const std::string& path) {
    if (name.empty()) return;
    auto [it, inserted] = vhost_lines_.emplace(name, mark.line + 1);
    if (inserted) return;
    std::string message = "duplicate virtual host name '" + name + "' (first at line " +
                          std::to_string(it->second) + ")";
    if (name == kImplicitVirtualHost) {
      message += "; top-level routes form a virtual host named 'default'";
    }
    diag_.add(mark, path, std::move(message));
  }

  void readDomains(const YAML::Node& node, const std::string& path, std::vector<std::string>& out,
                   std::vector<Located>& where) {
    if (!expectNonEmptyList(diag_, node, path,
                            "needs at least one domain (or leave it out for '*')")) {
      return;
    }
    forEachString(diag_, node, path,
                  [&](const YAML::Node& item, const std::string& item_path, std::string text) {
                    Result<std::string> domain = normalizeDomain(text);
                    if (!domain) {
                      diag_.add(item, item_path, domain.error().message);
                    } else if (std::find(out.begin(), out.end(), *domain) != out.end()) {
                      diag_.add(item, item_path, "duplicate domain '" + *domain + "'");
                    } else {
                      out.push_back(std::move(*domain));
                      where.push_back(Located{item.Mark(), item_path});
                    }
                  });
  }

  void readRoutes(const YAML::Node& node, const std::string& path, VirtualHost& vh) {
    if (!expectList(diag_, node, path)) return;
    std::map<std::string, int, std::less<>> seen;  // name -> line
    for (const Route& r : vh.routes)
      seen.emplace(r.name, r.line);  // generated from an OpenAPI document
    size_t index = 0;
    for (const auto& item : node) {
      std::string item_path = indexPath(path, index);
      Route route =
          readRoute(diag_, item, item_path, vh.name + "/" + std::to_string(index), cluster_names_);
      ++index;
      auto [it, inserted] = seen.emplace(route.name, route.line);
      if (!inserted) {
        diag_.add(valueMark(item, "name"), childPath(item_path, "name"),
                  "duplicate route name '" + route.name + "' in virtual host '" + vh.name +
                      "' (first at line " + std::to_string(it->second) + ")");
      }
      vh.routes.push_back(std::move(route));
    }
  }

  void readListeners(const YAML::Node& node, const Config& config, std::vector<Listener>& out) {
    const std::vector<VirtualHost>& vhosts = config.virtual_hosts;
    const bool http2_enabled = config.http2.enabled;
    std::set<std::string, std::less<>> names;
    forEachMap(diag_, node, "listeners", kListenerKeys, [&](const MapReader& m) {
      Listener l;
      m.read("address", l.address);
      std::optional<IpAddress> ip = parseIp(l.address);
      if (!ip) {
        const YAML::Node* at = m.find("address");
        diag_.add(at ? *at : m.node(), m.path("address"),
                  "'" + l.address + "' is not an IP address (names are not resolved here)");
      }
      m.readInt("port", 1, kMaxPort, l.port);
      l.name = ip ? endpointText(*ip, l.address, l.port) : l.address;
      m.read("name", l.name);
      if (!names.insert(l.name).second) {
        const YAML::Node* at = m.find("name");
        diag_.add(at ? *at : m.node(), m.path("name"), "duplicate listener name '" + l.name + "'");
      }
      if (const YAML::Node* v = m.find("virtual_hosts")) {
        readListenerHosts(*v, m.path("virtual_hosts"), vhosts, l.virtual_hosts);
      }
      if (const YAML::Node* v = m.find("tls")) l.tls = readListenerTls(diag_, *v, m.path("tls"));
      if (const YAML::Node* v = m.find("https_redirect")) {
        readHttpsRedirect(diag_, *v, m.path("https_redirect"), l);
      }
      readEnum(m, "underscores_in_headers", kUnderscoreHeaders, l.underscores_in_headers);
      if (m.has("protocol")) {
        readEnum(m, "protocol", kListenerProtocols, l.protocol);
        const YAML::Node* at = m.find("protocol");
        if (l.tls && l.protocol != ListenerProtocol::kAuto) {
          diag_.add(*at, m.path("protocol"),
                    "a TLS listener chooses its protocol by ALPN (tls.alpn); 'protocol' is for "
                    "plain listeners");
        } else if (l.protocol == ListenerProtocol::kH2c && !http2_enabled) {
          diag_.add(*at, m.path("protocol"), "h2c needs http2.enabled");
        }
      }
      if (const YAML::Node* v = m.find("proxy_protocol")) {
        l.proxy_protocol = readListenerProxyProtocol(diag_, *v, m.path("proxy_protocol"));
      }
      readListenerMode(diag_, m, config.clusters, l);
      if (ip) {
        const YAML::Node* at = m.find("port");
        Located where{at ? at->Mark() : m.node().Mark(), m.path("port")};
        checkBindConflict(*ip, l, where, out);
      }
      listener_where_.push_back(Located{m.node().Mark(), m.path()});
      listener_ips_.push_back(ip);
      out.push_back(std::move(l));
    });
  }

  void checkBindConflict(const IpAddress& ip, const Listener& l, const Located& where,
                         const std::vector<Listener>& earlier) {
    for (size_t i = 0; i < earlier.size(); ++i) {
      // TCP and UDP ports are separate spaces (DNS serves both on 53).
      const bool same_protocol =
          (l.mode == ListenerMode::kUdp) == (earlier[i].mode == ListenerMode::kUdp);
      if (!same_protocol || !listener_ips_[i] ||
          !bindOverlaps(ip, l.port, *listener_ips_[i], earlier[i].port)) {
        continue;
      }
      diag_.add(where.mark, where.path,
                "listener '" + l.name + "' on " + endpointText(ip, l.address, l.port) +
                    " overlaps listener '" + earlier[i].name + "' on " +
                    endpointText(*listener_ips_[i], earlier[i].address, earlier[i].port));
      return;
    }
  }

  void readListenerHosts(const YAML::Node& node, const std::string& path,
                         const std::vector<VirtualHost>& vhosts, std::vector<std::string>& out) {
    // An empty list would mean "every virtual host", which is surely not what was meant.
    if (!expectNonEmptyList(diag_, node, path,
                            "must not be empty; leave it out to serve every virtual host")) {
      return;
    }
    forEachString(diag_, node, path,
                  [&](const YAML::Node& item, const std::string& item_path, std::string name) {
                    auto named = [&](const VirtualHost& vh) { return vh.name == name; };
                    if (std::none_of(vhosts.begin(), vhosts.end(), named)) {
                      diag_.add(item, item_path, "unknown virtual host '" + name + "'");
                    } else if (std::find(out.begin(), out.end(), name) != out.end()) {
                      diag_.add(item, item_path, "duplicate virtual host '" + name + "'");
                    } else {
                      out.push_back(std::move(name));
                    }
                  });
  }

  // A domain may belong to one virtual host per listener, or the router could not choose.
  void checkDomainConflicts(const Config& config) {
    std::set<std::pair<size_t, size_t>> reported;  // (vhost, domain) pairs already reported
    for (const Listener& l : config.listeners) {
      std::map<std::string_view, size_t> owner;  // domain -> vhost index
      for (size_t v = 0; v < config.virtual_hosts.size(); ++v) {
        const VirtualHost& vh = config.virtual_hosts[v];
        bool served = l.virtual_hosts.empty() ||
                      std::find(l.virtual_hosts.begin(), l.virtual_hosts.end(), vh.name) !=
                          l.virtual_hosts.end();
        if (!served) continue;
        for (size_t d = 0; d < vh.domains.size(); ++d) {
          auto [it, inserted] = owner.emplace(vh.domains[d], v);
          if (inserted || it->second == v || !reported.emplace(v, d).second) continue;
          const Located& where = vhost_domains_[v][d];
          diag_.add(where.mark, where.path,
                    "domain '" + vh.domains[d] + "' is already served by virtual host '" +
                        config.virtual_hosts[it->second].name + "' on listener '" + l.name + "'");
        }
      }
    }
  }

  void readAdmin(const YAML::Node* node, const YAML::Node& key, Config& config) {
    Admin& a = config.admin;
    Located port_where{key.Mark(), "admin.port"};
    if (node) {
      MapReader m(diag_, *node, "admin", kAdminKeys);
      m.read("enabled", a.enabled);
      m.read("address", a.address);
      if (m.has("address") && !isIpLiteral(a.address)) {
        diag_.add(*m.find("address"), m.path("address"),
                  "'" + a.address + "' is not an IP address");
      }
      m.readInt("port", 1, kMaxPort, a.port);
      if (const YAML::Node* p = m.find("port")) port_where.mark = p->Mark();
      readAdminAccess(diag_, m, admin_access_);
    }
    std::optional<IpAddress> ip = parseIp(a.address);
    if (!a.enabled || !ip) return;
    for (size_t i = 0; i < config.listeners.size(); ++i) {
      const Listener& l = config.listeners[i];
      std::optional<IpAddress> lip =
          i < listener_ips_.size() ? listener_ips_[i] : parseIp(l.address);
      if (l.mode == ListenerMode::kUdp || !lip || !bindOverlaps(*ip, a.port, *lip, l.port)) {
        continue;
      }
      // With no admin section the clash is the listener's doing; point there instead.
      if (!node && !listener_where_[i].mark.is_null()) {
        port_where = Located{listener_where_[i].mark, listener_where_[i].path + ".port"};
      }
      diag_.add(port_where.mark, port_where.path,
                "admin port " + std::to_string(a.port) + " on " + a.address +
                    " overlaps listener '" + l.name + "' on " +
                    endpointText(*lip, l.address, l.port));
      return;
    }
  }

  Diagnostics& diag_;
  AdminAccess admin_access_;
  std::set<std::string, std::less<>> cluster_names_;
  std::map<std::string, int, std::less<>> vhost_lines_;  // name -> line of first definition
  std::vector<std::vector<Located>> vhost_domains_;      // parallel to virtual_hosts/domains
  std::vector<Located> listener_where_;                  // parallel to listeners
  std::vector<std::optional<IpAddress>> listener_ips_;   // parallel to listeners
};

}  // namespace

std::string ConfigError::format() const {
  std::string out = file;
  if (line > 0) out += ":" + std::to_string(line) + ":" + std::to_string(column);
  out += ": ";
  if (!path.empty()) out += path + ": ";
  out += message;
  return out;
}

namespace {

LoadResult loadString(std::string_view yaml, const std::string& file_name, AdminAccess* admin) {
  Diagnostics diag(file_name);
  LoadResult result;
  if (yaml.size() > kMaxConfigBytes) {
    diag.add(YAML::Mark::null_mark(), "",
             "file is larger than " + formatSize(kMaxConfigBytes) + "; refusing to parse it");
    result.errors = diag.take();
    return result;
  }
  try {
    std::optional<YAML::Node> root = parseSingleDocument(diag, std::string(yaml));
    if (root && checkDocumentShape(diag, *root)) {
      Loader loader(diag);
      Config config = loader.load(*root);
      if (admin) *admin = loader.takeAdminAccess();
      if (diag.count() == 0) result.config = std::move(config);
    }
  } catch (const YAML::DeepRecursion& e) {
    // yaml-cpp's own depth guard; its message ("bad file") says nothing useful.
    diag.add(e.mark, "", "nesting is deeper than " + std::to_string(kMaxNestingDepth) + " levels");
  } catch (const YAML::Exception& e) {
    // Syntax errors carry the position where yaml-cpp stopped.
    diag.add(e.mark, "", "YAML syntax error: " + e.msg);
  } catch (const std::exception& e) {
    diag.add(YAML::Mark::null_mark(), "", std::string("internal error while loading: ") + e.what());
  } catch (...) {
    diag.add(YAML::Mark::null_mark(), "", "internal error while loading");
  }
  if (diag.count() != 0) result.config.reset();
  result.errors = diag.take();
  return result;
}

LoadResult loadFile(const std::string& path, std::string* text_out, AdminAccess* admin) {
  LoadResult result;
  auto fail = [&](std::string message) {
    ConfigError e;
    e.file = path;
    e.message = std::move(message);
    result.errors.push_back(std::move(e));
    return result;
  };
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return fail("cannot read file: it is a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail(std::string("cannot open file: ") + std::strerror(errno));
  std::string text;
  // Stop one chunk past the cap, so a huge file (or /dev/zero) is refused without reading it all.
  constexpr size_t kChunk = 64 * 1024;
  while (in && text.size() <= kMaxConfigBytes) {
    size_t old_size = text.size();
    text.resize(old_size + kChunk);
    in.read(text.data() + old_size, static_cast<std::streamsize>(kChunk));
    text.resize(old_size + static_cast<size_t>(in.gcount()));
  }
  if (in.bad()) return fail(std::string("cannot read file: ") + std::strerror(errno));
  LoadResult r = loadString(text, path, admin);
  if (text_out) *text_out = std::move(text);
  return r;
}

// Last resort for what the loader cannot report itself (allocation failure, mostly).
LoadResult internalError(const std::string& file) {
  LoadResult result;
  try {
    ConfigError e;
    e.file = file;
    e.message = "internal error while loading";
    result.errors.push_back(std::move(e));
  } catch (...) {  // NOLINT(bugprone-empty-catch): no memory left even for the message
  }
  return result;
}

}  // namespace

LoadResult loadConfigString(std::string_view yaml, const std::string& file_name) {
  return loadConfigString(yaml, file_name, nullptr);
}

LoadResult loadConfigString(std::string_view yaml, const std::string& file_name,
                            AdminAccess* admin) {
  try {
    return loadString(yaml, file_name, admin);
  } catch (...) {
    return internalError(file_name);
  }
}

LoadResult loadConfigFile(const std::string& path) {
  return loadConfigFile(path, nullptr, nullptr);
}

LoadResult loadConfigFile(const std::string& path, std::string* text, AdminAccess* admin) {
  try {
    return loadFile(path, text, admin);
  } catch (...) {
    return internalError(path);
  }
}

}  // namespace gatehouse::config
