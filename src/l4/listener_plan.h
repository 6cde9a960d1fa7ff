#pragma once
// A TCP listener compiled against one config snapshot: the cluster it forwards to (an index
// into the snapshot's clusters), its timeouts and limits, its IP rules and its counters. Built
// by the worker when it installs a snapshot (server::Worker::install), then immutable: a
// connection keeps the plan and the snapshot it was accepted with for its whole life.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config/model.h"
#include "core/result.h"
#include "l4/inspector.h"
#include "l4/plan_parts.h"
#include "l4/tcp_stats.h"
#include "net/tls.h"
#include "proxy/snapshot.h"
#include "runtime/timer_wheel.h"

namespace gatehouse::l4 {

// The timeouts of a connection to one cluster: the listener's if set, else the cluster's.
struct TcpTimeouts {
  runtime::Duration connect{};
  runtime::Duration idle{};
};

struct TcpListenerPlan {
  std::string name;  // the listener's name: log field and metrics label
  // Index into Snapshot::clusters (and WorkerSnapshot::clusters); -1 for a tls_passthrough
  // listener without a default cluster (its inspector chooses, or the connection is refused).
  int cluster = -1;
  std::string cluster_name;
  runtime::Duration connect_timeout{};
  runtime::Duration idle_timeout{};
  // Per snapshot cluster index, for a connection the inspector sent elsewhere.
  std::vector<TcpTimeouts> timeouts_by_cluster;
  runtime::Duration max_lifetime{};  // zero: unlimited
  uint32_t connect_retries = 0;
  uint32_t max_connections = 0;  // zero: unlimited
  config::TcpRelay relay = config::TcpRelay::kSplice;
  size_t buffer_size = 0;
  IpRuleSet ip_rules;
  // The listener's `proxy_protocol`: a PROXY header is read before anything else; null: none.
  std::shared_ptr<const proxy::CompiledProxyProtocol> proxy_protocol;
  // The listener's `tls` (termination): the client's handshake comes first; null: plain.
  std::shared_ptr<const net::TlsServerContext> tls;
  // Reads the first bytes and may choose the cluster (TLS SNI, PROXY protocol); null: none.
  std::shared_ptr<const FirstBytesInspector> inspector;
  runtime::Duration inspect_timeout = std::chrono::seconds(5);
  ListenerStats* listener_stats = nullptr;  // process lifetime
  ClusterStats* cluster_stats = nullptr;    // null when cluster is -1

  bool admits(std::string_view client_ip) const { return ip_rules.admits(client_ip); }
};

// Compiles `listener` (mode tcp) against `snap`, with its tls_passthrough inspector. Errors: a
// cluster is missing from the snapshot, a CIDR or an SNI pattern does not parse (all validated
// by the loader already). Any thread.
Result<std::shared_ptr<const TcpListenerPlan>> compileTcpListener(const config::Listener& listener,
                                                                  const proxy::Snapshot& snap);

}  // namespace gatehouse::l4
