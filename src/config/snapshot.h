#pragma once
// The immutable, compiled form of one configuration: routers, clusters with their host sets and
// load-balancer factories, and each route's filter-chain factories. Built and validated on the
// control thread; workers only read it. In-flight requests keep the snapshot they started with.
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config/model.h"
#include "http/filter.h"
#include "lb/health_aware.h"
#include "lb/load_balancer.h"
#include "net/cidr.h"
#include "net/tls.h"
#include "upstream/circuit_breaker.h"

namespace gatehouse::policies {
class ConsumerRegistry;
}
namespace gatehouse::proxy {
class Router;
}
namespace gatehouse::runtime {
class Stats;
}
namespace gatehouse::upstream {
class HealthRegistry;
}

namespace gatehouse::config {

struct CompiledCluster {
  std::string name;
  uint32_t stats_slot = 0;
  lb::HostSet hosts;  // each with its shared lb::HostHealth
  // The algorithm wrapped in lb::HealthAwareFactory, which hides unavailable hosts.
  std::shared_ptr<const lb::LoadBalancerFactory> lb;
  std::shared_ptr<lb::ClusterHealthState> health_state;
  lb::HealthPolicy health_policy;
  std::optional<HealthCheck> health_check;
  Millis connect_timeout{};
  Millis response_timeout{};
  Millis idle_timeout{};
  size_t pool_max_per_endpoint = 0;
  size_t pool_max_idle_per_endpoint = 0;
  std::shared_ptr<const net::TlsClientContext> tls;  // null: plain text to the endpoints
  bool http2 = false;           // h2 or h2c: requests are streams on shared HTTP/2 connections
  upstream::Breakers breakers;  // `circuit_breakers:`; counters kept across reloads
  // protocol auto over TLS: h2 or HTTP/1.1 per endpoint, by ALPN on its first connection.
  bool protocol_auto = false;
};

struct RouteSplit;

struct CompiledRoute {
  std::string name;
  uint32_t stats_slot = 0;
  int cluster = -1;  // index into Snapshot::clusters; -1 when a filter answers
  std::vector<http::FilterFactoryPtr> filters;  // vhost policies, route policies, action
  bool wants_request_body = false;
  bool wants_response_body = false;
  Millis response_timeout{};
  RetryPolicy retry;  // the route's `retry:`, else its cluster's, else the defaults
  // Protocol timeouts resolved from the route's overrides and the global `timeouts:`.
  struct Streams {
    Millis request_total{};
    Millis grpc_unary{};
    Millis grpc_stream_idle{};
    Millis websocket_idle{};
    Millis websocket_max_lifetime{};
    Millis sse_idle{};
    Millis sse_max_lifetime{};
    uint32_t websocket_max_connections = 0;
  } streams;
  // Weighted clusters or canary rules: proxy::chooseRoute() picks one of its variants per
  // request. Null for a route with one cluster and no canary.
  std::shared_ptr<const RouteSplit> split;
};

// A route's traffic split. Each variant is a copy of the route (same filters and stats slot)
// that forwards to one cluster, so the rest of the request path sees an ordinary route.
struct RouteSplit {
  struct Canary {
    std::string header;  // lower case; or
    std::string cookie;
    std::optional<std::string> value;  // nullopt: presence is enough
    size_t variant = 0;
  };
  std::vector<CompiledRoute> variants;
  std::vector<std::pair<uint64_t, size_t>> weighted;  // (cumulative weight, variant)
  uint64_t total_weight = 0;                          // 0: no split, the route's own cluster
  std::vector<Canary> canary;                         // first match wins, before the split
};

struct Snapshot {
  uint64_t generation = 0;
  std::shared_ptr<const Config> config;
  std::shared_ptr<const proxy::Router> router;
  std::vector<CompiledRoute> routes;  // index = Router route_id
  std::vector<CompiledCluster> clusters;
  net::CidrSet trusted_proxies;
  // The top-level `consumers:` registry; the empty registry when there is none.
  std::shared_ptr<const policies::ConsumerRegistry> consumers;
  // Parallel to config->listeners; null for plain-text listeners.
  std::vector<std::shared_ptr<const net::TlsServerContext>> listener_tls;
};

// DNS answers for clusters with `dns:` discovery (upstream::DnsDiscovery), by dnsKey(spec).
struct ResolvedEndpoint {
  net::SocketAddress address;  // with the port
  uint32_t weight = 1;
  uint32_t priority = 0;
};
using ResolvedEndpoints = std::map<std::string, std::vector<ResolvedEndpoint>>;
// Identifies a discovery spec: answers for an old spec are never used for a changed one.
std::string dnsKey(const DnsDiscovery& d);

struct SnapshotResult {
  std::shared_ptr<const Snapshot> snapshot;
  std::vector<std::string> errors;  // "file:line: yaml.path: message"
};

// Control thread. Compiles `cfg`; on any error returns no snapshot and every error found.
// Host health state comes from `health` (kept across reloads), or is fresh when it is null.
// Clusters with DNS discovery get the hosts in `dns` (none until their first answer).
SnapshotResult buildSnapshot(std::shared_ptr<const Config> cfg, runtime::Stats* stats,
                             uint64_t generation, upstream::HealthRegistry* health = nullptr,
                             const ResolvedEndpoints* dns = nullptr);

}  // namespace gatehouse::config
