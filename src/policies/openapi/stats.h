#pragma once
// The `openapi_validate` policy's counters, per route: requests that passed, that were
// rejected, that matched no operation, and (report-only) responses that passed or did not.
// Workers bump their own cells; /metrics sums them on the admin thread.
#include <cstddef>
#include <string_view>

#include "metrics/route_outcomes.h"

namespace gatehouse::policies::openapi {

enum class Outcome {
  kRequestValid,
  kRequestInvalid,
  kUnknownOperation,
  kResponseValid,
  kResponseInvalid
};
inline constexpr size_t kOutcomeCount = 5;

using RouteStats = metrics::RouteOutcomes<Outcome, kOutcomeCount>::Series;

// The counters of `route` ("<virtual host>/<route>"), made on first use, and the family put
// on /metrics (idempotent). Control thread.
RouteStats& routeStats(std::string_view route);

}  // namespace gatehouse::policies::openapi
