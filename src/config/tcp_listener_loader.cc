#include "config/tcp_listener_loader.h"

#include <algorithm>
#include <string_view>

#include "config/syntax.h"

namespace gatehouse::config {
namespace {

constexpr std::string_view kListenerModes[] = {"http", "tcp", "udp"};
constexpr std::string_view kTcpKeys[] = {"cluster",      "connect_timeout", "connect_retries",
                                         "idle_timeout", "max_lifetime",    "max_connections",
                                         "relay",        "buffer_size",     "ip_restriction"};
constexpr std::string_view kUdpKeys[] = {"cluster",   "idle_timeout", "max_sessions",
                                         "responses", "buffer_size",  "ip_restriction"};
constexpr std::string_view kTcpRelays[] = {"splice", "copy"};
constexpr std::string_view kIpRuleKeys[] = {"allow", "deny"};
// Options that only mean something to the HTTP stack.
constexpr std::string_view kHttpListenerKeys[] = {"virtual_hosts", "tls", "https_redirect",
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

// `kind` names the listener mode in messages: "TCP" or "UDP".
void checkCluster(Diagnostics& diag, const MapReader& t, const std::vector<Cluster>& clusters,
                  const std::string& name, const std::string& kind) {
  const YAML::Node& at = *t.find("cluster");
  auto it = std::find_if(clusters.begin(), clusters.end(),
                         [&](const Cluster& c) { return c.name == name; });
  if (it == clusters.end()) {
    diag.add(at, t.path("cluster"), "unknown cluster '" + name + "'");
  } else if (it->tls) {
    diag.add(at, t.path("cluster"),
             "cluster '" + name + "' has 'tls': a " + kind +
                 " listener forwards the client's bytes as they are (TLS "
                 "origination on " +
                 kind + " listeners is not supported)");
  } else if (it->sticky) {
    diag.add(at, t.path("cluster"),
             "cluster '" + name + "' has 'sticky' (a cookie): " + kind +
                 " sessions cannot carry it; "
                 "use lb: ring_hash or maglev with hash_key: source_ip");
  } else if (it->proxy_protocol != ProxyProtocolSend::kOff) {
    diag.add(at, t.path("cluster"),
             "cluster '" + name + "' has 'proxy_protocol': " + kind +
                 " listeners do not send PROXY headers yet");
  }
}

TcpProxy readTcpProxy(Diagnostics& diag, const YAML::Node& node, const std::string& path,
                      const std::vector<Cluster>& clusters) {
  MapReader t(diag, node, path, kTcpKeys);
  TcpProxy tcp;
  if (!t.isMap()) return tcp;
  if (t.require("cluster")) {
    t.read("cluster", tcp.cluster);
    if (!tcp.cluster.empty()) checkCluster(diag, t, clusters, tcp.cluster, "TCP");
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

UdpProxy readUdpProxy(Diagnostics& diag, const YAML::Node& node, const std::string& path,
                      const std::vector<Cluster>& clusters) {
  MapReader u(diag, node, path, kUdpKeys);
  UdpProxy udp;
  if (!u.isMap()) return udp;
  if (u.require("cluster")) {
    u.read("cluster", udp.cluster);
    if (!udp.cluster.empty()) checkCluster(diag, u, clusters, udp.cluster, "UDP");
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

// Reports the HTTP-only options of an L4 listener (`mode` is "tcp" or "udp").
void rejectHttpOptions(Diagnostics& diag, const MapReader& m, const std::string& mode) {
  for (std::string_view k : kHttpListenerKeys) {
    if (const YAML::Node* key = m.findKey(k)) {
      diag.add(*key, m.path(k),
               "'" + std::string(k) + "' applies to HTTP listeners; this one has mode: " + mode);
    }
  }
  if (const YAML::Node* key = m.findKey("proxy_protocol")) {
    diag.add(*key, m.path("proxy_protocol"),
             "'proxy_protocol' is not supported on mode: " + mode + " listeners yet");
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
    if (const YAML::Node* key = m.findKey(block); key && block != mode) {
      diag.add(*key, m.path(block),
               "'" + std::string(block) + "' applies to mode: " + block + " listeners");
    }
  }
  if (l.mode == ListenerMode::kHttp) return;
  rejectHttpOptions(diag, m, mode);
  const YAML::Node* block = m.find(mode);
  if (!block) {
    diag.add(*m.find("mode"), m.path("mode"),
             "mode: " + mode + " needs a '" + mode + "' block naming the cluster (" + mode +
                 ": {cluster: NAME})");
  }
  if (l.mode == ListenerMode::kTcp) {
    l.tcp = block ? readTcpProxy(diag, *block, m.path("tcp"), clusters) : TcpProxy{};
  } else {
    l.udp = block ? readUdpProxy(diag, *block, m.path("udp"), clusters) : UdpProxy{};
  }
}

}  // namespace gatehouse::config
