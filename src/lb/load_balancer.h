#pragma once
// Load-balancer interface. A factory is part of the immutable config snapshot; each worker
// creates its own LoadBalancer from it, so pick() needs no locks. Algorithms live one per file
// and register in lb/registry.cc.
#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "lb/host_health.h"
#include "net/address.h"

namespace gatehouse::http {
struct Request;
}
namespace gatehouse::config {
struct Cluster;
}

namespace gatehouse::lb {

struct Host {
  net::SocketAddress address;
  std::string name;  // "127.0.0.1:9001": the pool key, metrics label and log field
  uint32_t weight = 1;
  uint32_t priority = 0;  // group; 0 first (lb::HealthAwareBalancer)
  // Shared health state (lb/host_health.h); null in tests that do not care, meaning healthy.
  HostHealthPtr health;
  std::string hostname;  // as configured (a DNS name or an IP literal): TLS SNI and verification
  // Locality (lb/locality.h); empty = none.
  std::string zone = {};
};

// Immutable once built; shared by all workers.
struct HostSet {
  std::vector<Host> hosts;
};

// What pick() may look at. Both point into the request being routed and live until pick()
// returns; `request` may be null (no request yet, or a test).
struct PickContext {
  const http::Request* request = nullptr;
  std::string_view client_ip;  // after trusted X-Forwarded-For processing
  // Out: a Set-Cookie value to add to the response (sticky sessions); untouched otherwise.
  std::string* set_cookie = nullptr;
  // Hosts to avoid (a retry's hosts already tried): a balancer picks another host when one is
  // available, and one of these only when nothing else is.
  std::span<const int> exclude = {};
  // "ip:port" of the TCP client (L4 listeners); empty for HTTP requests, which hash the IP.
  std::string_view client_address = {};
  // The TLS server name of a passthrough TCP connection (hash key `sni`); empty otherwise.
  std::string_view sni = {};
};

class LoadBalancer {
 public:
  virtual ~LoadBalancer() = default;
  // Index into the host set, or -1 when no host can be chosen. Runs on the owning worker.
  virtual int pick(const PickContext& ctx) = 0;
  // The request picked for `host` was dispatched / finished (latency from dispatch to the
  // response head, or to the failure). Feed least-connections and latency-aware algorithms.
  virtual void onStart(int /*host*/) {}
  virtual void onEnd(int /*host*/, std::chrono::nanoseconds /*latency*/, bool /*success*/) {}
  // As onEnd(host, latency, false), for a request that ended for a reason that says nothing
  // about the host (the client's body failed, a local limit): outlier detection ignores it.
  virtual void onAbandon(int host, std::chrono::nanoseconds latency) {
    onEnd(host, latency, false);
  }
};

// Built on the control thread from a cluster's config; immutable afterwards except for
// internally locked caches. create() runs on each worker when it installs a snapshot (not per
// request), and may run on several workers at once.
class LoadBalancerFactory {
 public:
  virtual ~LoadBalancerFactory() = default;
  virtual std::unique_ptr<LoadBalancer> create(const HostSet& hosts) const = 0;
  // Whether slow start may scale this algorithm's weights. Consistent hashing says no: a
  // ramping weight would move keys between hosts at every step.
  virtual bool rampsWeights() const { return true; }
};

using LoadBalancerFactoryPtr = std::shared_ptr<const LoadBalancerFactory>;

// Builds the factory for cluster.lb ("round_robin", ...) with cluster.lb_options. Control
// thread. The loader has already validated both; an error here means an unknown name.
Result<LoadBalancerFactoryPtr> makeLoadBalancerFactory(const config::Cluster& cluster);

}  // namespace gatehouse::lb
