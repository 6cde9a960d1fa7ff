#pragma once
// Policy `acl`: allows or denies a request by ctx.consumer and ctx.consumer_groups, as set by
// an authentication policy (e.g. `key_auth`) earlier in the chain.
#include <cstdint>

#include "http/filter.h"
#include "metrics/per_thread.h"

namespace gatehouse::policies::acl {

// One thread's counts (each thread writes only its own copy).
struct CounterCells {
  metrics::Counter allowed;
  metrics::Counter denied;           // matched the deny list
  metrics::Counter not_allowed;      // authenticated but not on the allow list
  metrics::Counter unauthenticated;  // no consumer while an allow list exists
};

// Counted on the request path in the calling thread's cells; the getters sum every thread's.
struct Counters {
  CounterCells& local() const { return cells.local(); }
  uint64_t allowed() const { return cells.sum(&CounterCells::allowed); }
  uint64_t denied() const { return cells.sum(&CounterCells::denied); }
  uint64_t notAllowed() const { return cells.sum(&CounterCells::not_allowed); }
  uint64_t unauthenticated() const { return cells.sum(&CounterCells::unauthenticated); }

  mutable metrics::PerThread<CounterCells> cells;
};

const Counters* countersOf(const http::FilterFactory& factory);  // nullptr if not acl

// With a top-level consumers registry, every consumer name must be in it or be set by an
// earlier auth policy on the route (an inline consumer, an anonymous name).
Result<http::FilterFactoryPtr> build(const YAML::Node& config, const http::PolicyContext& ctx);

}  // namespace gatehouse::policies::acl
