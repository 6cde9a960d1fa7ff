#include "policies/adaptive_concurrency/limiter.h"

#include <algorithm>
#include <cmath>

namespace gatehouse::policies::adaptive_concurrency {
namespace {

constexpr uint32_t kAimdStartLimit = 100;
constexpr double kMinGradient = 0.5;
constexpr double kMaxGradient = 2.0;

}  // namespace

uint32_t Params::startLimit() const {
  uint32_t l = initial_limit;
  if (l == 0) l = algorithm == Algorithm::kGradient ? min_limit : kAimdStartLimit;
  return std::clamp(l, min_limit, max_limit);
}

Limiter::Limiter(const Params& p, int64_t now_ns)
    : p_(p), limit_(p.startLimit()), next_update_ns_(now_ns + p.window_ns) {
  if (p_.algorithm == Params::Algorithm::kGradient) {
    saved_limit_.store(p_.startLimit(), std::memory_order_relaxed);
    startMinRtt();
  }
}

bool Limiter::tryAcquire() {
  if (in_flight_.fetch_add(1, std::memory_order_relaxed) < limit_.load(std::memory_order_relaxed))
    return true;
  in_flight_.fetch_sub(1, std::memory_order_relaxed);
  rejected_.local().count.inc();
  return false;
}

void Limiter::release(int64_t now_ns, int64_t latency_ns) {
  in_flight_.fetch_sub(1, std::memory_order_relaxed);
  if (latency_ns >= 0) sample(now_ns, latency_ns);
}

void Limiter::startMinRtt() {
  rtt_sum_ns_.store(0, std::memory_order_relaxed);
  rtt_count_.store(0, std::memory_order_relaxed);
  measuring_.store(true, std::memory_order_relaxed);
  limit_.store(p_.min_limit, std::memory_order_relaxed);
}

void Limiter::sample(int64_t now_ns, int64_t latency_ns) {
  if (measuring_.load(std::memory_order_relaxed)) {
    rtt_sum_ns_.fetch_add(latency_ns, std::memory_order_relaxed);
    // Exactly one caller sees the count reach the target: it ends the measurement.
    const uint32_t n = rtt_count_.fetch_add(1, std::memory_order_relaxed) + 1;
    if (n != p_.min_rtt_samples) return;
    min_rtt_ns_.store(rtt_sum_ns_.load(std::memory_order_relaxed) / n, std::memory_order_relaxed);
    next_min_rtt_ns_.store(now_ns + p_.min_rtt_interval_ns, std::memory_order_relaxed);
    // Samples taken at the pinned limit say nothing about the restored one.
    window_sum_ns_.store(0, std::memory_order_relaxed);
    window_count_.store(0, std::memory_order_relaxed);
    next_update_ns_.store(now_ns + p_.window_ns, std::memory_order_relaxed);
    limit_.store(saved_limit_.load(std::memory_order_relaxed), std::memory_order_relaxed);
    measuring_.store(false, std::memory_order_relaxed);
    return;
  }
  window_sum_ns_.fetch_add(latency_ns, std::memory_order_relaxed);
  window_count_.fetch_add(1, std::memory_order_relaxed);
  int64_t due = next_update_ns_.load(std::memory_order_relaxed);
  // The worker whose compare-exchange wins closes the window; the others go on.
  if (now_ns >= due && next_update_ns_.compare_exchange_strong(due, now_ns + p_.window_ns,
                                                               std::memory_order_relaxed)) {
    updateWindow(now_ns);
  }
}

void Limiter::updateWindow(int64_t now_ns) {
  const uint64_t count = window_count_.exchange(0, std::memory_order_relaxed);
  const int64_t sum = window_sum_ns_.exchange(0, std::memory_order_relaxed);
  if (count == 0) return;
  const double mean = static_cast<double>(sum) / static_cast<double>(count);
  const double cur = limit_.load(std::memory_order_relaxed);
  double next = cur;
  if (p_.algorithm == Params::Algorithm::kGradient) {
    const double min_rtt = static_cast<double>(min_rtt_ns_.load(std::memory_order_relaxed));
    const double g =
        mean <= 0 ? kMaxGradient
                  : std::clamp(min_rtt * (1.0 + p_.buffer) / mean, kMinGradient, kMaxGradient);
    next = cur * g;
    next += std::sqrt(next);  // headroom: lets the limit probe upwards when latency is flat
  } else {
    next = static_cast<double>(count) > 0 && mean > static_cast<double>(p_.latency_threshold_ns)
               ? std::floor(cur * p_.decrease_factor)
               : cur + 1;
  }
  const auto bounded = static_cast<uint32_t>(
      std::clamp(next, static_cast<double>(p_.min_limit), static_cast<double>(p_.max_limit)));
  if (p_.algorithm == Params::Algorithm::kGradient &&
      now_ns >= next_min_rtt_ns_.load(std::memory_order_relaxed)) {
    // Time to measure the min RTT again: pinned to min_limit until it is known.
    saved_limit_.store(bounded, std::memory_order_relaxed);
    startMinRtt();
    return;
  }
  limit_.store(bounded, std::memory_order_relaxed);
}

}  // namespace gatehouse::policies::adaptive_concurrency
