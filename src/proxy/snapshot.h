#pragma once
// The immutable, compiled form of one configuration: routers, clusters with their host sets and
// load-balancer factories, and each route's filter-chain factories. Built and validated on the
// control thread; workers only read it. In-flight requests keep the snapshot they started with.
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/model.h"
#include "http/filter.h"
#include "net/cidr.h"
#include "net/proxy_protocol.h"
#include "net/tls.h"
#include "upstream/cluster.h"

namespace gatehouse::policies {
class ConsumerRegistry;
}
namespace gatehouse::proxy {

class Router;

struct RouteSplit;

struct CompiledRoute {
  std::string name;
  uint32_t stats_slot = 0;
  int cluster = -1;  // index into Snapshot::clusters; -1 when a filter answers
  std::vector<http::FilterFactoryPtr> filters;  // vhost policies, route policies, action
  bool wants_request_body = false;
  uint8_t response_body_filters = 0;  // filters whose factory wants the response body
  config::Millis response_timeout{};
  config::RetryPolicy retry;  // the route's `retry:`, else its cluster's, else the defaults
  bool tracing = true;        // the route's `tracing:` (false: no spans)
  std::string http_route;     // the path pattern, OpenTelemetry's http.route ("" for a regex)
  // Protocol timeouts resolved from the route's overrides and the global `timeouts:`.
  struct Streams {
    config::Millis request_total{};
    config::Millis grpc_unary{};
    config::Millis grpc_stream_idle{};
    config::Millis websocket_idle{};
    config::Millis websocket_max_lifetime{};
    config::Millis sse_idle{};
    config::Millis sse_max_lifetime{};
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
  // Clusters a policy may pick by name (FilterFactory::routableClusters), before the rest.
  std::vector<std::pair<std::string, size_t>> by_name;
};

// A listener's `proxy_protocol` compiled: who may send a header, and which versions.
struct CompiledProxyProtocol {
  net::CidrSet trusted;
  net::proxy_protocol::ParseOptions options;
};

struct Snapshot {
  uint64_t generation = 0;
  std::shared_ptr<const config::Config> config;
  std::shared_ptr<const proxy::Router> router;
  std::vector<CompiledRoute> routes;  // index = Router route_id
  // The configured clusters (config->clusters order), then the implicit ones policies asked
  // for by URL (http::ClusterCatalog).
  std::vector<upstream::CompiledCluster> clusters;
  net::CidrSet trusted_proxies;
  // The top-level `consumers:` registry; the empty registry when there is none.
  std::shared_ptr<const policies::ConsumerRegistry> consumers;
  // Parallel to config->listeners; null for plain-text listeners.
  std::vector<std::shared_ptr<const net::TlsServerContext>> listener_tls;
  // Parallel to config->listeners; null where the listener has no `proxy_protocol`.
  std::vector<std::shared_ptr<const CompiledProxyProtocol>> listener_proxy_protocol;

  // Index into `clusters` of the cluster named `name`, or -1.
  int clusterIndex(std::string_view name) const {
    for (size_t i = 0; i < clusters.size(); ++i) {
      if (clusters[i].name == name) return static_cast<int>(i);
    }
    return -1;
  }
};

// The snapshot's clusters, sharing its ownership (for the control thread's health checks).
inline std::shared_ptr<const upstream::ClusterList> clustersOf(
    const std::shared_ptr<const Snapshot>& snap) {
  return {snap, &snap->clusters};
}

}  // namespace gatehouse::proxy
