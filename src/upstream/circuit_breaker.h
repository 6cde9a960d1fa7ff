#pragma once
// Circuit breakers of one cluster (Envoy semantics): caps on open connections, requests waiting
// for a connection (pending), requests in flight and retries in flight, shared by every worker.
//
// The counters live in one ClusterBreaker per cluster name, kept across reloads by
// upstream::HealthRegistry like the cluster's health state, so a request or connection that
// started under the old snapshot releases into the same counters. The limits come from the
// snapshot (Breakers), so a reload changes them at once. Relaxed atomics only: no lock on the
// request path. A counter is taken with fetch_add and given back when it went past the cap, so
// racing workers never exceed the cap together. Overflows are only a metric: each thread counts
// them in its own cells (metrics::PerThread), summed when read.
#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "metrics/per_thread.h"

namespace gatehouse::metrics {
class Scrape;
}

namespace gatehouse::upstream {

enum class Limit : uint8_t { kConnections = 0, kPending, kRequests, kRetries };
inline constexpr size_t kLimitCount = 4;

// "max_connections", "max_pending_requests", "max_requests", "max_retries": the option name,
// the x-gatehouse-overflow header value and the metrics label.
std::string_view limitName(Limit l);

class ClusterBreaker {
 public:
  // Takes one unit of `l` when fewer than `max` are taken; otherwise counts an overflow and
  // returns false. Any thread.
  bool tryAcquire(Limit l, uint64_t max);
  // The same without counting an overflow.
  bool tryTake(Limit l, uint64_t max);
  void release(Limit l) { counters_[idx(l)].current.fetch_sub(1, std::memory_order_relaxed); }
  // An overflow decided elsewhere (a pending request that timed out waiting for a connection).
  void countOverflow(Limit l) { overflows_.local()[idx(l)].inc(); }
  uint64_t current(Limit l) const {
    return counters_[idx(l)].current.load(std::memory_order_relaxed);
  }
  uint64_t overflows(Limit l) const {
    uint64_t total = 0;
    overflows_.forEach([&](const OverflowCells& c) { total += c[idx(l)].get(); });
    return total;
  }

 private:
  static size_t idx(Limit l) { return static_cast<size_t>(l); }
  // One cache line each: connections and requests are taken by different code paths.
  struct alignas(64) Counter {
    std::atomic<uint64_t> current{0};
  };
  using OverflowCells = std::array<metrics::Counter, kLimitCount>;
  std::array<Counter, kLimitCount> counters_;
  metrics::PerThread<OverflowCells> overflows_;
};

// One unit of a limit, given back on destruction. Holds the breaker by raw pointer: a request
// holds its snapshot, which holds the breaker, for longer than any guard it takes.
class BreakerGuard {
 public:
  BreakerGuard() = default;
  BreakerGuard(const BreakerGuard&) = delete;
  BreakerGuard& operator=(const BreakerGuard&) = delete;
  BreakerGuard(BreakerGuard&& o) noexcept : b_(std::exchange(o.b_, nullptr)), limit_(o.limit_) {}
  BreakerGuard& operator=(BreakerGuard&& o) noexcept {
    if (this != &o) {
      reset();
      b_ = std::exchange(o.b_, nullptr);
      limit_ = o.limit_;
    }
    return *this;
  }
  ~BreakerGuard() { reset(); }
  // False (overflow counted) when `max` units are taken already; any unit held is given back
  // first.
  bool acquire(ClusterBreaker& b, Limit l, uint64_t max);
  void reset() {
    if (b_) b_->release(limit_);
    b_ = nullptr;
  }
  bool held() const { return b_ != nullptr; }

 private:
  ClusterBreaker* b_ = nullptr;
  Limit limit_ = Limit::kRequests;
};

// One open upstream connection counted against max_connections. Pooled connections outlive
// snapshots, so the slot shares ownership of the breaker.
class ConnectionSlot {
 public:
  ConnectionSlot() = default;
  ConnectionSlot(const ConnectionSlot&) = delete;
  ConnectionSlot& operator=(const ConnectionSlot&) = delete;
  ConnectionSlot(ConnectionSlot&& o) noexcept = default;
  ConnectionSlot& operator=(ConnectionSlot&& o) noexcept {
    if (this != &o) {
      reset();
      b_ = std::move(o.b_);
    }
    return *this;
  }
  ~ConnectionSlot() { reset(); }
  // Without counting an overflow: a request at the cap waits as pending first.
  bool tryAcquire(const std::shared_ptr<ClusterBreaker>& b, uint64_t max);
  void reset() {
    if (b_) b_->release(Limit::kConnections);
    b_.reset();
  }
  bool held() const { return b_ != nullptr; }
  // Some request of this cluster (on any worker) waits for a connection: an idle connection
  // with nobody local to take it is better closed, to free its slot.
  bool othersWaiting() const { return b_ && b_->current(Limit::kPending) > 0; }

 private:
  std::shared_ptr<ClusterBreaker> b_;
};

// A cluster's breakers as compiled into a snapshot: the shared counters and this config's caps.
struct Breakers {
  std::shared_ptr<ClusterBreaker> state;  // kept across reloads; never null in a snapshot
  bool enabled = false;                   // `circuit_breakers:` configured
  std::array<uint64_t, kLimitCount> max{};

  uint64_t cap(Limit l) const { return max[static_cast<size_t>(l)]; }
  // True with `g` holding a unit of `l`, or with `g` empty when breakers are off; false at the
  // cap (overflow counted). Worker thread.
  bool tryAcquire(Limit l, BreakerGuard& g) const {
    return !enabled || g.acquire(*state, l, cap(l));
  }
  // For the retry policy: take this before a retry, hold it while the retry runs.
  bool tryAcquireRetry(BreakerGuard& g) const { return tryAcquire(Limit::kRetries, g); }
};

// One cluster's breaker metrics for /metrics (control or admin thread).
struct BreakerView {
  std::string_view cluster;
  const Breakers* breakers = nullptr;
};
// The gatehouse_cluster_breaker_* families, for clusters with breakers. Admin thread.
void collectBreakerMetrics(metrics::Scrape& scrape, const std::vector<BreakerView>& clusters);

}  // namespace gatehouse::upstream
