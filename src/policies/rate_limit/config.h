#pragma once
// The config half of policy `rate_limit`: parsed and validated once on the control thread, then
// immutable (except for the limiter table's atomics) and shared by every worker.
#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "http/filter.h"
#include "policies/rate_limit/common.h"
#include "policies/rate_limit/limiter.h"

namespace YAML {
class Node;
}

namespace gatehouse::policies::rate_limit {

// kHybrid: like kRedis, but each process takes a batch of requests from the global budget and
// spends it locally before asking Redis again.
enum class Mode { kLocal, kRedis, kHybrid };

// Counters of one policy instance, kept by name across reloads so that /metrics counters do not
// reset when the config is reloaded. Relaxed atomics: all workers write them.
struct InstanceCounters {
  std::string name;
  std::atomic<uint64_t> allowed{0};
  std::atomic<uint64_t> limited{0};
  std::atomic<uint64_t> missing_key{0};
  std::atomic<uint64_t> overflow{0};      // requests charged to the shared overflow entry
  std::atomic<uint64_t> redis_errors{0};  // calls that failed or timed out
  std::atomic<uint64_t> degraded{0};      // requests decided by on_redis_error
};

struct RateLimitConfig : KeyedLimitOptions {
  std::string name;
  Mode mode = Mode::kLocal;
  RedisSettings redis;  // modes kRedis and kHybrid
  uint64_t hybrid_batch = 10;
  runtime::Duration hybrid_ttl = std::chrono::seconds(1);  // unused allowance expires
  // Mode redis: an in-flight entry not released by then (its gateway died) stops counting.
  int64_t concurrency_lease_ns = 60'000'000'000;
};

// The limits a fallback table enforces while Redis is away: those with on_redis_error
// fallback, their rates and bursts scaled by `share` (at least 1).
std::vector<LimitSpec> fallbackLimits(const RateLimitConfig& c);

// Validates `config` (errors name the bad option).
Result<RateLimitConfig> parseConfig(const YAML::Node& config);

// The instance counters for `name`, created on first use and kept for the process lifetime.
std::shared_ptr<InstanceCounters> countersFor(const std::string& name);
// Appends every instance's counters in Prometheus text format (a runtime metrics renderer).
void renderMetrics(std::string& out);

}  // namespace gatehouse::policies::rate_limit
