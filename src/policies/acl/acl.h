#pragma once
// Policy `acl`: allows or denies a request by ctx.consumer and ctx.consumer_groups, as set by
// an authentication policy (e.g. `key_auth`) earlier in the chain.
#include <atomic>
#include <cstdint>

#include "http/filter.h"

namespace gatehouse::policies::acl {

struct Counters {
  std::atomic<uint64_t> allowed{0};
  std::atomic<uint64_t> denied{0};           // matched the deny list
  std::atomic<uint64_t> not_allowed{0};      // authenticated but not on the allow list
  std::atomic<uint64_t> unauthenticated{0};  // no consumer while an allow list exists
};

const Counters* countersOf(const http::FilterFactory& factory);  // nullptr if not acl

// With a top-level consumers registry, every consumer name must be in it or be set by an
// earlier auth policy on the route (an inline consumer, an anonymous name).
Result<http::FilterFactoryPtr> build(const YAML::Node& config, const http::PolicyContext& ctx);

}  // namespace gatehouse::policies::acl
