#include "server/snapshot_builder.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <optional>

#include "lb/locality.h"
#include "metrics/stats.h"
#include "policies/auth/consumers.h"
#include "policies/direct_response/direct_response.h"
#include "policies/redirect/redirect.h"
#include "policies/rewrite/rewrite.h"
#include "proxy/mirror.h"
#include "proxy/router.h"
#include "upstream/health_checker.h"

namespace gatehouse::server {

using namespace config;  // the model this file compiles
using proxy::CompiledRoute;
using proxy::RouteSplit;
using proxy::Snapshot;
using upstream::CompiledCluster;
using upstream::ResolvedEndpoints;
namespace {

std::string where(const std::string& file, int line, const std::string& path) {
  std::string s = file.empty() ? "<config>" : file;
  if (line > 0) s += ":" + std::to_string(line);
  s += ": ";
  if (!path.empty()) s += path + ": ";
  return s;
}

// The clusters policies may call (http::ClusterCatalog): the configured ones by name, and an
// implicit cluster per URL origin, compiled after the routes and appended to the snapshot's
// clusters (the configured ones keep their indexes).
class PolicyClusters final : public http::ClusterCatalog {
 public:
  explicit PolicyClusters(const Config& cfg) : cfg_(cfg) {}

  bool hasCluster(std::string_view name) const override {
    for (const auto& c : cfg_.clusters) {
      if (c.name == name) return true;
    }
    return false;
  }

  Result<std::string> clusterForUrl(const http::Url& url,
                                    const http::ClientTlsOptions& tls) override {
    std::string name = http::implicitClusterName(url, tls);
    if (hasCluster(name)) {
      return configError("a configured cluster is named '" + name + "', the implicit cluster of " +
                         "this URL; rename it or name it instead of the URL");
    }
    for (const auto& c : implicit_) {
      if (c.name == name) return name;
    }
    Cluster c;
    c.name = name;
    c.endpoints.push_back({url.host, url.port, 1, 0});
    if (url.https) {
      UpstreamTls t;
      t.verify = tls.verify;
      t.ca_file = tls.ca_file;
      // Checked here, so that the error names the policy's option rather than the cluster.
      auto ctx = net::TlsClientContext::create(t, net::TlsClientContext::Alpn::kHttp1);
      if (!ctx.ok()) return ctx.error();
      c.tls = std::move(t);
    }
    if (auto addr = net::resolve(url.host, url.port); !addr.ok()) return addr.error();
    c.yaml_path = "clusters." + name;
    implicit_.push_back(std::move(c));
    return name;
  }

  const std::vector<Cluster>& implicit() const { return implicit_; }

 private:
  static Error configError(std::string msg) {
    return Error::make(ErrorCode::kInvalidArgument, ErrorSource::kConfig, std::move(msg));
  }

  const Config& cfg_;
  std::vector<Cluster> implicit_;
};

void addPolicies(const std::vector<PolicySpec>& specs, const Snapshot& snap, CompiledRoute& route,
                 const std::string& scope, const std::string& route_cluster,
                 PolicyClusters& clusters, std::vector<std::string>& errors) {
  for (const auto& spec : specs) {
    const http::PolicyRegistration* reg = http::findPolicy(spec.name);
    if (!reg) {
      std::string known;
      for (const auto& r : http::policyRegistry())
        known += (known.empty() ? "" : ", ") + std::string(r.name);
      errors.push_back(where(spec.file, spec.line, spec.yaml_path) + "unknown policy '" +
                       spec.name + "'; known policies: " + known);
      continue;
    }
    YAML::Node cfg = spec.config && *spec.config ? *spec.config : YAML::Node(YAML::NodeType::Map);
    http::PolicyContext pctx;
    pctx.consumers = snap.consumers;
    pctx.preceding = route.filters;
    pctx.clusters = &clusters;
    pctx.scope = scope;
    pctx.route_cluster = route_cluster;
    Result<http::FilterFactoryPtr> f = [&]() -> Result<http::FilterFactoryPtr> {
      try {
        return reg->build(cfg, pctx);
      } catch (const std::exception& e) {  // yaml-cpp conversions inside a builder
        return Error::make(ErrorCode::kInvalidArgument, ErrorSource::kConfig, e.what());
      }
    }();
    if (!f.ok()) {
      errors.push_back(where(spec.file, spec.line, spec.yaml_path + ".config") + f.error().message);
      continue;
    }
    route.wants_request_body = route.wants_request_body || (*f)->wantsRequestBody();
    if ((*f)->wantsResponseBody()) ++route.response_body_filters;
    route.filters.push_back(std::move(*f));
  }
}

// The loader normalized every CIDR, so parsing cannot fail here.
std::shared_ptr<const proxy::CompiledProxyProtocol> compileListenerProxyProtocol(
    const config::Listener& l) {
  if (!l.proxy_protocol) return nullptr;
  auto pp = std::make_shared<proxy::CompiledProxyProtocol>();
  for (const auto& cidr : l.proxy_protocol->trusted) {
    if (auto c = net::Cidr::parse(cidr); c.ok()) pp->trusted.add(*c);
  }
  pp->options.accept_v1 = l.proxy_protocol->accept_v1;
  pp->options.accept_v2 = l.proxy_protocol->accept_v2;
  return pp;
}

lb::HealthPolicy healthPolicy(const Cluster& c) {
  using std::chrono::nanoseconds;
  lb::HealthPolicy p;
  p.panic_threshold = c.panic_threshold / 100.0;
  p.priority_failover_threshold = c.priority_failover_threshold / 100.0;
  if (c.outlier_detection) {
    const OutlierDetection& od = *c.outlier_detection;
    p.consecutive_failures = od.consecutive_failures;
    p.base_ejection_time = nanoseconds(od.base_ejection_time);
    p.max_ejection_time = nanoseconds(od.max_ejection_time);
    p.max_ejection_percent = od.max_ejection_percent;
    if (od.success_rate) {
      p.success_rate.enabled = true;
      p.success_rate.interval = nanoseconds(od.success_rate->interval);
      p.success_rate.minimum_hosts = od.success_rate->minimum_hosts;
      p.success_rate.request_volume = od.success_rate->request_volume;
      p.success_rate.stdev_factor = od.success_rate->stdev_factor;
    }
  }
  if (c.slow_start) {
    p.slow_start_window = nanoseconds(c.slow_start->window);
    p.slow_start_min_weight = c.slow_start->min_weight_percent / 100.0;
  }
  return p;
}

// Compiles the `consumers:` section; the loader already checked every format.
std::shared_ptr<const policies::ConsumerRegistry> compileConsumers(
    const Config& cfg, std::vector<std::string>& errors) {
  if (cfg.consumers.empty()) return policies::ConsumerRegistry::empty();
  std::vector<policies::Consumer> list;
  for (const auto& spec : cfg.consumers) {
    policies::Consumer c;
    c.name = spec.name;
    c.groups = spec.groups;
    c.metadata = spec.metadata;
    for (const auto& hex : spec.api_keys) {
      policies::Sha256Digest d{};
      if (policies::parseHexDigest(hex, d)) c.key_digests.push_back(d);
    }
    for (const auto& b : spec.basic) {
      auto hash = policies::parsePasswordHash(b.password);
      if (!hash.ok()) {
        errors.push_back(where(cfg.source_file, spec.line, spec.yaml_path) + hash.error().message);
        continue;
      }
      c.basic.push_back({b.username, std::move(*hash)});
    }
    for (const auto& h : spec.hmac)
      c.hmac.push_back({h.key_id, h.secret});
    c.certificates = spec.certificates;
    list.push_back(std::move(c));
  }
  auto registry = policies::ConsumerRegistry::create(std::move(list));
  if (!registry.ok()) {
    errors.push_back(where(cfg.source_file, 0, "consumers") + registry.error().message);
    return policies::ConsumerRegistry::empty();
  }
  return *registry;
}

// A route's protocol timeouts: its own overrides, else the global `timeouts:`.
CompiledRoute::Streams resolveStreams(const Config& cfg, const Route& r) {
  const auto& t = cfg.timeouts;
  CompiledRoute::Streams st;
  st.request_total = r.timeouts.request_total.value_or(t.request_total);
  st.grpc_unary = r.timeouts.grpc_unary.value_or(t.grpc_unary);
  st.grpc_stream_idle = r.timeouts.grpc_stream_idle.value_or(t.grpc_stream_idle);
  st.sse_idle = r.timeouts.sse_idle.value_or(t.sse_idle);
  st.sse_max_lifetime = r.timeouts.sse_max_lifetime.value_or(t.sse_max_lifetime);
  st.websocket_idle = t.websocket_idle;
  st.websocket_max_lifetime = t.websocket_max_lifetime;
  if (r.websocket) {
    st.websocket_idle = r.websocket->idle_timeout.value_or(t.websocket_idle);
    st.websocket_max_lifetime = r.websocket->max_lifetime.value_or(t.websocket_max_lifetime);
    st.websocket_max_connections = r.websocket->max_connections;
  }
  return st;
}

// Zone-aware balancing applies when the cluster's endpoints have zones and a local zone is known
// (the cluster's locality.local_zone, else node.zone).
std::optional<lb::LocalityPolicy> localityPolicy(const Config& cfg, const Cluster& c,
                                                 std::vector<std::string>& errors) {
  const bool zoned = std::any_of(c.endpoints.begin(), c.endpoints.end(),
                                 [](const Endpoint& e) { return !e.zone.empty(); });
  std::string local =
      c.locality && !c.locality->local_zone.empty() ? c.locality->local_zone : cfg.node.zone;
  if (c.locality && local.empty()) {
    errors.push_back(where(cfg.source_file, c.line, "clusters." + c.name + ".locality") +
                     "no local zone: set locality.local_zone or node.zone");
    return std::nullopt;
  }
  if (c.locality && !zoned) {
    errors.push_back(where(cfg.source_file, c.line, "clusters." + c.name + ".locality") +
                     "no endpoint has a zone");
    return std::nullopt;
  }
  if (!zoned || local.empty()) return std::nullopt;
  lb::LocalityPolicy p;
  p.local_zone = std::move(local);
  p.min_healthy = (c.locality ? c.locality->min_healthy_percent : 70) / 100.0;
  return p;
}

// One cluster: timeouts, health and breaker state (kept across reloads through `health`), TLS,
// the balancer and the host set (configured endpoints, then DNS answers).
CompiledCluster compileCluster(const Config& cfg, const Cluster& c, metrics::Stats* stats,
                               upstream::HealthRegistry* health, const ResolvedEndpoints* dns,
                               std::vector<std::string>& errors) {
  CompiledCluster cc;
  cc.name = c.name;
  cc.stats_slot = stats ? stats->clusterSlot(c.name) : 0;
  cc.connect_timeout = c.connect_timeout.value_or(cfg.timeouts.upstream_connect);
  cc.response_timeout = c.response_timeout.value_or(cfg.timeouts.upstream_response);
  cc.idle_timeout = c.idle_timeout.value_or(cfg.timeouts.upstream_idle);
  cc.pool_max_per_endpoint = c.pool_max_per_endpoint;
  cc.pool_max_idle_per_endpoint = c.pool_max_idle_per_endpoint;
  cc.health_state =
      health ? health->clusterState(c.name) : std::make_shared<lb::ClusterHealthState>();
  cc.health_policy = healthPolicy(c);
  cc.health_check = c.health_check;
  cc.breakers.state =
      health ? health->breakerState(c.name) : std::make_shared<upstream::ClusterBreaker>();
  if (c.circuit_breakers) {
    const CircuitBreakers& b = *c.circuit_breakers;
    cc.breakers.enabled = true;
    cc.breakers.max = {b.max_connections, b.max_pending_requests, b.max_requests, b.max_retries};
  }
  cc.retry = c.retry.value_or(RetryPolicy{});
  // Cleartext `auto` is HTTP/1.1: without ALPN there is nothing to choose by.
  cc.protocol_auto = c.protocol == "auto" && c.tls;
  cc.http2 = c.protocol == "h2" || c.protocol == "h2c";
  cc.proxy_protocol = c.proxy_protocol;
  if (c.tls) {
    auto alpn = c.protocol == "h2" ? net::TlsClientContext::Alpn::kH2
                : cc.protocol_auto ? net::TlsClientContext::Alpn::kBoth
                                   : net::TlsClientContext::Alpn::kHttp1;
    auto tls = net::TlsClientContext::create(*c.tls, alpn);
    if (!tls.ok()) {
      errors.push_back(where(cfg.source_file, c.tls->line, c.tls->yaml_path) + tls.error().message);
    } else {
      cc.tls = *tls;
    }
  }
  std::shared_ptr<const lb::StickyCookie> sticky;
  if (c.sticky) {
    auto st = lb::StickyCookie::create(*c.sticky, c.name);
    if (!st.ok()) {
      errors.push_back(where(cfg.source_file, c.line, "clusters." + c.name + ".sticky") +
                       st.error().message);
    } else {
      sticky = *st;
    }
  }
  for (const auto& ep : c.endpoints) {
    auto addr = net::resolve(ep.host, ep.port);
    if (!addr.ok()) {
      errors.push_back(where(cfg.source_file, c.line, "clusters." + c.name + ".endpoints") +
                       addr.error().message);
      continue;
    }
    lb::Host h;
    h.address = *addr;
    h.name = addr->toString();
    h.weight = ep.weight;
    h.priority = ep.priority;
    h.health = health ? health->hostHealth(c.name, h.name)
                      : std::make_shared<lb::HostHealth>(cc.health_state);
    h.hostname = ep.host;
    h.zone = ep.zone;
    cc.hosts.hosts.push_back(std::move(h));
  }
  if (c.dns && dns) {
    auto it = dns->find(upstream::dnsKey(*c.dns));
    if (it != dns->end()) {
      for (const auto& re : it->second) {
        lb::Host h;
        h.address = re.address;
        h.name = re.address.toString();
        h.weight = re.weight;
        h.priority = re.priority;
        h.health = health ? health->hostHealth(c.name, h.name)
                          : std::make_shared<lb::HostHealth>(cc.health_state);
        h.hostname = c.dns->name;
        cc.hosts.hosts.push_back(std::move(h));
      }
    }
  }
  // After the hosts: zone-aware balancing counts the local zone's hosts.
  auto lbf = lb::makeLoadBalancerFactory(c);
  if (!lbf.ok()) {
    errors.push_back(where(cfg.source_file, c.line, "clusters." + c.name + ".lb") +
                     lbf.error().message);
  } else {
    lb::LoadBalancerFactoryPtr algorithm = *lbf;
    if (auto loc = localityPolicy(cfg, c, errors)) {
      algorithm = std::make_shared<lb::LocalityFactory>(algorithm, *loc, cc.hosts);
    }
    cc.lb = std::make_shared<lb::HealthAwareFactory>(algorithm, cc.health_state, cc.health_policy,
                                                     sticky);
  }
  // Hashing balancers build their lookup table on first use and share it between workers;
  // building it here keeps that work (a 65537-slot Maglev table, say) off the workers.
  if (cc.lb) cc.lb->create(cc.hosts);
  return cc;
}

// One route of a virtual host: its filter chain (virtual-host policies, route policies,
// action), its cluster or traffic split, and its mirror.
// The route's path pattern as OpenTelemetry's http.route wants it (low cardinality).
std::string httpRoute(const config::RouteMatch& m) {
  if (m.path_template) return *m.path_template;
  if (m.path_exact) return *m.path_exact;
  if (m.path_prefix) return *m.path_prefix == "/" ? "/*" : *m.path_prefix + "*";
  return {};  // a regex says nothing a reader could use
}

CompiledRoute compileRoute(const Config& cfg, const VirtualHost& vh, const Route& r,
                           const Snapshot& snap, PolicyClusters& clusters, metrics::Stats* stats,
                           std::vector<std::string>& errors) {
  CompiledRoute cr;
  cr.name = r.name;
  cr.stats_slot = stats ? stats->routeSlot(r.name) : 0;
  cr.tracing = r.tracing;
  cr.http_route = httpRoute(r.match);
  cr.response_timeout = r.timeout.value_or(cfg.timeouts.upstream_response);
  cr.streams = resolveStreams(cfg, r);
  const std::string scope = vh.name + "/" + r.name;
  const std::string route_cluster =
      r.cluster ? *r.cluster : (r.clusters.empty() ? std::string() : r.clusters[0].name);
  addPolicies(vh.policies, snap, cr, scope, route_cluster, clusters, errors);
  addPolicies(r.policies, snap, cr, scope, route_cluster, clusters, errors);
  if (r.rewrite.strip_prefix || r.rewrite.regex || r.rewrite.host) {
    auto rw = policies::rewrite::fromModel(r.rewrite);
    if (!rw.ok()) {
      errors.push_back(where(cfg.source_file, r.line, r.yaml_path + ".rewrite") +
                       rw.error().message);
    } else {
      cr.filters.push_back(*rw);
    }
  }
  if (r.direct_response)
    cr.filters.push_back(policies::direct_response::fromModel(*r.direct_response));
  if (r.redirect) cr.filters.push_back(policies::redirect::fromModel(*r.redirect));
  auto clusterIndex = [&](const std::string& name) {
    for (size_t i = 0; i < cfg.clusters.size(); ++i) {
      if (cfg.clusters[i].name == name) return static_cast<int>(i);
    }
    return -1;
  };
  // Route timeout, else the cluster's response_timeout, else timeouts.upstream_response.
  auto forwardTo = [&](CompiledRoute& to, int ci) {
    to.cluster = ci;
    if (!r.timeout) {
      to.response_timeout = snap.clusters[static_cast<size_t>(ci)].response_timeout;
    }
    // The route's retry policy, else the cluster's, else the defaults.
    to.retry =
        r.retry ? *r.retry : cfg.clusters[static_cast<size_t>(ci)].retry.value_or(RetryPolicy{});
  };
  const std::optional<std::string> first =
      r.cluster ? r.cluster
                : (r.clusters.empty() ? std::nullopt : std::optional(r.clusters[0].name));
  if (first) {
    const int ci = clusterIndex(*first);
    if (ci < 0) {
      errors.push_back(where(cfg.source_file, r.line, r.yaml_path + ".cluster") +
                       "unknown cluster '" + *first + "'");
    } else {
      forwardTo(cr, ci);
    }
  }
  if (r.mirror && cr.cluster >= 0) {
    const int mi = clusterIndex(r.mirror->cluster);
    if (mi < 0) {
      errors.push_back(where(cfg.source_file, r.line, r.yaml_path + ".mirror.cluster") +
                       "unknown cluster '" + r.mirror->cluster + "'");
    } else {
      auto mf = proxy::makeMirrorFilter(*r.mirror, r.name, snap.clusters[static_cast<size_t>(mi)]);
      cr.wants_request_body = cr.wants_request_body || mf->wantsRequestBody();
      cr.filters.push_back(std::move(mf));
    }
  }
  std::vector<std::string> routable;  // clusters a policy may pick (version)
  bool answered = r.direct_response || r.redirect;
  for (const auto& f : cr.filters) {
    for (auto& name : f->routableClusters())
      routable.push_back(std::move(name));
    answered = answered || f->answersRequests();
  }
  if (!first && !answered && routable.empty()) {
    errors.push_back(where(cfg.source_file, r.line, r.yaml_path) +
                     "route needs an action: cluster, clusters, direct_response, redirect, or a "
                     "policy that answers (aggregate) or picks a cluster (version)");
  }
  if (!routable.empty() || (cr.cluster >= 0 && (r.clusters.size() > 1 || !r.canary.empty()))) {
    auto split = std::make_shared<RouteSplit>();
    auto variantOf = [&](const std::string& name) -> std::optional<size_t> {
      const int ci = clusterIndex(name);
      if (ci < 0) return std::nullopt;
      for (size_t k = 0; k < split->variants.size(); ++k) {
        if (split->variants[k].cluster == ci) return k;
      }
      CompiledRoute v = cr;
      forwardTo(v, ci);
      split->variants.push_back(std::move(v));
      return split->variants.size() - 1;
    };
    for (const auto& wc : r.clusters) {
      auto k = variantOf(wc.name);
      if (!k || wc.weight == 0) continue;
      split->total_weight += wc.weight;
      split->weighted.emplace_back(split->total_weight, *k);
    }
    for (const auto& rule : r.canary) {
      auto k = variantOf(rule.cluster);
      if (!k) continue;
      split->canary.push_back({rule.header, rule.cookie, rule.value, *k});
    }
    for (const auto& name : routable) {
      auto k = variantOf(name);
      if (!k) {
        errors.push_back(where(cfg.source_file, r.line, r.yaml_path + ".policies") +
                         "unknown cluster '" + name + "'");
        continue;
      }
      split->by_name.emplace_back(name, *k);
    }
    cr.split = std::move(split);
  }
  return cr;
}

}  // namespace

SnapshotResult buildSnapshot(std::shared_ptr<const Config> cfg, metrics::Stats* stats,
                             uint64_t generation, upstream::HealthRegistry* health,
                             const ResolvedEndpoints* dns) {
  SnapshotResult out;
  auto snap = std::make_shared<Snapshot>();
  snap->generation = generation;
  snap->config = cfg;
  const std::string& file = cfg->source_file;

  for (const auto& c : cfg->clusters)
    snap->clusters.push_back(compileCluster(*cfg, c, stats, health, dns, out.errors));

  for (const auto& cidr : cfg->forwarded.trusted_proxies) {
    auto c = net::Cidr::parse(cidr);
    if (!c.ok()) {
      out.errors.push_back(where(file, 0, "forwarded.trusted_proxies") + c.error().message);
    } else {
      snap->trusted_proxies.add(*c);
    }
  }

  for (const auto& l : cfg->listeners)
    snap->listener_proxy_protocol.push_back(compileListenerProxyProtocol(l));

  for (const auto& l : cfg->listeners) {
    if (!l.tls) {
      snap->listener_tls.push_back(nullptr);
      continue;
    }
    auto tls_cfg = *l.tls;
    if (!cfg->http2.enabled) std::erase(tls_cfg.alpn, "h2");  // never offer what we won't speak
    auto tls = net::TlsServerContext::create(tls_cfg);
    if (!tls.ok()) {
      out.errors.push_back(where(file, l.tls->line, l.tls->yaml_path) + tls.error().message);
      snap->listener_tls.push_back(nullptr);
    } else {
      snap->listener_tls.push_back(*tls);
    }
  }

  snap->consumers = compileConsumers(*cfg, out.errors);

  auto router = proxy::Router::build(*cfg);
  if (!router.ok()) {
    out.errors.push_back(where(file, 0, "") + router.error().message);
    return out;
  }
  snap->router = *router;

  PolicyClusters policy_clusters(*cfg);
  for (const auto& vh : cfg->virtual_hosts) {
    for (const auto& r : vh.routes)
      snap->routes.push_back(compileRoute(*cfg, vh, r, *snap, policy_clusters, stats, out.errors));
  }
  for (const auto& c : policy_clusters.implicit())
    snap->clusters.push_back(compileCluster(*cfg, c, stats, health, dns, out.errors));
  if (out.errors.empty()) out.snapshot = std::move(snap);
  return out;
}

}  // namespace gatehouse::server
