#pragma once
// Metrics without locks or shared cache lines on the request path: every worker owns its own
// counters (single writer, relaxed atomics so the admin thread can read them), and the admin
// endpoint sums them. Route and cluster series are addressed by slots that stay stable across
// reloads, so counters survive a config change.
#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/owner_thread.h"

namespace gatehouse::runtime {

// Escapes a Prometheus label value (backslash, double quote, newline).
std::string escapeLabel(std::string_view v);

// One counter family of a policy's named instances (rate_limit, quota): each instance's counters
// struct holds an atomic per family.
template <typename Counters>
struct PolicyCounterFamily {
  const char* name;
  const char* help;
  std::atomic<uint64_t> Counters::*field;
};

// Appends each family with one `{policy="<instance>"}` series per entry of `instances` (a map
// from instance name to a pointer to its counters).
template <typename Counters, size_t N, typename Instances>
void renderPolicyCounters(std::string& out, const PolicyCounterFamily<Counters> (&families)[N],
                          const Instances& instances) {
  for (const auto& f : families) {
    out.append("# HELP ").append(f.name).append(" ").append(f.help).append("\n");
    out.append("# TYPE ").append(f.name).append(" counter\n");
    for (const auto& [name, c] : instances) {
      out.append(f.name).append("{policy=\"").append(escapeLabel(name)).append("\"} ");
      out.append(std::to_string(((*c).*(f.field)).load(std::memory_order_relaxed))).append("\n");
    }
  }
}

struct Counter {
  std::atomic<uint64_t> v{0};
  // Single writer: a plain load + store is enough and avoids a locked instruction. A second
  // writer would lose updates without any data race for TSan to see, so debug builds check it:
  // the first thread to write owns the counter.
  void inc(uint64_t n = 1) {
    GH_CLAIM_OWNER(writer);
    v.store(v.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void dec(uint64_t n = 1) {
    GH_CLAIM_OWNER(writer);
    v.store(v.load(std::memory_order_relaxed) - n, std::memory_order_relaxed);
  }
  uint64_t get() const { return v.load(std::memory_order_relaxed); }
  [[no_unique_address]] OwnerThread writer;
};

struct Histogram {
  // Upper bounds in milliseconds; the last bucket is +Inf.
  static constexpr std::array<double, 14> kBoundsMs = {0.5, 1,   2.5, 5,    10,   25,   50,
                                                       100, 250, 500, 1000, 2500, 5000, 10000};
  std::array<Counter, kBoundsMs.size() + 1> buckets;
  Counter sum_us;
  Counter count;
  void observeUs(uint64_t us);
};

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

// How a WebSocket (upgrade tunnel) ended.
enum class TunnelClose : uint8_t { kClosed, kIdle, kLifetime, kDrainAge, kError, kCount };
const char* tunnelCloseName(TunnelClose r);

struct RouteStats {
  std::array<Counter, 6> by_class;  // 1xx..5xx, [0] = no response (connection aborted)
  Counter websocket_rejected;       // over websocket.max_connections
  std::array<Counter, static_cast<size_t>(TunnelClose::kCount)> websocket_closes;
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

  std::string renderPrometheus() const;

 private:
  mutable std::mutex mu_;  // guards the name maps (admin reads them)
  std::vector<std::unique_ptr<WorkerStats>> workers_;
  std::array<std::unique_ptr<SharedRouteStats[]>, WorkerStats::kMaxChunks> shared_route_chunks_;
  std::unordered_map<std::string, uint32_t> route_slots_;
  std::unordered_map<std::string, uint32_t> cluster_slots_;
  std::vector<std::string> route_names_;
  std::vector<std::string> cluster_names_;
};

}  // namespace gatehouse::runtime
