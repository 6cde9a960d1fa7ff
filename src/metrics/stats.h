#pragma once
// Metrics without locks or shared cache lines on the request path: every worker owns its own
// counters (single writer, relaxed atomics so the admin thread can read them), and the admin
// endpoint sums them (metrics::Scrape). Route and cluster series are addressed by slots that stay
// stable across reloads, so counters survive a config change. Cells: owning worker writes;
// slots: control thread allocates; rendering: admin thread.
#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "metrics/cells.h"
#include "metrics/registry.h"

namespace gatehouse::metrics {

// Why a timer closed a connection, a stream or a request: every timeout site counts one
// (gatehouse_timeouts_total{reason}) through WorkerStats::timeout().
enum class TimeoutReason : uint8_t {
  kClientHeader,
  kClientBody,
  kClientWrite,
  kIdleKeepalive,
  kUpstreamConnect,
  kUpstreamHeader,
  kUpstreamIdle,
  kRequestTotal,
  kGrpcDeadline,
  kGrpcUnary,
  kGrpcStreamIdle,
  kWebsocketIdle,
  kWebsocketLifetime,
  kSseIdle,
  kSseLifetime,
  kStreamDrainAge,
  kCount
};
const char* timeoutReasonName(TimeoutReason r);

// Why a listener with `proxy_protocol` closed a connection before serving it
// (gatehouse_proxy_protocol_refused_total{reason}).
enum class ProxyProtocolRefusal : uint8_t {
  kMissing,    // a trusted source sent no header
  kMalformed,  // a trusted source sent a malformed header
  kVersion,    // a header of a version the listener does not accept
  kUntrusted,  // a source outside `trusted` sent a header
  kTimeout,    // no complete header within timeouts.client_header
  kClosed,     // the peer closed (or reset) before a complete header
  kCount
};
const char* proxyProtocolRefusalName(ProxyProtocolRefusal r);

// How a WebSocket (upgrade tunnel) ended.
enum class TunnelClose : uint8_t { kClosed, kIdle, kLifetime, kDrainAge, kError, kCount };
const char* tunnelCloseName(TunnelClose r);

struct RouteStats {
  std::array<Counter, 6> by_class;  // 1xx..5xx, [0] = no response (connection aborted)
  Counter websocket_rejected;       // over websocket.max_connections
  std::array<Counter, static_cast<size_t>(TunnelClose::kCount)> websocket_closes;
  Histogram request_duration;  // request start -> finishRequest
};

// Per-route state shared by all workers (a cross-worker cap needs one counter): written with
// atomic read-modify-write, only when a tunnel opens or closes, never per request.
struct SharedRouteStats {
  std::atomic<int64_t> websockets_active{0};
};

// Why an upstream request was retried (label `reason` of gatehouse_upstream_retries_total).
enum class RetryReason : uint8_t { kConnectFailure, kRefusedStream, kReset, kTimeout, kStatus };
inline constexpr size_t kRetryReasons = 5;
std::string_view retryReasonName(RetryReason r);

struct ClusterStats {
  Counter requests;
  Counter connect_failures;
  Counter timeouts;
  Counter bad_responses;
  Counter no_host;
  Counter pool_reused;
  Counter pool_new;
  std::array<Counter, kRetryReasons> retries;  // by RetryReason
  Counter retry_budget_exhausted;              // a retry was due but the budget said no
  Counter active_requests;                     // gauge: requests in their upstream phase
  Counter active_retries;                      // gauge: of those, requests past a retry
  Counter pool_overflow;                       // connection limit per endpoint reached
  Histogram upstream_latency;                  // request sent -> response head received
};

struct WorkerStats {
  static constexpr size_t kChunk = 64;
  static constexpr size_t kMaxChunks = 1024;

  Counter connections_accepted;
  Counter connections_active;  // gauge, inc/dec by the owning worker
  Counter requests;
  Counter bad_requests;  // malformed client input (4xx before routing)
  Counter no_route;
  Counter timeouts_client;
  Counter tls_handshake_failures;
  std::array<Counter, static_cast<size_t>(TimeoutReason::kCount)> timeouts;
  Counter proxy_protocol_accepted;
  std::array<Counter, static_cast<size_t>(ProxyProtocolRefusal::kCount)> proxy_protocol_refused;
  std::array<std::unique_ptr<RouteStats[]>, kMaxChunks> route_chunks;
  std::array<std::unique_ptr<ClusterStats[]>, kMaxChunks> cluster_chunks;

  RouteStats& route(uint32_t slot) { return route_chunks[slot / kChunk][slot % kChunk]; }
  ClusterStats& cluster(uint32_t slot) { return cluster_chunks[slot / kChunk][slot % kChunk]; }
  void timeout(TimeoutReason r) { timeouts[static_cast<size_t>(r)].inc(); }
  // Owned by Stats; the same objects for every worker.
  std::array<std::unique_ptr<SharedRouteStats[]>, kMaxChunks>* shared_route_chunks = nullptr;
  SharedRouteStats& sharedRoute(uint32_t slot) {
    return (*shared_route_chunks)[slot / kChunk][slot % kChunk];
  }
};

class Stats {
 public:
  explicit Stats(int workers);

  // Control thread only. Allocates storage for the slot in every worker before returning, so
  // the snapshot that uses the slot can be published afterwards.
  uint32_t routeSlot(const std::string& name);
  uint32_t clusterSlot(const std::string& name);

  WorkerStats& worker(int i) { return *workers_[static_cast<size_t>(i)]; }
  int workerCount() const { return static_cast<int>(workers_.size()); }

  Counter reloads_ok;
  Counter reloads_failed;
  std::atomic<int64_t> config_loaded_at{0};

  // The whole /metrics page: these stats, every collector of metrics::Registry::process(), then
  // `extra` (state the caller owns, e.g. the active snapshot's health). Admin thread.
  std::string renderPrometheus(const metrics::Collector& extra = {}) const;

 private:
  template <typename Getter>
  uint64_t sum(Getter getter) const;
  void collectWorkers(metrics::Scrape& scrape) const;
  void collectRoutes(metrics::Scrape& scrape) const;
  void collectClusters(metrics::Scrape& scrape) const;

  mutable std::mutex mu_;  // guards the name maps (admin reads them)
  std::vector<std::unique_ptr<WorkerStats>> workers_;
  std::array<std::unique_ptr<SharedRouteStats[]>, WorkerStats::kMaxChunks> shared_route_chunks_;
  std::unordered_map<std::string, uint32_t> route_slots_;
  std::unordered_map<std::string, uint32_t> cluster_slots_;
  std::vector<std::string> route_names_;
  std::vector<std::string> cluster_names_;
};

}  // namespace gatehouse::metrics
