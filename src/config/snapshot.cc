#include "config/snapshot.h"

#include <yaml-cpp/yaml.h>

#include "policies/direct_response/direct_response.h"
#include "policies/redirect/redirect.h"
#include "policies/rewrite/rewrite.h"
#include "proxy/router.h"
#include "runtime/stats.h"
#include "upstream/health_checker.h"

namespace gatehouse::config {
namespace {

std::string where(const std::string& file, int line, const std::string& path) {
  std::string s = file.empty() ? "<config>" : file;
  if (line > 0) s += ":" + std::to_string(line);
  s += ": ";
  if (!path.empty()) s += path + ": ";
  return s;
}

void addPolicies(const std::vector<PolicySpec>& specs, CompiledRoute& route,
                 std::vector<std::string>& errors) {
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
    YAML::Node cfg = spec.config ? spec.config : YAML::Node(YAML::NodeType::Map);
    Result<http::FilterFactoryPtr> f = [&]() -> Result<http::FilterFactoryPtr> {
      try {
        return reg->build(cfg);
      } catch (const std::exception& e) {  // yaml-cpp conversions inside a builder
        return Error::make(ErrorCode::kInvalidArgument, ErrorSource::kConfig, e.what());
      }
    }();
    if (!f.ok()) {
      errors.push_back(where(spec.file, spec.line, spec.yaml_path + ".config") + f.error().message);
      continue;
    }
    route.wants_request_body = route.wants_request_body || (*f)->wantsRequestBody();
    route.wants_response_body = route.wants_response_body || (*f)->wantsResponseBody();
    route.filters.push_back(std::move(*f));
  }
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
  }
  if (c.slow_start) {
    p.slow_start_window = nanoseconds(c.slow_start->window);
    p.slow_start_min_weight = c.slow_start->min_weight_percent / 100.0;
  }
  return p;
}

}  // namespace

SnapshotResult buildSnapshot(std::shared_ptr<const Config> cfg, runtime::Stats* stats,
                             uint64_t generation, upstream::HealthRegistry* health) {
  SnapshotResult out;
  auto snap = std::make_shared<Snapshot>();
  snap->generation = generation;
  snap->config = cfg;
  const std::string& file = cfg->source_file;

  for (const auto& c : cfg->clusters) {
    CompiledCluster cc;
    cc.name = c.name;
    cc.stats_slot = stats ? stats->clusterSlot(c.name) : 0;
    cc.connect_timeout = c.connect_timeout.value_or(cfg->timeouts.upstream_connect);
    cc.response_timeout = c.response_timeout.value_or(cfg->timeouts.upstream_response);
    cc.idle_timeout = c.idle_timeout.value_or(cfg->timeouts.upstream_idle);
    cc.pool_max_per_endpoint = c.pool_max_per_endpoint;
    cc.pool_max_idle_per_endpoint = c.pool_max_idle_per_endpoint;
    cc.health_state =
        health ? health->clusterState(c.name) : std::make_shared<lb::ClusterHealthState>();
    cc.health_policy = healthPolicy(c);
    cc.health_check = c.health_check;
    cc.http2 = c.protocol != "http1";
    if (c.tls) {
      auto tls = net::TlsClientContext::create(*c.tls, c.protocol == "h2");
      if (!tls.ok()) {
        out.errors.push_back(where(file, c.tls->line, c.tls->yaml_path) + tls.error().message);
      } else {
        cc.tls = *tls;
      }
    }
    auto lbf = lb::makeLoadBalancerFactory(c);
    if (!lbf.ok()) {
      out.errors.push_back(where(file, c.line, "clusters." + c.name + ".lb") + lbf.error().message);
    } else {
      cc.lb = std::make_shared<lb::HealthAwareFactory>(*lbf, cc.health_state, cc.health_policy);
    }
    for (const auto& ep : c.endpoints) {
      auto addr = net::resolve(ep.host, ep.port);
      if (!addr.ok()) {
        out.errors.push_back(where(file, c.line, "clusters." + c.name + ".endpoints") +
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
      cc.hosts.hosts.push_back(std::move(h));
    }
    // Hashing balancers build their lookup table on first use and share it between workers;
    // building it here keeps that work (a 65537-slot Maglev table, say) off the workers.
    if (cc.lb) cc.lb->create(cc.hosts);
    snap->clusters.push_back(std::move(cc));
  }

  for (const auto& cidr : cfg->forwarded.trusted_proxies) {
    auto c = net::Cidr::parse(cidr);
    if (!c.ok()) {
      out.errors.push_back(where(file, 0, "forwarded.trusted_proxies") + c.error().message);
    } else {
      snap->trusted_proxies.add(*c);
    }
  }

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

  auto router = proxy::Router::build(*cfg);
  if (!router.ok()) {
    out.errors.push_back(where(file, 0, "") + router.error().message);
    return out;
  }
  snap->router = *router;

  for (const auto& vh : cfg->virtual_hosts) {
    for (const auto& r : vh.routes) {
      CompiledRoute cr;
      cr.name = r.name;
      cr.stats_slot = stats ? stats->routeSlot(r.name) : 0;
      cr.response_timeout = r.timeout.value_or(cfg->timeouts.upstream_response);
      addPolicies(vh.policies, cr, out.errors);
      addPolicies(r.policies, cr, out.errors);
      if (r.rewrite.strip_prefix || r.rewrite.regex || r.rewrite.host) {
        auto rw = policies::rewrite::fromModel(r.rewrite);
        if (!rw.ok()) {
          out.errors.push_back(where(file, r.line, r.yaml_path + ".rewrite") + rw.error().message);
        } else {
          cr.filters.push_back(*rw);
        }
      }
      if (r.direct_response)
        cr.filters.push_back(policies::direct_response::fromModel(*r.direct_response));
      if (r.redirect) cr.filters.push_back(policies::redirect::fromModel(*r.redirect));
      if (r.cluster) {
        for (size_t i = 0; i < cfg->clusters.size(); ++i) {
          if (cfg->clusters[i].name == *r.cluster) cr.cluster = static_cast<int>(i);
        }
        if (cr.cluster < 0) {
          out.errors.push_back(where(file, r.line, r.yaml_path + ".cluster") + "unknown cluster '" +
                               *r.cluster + "'");
        } else if (!r.timeout) {
          // Route timeout, else the cluster's response_timeout, else timeouts.upstream_response.
          cr.response_timeout = snap->clusters[static_cast<size_t>(cr.cluster)].response_timeout;
        }
      }
      snap->routes.push_back(std::move(cr));
    }
  }
  if (out.errors.empty()) out.snapshot = std::move(snap);
  return out;
}

}  // namespace gatehouse::config
