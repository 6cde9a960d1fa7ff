#include "policies/rate_limit/rate_limit.h"

#include <chrono>
#include <memory>
#include <string>
#include <utility>

#include "policies/rate_limit/config.h"
#include "policies/rate_limit/limiter.h"
#include "runtime/metrics_hooks.h"

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

class RateLimitFactory;

// Per request: remembers the decision for the response headers and the slot to release.
class RateLimitFilter final : public http::Filter {
 public:
  explicit RateLimitFilter(const RateLimitFactory& f) : f_(f) {}
  http::Verdict onRequestHeaders(http::RequestContext& ctx) override;
  http::Verdict onResponseHeaders(http::RequestContext& ctx) override;
  void onComplete(http::RequestContext& ctx) override;

 private:
  const RateLimitFactory& f_;
  Decision decision_;
  uint32_t slot_ = 0;
  bool charged_ = false;  // allowed and charged: release concurrency limits in onComplete
};

class RateLimitFactory final : public http::FilterFactory {
 public:
  explicit RateLimitFactory(RateLimitConfig c)
      : config_(std::move(c)),
        table_(config_.limits, config_.max_keys),
        counters_(countersFor(config_.name)),
        shared_key_hash_(LimiterTable::hashKey("\x1e"
                                               "anonymous")) {}

  http::FilterRef create() const override {
    return http::FilterRef::own(std::make_unique<RateLimitFilter>(*this));
  }

  const RateLimitConfig& config() const { return config_; }
  // The table's states are atomics shared by all workers; the factory itself stays immutable.
  LimiterTable& table() const { return table_; }
  InstanceCounters& counters() const { return *counters_; }
  uint64_t sharedKeyHash() const { return shared_key_hash_; }

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
};

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
  decision_ = f_.table().acquire(hash, monotonicNs(), &slot_);
  if (decision_.overflow) f_.counters().overflow.fetch_add(1, std::memory_order_relaxed);
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
