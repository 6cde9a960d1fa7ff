#include "policies/rate_limit/rate_limit.h"

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>

#include "policies/rate_limit/config.h"
#include "policies/rate_limit/limiter.h"
#include "runtime/metrics_hooks.h"
#include "runtime/task.h"

namespace gatehouse::policies::rate_limit {
namespace {

constexpr int64_t kSecond = 1'000'000'000;

// Headers carry whole seconds; round up so a client that waits that long is never early.
int64_t ceilSeconds(int64_t ns) {
  return ns <= 0 ? 0 : (ns + kSecond - 1) / kSecond;
}

int64_t monotonicNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// The global check, run atomically by Redis. KEYS: one per limit. ARGV[1]: tokens wanted
// (1; a batch in mode hybrid), then three per limit: kind (1 token bucket / GCRA, 2 sliding
// window), a (GCRA: emission interval in µs; window: period in µs), b (burst / limit).
// Redis's own clock (TIME) is the only clock, so gateways with skewed clocks agree. Grants
// k = min(wanted, what every limit has left) and charges k in all limits, or nothing (k = 0).
// Returns {k, limit index, remaining, reset ms, retry-after ms}.
constexpr std::string_view kScript = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local n = #KEYS
local want = tonumber(ARGV[1])
local st = {}
local k = want
local rej, rej_retry, rej_reset = -1, 0, 0
for i = 1, n do
  local kind, a, b = tonumber(ARGV[3*i-1]), tonumber(ARGV[3*i]), tonumber(ARGV[3*i+1])
  local avail, reset, retry
  if kind == 1 then
    local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
    if tat < now then tat = now end
    avail = math.floor((a * b - (tat - now)) / a)
    reset = tat - now
    retry = tat + a - now - a * b
    st[i] = {tat}
  else
    local w = math.floor(now / a)
    local el = now - w * a
    local v = redis.call('HMGET', KEYS[i], 'w', 'c', 'p')
    local sw, c, p = tonumber(v[1] or '-10'), tonumber(v[2] or '0'), tonumber(v[3] or '0')
    if sw == w - 1 then
      p = c
      c = 0
    elseif sw ~= w then
      p = 0
      c = 0
    end
    avail = math.floor((b * a - p * (a - el) - c * a) / a)
    reset = a - el
    if c + 1 <= b and p > 0 then
      retry = math.max(1, a - math.ceil((b - c - 1) * a / p) - el)
    else
      local e2 = 0
      if c > 0 then e2 = math.max(0, a - math.ceil((b - 1) * a / c)) end
      retry = (a - el) + e2
    end
    st[i] = {w, c, p, el}
  end
  if avail < 1 then
    if rej < 0 or retry > rej_retry then
      rej, rej_retry, rej_reset = i - 1, retry, reset
    end
  elseif avail < k then
    k = avail
  end
end
if rej >= 0 then
  return {0, rej, 0, math.ceil(rej_reset / 1000), math.ceil(rej_retry / 1000)}
end
local best, best_rem, best_reset = -1, 0, 0
for i = 1, n do
  local kind, a, b = tonumber(ARGV[3*i-1]), tonumber(ARGV[3*i]), tonumber(ARGV[3*i+1])
  local rem, reset
  if kind == 1 then
    local nt = st[i][1] + k * a
    rem = math.floor((a * b - (nt - now)) / a)
    reset = nt - now
    redis.call('SET', KEYS[i], string.format('%d', nt), 'PX',
               string.format('%d', math.ceil(a * b / 1000) + 1000))
  else
    local w, c, p, el = st[i][1], st[i][2] + k, st[i][3], st[i][4]
    rem = math.floor((b * a - p * (a - el) - c * a) / a)
    reset = a - el
    redis.call('HSET', KEYS[i], 'w', string.format('%d', w), 'c', c, 'p', p)
    redis.call('PEXPIRE', KEYS[i], string.format('%d', math.ceil(2 * a / 1000) + 1000))
  end
  if best < 0 or rem < best_rem then
    best, best_rem, best_reset = i - 1, rem, reset
  end
end
return {k, best, best_rem, math.ceil(best_reset / 1000), 0}
)lua";

class RateLimitFactory;

// Per request: remembers the decision for the response headers and the slot to release.
class RateLimitFilter final : public http::Filter {
 public:
  explicit RateLimitFilter(const RateLimitFactory& f) : f_(f) {}
  http::Verdict onRequestHeaders(http::RequestContext& ctx) override;
  http::Verdict onResponseHeaders(http::RequestContext& ctx) override;
  void onComplete(http::RequestContext& ctx) override;

 private:
  http::Verdict decide(http::RequestContext& ctx);
  runtime::Task<http::Verdict> checkRedis(http::RequestContext& ctx, RedisConn& conn,
                                          std::vector<std::string> args, int numkeys,
                                          uint64_t hash);
  http::Verdict onRedisFailure(http::RequestContext& ctx, uint64_t hash);

  const RateLimitFactory& f_;
  Decision decision_;
  uint32_t slot_ = 0;
  bool charged_ = false;  // allowed and charged: release concurrency limits in onComplete
};

class RateLimitFactory final : public http::FilterFactory {
 public:
  explicit RateLimitFactory(RateLimitConfig c)
      : config_(std::move(c)),
        table_(config_.limits, config_.mode == Mode::kLocal ? config_.max_keys : 16),
        counters_(countersFor(config_.name)),
        shared_key_hash_(LimiterTable::hashKey(std::string_view("\x1e"
                                                                "anonymous"))),
        fallback_(fallbackLimits(config_), fallbackLimits(config_).empty() ? 16 : config_.max_keys),
        allowance_({LimitSpec{"allowance", Algorithm::kAllowance, {}, 0}},
                   config_.mode == Mode::kHybrid ? config_.max_keys : 16),
        endpoint_id_(config_.redis.endpoint.id()) {
    for (auto e : config_.redis.on_error)
      fail_closed_ = fail_closed_ || e == OnRedisError::kFailClosed;
    if (config_.mode != Mode::kLocal) {
      // Static parts of the script's arguments; the keys are built per request.
      for (const auto& l : config_.limits) {
        if (l.algorithm == Algorithm::kTokenBucket) {
          redis_argv_.push_back("1");
          redis_argv_.push_back(std::to_string(
              std::max<int64_t>(1, l.rate.period_ns / 1000 / static_cast<int64_t>(l.rate.count))));
          redis_argv_.push_back(std::to_string(l.burst));
        } else {
          redis_argv_.push_back("2");
          redis_argv_.push_back(std::to_string(l.rate.period_ns / 1000));
          redis_argv_.push_back(std::to_string(l.rate.count));
        }
      }
    }
  }

  http::FilterRef create() const override {
    return http::FilterRef::own(std::make_unique<RateLimitFilter>(*this));
  }

  const RateLimitConfig& config() const { return config_; }
  // The table's states are atomics shared by all workers; the factory itself stays immutable.
  LimiterTable& table() const { return table_; }
  InstanceCounters& counters() const { return *counters_; }
  uint64_t sharedKeyHash() const { return shared_key_hash_; }
  LimiterTable& fallback() const { return fallback_; }
  LimiterTable& allowance() const { return allowance_; }
  bool failClosed() const { return fail_closed_; }
  const std::string& endpointId() const { return endpoint_id_; }

  // KEYS then ARGV for one key: "<prefix><policy>:{<key hash>}:<limit index>". The hash tag
  // keeps one request's keys in one Cluster slot, should Cluster support come.
  std::vector<std::string> redisArgs(uint64_t hash, uint64_t want) const {
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(hash));
    std::vector<std::string> args;
    args.reserve(config_.limits.size() * 4 + 1);
    for (size_t i = 0; i < config_.limits.size(); ++i) {
      args.push_back(config_.redis.prefix + config_.name + ":{" + hex + "}:" + std::to_string(i));
    }
    args.push_back(std::to_string(want));
    args.insert(args.end(), redis_argv_.begin(), redis_argv_.end());
    return args;
  }

  void addHeaders(http::HeaderMap& h, const Decision& d) const {
    if (d.limiting < 0) return;
    const LimitSpec& l = config_.limits[static_cast<size_t>(d.limiting)];
    switch (config_.headers) {
      case HeaderStyle::kNone:
        return;
      case HeaderStyle::kDraft: {
        h.set("ratelimit-policy", config_.policy_header);
        std::string v = "\"" + l.name + "\";r=" + std::to_string(d.remaining);
        if (l.algorithm != Algorithm::kConcurrency) {
          v += ";t=" + std::to_string(ceilSeconds(d.reset_ns));
        }
        h.set("ratelimit", v);
        return;
      }
      case HeaderStyle::kLegacy:
        h.set("x-ratelimit-limit", std::to_string(l.quota()));
        h.set("x-ratelimit-remaining", std::to_string(d.remaining));
        h.set("x-ratelimit-reset", std::to_string(ceilSeconds(d.reset_ns)));
        return;
    }
  }

 private:
  const RateLimitConfig config_;
  mutable LimiterTable table_;
  std::shared_ptr<InstanceCounters> counters_;
  uint64_t shared_key_hash_;
  mutable LimiterTable fallback_;   // mode redis: the limits with on_redis_error fallback
  mutable LimiterTable allowance_;  // mode hybrid: each key's batch taken from Redis
  const std::string endpoint_id_;
  bool fail_closed_ = false;
  std::vector<std::string> redis_argv_;
};

std::string_view script() {
  return kScript;
}

http::Verdict RateLimitFilter::onRequestHeaders(http::RequestContext& ctx) {
  const auto& cfg = f_.config();
  // One buffer per worker thread: key text is built without an allocation per request.
  thread_local std::string key;
  uint64_t hash = 0;
  if (extractKey(cfg.key, ctx, key)) {
    hash = LimiterTable::hashKey(key);
  } else {
    f_.counters().missing_key.fetch_add(1, std::memory_order_relaxed);
    switch (cfg.missing_key) {
      case MissingKey::kAllow:
        return http::Verdict::kContinue;
      case MissingKey::kDeny:
        f_.counters().limited.fetch_add(1, std::memory_order_relaxed);
        return ctx.respondError(429, "request has no value for the rate-limit key");
      case MissingKey::kShared:
        hash = f_.sharedKeyHash();
        break;
    }
  }
  if (cfg.mode != Mode::kLocal) {
    uint64_t want = 1;
    if (cfg.mode == Mode::kHybrid) {
      // Spend this process's allowance first; only an empty one costs a Redis round trip.
      Decision d = f_.allowance().acquire(hash, monotonicNs(), &slot_);
      if (d.allowed) {
        decision_ = Decision{};
        decision_.allowed = true;
        return decide(ctx);
      }
      // The overflow entry is shared by unrelated keys: never park a batch there.
      if (!f_.allowance().isOverflow(slot_)) want = cfg.hybrid_batch;
    }
    RedisConn& conn = RedisConn::forThisThread(f_.endpointId(), cfg.redis.endpoint, script());
    // While Redis is away, decide at once: no request waits for a connection that is down.
    if (!conn.usable()) return onRedisFailure(ctx, hash);
    ctx.pending =
        checkRedis(ctx, conn, f_.redisArgs(hash, want), static_cast<int>(cfg.limits.size()), hash);
    return http::Verdict::kPause;
  }
  decision_ = f_.table().acquire(hash, monotonicNs(), &slot_);
  if (decision_.overflow) f_.counters().overflow.fetch_add(1, std::memory_order_relaxed);
  return decide(ctx);
}

runtime::Task<http::Verdict> RateLimitFilter::checkRedis(http::RequestContext& ctx, RedisConn& conn,
                                                         std::vector<std::string> args, int numkeys,
                                                         uint64_t hash) {
  RedisResult r = co_await conn.eval(std::move(args), numkeys);
  if (!r.ok || r.ints.size() != 5) co_return onRedisFailure(ctx, hash);
  constexpr int64_t kMs = 1'000'000;
  decision_ = Decision{};
  decision_.allowed = r.ints[0] >= 1;
  if (r.ints[0] > 1) {
    // Mode hybrid: this request uses one; the rest wait locally for the key's next requests.
    int64_t now = monotonicNs();
    f_.allowance().deposit(
        hash, static_cast<uint64_t>(r.ints[0] - 1), now,
        now + std::chrono::duration_cast<std::chrono::nanoseconds>(f_.config().hybrid_ttl).count());
  }
  decision_.limiting = static_cast<int>(r.ints[1]);
  if (decision_.limiting < 0 || decision_.limiting >= static_cast<int>(f_.config().limits.size())) {
    decision_.limiting = -1;
  }
  decision_.remaining = static_cast<uint64_t>(std::max<int64_t>(0, r.ints[2]));
  decision_.reset_ns = r.ints[3] * kMs;
  decision_.retry_after_ns = r.ints[4] * kMs;
  co_return decide(ctx);
}

http::Verdict RateLimitFilter::onRedisFailure(http::RequestContext& ctx, uint64_t hash) {
  auto& counters = f_.counters();
  counters.redis_errors.fetch_add(1, std::memory_order_relaxed);
  counters.degraded.fetch_add(1, std::memory_order_relaxed);
  if (f_.failClosed()) {
    // The limiter cannot tell: this is the gateway's failure, not the client's (never 429).
    return ctx.respondError(503, "rate limit backend unavailable");
  }
  if (f_.fallback().limits().empty()) {  // every limit fails open
    counters.allowed.fetch_add(1, std::memory_order_relaxed);
    return http::Verdict::kContinue;
  }
  decision_ = f_.fallback().acquire(hash, monotonicNs(), nullptr);
  // Header fields name the configured limits; the fallback table holds a subset of them.
  decision_.limiting = -1;
  return decide(ctx);
}

http::Verdict RateLimitFilter::decide(http::RequestContext& ctx) {
  if (decision_.allowed) {
    charged_ = true;
    f_.counters().allowed.fetch_add(1, std::memory_order_relaxed);
    return http::Verdict::kContinue;
  }
  f_.counters().limited.fetch_add(1, std::memory_order_relaxed);
  ctx.respondError(429, "rate limit exceeded");
  f_.addHeaders(ctx.local_reply.headers, decision_);
  ctx.local_reply.headers.set(
      "retry-after", std::to_string(std::max<int64_t>(1, ceilSeconds(decision_.retry_after_ns))));
  return http::Verdict::kRespond;
}

http::Verdict RateLimitFilter::onResponseHeaders(http::RequestContext& ctx) {
  // Our own 429 already carries the headers; add them to other responses only when asked.
  if (charged_ && f_.config().headers_on_success) f_.addHeaders(ctx.response.headers, decision_);
  return http::Verdict::kContinue;
}

void RateLimitFilter::onComplete(http::RequestContext&) {
  if (charged_ && f_.table().hasConcurrency()) f_.table().release(slot_);
  charged_ = false;
}

}  // namespace

Result<http::FilterFactoryPtr> build(const YAML::Node& config) {
  auto c = parseConfig(config);
  if (!c.ok()) return c.error();
  runtime::registerMetricsRenderer("rate_limit", &renderMetrics);
  return http::FilterFactoryPtr(std::make_shared<RateLimitFactory>(std::move(*c)));
}

}  // namespace gatehouse::policies::rate_limit
