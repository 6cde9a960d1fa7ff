#pragma once
// The `openapi_validate` policy's counters, per route: requests that passed, that were
// rejected, that matched no operation, and (report-only) responses that passed or did not.
// Workers bump their own cells; /metrics sums them on the admin thread.
#include <cstddef>
#include <string>
#include <string_view>

#include "metrics/per_thread.h"

namespace gatehouse::policies::openapi {

enum class Outcome {
  kRequestValid,
  kRequestInvalid,
  kUnknownOperation,
  kResponseValid,
  kResponseInvalid
};
inline constexpr size_t kOutcomeCount = 5;

struct OutcomeCells {
  metrics::Counter by_outcome[kOutcomeCount];
};

// One route's counters; lives for the process, so a reload keeps counting where it was.
struct RouteStats {
  std::string route;
  metrics::PerThread<OutcomeCells> cells;
  void count(Outcome o) { cells.local().by_outcome[static_cast<size_t>(o)].inc(); }
};

// The counters of `route` ("<virtual host>/<route>"), made on first use, and the family put
// on /metrics (idempotent). Control thread.
RouteStats& routeStats(std::string_view route);

}  // namespace gatehouse::policies::openapi
