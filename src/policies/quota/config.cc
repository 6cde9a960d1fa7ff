#include "policies/quota/config.h"

#include <yaml-cpp/yaml.h>

#include <map>
#include <mutex>

#include "metrics/registry.h"
#include "policies/policy_yaml.h"

namespace gatehouse::policies::quota {
namespace {

constexpr int kMaxLimit = 2'000'000'000;

Result<LimitSpec> parseLimit(const YAML::Node& node, const std::string& what,
                             const std::shared_ptr<const cal::TimeZone>& tz, bool local) {
  if (!node.IsMap()) return configError(what + ": expected a map");
  if (auto st = checkKeys(node, {"name", "limit", "period", "rolling"}); !st.ok()) {
    return configError(what + ": " + st.error().message);
  }
  LimitSpec l;
  if (!node["limit"]) return configError(what + ".limit: required (requests per period)");
  auto n = readInt(node["limit"], what + ".limit", 1, kMaxLimit);
  if (!n.ok()) return n.error();
  l.rate.count = static_cast<uint64_t>(*n);
  if (node["period"] && node["rolling"]) {
    return configError(what + ": give 'period' (calendar) or 'rolling' (a window), not both");
  }
  if (node["period"]) {
    auto p = readString(node["period"], what + ".period");
    if (!p.ok()) return p.error();
    cal::PeriodUnit unit;
    if (*p == "day") {
      unit = cal::PeriodUnit::kDay;
    } else if (*p == "week") {
      unit = cal::PeriodUnit::kWeek;
    } else if (*p == "month") {
      unit = cal::PeriodUnit::kMonth;
    } else {
      return configError(what + ".period: unknown period '" + *p +
                         "'; expected day, week or month (or use 'rolling: 30d')");
    }
    l.algorithm = rate_limit::Algorithm::kCalendar;
    l.calendar = std::make_shared<const cal::Calendar>(unit, *tz);
    l.name = *p;
  } else if (node["rolling"]) {
    auto w = readString(node["rolling"], what + ".rolling");
    if (!w.ok()) return w.error();
    auto rate = rate_limit::parseRate("1/" + *w);
    if (!rate.ok()) {
      return configError(what + ".rolling: expected a duration such as 24h, 7d or 30d");
    }
    l.algorithm = rate_limit::Algorithm::kSlidingWindow;
    l.rate.period_ns = rate->period_ns;
    if (local && l.rate.count > rate_limit::kMaxWindowCount) {
      return configError(what + ".limit: a rolling quota counts at most " +
                         std::to_string(rate_limit::kMaxWindowCount) +
                         " requests in mode local; use mode redis");
    }
    l.name = "rolling-" + *w;
  } else {
    return configError(what +
                       ": 'period' (day, week, month) or 'rolling' (a duration) is "
                       "required");
  }
  if (node["name"]) {
    auto nm = readString(node["name"], what + ".name");
    if (!nm.ok()) return nm.error();
    if (nm->empty()) return configError(what + ".name: must not be empty");
    for (unsigned char c : *nm) {
      // Shown in RateLimit-Policy and part of Redis key names.
      if (c <= 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '{' || c == '}' || c == ':') {
        return configError(what +
                           ".name: use printable ASCII without spaces, quotes, backslashes, "
                           "braces or colons");
      }
    }
    l.name = *nm;
  }
  return l;
}

struct Registry {
  std::mutex mu;
  std::map<std::string, std::shared_ptr<Counters>> counters;
  std::map<std::string, std::weak_ptr<rate_limit::LimiterTable>> tables;
};
Registry& registry() {
  static Registry r;
  return r;
}

}  // namespace

Result<QuotaConfig> parseConfig(const YAML::Node& config) {
  if (!config || !config.IsMap()) return configError("expected a map with at least 'limits'");
  if (auto st =
          checkKeys(config, {"name", "mode", "key", "missing_key", "limits", "time_zone", "headers",
                             "headers_on_success", "max_keys", "redis", "on_redis_error"});
      !st.ok()) {
    return st.error();
  }
  QuotaConfig c;
  c.redis.prefix = "gatehouse:quota:";
  auto mode = rate_limit::parseMode(config, {"local", "redis"});
  if (!mode.ok()) return mode.error();
  c.use_redis = *mode == "redis";
  if (!c.use_redis) {
    for (auto k : {"redis", "on_redis_error"}) {
      if (config[k]) return configError(std::string(k) + ": only with mode redis");
    }
  } else {
    if (auto st = rate_limit::parseRedis(config["redis"],
                                         "mode redis (a map with at least 'address')", c.redis);
        !st.ok()) {
      return st.error();
    }
    if (config["on_redis_error"]) {
      auto e = rate_limit::parseOnError(config["on_redis_error"], "on_redis_error");
      if (!e.ok()) return e.error();
      if (*e == OnRedisError::kFallback) {
        return configError(
            "on_redis_error: expected fail_open or fail_closed (a quota has no "
            "local fallback: its count lives in Redis)");
      }
      c.on_redis_error = *e;
    }
  }
  if (config["name"]) {
    auto n = readString(config["name"], "name");
    if (!n.ok()) return n.error();
    bool ok = !n->empty() && n->size() <= 128;
    for (unsigned char ch : *n) {
      ok = ok && ch > 0x20 && ch < 0x7f && ch != '/' && ch != '{' && ch != '}' && ch != '%' &&
           ch != '?';
    }
    if (!ok) {
      return configError(
          "name: expected 1-128 printable ASCII characters without spaces, '/', "
          "'%', '?' or braces (it is part of admin URLs and Redis keys)");
    }
    c.name = *n;
  }
  if (auto st = rate_limit::parseKeyedOptions(config, rate_limit::KeyPart::kConsumer, c);
      !st.ok()) {
    return st.error();
  }
  auto tz = std::make_shared<cal::TimeZone>();
  if (config["time_zone"]) {
    auto z = readString(config["time_zone"], "time_zone");
    if (!z.ok()) return z.error();
    auto loaded = cal::TimeZone::load(*z);
    if (!loaded.ok()) {
      return configError("time_zone: " + loaded.error().message +
                         "; expected an IANA name such as UTC or Europe/Berlin");
    }
    *tz = std::move(*loaded);
    c.time_zone = *z;
  }
  auto parse = [&](const YAML::Node& node, const std::string& what) {
    return parseLimit(node, what, tz, !c.use_redis);
  };
  if (auto st = rate_limit::parseLimitList(config["limits"], "quota", parse, c); !st.ok()) {
    return st.error();
  }
  return c;
}

std::shared_ptr<Counters> countersFor(const std::string& name) {
  auto& r = registry();
  std::lock_guard lock(r.mu);
  auto& p = r.counters[name];
  if (!p) {
    p = std::make_shared<Counters>();
    p->name = name;
  }
  return p;
}

std::shared_ptr<rate_limit::LimiterTable> localTableFor(const QuotaConfig& c) {
  // Everything that gives a stored state its meaning is in the fingerprint.
  std::string fp = c.name + '\n' + std::to_string(c.max_keys) + '\n' + c.time_zone;
  for (const auto& k : c.key)
    fp += '\n' + std::to_string(static_cast<int>(k.part)) + k.header;
  for (const auto& l : c.limits) {
    fp += '\n' + l.name + ' ' + std::to_string(static_cast<int>(l.algorithm)) + ' ' +
          std::to_string(l.rate.count) + ' ' + std::to_string(l.rate.period_ns);
    if (l.calendar) fp += ' ' + std::string(cal::toString(l.calendar->unit()));
  }
  auto& r = registry();
  std::lock_guard lock(r.mu);
  for (auto it = r.tables.begin(); it != r.tables.end();) {
    it = it->second.expired() ? r.tables.erase(it) : std::next(it);
  }
  auto& w = r.tables[fp];
  if (auto t = w.lock()) return t;
  auto t = std::make_shared<rate_limit::LimiterTable>(c.limits, c.use_redis ? 16 : c.max_keys);
  w = t;
  return t;
}

void collectMetrics(metrics::Scrape& scrape) {
  auto& r = registry();
  std::lock_guard lock(r.mu);
  if (r.counters.empty()) return;
  static const metrics::FieldFamily<CounterCells> kFamilies[] = {
      {{"gatehouse_quota_allowed_total",
        "Requests a quota policy let through (and charged).",
        metrics::Type::kCounter,
        {"policy"}},
       &CounterCells::allowed},
      {{"gatehouse_quota_exceeded_total",
        "Requests a quota policy rejected (not charged).",
        metrics::Type::kCounter,
        {"policy"}},
       &CounterCells::exceeded},
      {{"gatehouse_quota_missing_key_total",
        "Requests without a value for the quota's key.",
        metrics::Type::kCounter,
        {"policy"}},
       &CounterCells::missing_key},
      {{"gatehouse_quota_redis_errors_total",
        "Quota checks that Redis could not answer (error, timeout, unreachable).",
        metrics::Type::kCounter,
        {"policy"}},
       &CounterCells::redis_errors},
      {{"gatehouse_quota_degraded_total",
        "Requests decided by on_redis_error because Redis could not answer.",
        metrics::Type::kCounter,
        {"policy"}},
       &CounterCells::degraded},
  };
  metrics::addFieldFamilies(scrape, kFamilies, r.counters);
}

}  // namespace gatehouse::policies::quota
