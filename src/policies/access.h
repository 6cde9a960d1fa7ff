#pragma once
// What the policies that allow or deny requests (acl, ip_restriction, cors) share: answers that
// count the decision in one of the policy's counters (the calling thread's own cell: single
// writer, no locked instruction), and finding those counters from the factory (tests, metrics).
#include <cstdint>
#include <utility>

#include "http/filter.h"
#include "metrics/cells.h"

namespace gatehouse::policies {

inline http::Verdict allow(metrics::Counter& counter) {
  counter.inc();
  return http::Verdict::kContinue;
}

inline http::Verdict forbid(http::RequestContext& ctx, metrics::Counter& counter) {
  counter.inc();
  return ctx.respondError(403, "forbidden");
}

// The counters of `factory`'s filter when it is a StatelessFactory<F>, else nullptr.
template <class F>
auto countersOf(const http::FilterFactory& factory)
    -> decltype(&std::declval<const F&>().counters()) {
  const F* f = http::statelessFilterOf<F>(factory);
  return f ? &f->counters() : nullptr;
}

}  // namespace gatehouse::policies
