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
#include "policies/rate_limit/limiter.h"
#include "policies/rate_limit/redis_client.h"

namespace YAML {
class Node;
}

namespace gatehouse::metrics {
class Scrape;
}

namespace gatehouse::policies::rate_limit {

enum class KeyPart { kClientIp, kRoute, kConsumer, kHeader, kClaim };
enum class MissingKey { kAllow, kDeny, kShared };
enum class HeaderStyle { kNone, kDraft, kLegacy };
// kHybrid: like kRedis, but each process takes a batch of requests from the global budget and
// spends it locally before asking Redis again.
enum class Mode { kLocal, kRedis, kHybrid };
// What a limit does while Redis cannot answer (down, timed out, erroring).
enum class OnRedisError { kFailOpen, kFailClosed, kFallback };

struct KeySpec {
  KeyPart part = KeyPart::kClientIp;
  std::string header;  // for kHeader; the claim name for kClaim
};

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

struct RedisSettings {
  RedisEndpoint endpoint;
  std::string prefix = "gatehouse:rl:";
  double fallback_share = 1.0;
  std::vector<OnRedisError> on_error;  // one per limit
};

struct RateLimitConfig {
  std::string name;
  std::vector<KeySpec> key;
  MissingKey missing_key = MissingKey::kShared;
  HeaderStyle headers = HeaderStyle::kDraft;
  bool headers_on_success = false;
  size_t max_keys = 65536;
  std::vector<LimitSpec> limits;
  std::string policy_header;  // precomputed RateLimit-Policy value
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

// Option readers shared with policy quota; errors name `what`.
Result<bool> readBool(const YAML::Node& node, std::string_view what);
Result<KeySpec> parseKeyPart(const YAML::Node& node, std::string_view what);
Result<OnRedisError> parseOnError(const YAML::Node& node, const std::string& what);
// "250ms", "2s": whole milliseconds, 1 ms to 60 s.
Result<runtime::Duration> parseMillis(const YAML::Node& node, const std::string& what);
// The `redis` map (address, username, password, database, timeout, connect_timeout, prefix).
Status parseRedis(const YAML::Node& node, RedisSettings& r);

// The key text of a request: parts joined by 0x1f. Empty when any part has no value.
// `scratch` is reused across calls to avoid an allocation per request.
bool extractKey(const std::vector<KeySpec>& spec, const http::RequestContext& ctx,
                std::string& scratch);

// Adds the quota headers of `style` for decision `d` (nothing when d.limiting < 0).
// `policy_header` is the precomputed RateLimit-Policy value. Shared with policy quota.
void addLimitHeaders(HeaderStyle style, const std::string& policy_header,
                     const std::vector<LimitSpec>& limits, const Decision& d, http::HeaderMap& h);
// The RateLimit-Policy value of `limits` (draft-ietf-httpapi-ratelimit-headers).
std::string policyHeader(const std::vector<LimitSpec>& limits);
// Whole seconds, rounded up: a client that waits that long is never early.
int64_t ceilSeconds(int64_t ns);

// The instance counters for `name`, created on first use and kept for the process lifetime.
std::shared_ptr<InstanceCounters> countersFor(const std::string& name);
// Appends every instance's counters in Prometheus text format (a runtime metrics renderer).
void collectMetrics(metrics::Scrape& scrape);

}  // namespace gatehouse::policies::rate_limit
