#pragma once
// The config half of policy `quota` and the process-wide state that outlives a config
// snapshot (local counters and metrics kept by policy name across reloads).
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "core/result.h"
#include "metrics/per_thread.h"
#include "policies/rate_limit/common.h"
#include "policies/rate_limit/limiter.h"

namespace gatehouse::metrics {
class Scrape;
}

namespace gatehouse::policies::quota {

using rate_limit::HeaderStyle;
using rate_limit::KeySpec;
using rate_limit::LimitSpec;
using rate_limit::MissingKey;
using rate_limit::OnRedisError;

// Limits: kCalendar (period: day/week/month) or kSlidingWindow (rolling: DURATION). The key
// defaults to the consumer.
struct QuotaConfig : rate_limit::KeyedLimitOptions {
  std::string name = "quota";  // in admin URLs, metrics and Redis keys
  std::string time_zone = "UTC";
  bool use_redis = false;
  rate_limit::RedisSettings redis;  // prefix default "gatehouse:quota:"
  OnRedisError on_redis_error = OnRedisError::kFailOpen;
};

Result<QuotaConfig> parseConfig(const YAML::Node& config);

// One thread's counters of one quota policy (that thread alone writes them).
struct CounterCells {
  metrics::Counter allowed;
  metrics::Counter exceeded;
  metrics::Counter missing_key;
  metrics::Counter redis_errors;
  metrics::Counter degraded;
};
// A quota policy's counters by name, kept across reloads; /metrics sums the threads' cells.
struct Counters {
  std::string name;
  metrics::PerThread<CounterCells> cells;
};
std::shared_ptr<Counters> countersFor(const std::string& name);
void collectMetrics(metrics::Scrape& scrape);

// The local counter table of a policy: the same one again after a reload that keeps the
// policy's name, key and limits (so local quotas survive reloads, though not restarts).
std::shared_ptr<rate_limit::LimiterTable> localTableFor(const QuotaConfig& c);

}  // namespace gatehouse::policies::quota
