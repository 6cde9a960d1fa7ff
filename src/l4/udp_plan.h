#pragma once
// A UDP listener compiled against one config snapshot: the cluster it forwards to (an index
// into the snapshot's clusters), its idle timeout, session cap, replies per datagram, IP rules
// and counters. Built by the worker when it installs a snapshot, then immutable: a session
// keeps the plan and the snapshot it was opened with (so its upstream host) for its whole life.
#include <cstdint>
#include <memory>
#include <string>

#include "config/model.h"
#include "core/result.h"
#include "l4/plan_parts.h"
#include "l4/udp_stats.h"
#include "proxy/snapshot.h"
#include "runtime/timer_wheel.h"

namespace gatehouse::l4 {

struct UdpListenerPlan {
  std::string name;  // the listener's name: log field and metrics label
  int cluster = -1;  // index into Snapshot::clusters (and WorkerSnapshot::clusters)
  std::string cluster_name;
  runtime::Duration idle_timeout{};
  uint32_t max_sessions = 0;  // zero: unlimited
  uint32_t responses = 0;     // replies per client datagram before the session ends; 0: no end
  size_t buffer_size = 0;     // the largest datagram forwarded either way
  IpRuleSet ip_rules;
  UdpListenerStats* listener_stats = nullptr;  // process lifetime
  UdpClusterStats* cluster_stats = nullptr;
};

// Compiles `listener` (mode udp) against `snap`. Errors: the cluster is missing from the
// snapshot or a CIDR does not parse (both validated by the loader already). Any thread.
Result<std::shared_ptr<const UdpListenerPlan>> compileUdpListener(const config::Listener& listener,
                                                                  const proxy::Snapshot& snap);

}  // namespace gatehouse::l4
