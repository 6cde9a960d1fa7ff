#pragma once
// The `cache` policy's metrics: what each route's requests got from the cache (per-thread
// counters bumped by workers), and per zone what the store holds and what coalescing did
// (read from the stores at scrape time, on the admin thread).
#include <cstddef>
#include <string>
#include <string_view>

#include "metrics/per_thread.h"

namespace gatehouse::policies::cache {

enum class Outcome { kHit, kMiss, kRevalidated, kStaleIfError, kBypass, kStaleWhileRevalidate };
inline constexpr size_t kOutcomeCount = 6;

struct OutcomeCells {
  metrics::Counter by_outcome[kOutcomeCount];
};

// One route's counters; lives for the process, so a reload keeps counting where it was.
struct RouteStats {
  std::string route;
  metrics::PerThread<OutcomeCells> cells;
  void count(Outcome o) { cells.local().by_outcome[static_cast<size_t>(o)].inc(); }
};

// The counters of `route` ("<virtual host>/<route>"), made on first use. Control thread.
RouteStats& routeStats(std::string_view route);
// Puts the families on /metrics (idempotent). Control thread.
void registerMetrics();

}  // namespace gatehouse::policies::cache
