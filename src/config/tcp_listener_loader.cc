#include "config/tcp_listener_loader.h"

#include <algorithm>
#include <string_view>

#include "config/syntax.h"

namespace gatehouse::config {
namespace {

constexpr std::string_view kListenerModes[] = {"http", "tcp", "udp"};
constexpr std::string_view kTcpKeys[] = {
    "cluster",         "connect_timeout", "connect_retries", "idle_timeout",   "max_lifetime",
    "max_connections", "relay",           "buffer_size",     "ip_restriction", "tls_passthrough"};
constexpr std::string_view kPassthroughKeys[] = {"routes"};
constexpr std::string_view kPassthroughRouteKeys[] = {"sni", "alpn", "cluster"};
constexpr std::string_view kUdpKeys[] = {"cluster",   "idle_timeout", "max_sessions",
                                         "responses", "buffer_size",  "ip_restriction"};
constexpr std::string_view kTcpRelays[] = {"splice", "copy"};
constexpr std::string_view kIpRuleKeys[] = {"allow", "deny"};
// Options that only mean something to the HTTP stack (`tls` also terminates on TCP listeners).
constexpr std::string_view kHttpListenerKeys[] = {"virtual_hosts", "https_redirect",
                                                  "underscores_in_headers", "protocol"};
constexpr int64_t kMaxTcpConnections = 10'000'000;
constexpr int64_t kMaxConnectRetries = 16;
constexpr int64_t kMaxUdpSessions = 10'000'000;
constexpr int64_t kMaxUdpResponses = 1'000'000;

IpRules readIpRules(Diagnostics& diag, const YAML::Node& node, const std::string& path) {
  MapReader m(diag, node, path, kIpRuleKeys);
  IpRules rules;
  if (!m.isMap()) return rules;
  // An empty list would be a rule that says nothing: leave it out instead.
  for (auto [key, list] : {std::pair{"allow", &rules.allow}, std::pair{"deny", &rules.deny}}) {
    const YAML::Node* v = m.find(key);
    if (!v) continue;
    if (v->IsSequence() && v->size() == 0)
      diag.add(*v, m.path(key), "must not be empty; leave it out instead");
    readCidrList(diag, *v, m.path(key), *list);
  }
  if (!m.has("allow") && !m.has("deny")) diag.add(node, path, "expected 'allow' and/or 'deny'");
  return rules;
}

// What a cluster behind an L4 listener may not have. `kind` names the listener mode in
// messages ("TCP" or "UDP"); `passthrough`: a TCP listener that forwards the client's TLS as it
// is (tls_passthrough), so the cluster must not add its own.
void checkCluster(Diagnostics& diag, const MapReader& t, const std::vector<Cluster>& clusters,
                  const std::string& name, const std::string& kind, bool passthrough) {
  const YAML::Node& at = *t.find("cluster");
  const bool udp = kind == "UDP";
  auto it = std::find_if(clusters.begin(), clusters.end(),
                         [&](const Cluster& c) { return c.name == name; });
  if (it == clusters.end()) {
    diag.add(at, t.path("cluster"), "unknown cluster '" + name + "'");
  } else if (it->tls && passthrough) {
    diag.add(at, t.path("cluster"),
             "cluster '" + name +
                 "' has 'tls': tls_passthrough forwards the client's TLS as it is, and cannot "
                 "wrap it in another TLS connection");
  } else if (it->tls && udp) {
    diag.add(at, t.path("cluster"),
             "cluster '" + name + "' has 'tls': UDP listeners forward datagrams as they are");
  } else if (it->sticky) {
    diag.add(at, t.path("cluster"),
             "cluster '" + name + "' has 'sticky' (a cookie): " + kind +
                 " sessions cannot carry it; "
                 "use lb: ring_hash or maglev with hash_key: source_ip");
  } else if (it->proxy_protocol != ProxyProtocolSend::kOff && udp) {
    diag.add(
        at, t.path("cluster"),
        "cluster '" + name + "' has 'proxy_protocol': UDP listeners do not send PROXY headers");
  }
}

// "a.example.com" or "*.example.com", lowercased; nullopt (reported) otherwise.
std::optional<std::string> readSniPattern(Diagnostics& diag, const YAML::Node& node,
                                          const std::string& path) {
  std::optional<std::string> text = readString(diag, node, path);
  if (!text) return std::nullopt;
  std::string pattern = toLowerAscii(*text);
  std::string_view name = pattern;
  if (name.starts_with("*.")) name.remove_prefix(2);
  // As SNI carries a name: no trailing dot (isDnsName would take one).
  if (!isDnsName(name) || name.ends_with('.')) {
    diag.add(node, path, "'" + *text + "' is not a host name or a wildcard '*.' followed by one");
    return std::nullopt;
  }
  return pattern;
}

TlsPassthroughRoute readPassthroughRoute(Diagnostics& diag, const MapReader& r,
                                         const std::vector<Cluster>& clusters) {
  TlsPassthroughRoute route;
  if (const YAML::Node* v = r.find("sni")) {
    if (auto p = readSniPattern(diag, *v, r.path("sni"))) route.sni = std::move(*p);
  }
  if (const YAML::Node* v = r.find("alpn")) {
    if (expectNonEmptyList(diag, *v, r.path("alpn"), "must not be empty; leave it out instead")) {
      forEachString(diag, *v, r.path("alpn"),
                    [&](const YAML::Node&, const std::string&, std::string name) {
                      route.alpn.push_back(std::move(name));
                    });
    }
  }
  if (!r.has("sni") && !r.has("alpn")) {
    diag.add(r.node(), r.path(), "a route needs 'sni', 'alpn' or both");
  }
  if (r.require("cluster")) {
    r.read("cluster", route.cluster);
    if (!route.cluster.empty()) checkCluster(diag, r, clusters, route.cluster, "TCP", true);
  }
  return route;
}

TlsPassthrough readTlsPassthrough(Diagnostics& diag, const YAML::Node& node,
                                  const std::string& path, const std::vector<Cluster>& clusters) {
  MapReader m(diag, node, path, kPassthroughKeys);
  TlsPassthrough out;
  if (!m.isMap() || !m.require("routes")) return out;
  const YAML::Node& routes = *m.find("routes");
  if (!expectNonEmptyList(diag, routes, m.path("routes"), "needs at least one route")) return out;
  forEachMap(diag, routes, m.path("routes"), kPassthroughRouteKeys, [&](const MapReader& r) {
    TlsPassthroughRoute route = readPassthroughRoute(diag, r, clusters);
    // The same pattern and ALPN list twice: the second route could never be chosen.
    for (const TlsPassthroughRoute& earlier : out.routes) {
      if (earlier.sni == route.sni && earlier.alpn == route.alpn) {
        diag.add(r.node(), r.path(), "repeats an earlier route's 'sni' and 'alpn'");
        break;
      }
    }
    out.routes.push_back(std::move(route));
  });
  return out;
}

TcpProxy readTcpProxy(Diagnostics& diag, const YAML::Node& node, const std::string& path,
                      const std::vector<Cluster>& clusters) {
  MapReader t(diag, node, path, kTcpKeys);
  TcpProxy tcp;
  if (!t.isMap()) return tcp;
  if (const YAML::Node* v = t.find("tls_passthrough")) {
    tcp.tls_passthrough = readTlsPassthrough(diag, *v, t.path("tls_passthrough"), clusters);
  }
  // With tls_passthrough the cluster is optional: the default for unmatched ClientHellos.
  if (tcp.tls_passthrough ? t.has("cluster") : t.require("cluster")) {
    t.read("cluster", tcp.cluster);
    if (!tcp.cluster.empty()) {
      checkCluster(diag, t, clusters, tcp.cluster, "TCP", tcp.tls_passthrough.has_value());
    }
  }
  t.readDuration("connect_timeout", Millis(1), kMaxDuration, tcp.connect_timeout);
  t.readInt("connect_retries", 0, kMaxConnectRetries, tcp.connect_retries);
  t.readDuration("idle_timeout", Millis(1), kMaxDuration, tcp.idle_timeout);
  t.readDuration("max_lifetime", Millis(0), kMaxDuration, tcp.max_lifetime);
  t.readInt("max_connections", 0, kMaxTcpConnections, tcp.max_connections);
  if (t.has("relay")) {
    std::string relay = "splice";
    readOneOf(t, "relay", kTcpRelays, relay);
    tcp.relay = relay == "copy" ? TcpRelay::kCopy : TcpRelay::kSplice;
  }
  t.readSize("buffer_size", 4096, uint64_t{16} << 20, tcp.buffer_size);
  if (const YAML::Node* v = t.find("ip_restriction")) {
    tcp.ip_restriction = readIpRules(diag, *v, t.path("ip_restriction"));
  }
  return tcp;
}

// `tls` on a TCP listener terminates TLS; what only HTTP can use is an error there.
void checkTerminationTls(Diagnostics& diag, const MapReader& m, Listener& l) {
  const YAML::Node& tls = *m.find("tls");
  if (l.tcp->tls_passthrough) {
    diag.add(*m.findKey("tls"), m.path("tls"),
             "'tls' terminates TLS and 'tcp.tls_passthrough' forwards it: choose one");
  }
  if (l.tls->forward_client_cert) {
    diag.add(tls, m.path("tls") + ".forward_client_cert",
             "a TCP listener has no request headers to carry the client certificate");
  }
  // The L7 default (h2, http/1.1) would promise protocols the upstream may not speak.
  if (!tls.IsMap() || !tls["alpn"]) l.tls->alpn.clear();
}

UdpProxy readUdpProxy(Diagnostics& diag, const YAML::Node& node, const std::string& path,
                      const std::vector<Cluster>& clusters) {
  MapReader u(diag, node, path, kUdpKeys);
  UdpProxy udp;
  if (!u.isMap()) return udp;
  if (u.require("cluster")) {
    u.read("cluster", udp.cluster);
    if (!udp.cluster.empty()) checkCluster(diag, u, clusters, udp.cluster, "UDP", false);
  }
  u.readDuration("idle_timeout", Millis(1), kMaxDuration, udp.idle_timeout);
  u.readInt("max_sessions", 0, kMaxUdpSessions, udp.max_sessions);
  // A count of replies per datagram, or `streaming` (the same as 0: unlimited).
  if (const YAML::Node* v = u.find("responses");
      v && !(v->IsScalar() && v->Scalar() == "streaming")) {
    u.readInt("responses", 0, kMaxUdpResponses, udp.responses);
  }
  u.readSize("buffer_size", 512, 65535, udp.buffer_size);
  if (const YAML::Node* v = u.find("ip_restriction")) {
    udp.ip_restriction = readIpRules(diag, *v, u.path("ip_restriction"));
  }
  return udp;
}

// A mixed port: an HTTP listener with `tls` whose `tcp` block passes through, by its
// tls_passthrough routes, the ClientHellos that name none of the listener's virtual hosts.
void readMixedPort(Diagnostics& diag, const MapReader& m, const YAML::Node& block,
                   const std::vector<Cluster>& clusters, Listener& l) {
  l.tcp = readTcpProxy(diag, block, m.path("tcp"), clusters);
  const YAML::Node& key = *m.findKey("tcp");
  if (!l.tcp->tls_passthrough) {
    diag.add(key, m.path("tcp"),
             "'tcp' applies to mode: tcp listeners, and with 'tls_passthrough' to an HTTP "
             "listener with 'tls' (a mixed port)");
  } else if (!l.tls) {
    diag.add(key, m.path("tcp"),
             "a mixed port (an HTTP listener with tcp.tls_passthrough) needs 'tls': the "
             "ClientHello's server name chooses between HTTP and passthrough");
  }
}

// Reports the HTTP-only options of an L4 listener (`mode` is "tcp" or "udp").
void rejectHttpOptions(Diagnostics& diag, const MapReader& m, const std::string& mode) {
  for (std::string_view k : kHttpListenerKeys) {
    if (const YAML::Node* key = m.findKey(k)) {
      diag.add(*key, m.path(k),
               "'" + std::string(k) + "' applies to HTTP listeners; this one has mode: " + mode);
    }
  }
  if (const YAML::Node* key = m.findKey("tls"); key && mode == "udp") {
    diag.add(*key, m.path("tls"), "'tls' does not apply to mode: udp listeners");
  }
  if (const YAML::Node* key = m.findKey("proxy_protocol"); key && mode == "udp") {
    diag.add(*key, m.path("proxy_protocol"),
             "'proxy_protocol' is not supported on mode: udp listeners");
  }
}

}  // namespace

void readListenerMode(Diagnostics& diag, const MapReader& m, const std::vector<Cluster>& clusters,
                      Listener& l) {
  std::string mode = "http";
  if (m.has("mode")) {
    readOneOf(m, "mode", kListenerModes, mode);
    l.mode = mode == "tcp"   ? ListenerMode::kTcp
             : mode == "udp" ? ListenerMode::kUdp
                             : ListenerMode::kHttp;
  }
  for (const char* block : {"tcp", "udp"}) {
    // An HTTP listener's `tcp` block makes a mixed port (readMixedPort).
    const bool mixed = l.mode == ListenerMode::kHttp && std::string_view(block) == "tcp";
    if (const YAML::Node* key = m.findKey(block); key && block != mode && !mixed) {
      diag.add(*key, m.path(block),
               "'" + std::string(block) + "' applies to mode: " + block + " listeners");
    }
  }
  if (l.mode == ListenerMode::kHttp) {
    if (const YAML::Node* block = m.find("tcp")) readMixedPort(diag, m, *block, clusters, l);
    return;
  }
  rejectHttpOptions(diag, m, mode);
  const YAML::Node* block = m.find(mode);
  if (!block) {
    diag.add(*m.find("mode"), m.path("mode"),
             "mode: " + mode + " needs a '" + mode + "' block naming the cluster (" + mode +
                 ": {cluster: NAME})");
  }
  if (l.mode == ListenerMode::kTcp) {
    l.tcp = block ? readTcpProxy(diag, *block, m.path("tcp"), clusters) : TcpProxy{};
    if (l.tls) checkTerminationTls(diag, m, l);
  } else {
    l.udp = block ? readUdpProxy(diag, *block, m.path("udp"), clusters) : UdpProxy{};
  }
}

}  // namespace gatehouse::config
