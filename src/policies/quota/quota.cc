#include "policies/quota/quota.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <mutex>

#include "core/clock.h"
#include "http/admin_endpoint.h"
#include "metrics/registry.h"
#include "policies/quota/factory.h"
#include "policies/rate_limit/redis_script.h"
#include "redis/client.h"

namespace gatehouse::policies::quota {

using rate_limit::Algorithm;
using rate_limit::Decision;
using rate_limit::LimiterTable;

namespace {

constexpr int64_t kSecond = 1'000'000'000;

struct FactoryRegistry {
  std::mutex mu;
  std::map<std::string, std::vector<std::weak_ptr<const QuotaFactory>>, std::less<>> by_name;
};
FactoryRegistry& factories() {
  static FactoryRegistry r;
  return r;
}

class QuotaFilter final : public rate_limit::KeyedLimitFilter {
 public:
  explicit QuotaFilter(const QuotaFactory& f)
      : KeyedLimitFilter(f.config(), f.counters().allowed, f.counters().exceeded, "quota exceeded"),
        f_(f) {}
  http::Verdict onRequestHeaders(http::RequestContext& ctx) override;

 private:
  runtime::Task<http::Verdict> checkRedis(http::RequestContext& ctx, redis::Connection& conn,
                                          std::vector<std::string> args);
  http::Verdict onRedisFailure(http::RequestContext& ctx);

  const QuotaFactory& f_;
};

http::Verdict QuotaFilter::onRequestHeaders(http::RequestContext& ctx) {
  const auto& cfg = f_.config();
  thread_local std::string key;  // reused: no allocation per request for the key text
  auto& counters = f_.counters();
  if (auto v = rate_limit::keyOf(cfg, ctx, key, counters.missing_key, counters.exceeded, "quota")) {
    return *v;
  }
  const int64_t now = clock::wallNs();
  if (cfg.use_redis) {
    redis::Connection& conn = redis::Connection::forThisThread(f_.endpointId(), cfg.redis.endpoint,
                                                               rate_limit::limitScript());
    if (!conn.usable()) return onRedisFailure(ctx);
    ctx.pending = checkRedis(ctx, conn, f_.redisArgs(key, now, 1));
    return http::Verdict::kPause;
  }
  decision_ = f_.table().acquire(LimiterTable::hashKey(key), now, nullptr);
  return decide(ctx);
}

runtime::Task<http::Verdict> QuotaFilter::checkRedis(http::RequestContext& ctx,
                                                     redis::Connection& conn,
                                                     std::vector<std::string> args) {
  const size_t limits = f_.config().limits.size();
  redis::CallResult r = co_await conn.eval(std::move(args), static_cast<int>(limits));
  if (!rate_limit::decisionFromReply(r, limits, decision_)) co_return onRedisFailure(ctx);
  co_return decide(ctx);
}

http::Verdict QuotaFilter::onRedisFailure(http::RequestContext& ctx) {
  auto& c = f_.counters();
  c.redis_errors.inc();
  c.degraded.inc();
  if (f_.config().on_redis_error == OnRedisError::kFailClosed) {
    // The gateway cannot tell: its failure, not the client's (never 429).
    return ctx.respondError(503, "quota backend unavailable");
  }
  c.allowed.inc();
  return http::Verdict::kContinue;
}

}  // namespace

QuotaFactory::QuotaFactory(QuotaConfig c)
    : config_(std::move(c)),
      counters_(countersFor(config_.name)),
      table_(config_.use_redis ? std::make_shared<LimiterTable>(config_.limits, 16)  // unused
                               : localTableFor(config_)),
      endpoint_id_(config_.redis.endpoint.id()) {}

http::FilterRef QuotaFactory::create() const {
  return http::FilterRef::own(std::make_unique<QuotaFilter>(*this));
}

std::vector<std::string> QuotaFactory::redisArgs(std::string_view key, int64_t now_ns,
                                                 int64_t want) const {
  const auto& limits = config_.limits;
  std::vector<std::string> args;
  args.reserve(limits.size() * 4 + 1);
  const int64_t now_s = now_ns / kSecond;
  std::vector<std::string> argv;
  argv.reserve(limits.size() * 3);
  for (const auto& l : limits) {
    // "<prefix><policy>:{<key>}:<quota>[:<period index>]"
    std::string k = config_.redis.prefix + config_.name + ":{";
    k.append(key);
    k += "}:" + l.name;
    if (l.algorithm == Algorithm::kCalendar) {
      const cal::Period p = l.calendar->at(now_s);
      k += ":" + std::to_string(p.index);
      argv.emplace_back(rate_limit::kKindCalendar);
      argv.push_back(std::to_string(std::max<int64_t>(1, (p.end_s * kSecond - now_ns) / 1000)));
    } else {
      argv.emplace_back(rate_limit::kKindWindow);
      argv.push_back(std::to_string(l.rate.period_ns / 1000));
    }
    argv.push_back(std::to_string(l.rate.count));
    args.push_back(std::move(k));
  }
  args.push_back(std::to_string(want));
  for (auto& a : argv)
    args.push_back(std::move(a));
  return args;
}

void registerFactory(const std::shared_ptr<const QuotaFactory>& f) {
  auto& r = factories();
  std::lock_guard lock(r.mu);
  auto& v = r.by_name[f->config().name];
  std::erase_if(v, [](const auto& w) { return w.expired(); });
  v.push_back(f);
}

std::shared_ptr<const QuotaFactory> findPolicy(std::string_view name) {
  auto& r = factories();
  std::lock_guard lock(r.mu);
  auto it = r.by_name.find(name);
  if (it == r.by_name.end()) return nullptr;
  // Newest first: a reload's factory replaces the previous one once it is built.
  for (auto w = it->second.rbegin(); w != it->second.rend(); ++w) {
    if (auto f = w->lock()) return f;
  }
  return nullptr;
}

std::vector<std::string> policyNames() {
  auto& r = factories();
  std::lock_guard lock(r.mu);
  std::vector<std::string> out;
  for (const auto& [name, v] : r.by_name) {
    if (std::any_of(v.begin(), v.end(), [](const auto& w) { return !w.expired(); })) {
      out.push_back(name);
    }
  }
  return out;
}

Result<http::FilterFactoryPtr> build(const YAML::Node& config) {
  auto c = parseConfig(config);
  if (!c.ok()) return c.error();
  metrics::Registry::process().add("quota", &collectMetrics);
  auto f = std::make_shared<const QuotaFactory>(std::move(*c));
  registerFactory(f);
  return http::FilterFactoryPtr(f);
}

http::AdminEndpoint adminEndpoint() {
  return {"/quotas", &handleAdmin};
}

}  // namespace gatehouse::policies::quota
