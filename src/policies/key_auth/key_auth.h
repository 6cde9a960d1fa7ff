#pragma once
// Policy `key_auth`: authenticates a request by an API key taken from a header and/or a query
// parameter, sets ctx.consumer / ctx.consumer_groups, or answers 401.
#include <cstdint>

#include "http/filter.h"
#include "metrics/per_thread.h"

namespace gatehouse::policies::key_auth {

// One thread's counts (each thread writes only its own copy).
struct CounterCells {
  metrics::Counter accepted;
  metrics::Counter anonymous;
  metrics::Counter missing;
  metrics::Counter invalid;
};

// Per-outcome counters, kept on the (shared, immutable) factory; read by tests and, later, by
// a /metrics exporter. Counted in the calling thread's cells; the getters sum every thread's.
struct Counters {
  CounterCells& local() const { return cells.local(); }
  uint64_t accepted() const { return cells.sum(&CounterCells::accepted); }
  uint64_t anonymous() const { return cells.sum(&CounterCells::anonymous); }
  uint64_t missing() const { return cells.sum(&CounterCells::missing); }
  uint64_t invalid() const { return cells.sum(&CounterCells::invalid); }

  mutable metrics::PerThread<CounterCells> cells;
};

const Counters* countersOf(const http::FilterFactory& factory);  // nullptr if not key_auth

// `consumers`: an inline list (as before), a list of names from the top-level registry, or
// "registry" / absent for every registry consumer with an API key.
Result<http::FilterFactoryPtr> build(const YAML::Node& config, const http::PolicyContext& ctx);

}  // namespace gatehouse::policies::key_auth
