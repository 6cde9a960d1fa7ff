#pragma once
// Counters of UDP listeners and of the clusters they forward to, for /metrics. One entry per
// listener name and per cluster name, kept for the life of the process, so counts and the
// open-session count (which enforces max_sessions across workers) survive reloads. Workers
// write their own cells (metrics::PerThread); the admin thread sums them at scrape time.
#include <array>
#include <atomic>
#include <cstdint>
#include <string_view>

#include "l4/stats_table.h"
#include "metrics/cells.h"
#include "metrics/per_thread.h"

namespace gatehouse::l4 {

// Why a UDP session ended: the access log's close_reason and a label.
enum class UdpCloseReason : uint8_t {
  kIdleTimeout,    // no datagram either way for idle_timeout
  kResponses,      // the upstream sent the `responses` expected for every datagram
  kDrainAge,       // the listener was removed and streams.max_drain_age passed
  kShutdown,       // the process's drain deadline cut it
  kUpstreamError,  // the host refused (ICMP port unreachable) or a send failed for good
  kCount
};
const char* udpCloseReasonName(UdpCloseReason r);

// Why a datagram was dropped rather than forwarded.
enum class UdpDrop : uint8_t {
  kLimit,       // a new source beyond max_sessions
  kIpDenied,    // a source refused by ip_restriction
  kNoHost,      // the balancer had no available host (or the socket could not be made)
  kTruncated,   // longer than buffer_size
  kSendFailed,  // the socket buffer was full (nothing is queued) or the send failed
  kDraining,    // a new source on a removed listener or a draining process
  kCount
};
const char* udpDropName(UdpDrop d);

struct UdpListenerCells {
  metrics::Counter sessions;       // sessions created
  metrics::Gauge active;           // sessions open now
  metrics::Counter datagrams_in;   // from clients, forwarded
  metrics::Counter datagrams_out;  // to clients
  metrics::Counter bytes_in;       // from clients, forwarded
  metrics::Counter bytes_out;      // to clients
  std::array<metrics::Counter, static_cast<size_t>(UdpCloseReason::kCount)> closes;
  std::array<metrics::Counter, static_cast<size_t>(UdpDrop::kCount)> drops;
  metrics::SessionHistogram duration;  // first datagram to close
};

struct UdpClusterCells {
  metrics::Counter sessions;  // upstream sockets made
  metrics::Gauge active;
  metrics::Counter datagrams_sent;  // to the cluster's hosts
  metrics::Counter datagrams_received;
  metrics::Counter bytes_sent;
  metrics::Counter bytes_received;
  metrics::Counter errors;  // refusals (ICMP port unreachable) and failed sends
};

using UdpListenerStats = ListenerEntry<UdpListenerCells>;
using UdpClusterStats = ClusterEntry<UdpClusterCells>;

// The process's entries; created on first use by name. Any thread; the references stay valid
// for the life of the process.
UdpListenerStats& udpListenerStats(std::string_view listener);
UdpClusterStats& udpClusterStats(std::string_view cluster);

}  // namespace gatehouse::l4
