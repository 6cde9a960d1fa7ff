#include "l4/listener_plan.h"

#include <chrono>

#include "l4/tls_passthrough.h"

namespace gatehouse::l4 {
namespace {

TcpTimeouts resolveTimeouts(const config::TcpProxy& tcp, const proxy::Snapshot& snap,
                            size_t cluster) {
  const upstream::CompiledCluster& cc = snap.clusters[cluster];
  const config::Cluster* spec = nullptr;
  for (const auto& c : snap.config->clusters) {
    if (c.name == cc.name) spec = &c;
  }
  TcpTimeouts t;
  // The cluster's connect_timeout is already resolved against timeouts.upstream_connect.
  t.connect = tcp.connect_timeout ? *tcp.connect_timeout : cc.connect_timeout;
  t.idle = tcp.idle_timeout             ? *tcp.idle_timeout
           : spec && spec->idle_timeout ? *spec->idle_timeout
                                        : config::kDefaultTcpIdleTimeout;
  return t;
}

}  // namespace

Result<std::shared_ptr<const TcpListenerPlan>> compileTcpListener(const config::Listener& listener,
                                                                  const proxy::Snapshot& snap) {
  if (!listener.tcp) {
    return Error::make(ErrorCode::kInvalidArgument, ErrorSource::kConfig,
                       "listener '" + listener.name + "' has no tcp block");
  }
  const config::TcpProxy& tcp = *listener.tcp;
  auto plan = std::make_shared<TcpListenerPlan>();
  plan->name = listener.name;
  // A tls_passthrough listener may have no default cluster: its inspector chooses.
  if (!tcp.cluster.empty() || !tcp.tls_passthrough) {
    auto cluster = listenerClusterIndex(listener, tcp.cluster, snap);
    if (!cluster.ok()) return cluster.error();
    plan->cluster = *cluster;
  }
  if (plan->cluster >= 0) {
    const auto index = static_cast<size_t>(plan->cluster);
    plan->cluster_name = snap.clusters[index].name;
    const TcpTimeouts t = resolveTimeouts(tcp, snap, index);
    plan->connect_timeout = t.connect;
    plan->idle_timeout = t.idle;
    plan->cluster_stats = &clusterStats(plan->cluster_name);
  }
  if (tcp.tls_passthrough) {
    auto inspector = TlsPassthroughInspector::compile(*tcp.tls_passthrough, snap, plan->cluster);
    if (!inspector.ok()) return inspector.error();
    plan->inspector = std::move(*inspector);
    for (size_t i = 0; i < snap.clusters.size(); ++i) {
      plan->timeouts_by_cluster.push_back(resolveTimeouts(tcp, snap, i));
    }
  }
  const auto& listeners = snap.config->listeners;
  // The `tls` of an HTTP listener (a mixed port) is its HTTP side's, not this plan's.
  const bool terminates = listener.mode == config::ListenerMode::kTcp && listener.tls;
  for (size_t i = 0; i < listeners.size() && i < snap.listener_tls.size(); ++i) {
    if (listeners[i].name != listener.name) continue;
    if (terminates) plan->tls = snap.listener_tls[i];
    if (i < snap.listener_proxy_protocol.size()) {
      plan->proxy_protocol = snap.listener_proxy_protocol[i];
    }
  }
  if (terminates && !plan->tls) {
    return Error::make(ErrorCode::kInvalidArgument, ErrorSource::kConfig,
                       "listener '" + listener.name + "': no TLS context");
  }
  plan->max_lifetime = tcp.max_lifetime;
  plan->connect_retries = tcp.connect_retries;
  plan->max_connections = tcp.max_connections;
  plan->relay = tcp.relay;
  plan->buffer_size = tcp.buffer_size;
  auto rules = IpRuleSet::compile(tcp.ip_restriction);
  if (!rules.ok()) return rules.error();
  plan->ip_rules = std::move(*rules);
  plan->listener_stats = &listenerStats(listener.name);
  return std::shared_ptr<const TcpListenerPlan>(std::move(plan));
}

}  // namespace gatehouse::l4
