#include "policies/rate_limit/config.h"

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <cstdlib>
#include <map>
#include <mutex>

#include "metrics/registry.h"
#include "metrics/stats.h"
#include "policies/policy_yaml.h"

namespace gatehouse::policies::rate_limit {
namespace {

constexpr uint64_t kMaxBurst = 1'000'000'000;

Result<LimitSpec> parseLimit(const YAML::Node& node, const std::string& what) {
  if (!node.IsMap()) return configError(what + ": expected a map");
  if (auto st =
          checkKeys(node, {"name", "rate", "burst", "algorithm", "concurrency", "on_redis_error"});
      !st.ok()) {
    return configError(what + ": " + st.error().message);
  }
  LimitSpec l;
  if (node["concurrency"]) {
    for (auto k : {"rate", "burst", "algorithm"}) {
      if (node[k]) return configError(what + ": 'concurrency' cannot be combined with '" + k + "'");
    }
    auto n = readInt(node["concurrency"], what + ".concurrency", 1, 1'000'000);
    if (!n.ok()) return n.error();
    l.algorithm = Algorithm::kConcurrency;
    l.burst = static_cast<uint64_t>(*n);
    l.name = "concurrency";
  } else {
    if (!node["rate"]) return configError(what + ": 'rate' or 'concurrency' is required");
    auto text = readString(node["rate"], what + ".rate");
    if (!text.ok()) return text.error();
    auto rate = parseRate(*text);
    if (!rate.ok()) return configError(what + ".rate: " + rate.error().message);
    l.rate = *rate;
    l.name = *text;
    if (node["algorithm"]) {
      auto a = readChoice<Algorithm>(node["algorithm"], what + ".algorithm",
                                     {{"token_bucket", Algorithm::kTokenBucket},
                                      {"sliding_window", Algorithm::kSlidingWindow}},
                                     "algorithm");
      if (!a.ok()) return a.error();
      l.algorithm = *a;
    }
    if (l.algorithm == Algorithm::kSlidingWindow) {
      if (node["burst"]) return configError(what + ".burst: only for algorithm token_bucket");
      if (l.rate.count > kMaxWindowCount) {
        return configError(what + ".rate: a sliding window counts at most " +
                           std::to_string(kMaxWindowCount) + " requests per window");
      }
    } else {
      l.burst = l.rate.count;
      if (node["burst"]) {
        auto b = readInt(node["burst"], what + ".burst", 1, static_cast<int>(kMaxBurst));
        if (!b.ok()) return b.error();
        l.burst = static_cast<uint64_t>(*b);
      }
      if (l.burst > kMaxBurst) {
        return configError(what + ".rate: count above " + std::to_string(kMaxBurst) +
                           "; give a smaller 'burst'");
      }
    }
  }
  if (node["name"]) {
    auto n = readString(node["name"], what + ".name");
    if (!n.ok()) return n.error();
    // Shown as an sf-string in RateLimit-Policy: printable ASCII without quote or backslash.
    if (n->empty()) return configError(what + ".name: must not be empty");
    for (unsigned char c : *n) {
      if (c < 0x20 || c > 0x7e || c == '"' || c == '\\') {
        return configError(what + ".name: use printable ASCII without quotes or backslashes");
      }
    }
    l.name = *n;
  }
  return l;
}

}  // namespace

namespace {

std::string defaultName(const RateLimitConfig& c) {
  std::string n;
  for (const auto& k : c.key) {
    if (!n.empty()) n += '+';
    switch (k.part) {
      case KeyPart::kClientIp:
        n += "client_ip";
        break;
      case KeyPart::kRoute:
        n += "route";
        break;
      case KeyPart::kConsumer:
        n += "consumer";
        break;
      case KeyPart::kHeader:
        n += "header:" + k.header;
        break;
      case KeyPart::kClaim:
        n += "claim:" + k.header;
        break;
      case KeyPart::kVar:
        n += "var:" + k.header;
        break;
    }
  }
  for (const auto& l : c.limits)
    n += ',' + l.name;
  return n;
}

}  // namespace

namespace {

// Options `hybrid` (batch, batch_ttl) of mode hybrid.
Status parseHybrid(const YAML::Node& h, RateLimitConfig& c) {
  if (auto st = checkKeys(h, {"batch", "batch_ttl"}); !st.ok()) {
    return configError("hybrid: " + st.error().message);
  }
  if (h["batch"]) {
    auto b = readInt(h["batch"], "hybrid.batch", 2, 1'000'000);
    if (!b.ok()) return b.error();
    c.hybrid_batch = static_cast<uint64_t>(*b);
  }
  if (h["batch_ttl"]) {
    auto t = readCallTimeout(h["batch_ttl"], "hybrid.batch_ttl");
    if (!t.ok()) return t.error();
    c.hybrid_ttl = *t;
  }
  return {};
}

// Modes redis and hybrid: `redis`, `on_redis_error` (policy-wide and per limit) and
// `fallback_share`.
Status parseRedisOptions(const YAML::Node& config, RateLimitConfig& c) {
  if (auto st = parseRedis(config["redis"], "mode redis or hybrid (a map)", c.redis); !st.ok()) {
    return st.error();
  }
  OnRedisError def = OnRedisError::kFailOpen;
  if (config["on_redis_error"]) {
    auto e = parseOnError(config["on_redis_error"], "on_redis_error");
    if (!e.ok()) return e.error();
    def = *e;
  }
  const auto& limits = config["limits"];
  for (size_t i = 0; i < c.limits.size(); ++i) {
    std::string what = "limits[" + std::to_string(i) + "]";
    if (c.limits[i].algorithm == Algorithm::kConcurrency && c.mode == Mode::kHybrid) {
      return configError(what +
                         ": concurrency limits work in mode local or redis, not hybrid; put "
                         "them in a separate rate_limit policy");
    }
    OnRedisError e = def;
    if (limits[i]["on_redis_error"]) {
      auto r = parseOnError(limits[i]["on_redis_error"], what + ".on_redis_error");
      if (!r.ok()) return r.error();
      e = *r;
    }
    c.redis.on_error.push_back(e);
  }
  if (config["fallback_share"]) {
    const auto& n = config["fallback_share"];
    double v = -1;
    if (n.IsScalar() && !n.Scalar().empty()) {
      char* end = nullptr;
      v = std::strtod(n.Scalar().c_str(), &end);
      if (*end != '\0') v = -1;
    }
    if (!(v > 0 && v <= 1)) return configError("fallback_share: expected a number in (0, 1]");
    c.redis.fallback_share = v;
  }
  return {};
}

}  // namespace

Result<RateLimitConfig> parseConfig(const YAML::Node& config) {
  if (!config || !config.IsMap()) return configError("expected a map with at least 'limits'");
  if (auto st = checkKeys(config, {"name", "mode", "key", "missing_key", "limits", "headers",
                                   "headers_on_success", "max_keys", "redis", "on_redis_error",
                                   "fallback_share", "hybrid", "concurrency_lease"});
      !st.ok()) {
    return st.error();
  }
  RateLimitConfig c;
  auto mode = parseMode(config, {"local", "redis", "hybrid"});
  if (!mode.ok()) return mode.error();
  c.mode = *mode == "redis" ? Mode::kRedis : *mode == "hybrid" ? Mode::kHybrid : Mode::kLocal;
  if (c.mode == Mode::kLocal) {
    for (auto k : {"redis", "on_redis_error", "fallback_share"}) {
      if (config[k]) return configError(std::string(k) + ": only with mode redis or hybrid");
    }
  }
  if (c.mode != Mode::kHybrid && config["hybrid"]) {
    return configError("hybrid: only with mode hybrid");
  }
  if (c.mode == Mode::kHybrid && config["hybrid"]) {
    if (auto st = parseHybrid(config["hybrid"], c); !st.ok()) return st.error();
  }
  if (auto st = parseKeyedOptions(config, KeyPart::kClientIp, c); !st.ok()) return st.error();
  if (auto st = parseLimitList(config["limits"], "limit", parseLimit, c); !st.ok()) {
    return st.error();
  }
  if (c.mode != Mode::kLocal) {
    if (auto st = parseRedisOptions(config, c); !st.ok()) return st.error();
  } else {
    for (size_t i = 0; i < c.limits.size(); ++i) {
      if (config["limits"][i]["on_redis_error"]) {
        return configError("limits[" + std::to_string(i) +
                           "].on_redis_error: only with mode redis");
      }
    }
  }
  if (config["concurrency_lease"]) {
    if (c.mode != Mode::kRedis) return configError("concurrency_lease: only with mode redis");
    auto t = readString(config["concurrency_lease"], "concurrency_lease");
    if (!t.ok()) return t.error();
    auto r = parseRate("1/" + *t);
    if (!r.ok() || r->period_ns < 1'000'000'000 || r->period_ns > 86400LL * 1'000'000'000) {
      return configError("concurrency_lease: expected a duration from 1s to 1d, like 60s or 10min");
    }
    c.concurrency_lease_ns = r->period_ns;
  }
  if (config["name"]) {
    auto n = readName(config["name"], "name");
    if (!n.ok()) return n.error();
    c.name = *n;
  } else {
    c.name = defaultName(c);
  }
  return c;
}

std::vector<LimitSpec> fallbackLimits(const RateLimitConfig& c) {
  std::vector<LimitSpec> out;
  if (c.mode == Mode::kLocal) return out;
  auto scale = [&](uint64_t v) {
    return std::max<uint64_t>(
        1, static_cast<uint64_t>(std::floor(static_cast<double>(v) * c.redis.fallback_share)));
  };
  for (size_t i = 0; i < c.limits.size(); ++i) {
    if (c.redis.on_error[i] != OnRedisError::kFallback) continue;
    LimitSpec l = c.limits[i];
    l.rate.count = scale(l.rate.count);
    if (l.algorithm == Algorithm::kTokenBucket || l.algorithm == Algorithm::kConcurrency) {
      l.burst = scale(l.burst);
    }
    out.push_back(std::move(l));
  }
  return out;
}

namespace {
struct CounterRegistry {
  std::mutex mu;
  std::map<std::string, std::shared_ptr<InstanceCounters>> by_name;
};
CounterRegistry& counterRegistry() {
  static CounterRegistry r;
  return r;
}

}  // namespace

std::shared_ptr<InstanceCounters> countersFor(const std::string& name) {
  auto& r = counterRegistry();
  std::lock_guard lock(r.mu);
  auto& p = r.by_name[name];
  if (!p) {
    p = std::make_shared<InstanceCounters>();
    p->name = name;
  }
  return p;
}

void collectMetrics(metrics::Scrape& scrape) {
  auto& r = counterRegistry();
  std::lock_guard lock(r.mu);
  if (r.by_name.empty()) return;
  static const metrics::FieldFamily<InstanceCounterCells> kFamilies[] = {
      {{"gatehouse_rate_limit_allowed_total",
        "Requests a rate_limit policy let through.",
        metrics::Type::kCounter,
        {"policy"}},
       &InstanceCounterCells::allowed},
      {{"gatehouse_rate_limit_limited_total",
        "Requests a rate_limit policy rejected.",
        metrics::Type::kCounter,
        {"policy"}},
       &InstanceCounterCells::limited},
      {{"gatehouse_rate_limit_missing_key_total",
        "Requests without a value for the policy's key.",
        metrics::Type::kCounter,
        {"policy"}},
       &InstanceCounterCells::missing_key},
      {{"gatehouse_rate_limit_overflow_total",
        "Requests charged to the shared overflow entry because the key table was full.",
        metrics::Type::kCounter,
        {"policy"}},
       &InstanceCounterCells::overflow},
      {{"gatehouse_rate_limit_redis_errors_total",
        "Checks a rate_limit policy could not get from Redis (error, timeout, unreachable).",
        metrics::Type::kCounter,
        {"policy"}},
       &InstanceCounterCells::redis_errors},
      {{"gatehouse_rate_limit_degraded_total",
        "Requests decided by on_redis_error because Redis could not answer.",
        metrics::Type::kCounter,
        {"policy"}},
       &InstanceCounterCells::degraded},
  };
  static constexpr metrics::Family kRedisUp{
      "gatehouse_rate_limit_redis_connections_up",
      "Worker connections to Redis that are ready (0 while Redis is unreachable: degraded).",
      metrics::Type::kGauge};
  scrape.family(kRedisUp).add({}, redis::Connection::connectionsUp());
  metrics::addFieldFamilies(scrape, kFamilies, r.by_name);
}

}  // namespace gatehouse::policies::rate_limit
