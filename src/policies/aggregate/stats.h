#pragma once
// Per-call metrics of the `aggregate` policy, one series per (route, call):
//   gatehouse_aggregate_calls_total{route,call}
//   gatehouse_aggregate_call_failures_total{route,call,reason}
//   gatehouse_aggregate_call_duration_seconds{route,call} (histogram)
// Series are made at config load (control thread) and kept for the life of the process, so a
// reload keeps counting into the same series; their number is bounded by the configured calls.
// Workers count into their own cells (metrics::PerThread): no lock on the request path.
#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "metrics/cells.h"
#include "metrics/per_thread.h"

namespace gatehouse::policies::aggregate {

enum class Failure : uint8_t {
  kTimeout,      // the call's timeout passed
  kUnreachable,  // no host, connect or reset failures, breakers open
  kStatus,       // a non-2xx answer
  kBadBody,      // not JSON, or too large
  kSkipped,      // an input was missing: a call it reads failed, or a value was absent
  kCancelled,    // the client went away
  kCount
};
std::string_view failureName(Failure f);

struct CallCells {
  metrics::Counter calls;
  std::array<metrics::Counter, static_cast<size_t>(Failure::kCount)> failures;
  metrics::Histogram latency;
};

struct CallSeries {
  metrics::PerThread<CallCells> cells;
  void count(uint64_t latency_us, std::optional<Failure> failure) {
    CallCells& c = cells.local();
    c.calls.inc();
    if (failure) c.failures[static_cast<size_t>(*failure)].inc();
    c.latency.observeUs(latency_us);
  }
};

// The series of (route, call), made on first use. Control thread (config load).
CallSeries& callSeries(std::string_view route, std::string_view call);

}  // namespace gatehouse::policies::aggregate
