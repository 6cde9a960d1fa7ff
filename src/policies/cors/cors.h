#pragma once
// Policy `cors`: Cross-Origin Resource Sharing as the Fetch standard defines it. The gateway
// answers preflights itself (never proxied) and adds the CORS response headers to actual
// requests in the response phase, including on replies the gateway generates (401, 403, 404...).
#include <atomic>
#include <cstdint>

#include "http/filter.h"

namespace gatehouse::policies::cors {

struct Counters {
  std::atomic<uint64_t> preflight_allowed{0};
  std::atomic<uint64_t> preflight_rejected{0};  // origin, method or headers not allowed
  std::atomic<uint64_t> actual_allowed{0};
  std::atomic<uint64_t> actual_rejected{0};  // origin not allowed: no CORS headers added
};

const Counters* countersOf(const http::FilterFactory& factory);  // nullptr if not cors

Result<http::FilterFactoryPtr> build(const YAML::Node& config);

}  // namespace gatehouse::policies::cors
