#include "l4/udp_plan.h"

#include <chrono>

namespace gatehouse::l4 {

Result<std::shared_ptr<const UdpListenerPlan>> compileUdpListener(const config::Listener& listener,
                                                                  const proxy::Snapshot& snap) {
  if (!listener.udp) {
    return Error::make(ErrorCode::kInvalidArgument, ErrorSource::kConfig,
                       "listener '" + listener.name + "' has no udp block");
  }
  const config::UdpProxy& udp = *listener.udp;
  auto plan = std::make_shared<UdpListenerPlan>();
  plan->name = listener.name;
  auto cluster = listenerClusterIndex(listener, udp.cluster, snap);
  if (!cluster.ok()) return cluster.error();
  plan->cluster = *cluster;
  plan->cluster_name = snap.clusters[static_cast<size_t>(plan->cluster)].name;
  plan->idle_timeout = std::chrono::duration_cast<runtime::Duration>(udp.idle_timeout);
  plan->max_sessions = udp.max_sessions;
  plan->responses = udp.responses;
  plan->buffer_size = udp.buffer_size;
  auto rules = IpRuleSet::compile(udp.ip_restriction);
  if (!rules.ok()) return rules.error();
  plan->ip_rules = std::move(*rules);
  plan->listener_stats = &udpListenerStats(listener.name);
  plan->cluster_stats = &udpClusterStats(plan->cluster_name);
  return std::shared_ptr<const UdpListenerPlan>(std::move(plan));
}

}  // namespace gatehouse::l4
