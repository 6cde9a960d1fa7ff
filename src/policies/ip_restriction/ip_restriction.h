#pragma once
// Policy `ip_restriction`: allows or denies a request by ctx.client_ip (the real client address,
// already resolved through forwarded.trusted_proxies) against CIDR lists.
#include <cstdint>

#include "http/filter.h"
#include "metrics/per_thread.h"

namespace gatehouse::policies::ip_restriction {

// One thread's counts (each thread writes only its own copy).
struct CounterCells {
  metrics::Counter allowed;
  metrics::Counter denied;       // matched the deny list
  metrics::Counter not_allowed;  // not on the allow list (or no usable client IP)
};

// Counted on the request path in the calling thread's cells; the getters sum every thread's.
struct Counters {
  CounterCells& local() const { return cells.local(); }
  uint64_t allowed() const { return cells.sum(&CounterCells::allowed); }
  uint64_t denied() const { return cells.sum(&CounterCells::denied); }
  uint64_t notAllowed() const { return cells.sum(&CounterCells::not_allowed); }

  mutable metrics::PerThread<CounterCells> cells;
};

const Counters* countersOf(const http::FilterFactory& factory);  // nullptr if not ip_restriction

Result<http::FilterFactoryPtr> build(const YAML::Node& config);

}  // namespace gatehouse::policies::ip_restriction
