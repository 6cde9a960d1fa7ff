#pragma once
// Health of one upstream host, shared by the control thread and every worker. The control
// thread owns these objects (upstream::HealthRegistry), keeps one per (cluster, host) across
// reloads while the host stays configured, and attaches it to lb::Host in each snapshot.
// Workers read the atomics without locks; outlier detection (HealthAwareBalancer::onEnd) also
// writes a few of them from whichever worker sees the failure. Every field is independent, so
// relaxed ordering is enough: a worker that sees a change a little late routes one more request
// by the old state, which is the same race as the change happening a moment later.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "core/owner_thread.h"

namespace gatehouse::lb {

// A counter with one writer thread: a plain load + store, no locked instruction. Other threads
// (the control thread, /metrics) only read it. Debug builds check the single writer: the first
// thread to write owns it.
struct SingleWriterCounter {
  std::atomic<uint64_t> v{0};
  void inc() {
    GH_CLAIM_OWNER(writer);
    v.store(v.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  void dec() {
    GH_CLAIM_OWNER(writer);
    v.store(v.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
  }
  uint64_t get() const { return v.load(std::memory_order_relaxed); }
  [[no_unique_address]] OwnerThread writer;
};

// Per (host, worker thread) request counters, written by that worker's balancers only, so the
// request path shares no cache line between cores. Summed by the control thread (success-rate
// outlier detection) and by /metrics.
struct alignas(64) HostCounters {
  SingleWriterCounter selected;  // requests dispatched to the host
  SingleWriterCounter active;    // in flight now (gauge)
  SingleWriterCounter requests;  // finished, success or failure (abandoned ones excluded)
  SingleWriterCounter failures;  // 5xx or gateway errors
};

struct HostCountersSum {
  uint64_t selected = 0;
  uint64_t active = 0;
  uint64_t requests = 0;
  uint64_t failures = 0;
};

// Per cluster: what tells the workers' balancers to rebuild their view of available hosts.
struct ClusterHealthState {
  // Bumped on every change of a host's availability or slow-start weight. Balancers compare it
  // with the value they built from: one relaxed load per pick.
  std::atomic<uint64_t> epoch{0};
  // Hosts ejected by outlier detection now; bounded by max_ejection_percent.
  std::atomic<uint32_t> ejected{0};

  void bump() { epoch.fetch_add(1, std::memory_order_relaxed); }
};

// Times are steady_clock nanoseconds since its epoch (0 = never).
struct HostHealth {
  explicit HostHealth(std::shared_ptr<ClusterHealthState> c) : cluster(std::move(c)) {}

  // Active health check verdict; true until checks say otherwise (and without checks).
  std::atomic<bool> check_healthy{true};
  // Drained by an operator (admin API): no new requests, whatever the checks say. Set on the
  // control thread, which bumps the cluster's epoch so balancers rebuild their view.
  std::atomic<bool> admin_drained{false};
  // Outlier ejection: `ejected` is claimed by the worker that ejects; the control thread clears
  // it once `ejected_until_ns` has passed.
  std::atomic<bool> ejected{false};
  std::atomic<int64_t> ejected_until_ns{0};
  // When the host last became available, for slow start; 0 = no ramp (present from the start).
  std::atomic<int64_t> available_since_ns{0};
  // Consecutive failed requests seen by any worker. Only written on a success when non-zero,
  // so the success path does not bounce this cache line between cores.
  std::atomic<uint32_t> consecutive_failures{0};
  // Ejections so far, the multiplier of the ejection time; decays while the host behaves.
  std::atomic<uint32_t> ejection_level{0};
  std::atomic<uint64_t> ejections_total{0};
  // Control thread only: when the ejection level next decays by one, and check counters.
  int64_t level_decay_at_ns = 0;
  uint64_t checks_passed = 0;
  uint64_t checks_failed = 0;
  // Control thread only: request totals at the last success-rate evaluation.
  uint64_t sr_last_requests = 0;
  uint64_t sr_last_failures = 0;

  // The calling thread's counters, created on first use. Called when a balancer is built (not
  // per request); the block lives as long as this object, so counts survive reloads.
  HostCounters& countersForThisThread() {
    const auto id = std::this_thread::get_id();
    std::lock_guard lock(counters_mu_);
    for (auto& [tid, c] : counters_) {
      if (tid == id) return *c;
    }
    counters_.emplace_back(id, std::make_unique<HostCounters>());
    return *counters_.back().second;
  }
  HostCountersSum sumCounters() const {
    HostCountersSum s;
    std::lock_guard lock(counters_mu_);
    for (const auto& [tid, c] : counters_) {
      s.selected += c->selected.get();
      s.active += c->active.get();
      s.requests += c->requests.get();
      s.failures += c->failures.get();
    }
    return s;
  }

  std::shared_ptr<ClusterHealthState> cluster;

  bool available(int64_t now_ns) const {
    return check_healthy.load(std::memory_order_relaxed) &&
           !admin_drained.load(std::memory_order_relaxed) &&
           ejected_until_ns.load(std::memory_order_relaxed) <= now_ns;
  }

 private:
  mutable std::mutex counters_mu_;
  std::vector<std::pair<std::thread::id, std::unique_ptr<HostCounters>>> counters_;
};

using HostHealthPtr = std::shared_ptr<HostHealth>;

inline int64_t steadyNowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace gatehouse::lb
