#include "policies/rate_limit/rate_limit.h"

#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <utility>

#include "core/clock.h"
#include "metrics/registry.h"
#include "policies/rate_limit/config.h"
#include "policies/rate_limit/limiter.h"
#include "policies/rate_limit/redis_script.h"
#include "runtime/task.h"

namespace gatehouse::policies::rate_limit {
namespace {

class RateLimitFactory;

// Per request: remembers the decision for the response headers and the slot to release.
class RateLimitFilter final : public KeyedLimitFilter {
 public:
  explicit RateLimitFilter(const RateLimitFactory& f);
  http::Verdict onRequestHeaders(http::RequestContext& ctx) override;
  // A key that names a request variable a body-reading policy sets (graphql) is decided here.
  http::Verdict onRequestBody(http::RequestContext& ctx, std::string& chunk, bool end) override;
  void onComplete(http::RequestContext& ctx) override;

 private:
  http::Verdict decideRequest(http::RequestContext& ctx);

  runtime::Task<http::Verdict> checkRedis(http::RequestContext& ctx, redis::Connection& conn,
                                          std::vector<std::string> args, int numkeys,
                                          uint64_t hash);
  http::Verdict onRedisFailure(http::RequestContext& ctx, uint64_t hash);

  const RateLimitFactory& f_;
  uint32_t slot_ = 0;
  uint64_t hash_ = 0;
  std::string token_;              // mode redis with in-flight caps: this request's entry
  bool fallback_charged_ = false;  // charged in the local fallback table (slot_)
  bool deferred_ = false;          // waiting for the body phase to have the key's variables
};

class RateLimitFactory final : public http::FilterFactory {
 public:
  // `identity`: see identityOf(); the local counters are kept by it across reloads.
  RateLimitFactory(RateLimitConfig c, const std::string& identity)
      : config_(std::move(c)),
        table_(config_.mode == Mode::kLocal
                   ? sharedTable(identity, "local", config_.limits, config_.max_keys)
                   : std::make_shared<LimiterTable>(config_.limits, 16)),  // unused
        counters_(countersFor(config_.name)),
        fallback_(fallbackTable(config_, identity)),
        allowance_({LimitSpec{"allowance", Algorithm::kAllowance, {}, 0, nullptr}},
                   config_.mode == Mode::kHybrid ? config_.max_keys : 16),
        endpoint_id_(config_.redis.endpoint.id()) {
    for (auto e : config_.redis.on_error)
      fail_closed_ = fail_closed_ || e == OnRedisError::kFailClosed;
    for (const auto& k : config_.key)
      key_reads_vars_ = key_reads_vars_ || k.part == KeyPart::kVar;
    if (config_.mode != Mode::kLocal) {
      // Static parts of the script's arguments; the keys are built per request.
      for (const auto& l : config_.limits) {
        if (l.algorithm == Algorithm::kConcurrency) {
          has_concurrency_ = true;
          redis_argv_.emplace_back(kKindInFlight);
          redis_argv_.push_back(std::to_string(config_.concurrency_lease_ns / 1000));
          redis_argv_.push_back(std::to_string(l.burst));
        } else if (l.algorithm == Algorithm::kTokenBucket) {
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
  LimiterTable& table() const { return *table_; }
  InstanceCounterCells& counters() const { return counters_->cells.local(); }
  LimiterTable& fallback() const { return *fallback_; }
  LimiterTable& allowance() const { return allowance_; }
  bool failClosed() const { return fail_closed_; }
  bool keyReadsVars() const { return key_reads_vars_; }
  const std::string& endpointId() const { return endpoint_id_; }

  // KEYS then ARGV for one key: "<prefix><policy>:{<key hash>}:<limit index>". The hash tag
  // keeps one request's keys in one Cluster slot, should Cluster support come.
  // `want` -2 releases `token` from the in-flight caps. The token, unique per request, follows
  // the per-limit arguments when the policy has in-flight caps.
  std::vector<std::string> redisArgs(uint64_t hash, int64_t want,
                                     std::string_view token = {}) const {
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(hash));
    std::vector<std::string> args;
    args.reserve(config_.limits.size() * 4 + 1);
    for (size_t i = 0; i < config_.limits.size(); ++i) {
      args.push_back(config_.redis.prefix + config_.name + ":{" + hex + "}:" + std::to_string(i));
    }
    args.push_back(std::to_string(want));
    args.insert(args.end(), redis_argv_.begin(), redis_argv_.end());
    if (has_concurrency_) args.emplace_back(token);
    return args;
  }
  bool redisConcurrency() const { return has_concurrency_; }

 private:
  static std::shared_ptr<LimiterTable> fallbackTable(const RateLimitConfig& c,
                                                     const std::string& identity) {
    auto limits = fallbackLimits(c);
    if (limits.empty()) return std::make_shared<LimiterTable>(std::move(limits), 16);  // unused
    return sharedTable(identity, "fallback", limits, c.max_keys);
  }

  const RateLimitConfig config_;
  std::shared_ptr<LimiterTable> table_;  // mode local
  std::shared_ptr<InstanceCounters> counters_;
  std::shared_ptr<LimiterTable> fallback_;  // mode redis: the limits with on_redis_error fallback
  mutable LimiterTable allowance_;          // mode hybrid: each key's batch taken from Redis
  const std::string endpoint_id_;
  bool fail_closed_ = false;
  bool key_reads_vars_ = false;
  bool has_concurrency_ = false;  // mode redis with in-flight caps
  std::vector<std::string> redis_argv_;
};

RateLimitFilter::RateLimitFilter(const RateLimitFactory& f)
    : KeyedLimitFilter(f.config(), f.counters().allowed, f.counters().limited,
                       "rate limit exceeded"),
      f_(f) {}

// A token unique to one request in the whole fleet: a random per-process prefix, the thread
// and a per-thread count.
std::string requestToken() {
  static const uint64_t process = [] {
    std::random_device rd;
    return (uint64_t{rd()} << 32) ^ rd();
  }();
  thread_local const size_t thread = std::hash<std::thread::id>{}(std::this_thread::get_id());
  thread_local uint64_t n = 0;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%016llx:%zx:%llx", static_cast<unsigned long long>(process),
                thread & 0xffffff, static_cast<unsigned long long>(++n));
  return buf;
}

runtime::Task<> releaseInRedis(redis::Connection& conn, std::vector<std::string> args,
                               int numkeys) {
  // Fire and forget: if this fails, the lease ends the entry.
  co_await conn.eval(std::move(args), numkeys);
}

http::Verdict RateLimitFilter::onRequestHeaders(http::RequestContext& ctx) {
  // A policy before this one reads the body (graphql) and will set the variables the key
  // names only then: decide in the body phase.
  if (ctx.buffer_request_body > 0 && f_.keyReadsVars()) {
    thread_local std::string probe;
    if (!extractKey(f_.config().key, ctx, probe)) {
      deferred_ = true;
      return http::Verdict::kContinue;
    }
  }
  return decideRequest(ctx);
}

http::Verdict RateLimitFilter::onRequestBody(http::RequestContext& ctx, std::string&, bool end) {
  if (!deferred_ || !end) return http::Verdict::kContinue;
  deferred_ = false;
  return decideRequest(ctx);
}

http::Verdict RateLimitFilter::decideRequest(http::RequestContext& ctx) {
  const auto& cfg = f_.config();
  // One buffer per worker thread: key text is built without an allocation per request.
  thread_local std::string key;
  auto& counters = f_.counters();
  if (auto v = keyOf(cfg, ctx, key, counters.missing_key, counters.limited, "rate-limit")) {
    return *v;
  }
  const uint64_t hash = LimiterTable::hashKey(key);
  if (cfg.mode != Mode::kLocal) {
    uint64_t want = 1;
    if (cfg.mode == Mode::kHybrid) {
      // Spend this process's allowance first; only an empty one costs a Redis round trip.
      Decision d = f_.allowance().acquire(hash, clock::steadyNs(), &slot_);
      if (d.allowed) {
        decision_ = Decision{};
        decision_.allowed = true;
        return decide(ctx);
      }
      // The overflow entry is shared by unrelated keys: never park a batch there.
      if (!f_.allowance().isOverflow(slot_)) want = cfg.hybrid_batch;
    }
    redis::Connection& conn =
        redis::Connection::forThisThread(f_.endpointId(), cfg.redis.endpoint, limitScript());
    // While Redis is away, decide at once: no request waits for a connection that is down.
    if (!conn.usable()) return onRedisFailure(ctx, hash);
    if (f_.redisConcurrency()) token_ = requestToken();
    ctx.pending = checkRedis(ctx, conn, f_.redisArgs(hash, static_cast<int64_t>(want), token_),
                             static_cast<int>(cfg.limits.size()), hash);
    return http::Verdict::kPause;
  }
  decision_ = f_.table().acquire(hash, clock::steadyNs(), &slot_);
  if (decision_.overflow) f_.counters().overflow.inc();
  return decide(ctx);
}

runtime::Task<http::Verdict> RateLimitFilter::checkRedis(http::RequestContext& ctx,
                                                         redis::Connection& conn,
                                                         std::vector<std::string> args, int numkeys,
                                                         uint64_t hash) {
  redis::CallResult r = co_await conn.eval(std::move(args), numkeys);
  if (!decisionFromReply(r, f_.config().limits.size(), decision_)) {
    co_return onRedisFailure(ctx, hash);
  }
  hash_ = hash;
  if (r.ints[0] < 1) token_.clear();  // rejected: no in-flight entry to release
  if (r.ints[0] > 1) {
    // Mode hybrid: this request uses one; the rest wait locally for the key's next requests.
    int64_t now = clock::steadyNs();
    f_.allowance().deposit(
        hash, static_cast<uint64_t>(r.ints[0] - 1), now,
        now + std::chrono::duration_cast<std::chrono::nanoseconds>(f_.config().hybrid_ttl).count());
  }
  co_return decide(ctx);
}

http::Verdict RateLimitFilter::onRedisFailure(http::RequestContext& ctx, uint64_t hash) {
  auto& counters = f_.counters();
  counters.redis_errors.inc();
  counters.degraded.inc();
  if (f_.failClosed()) {
    // The limiter cannot tell: this is the gateway's failure, not the client's (never 429).
    return ctx.respondError(503, "rate limit backend unavailable");
  }
  if (f_.fallback().limits().empty()) {  // every limit fails open
    counters.allowed.inc();
    return http::Verdict::kContinue;
  }
  token_.clear();  // nothing was charged in Redis
  decision_ = f_.fallback().acquire(hash, clock::steadyNs(), &slot_);
  fallback_charged_ = decision_.allowed;
  // Header fields name the configured limits; the fallback table holds a subset of them.
  decision_.limiting = -1;
  return decide(ctx);
}

void RateLimitFilter::onComplete(http::RequestContext&) {
  const auto& cfg = f_.config();
  if (charged_ && cfg.mode == Mode::kLocal && f_.table().hasConcurrency())
    f_.table().release(slot_);
  if (fallback_charged_ && f_.fallback().hasConcurrency()) f_.fallback().release(slot_);
  if (charged_ && !token_.empty()) {
    redis::Connection& conn =
        redis::Connection::forThisThread(f_.endpointId(), cfg.redis.endpoint, limitScript());
    if (conn.usable()) {
      runtime::spawn(releaseInRedis(conn, f_.redisArgs(hash_, -2, token_),
                                    static_cast<int>(cfg.limits.size())));
    }
  }
  token_.clear();
  charged_ = false;
  fallback_charged_ = false;
}

// What names a policy's local counters across reloads: its route, its place among the route's
// rate_limit policies (other policies may come and go around it), its name, mode and key. The
// limits are added by sharedTable(). Empty without a route (unit tests): counters of its own.
std::string identityOf(const RateLimitConfig& c, const http::PolicyContext& ctx) {
  if (ctx.scope.empty()) return {};
  size_t ordinal = 0;
  for (const auto& f : ctx.preceding) {
    if (dynamic_cast<const RateLimitFactory*>(f.get())) ++ordinal;
  }
  std::string id = std::string(ctx.scope) + "\nrate_limit " + std::to_string(ordinal) + '\n' +
                   c.name + '\n' + std::to_string(static_cast<int>(c.mode));
  for (const auto& k : c.key)
    id += '\n' + std::to_string(static_cast<int>(k.part)) + k.header;
  return id;
}

}  // namespace

Result<http::FilterFactoryPtr> build(const YAML::Node& config, const http::PolicyContext& ctx) {
  auto c = parseConfig(config);
  if (!c.ok()) return c.error();
  metrics::Registry::process().add("rate_limit", &collectMetrics);
  const std::string identity = identityOf(*c, ctx);
  return http::FilterFactoryPtr(std::make_shared<RateLimitFactory>(std::move(*c), identity));
}

}  // namespace gatehouse::policies::rate_limit
