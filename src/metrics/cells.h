#pragma once
// The cells a worker writes on the request path: each cell has one writer thread (the worker
// that owns it), so an update is a relaxed load + store with no locked instruction, and the
// admin thread reads it with a relaxed load at scrape time and sums the workers' cells.
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "core/owner_thread.h"

namespace gatehouse::metrics {

// A monotonic count (or, with dec(), one worker's share of an up/down gauge: the shares of all
// workers sum to the gauge even when one worker's share wraps below zero).
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

// One worker's share of an up/down gauge; the scrape sums the shares as signed values.
struct Gauge {
  std::atomic<int64_t> v{0};
  void add(int64_t n) {
    GH_CLAIM_OWNER(writer);
    v.store(v.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void inc() { add(1); }
  void dec() { add(-1); }
  int64_t get() const { return v.load(std::memory_order_relaxed); }
  [[no_unique_address]] OwnerThread writer;
};

// Latency buckets shared by every request-duration histogram, in microseconds (rendered as
// seconds: 0.0005 .. 10); an observation above the last bound lands in +Inf.
inline constexpr std::array<uint64_t, 14> kLatencyBoundsUs = {
    500,    1000,   2500,   5000,    10000,   25000,   50000,
    100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000};

// Buckets of L4 session durations (TCP connections, UDP sessions), which last from
// milliseconds (a DNS exchange) to hours (a database connection): 1 ms .. 4 h.
inline constexpr std::array<uint64_t, 14> kSessionBoundsUs = {
    1000,     10000,     100000,    1000000,    5000000,    10000000,   30000000,
    60000000, 300000000, 900000000, 1800000000, 3600000000, 7200000000, 14400000000};

// One worker's cells of a duration histogram over `kBounds` (microseconds): non-cumulative
// bucket counts (the scrape makes them cumulative), the sum in microseconds and the count.
template <const auto& kBounds>
struct BoundedHistogram {
  static constexpr const auto& kBoundsUs = kBounds;
  static constexpr size_t kBuckets = kBounds.size() + 1;  // the last one is +Inf
  std::array<Counter, kBuckets> buckets;
  Counter sum_us;
  Counter count;

  void observeUs(uint64_t us) {
    size_t i = 0;
    while (i < kBounds.size() && us > kBounds[i])
      ++i;
    buckets[i].inc();
    sum_us.inc(us);
    count.inc();
  }
};

// A histogram summed over workers, as the scrape renders it.
template <const auto& kBounds>
struct BoundedHistogramTotals {
  static constexpr const auto& kBoundsUs = kBounds;
  static constexpr size_t kBuckets = kBounds.size() + 1;
  std::array<uint64_t, kBuckets> buckets{};  // not cumulative
  uint64_t sum_us = 0;
  uint64_t count = 0;

  void add(const BoundedHistogram<kBounds>& h) {
    for (size_t i = 0; i < kBuckets; ++i)
      buckets[i] += h.buckets[i].get();
    sum_us += h.sum_us.get();
    count += h.count.get();
  }
};

using Histogram = BoundedHistogram<kLatencyBoundsUs>;
using HistogramTotals = BoundedHistogramTotals<kLatencyBoundsUs>;
using SessionHistogram = BoundedHistogram<kSessionBoundsUs>;
using SessionHistogramTotals = BoundedHistogramTotals<kSessionBoundsUs>;

}  // namespace gatehouse::metrics
