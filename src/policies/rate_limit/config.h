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
#include "metrics/per_thread.h"
#include "policies/rate_limit/common.h"
#include "policies/rate_limit/limiter.h"

namespace YAML {
class Node;
}

namespace gatehouse::metrics {
class Scrape;
}

namespace gatehouse::policies::rate_limit {

// kHybrid: like kRedis, but each process takes a batch of requests from the global budget and
// spends it locally before asking Redis again.
enum class Mode { kLocal, kRedis, kHybrid };

// One thread's counters of one policy instance (metrics::Counter: that thread alone writes them).
struct InstanceCounterCells {
  metrics::Counter allowed;
  metrics::Counter limited;
  metrics::Counter missing_key;
  metrics::Counter overflow;      // requests charged to the shared overflow entry
  metrics::Counter redis_errors;  // calls that failed or timed out
  metrics::Counter degraded;      // requests decided by on_redis_error
};

// Counters of one policy instance, kept by name across reloads so that /metrics counters do not
// reset when the config is reloaded. Each worker counts in its own cells; /metrics sums them.
struct InstanceCounters {
  std::string name;
  metrics::PerThread<InstanceCounterCells> cells;
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
void collectMetrics(metrics::Scrape& scrape);

}  // namespace gatehouse::policies::rate_limit
