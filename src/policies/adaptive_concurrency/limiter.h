#pragma once
// The adaptive concurrency limit of one `adaptive_concurrency` policy, shared by every worker
// (relaxed atomics, no lock). Requests over the limit are refused; each finished request gives
// a latency sample; once per `window` the limit moves:
//  - gradient (Envoy's adaptive_concurrency filter): a minimum round-trip time is measured
//    with the limit pinned at min_limit (first, then every min_rtt_interval) as the mean of
//    min_rtt_samples samples; then each window,
//      gradient = clamp(min_rtt * (1 + buffer) / mean sample, 0.5, 2)
//      limit    = limit * gradient + sqrt(limit * gradient)     (headroom)
//    bounded by [min_limit, max_limit];
//  - aimd: each window, limit -= limit * (1 - decrease_factor) when the mean sample is above
//    latency_threshold, else limit += 1.
// The mean is used rather than Envoy's p50: it needs only two atomics. Times are injected
// (nanoseconds of a steady clock) so the algorithm is testable without sleeping. The rejection
// count is only a metric, not limiter state: each thread counts in its own cell.
#include <atomic>
#include <cstdint>

#include "metrics/per_thread.h"

namespace gatehouse::policies::adaptive_concurrency {

struct Params {
  enum class Algorithm { kGradient, kAimd };
  Algorithm algorithm = Algorithm::kGradient;
  uint32_t min_limit = 3;
  uint32_t max_limit = 1000;
  uint32_t initial_limit = 0;  // 0: min_limit for gradient (until min RTT is known), 100 aimd
  int64_t window_ns = 100'000'000;
  // gradient
  int64_t min_rtt_interval_ns = 60'000'000'000;
  uint32_t min_rtt_samples = 50;
  double buffer = 0.1;
  // aimd
  int64_t latency_threshold_ns = 0;
  double decrease_factor = 0.5;

  uint32_t startLimit() const;
};

class Limiter {
 public:
  Limiter(const Params& p, int64_t now_ns);

  // Takes an in-flight slot when below the limit; false (counted as rejected) otherwise.
  bool tryAcquire();
  // Gives the slot back; `latency_ns` < 0 when the request gave no sample (no upstream
  // response). May close the sample window and move the limit. Any worker.
  void release(int64_t now_ns, int64_t latency_ns);

  uint32_t limit() const { return limit_.load(std::memory_order_relaxed); }
  uint32_t inFlight() const { return in_flight_.load(std::memory_order_relaxed); }
  uint64_t rejected() const { return rejected_.sum(&RejectedCell::count); }
  int64_t minRttNs() const { return min_rtt_ns_.load(std::memory_order_relaxed); }
  bool measuringMinRtt() const { return measuring_.load(std::memory_order_relaxed); }
  const Params& params() const { return p_; }

 private:
  void sample(int64_t now_ns, int64_t latency_ns);
  void updateWindow(int64_t now_ns);
  void startMinRtt();

  struct RejectedCell {
    metrics::Counter count;
  };

  const Params p_;
  std::atomic<uint32_t> limit_;
  std::atomic<uint32_t> in_flight_{0};
  metrics::PerThread<RejectedCell> rejected_;
  // The current sample window.
  std::atomic<int64_t> window_sum_ns_{0};
  std::atomic<uint64_t> window_count_{0};
  std::atomic<int64_t> next_update_ns_;
  // Gradient: the min RTT measurement.
  std::atomic<bool> measuring_{false};
  std::atomic<int64_t> min_rtt_ns_{0};
  std::atomic<int64_t> rtt_sum_ns_{0};
  std::atomic<uint32_t> rtt_count_{0};
  std::atomic<uint32_t> saved_limit_{0};  // the limit to return to after a measurement
  std::atomic<int64_t> next_min_rtt_ns_{0};
};

}  // namespace gatehouse::policies::adaptive_concurrency
