#pragma once
// The `cache` policy's metrics: what each route's requests got from the cache (per-thread
// counters bumped by workers), and per zone what the store holds and what coalescing did
// (read from the stores at scrape time, on the admin thread).
#include <cstddef>
#include <string_view>

#include "metrics/route_outcomes.h"

namespace gatehouse::policies::cache {

enum class Outcome { kHit, kMiss, kRevalidated, kStaleIfError, kBypass, kStaleWhileRevalidate };
inline constexpr size_t kOutcomeCount = 6;

using RouteStats = metrics::RouteOutcomes<Outcome, kOutcomeCount>::Series;

// The counters of `route` ("<virtual host>/<route>"), made on first use. Control thread.
RouteStats& routeStats(std::string_view route);
// Puts the families on /metrics (idempotent). Control thread.
void registerMetrics();

}  // namespace gatehouse::policies::cache
