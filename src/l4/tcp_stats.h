#pragma once
// Counters of TCP listeners and of the clusters they forward to, for /metrics. One entry per
// listener name and per cluster name, kept for the life of the process, so counts and the
// open-connection count (which enforces max_connections across workers) survive reloads.
// Workers write their own cells (metrics::PerThread); the admin thread sums them at scrape time.
#include <array>
#include <atomic>
#include <cstdint>
#include <string_view>

#include "l4/stats_table.h"
#include "metrics/cells.h"
#include "metrics/per_thread.h"

namespace gatehouse::l4 {

// Why a TCP connection ended (or was refused): the access log's close_reason and a label.
enum class CloseReason : uint8_t {
  kClosed,         // both directions finished (FIN each way)
  kIdleTimeout,    // no byte either way for idle_timeout
  kMaxLifetime,    // max_lifetime reached
  kDrainAge,       // the listener was removed and streams.max_drain_age passed
  kShutdown,       // the process's drain deadline cut it
  kClientError,    // reset or error on the client side
  kUpstreamError,  // reset or error on the upstream side
  kConnectFailed,  // no host accepted within the connect budget
  kNoHost,         // the balancer had no available host
  kIpDenied,       // refused by ip_restriction
  kLimit,          // refused: the listener's max_connections
  kClusterLimit,   // refused: the cluster's circuit_breakers.max_connections
  kRejected,       // refused by the listener's first-bytes inspector
  kCount
};
const char* closeReasonName(CloseReason r);

struct ListenerCells {
  metrics::Counter connections;  // accepted
  metrics::Gauge active;         // being relayed now (refused ones never count)
  metrics::Counter bytes_in;     // from clients
  metrics::Counter bytes_out;    // to clients
  std::array<metrics::Counter, static_cast<size_t>(CloseReason::kCount)> closes;
  metrics::SessionHistogram duration;  // accept to close
};

struct ClusterCells {
  metrics::Counter connections;  // upstream connections made
  metrics::Gauge active;
  metrics::Counter connect_failures;  // each failed attempt, retries included
  metrics::Counter bytes_sent;        // to the cluster's hosts
  metrics::Counter bytes_received;
};

using ListenerStats = ListenerEntry<ListenerCells>;
using ClusterStats = ClusterEntry<ClusterCells>;

// The process's entries; created on first use by name. Any thread (a mutex guards the maps;
// callers keep the returned reference, which stays valid for the life of the process).
ListenerStats& listenerStats(std::string_view listener);
ClusterStats& clusterStats(std::string_view cluster);

}  // namespace gatehouse::l4
