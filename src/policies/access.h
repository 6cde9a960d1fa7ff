#pragma once
// What the policies that allow or deny requests (acl, ip_restriction, cors) share: answers that
// count the decision in one of the policy's counters (relaxed atomics, written by every worker),
// and finding those counters from the factory (tests, metrics).
#include <atomic>
#include <cstdint>
#include <utility>

#include "http/filter.h"

namespace gatehouse::policies {

inline http::Verdict allow(std::atomic<uint64_t>& counter) {
  counter.fetch_add(1, std::memory_order_relaxed);
  return http::Verdict::kContinue;
}

inline http::Verdict forbid(http::RequestContext& ctx, std::atomic<uint64_t>& counter) {
  counter.fetch_add(1, std::memory_order_relaxed);
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
