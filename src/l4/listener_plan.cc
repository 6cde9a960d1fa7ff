#include "l4/listener_plan.h"

#include <chrono>

namespace gatehouse::l4 {

Result<std::shared_ptr<const TcpListenerPlan>> compileTcpListener(const config::Listener& listener,
                                                                  const proxy::Snapshot& snap) {
  if (!listener.tcp) {
    return Error::make(ErrorCode::kInvalidArgument, ErrorSource::kConfig,
                       "listener '" + listener.name + "' has no tcp block");
  }
  const config::TcpProxy& tcp = *listener.tcp;
  auto plan = std::make_shared<TcpListenerPlan>();
  plan->name = listener.name;
  auto cluster = listenerClusterIndex(listener, tcp.cluster, snap);
  if (!cluster.ok()) return cluster.error();
  plan->cluster = *cluster;
  const upstream::CompiledCluster& cc = snap.clusters[static_cast<size_t>(plan->cluster)];
  plan->cluster_name = cc.name;
  // The cluster's connect_timeout is already resolved against timeouts.upstream_connect.
  plan->connect_timeout = tcp.connect_timeout ? *tcp.connect_timeout : cc.connect_timeout;
  const config::Cluster* spec = nullptr;
  for (const auto& c : snap.config->clusters) {
    if (c.name == tcp.cluster) spec = &c;
  }
  plan->idle_timeout = tcp.idle_timeout             ? *tcp.idle_timeout
                       : spec && spec->idle_timeout ? *spec->idle_timeout
                                                    : config::kDefaultTcpIdleTimeout;
  plan->max_lifetime = tcp.max_lifetime;
  plan->connect_retries = tcp.connect_retries;
  plan->max_connections = tcp.max_connections;
  plan->relay = tcp.relay;
  plan->buffer_size = tcp.buffer_size;
  auto rules = IpRuleSet::compile(tcp.ip_restriction);
  if (!rules.ok()) return rules.error();
  plan->ip_rules = std::move(*rules);
  plan->listener_stats = &listenerStats(listener.name);
  plan->cluster_stats = &clusterStats(cc.name);
  return std::shared_ptr<const TcpListenerPlan>(std::move(plan));
}

}  // namespace gatehouse::l4
