#pragma once
// Policy `cors`: Cross-Origin Resource Sharing as the Fetch standard defines it. The gateway
// answers preflights itself (never proxied) and adds the CORS response headers to actual
// requests in the response phase, including on replies the gateway generates (401, 403, 404...).
#include <cstdint>

#include "http/filter.h"
#include "metrics/per_thread.h"

namespace gatehouse::policies::cors {

// One thread's counts (each thread writes only its own copy).
struct CounterCells {
  metrics::Counter preflight_allowed;
  metrics::Counter preflight_rejected;  // origin, method or headers not allowed
  metrics::Counter actual_allowed;
  metrics::Counter actual_rejected;  // origin not allowed: no CORS headers added
};

// Counted on the request path in the calling thread's cells; the getters sum every thread's.
struct Counters {
  CounterCells& local() const { return cells.local(); }
  uint64_t preflightAllowed() const { return cells.sum(&CounterCells::preflight_allowed); }
  uint64_t preflightRejected() const { return cells.sum(&CounterCells::preflight_rejected); }
  uint64_t actualAllowed() const { return cells.sum(&CounterCells::actual_allowed); }
  uint64_t actualRejected() const { return cells.sum(&CounterCells::actual_rejected); }

  mutable metrics::PerThread<CounterCells> cells;
};

const Counters* countersOf(const http::FilterFactory& factory);  // nullptr if not cors

Result<http::FilterFactoryPtr> build(const YAML::Node& config);

}  // namespace gatehouse::policies::cors
