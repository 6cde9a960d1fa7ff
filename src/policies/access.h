#pragma once
// The answers of the access-control policies (acl, ip_restriction): count the decision in one of
// the policy's counters (relaxed atomics, written by every worker), then continue or 403.
#include <atomic>
#include <cstdint>

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

}  // namespace gatehouse::policies
