#pragma once
// A cluster as compiled into a config snapshot (host set, balancer factory, health policy,
// timeouts, pool limits, TLS, breakers), and a cluster as one worker sees it (its balancer
// state and the pools of its hosts). Built on the control thread; immutable once published.
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/model.h"
#include "lb/health_aware.h"
#include "lb/load_balancer.h"
#include "net/address.h"
#include "net/tls.h"
#include "upstream/circuit_breaker.h"

namespace gatehouse::upstream {

class EndpointPool;

struct CompiledCluster {
  std::string name;
  uint32_t stats_slot = 0;
  lb::HostSet hosts;  // each with its shared lb::HostHealth
  // The algorithm wrapped in lb::HealthAwareFactory, which hides unavailable hosts.
  std::shared_ptr<const lb::LoadBalancerFactory> lb;
  std::shared_ptr<lb::ClusterHealthState> health_state;
  lb::HealthPolicy health_policy;
  std::optional<config::HealthCheck> health_check;
  config::Millis connect_timeout{};
  config::Millis response_timeout{};
  config::Millis idle_timeout{};
  size_t pool_max_per_endpoint = 0;
  size_t pool_max_idle_per_endpoint = 0;
  std::shared_ptr<const net::TlsClientContext> tls;  // null: plain text to the endpoints
  bool http2 = false;  // h2 or h2c: requests are streams on shared HTTP/2 connections
  Breakers breakers;   // `circuit_breakers:`; counters kept across reloads
  // protocol auto over TLS: h2 or HTTP/1.1 per endpoint, by ALPN on its first connection.
  bool protocol_auto = false;
  // A PROXY header on each new HTTP/1.1 connection (then private to one downstream client).
  config::ProxyProtocolSend proxy_protocol = config::ProxyProtocolSend::kOff;
  // The cluster's `retry:` (else the defaults), for calls that have no route (cluster client).
  config::RetryPolicy retry;
};

using ClusterList = std::vector<CompiledCluster>;

// One cluster as seen by one worker: its balancer state and the pools of its hosts.
// Worker thread only.
struct WorkerCluster {
  const CompiledCluster* cluster = nullptr;
  std::unique_ptr<lb::LoadBalancer> lb;
  std::vector<EndpointPool*> pools;  // parallel to cluster->hosts.hosts
};

// DNS answers for clusters with `dns:` discovery (upstream::DnsDiscovery), by dnsKey(spec).
struct ResolvedEndpoint {
  net::SocketAddress address;  // with the port
  uint32_t weight = 1;
  uint32_t priority = 0;
};
using ResolvedEndpoints = std::map<std::string, std::vector<ResolvedEndpoint>>;
// Identifies a discovery spec: answers for an old spec are never used for a changed one.
std::string dnsKey(const config::DnsDiscovery& d);

}  // namespace gatehouse::upstream
