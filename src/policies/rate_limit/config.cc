#include "policies/rate_limit/config.h"

#include <yaml-cpp/yaml.h>

#include <arpa/inet.h>

#include <cmath>
#include <cstdlib>
#include <map>
#include <mutex>

#include "config/model.h"
#include "metrics/registry.h"
#include "net/tls.h"
#include "policies/policy_yaml.h"

namespace gatehouse::policies::rate_limit {
namespace {

constexpr char kKeySeparator = '\x1f';
constexpr uint64_t kMaxBurst = 1'000'000'000;

}  // namespace

Result<bool> readBool(const YAML::Node& node, std::string_view what) {
  if (node.IsScalar()) {
    if (node.Scalar() == "true") return true;
    if (node.Scalar() == "false") return false;
  }
  return configError(std::string(what) + ": expected true or false");
}

Result<KeySpec> parseKeyPart(const YAML::Node& node, std::string_view what) {
  auto s = readString(node, what);
  if (!s.ok()) return s.error();
  KeySpec k;
  if (*s == "client_ip") {
    k.part = KeyPart::kClientIp;
  } else if (*s == "route") {
    k.part = KeyPart::kRoute;
  } else if (*s == "consumer") {
    k.part = KeyPart::kConsumer;
  } else if (s->rfind("header:", 0) == 0) {
    k.part = KeyPart::kHeader;
    k.header = s->substr(7);
    if (!isHeaderName(k.header)) {
      return configError(std::string(what) + ": invalid header name '" + k.header + "'");
    }
  } else if (s->rfind("claim:", 0) == 0 && s->size() > 6) {
    // A claim of the token a jwt_auth or oauth2_introspection policy earlier on the route
    // verified (top-level string or integer claims).
    k.part = KeyPart::kClaim;
    k.header = s->substr(6);
  } else {
    return configError(std::string(what) + ": unknown key '" + *s +
                       "'; expected client_ip, route, consumer, header:NAME or claim:NAME");
  }
  return k;
}

namespace {

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
      auto a = readString(node["algorithm"], what + ".algorithm");
      if (!a.ok()) return a.error();
      if (*a == "token_bucket") {
        l.algorithm = Algorithm::kTokenBucket;
      } else if (*a == "sliding_window") {
        l.algorithm = Algorithm::kSlidingWindow;
      } else {
        return configError(what + ".algorithm: unknown algorithm '" + *a +
                           "'; expected token_bucket or sliding_window");
      }
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

Result<OnRedisError> parseOnError(const YAML::Node& node, const std::string& what) {
  auto s = readString(node, what);
  if (!s.ok()) return s.error();
  if (*s == "fail_open") return OnRedisError::kFailOpen;
  if (*s == "fail_closed") return OnRedisError::kFailClosed;
  if (*s == "fallback") return OnRedisError::kFallback;
  return configError(what + ": unknown value '" + *s +
                     "'; expected fail_open, fail_closed or fallback");
}

// "250ms", "2s": a call deadline. Whole milliseconds, 1 ms to 60 s.
Result<runtime::Duration> parseMillis(const YAML::Node& node, const std::string& what) {
  auto s = readString(node, what);
  if (!s.ok()) return s.error();
  std::string_view v = *s;
  int64_t mult = 0;
  if (v.size() > 2 && v.substr(v.size() - 2) == "ms") {
    mult = 1;
    v.remove_suffix(2);
  } else if (v.size() > 1 && v.back() == 's') {
    mult = 1000;
    v.remove_suffix(1);
  }
  int64_t n = 0;
  bool digits = mult != 0 && !v.empty() && v.size() <= 6;
  for (char c : v) {
    digits = digits && c >= '0' && c <= '9';
    if (digits) n = n * 10 + (c - '0');
  }
  if (!digits || n * mult < 1 || n * mult > 60000) {
    return configError(what + ": expected a duration from 1ms to 60s, like 100ms or 2s");
  }
  return std::chrono::duration_cast<runtime::Duration>(std::chrono::milliseconds(n * mult));
}

namespace {

Result<std::pair<std::string, int>> parseHostPort(const std::string& text,
                                                  const std::string& what) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos) return configError(what + ": expected IP:PORT");
  std::string host = text.substr(0, colon);
  if (host == "localhost") host = "127.0.0.1";
  in_addr v4{};
  in6_addr v6{};
  // A literal address: a worker never resolves names (that would block it).
  if (::inet_pton(AF_INET, host.c_str(), &v4) != 1 &&
      ::inet_pton(AF_INET6, host.c_str(), &v6) != 1) {
    return configError(what + ": '" + host +
                       "' is not an IP address (host names are not resolved)");
  }
  int port = 0;
  std::string ps = text.substr(colon + 1);
  for (char c : ps)
    port = (c >= '0' && c <= '9' && port < 100000) ? port * 10 + (c - '0') : -1;
  if (ps.empty() || port < 1 || port > 65535)
    return configError(what + ": invalid port '" + ps + "'");
  return std::pair{host, port};
}

// redis.tls: true (system trust store, verify the address) or a map of the upstream TLS
// options. The OpenSSL context is built here, once, and shared by every worker.
Status parseRedisTls(const YAML::Node& t, RedisEndpoint& ep) {
  config::UpstreamTls tc;
  if (t.IsScalar()) {
    auto b = readBool(t, "redis.tls");
    if (!b.ok()) return configError("redis.tls: expected true, false or a map");
    if (!*b) return {};
  } else if (t.IsMap()) {
    if (auto st = checkKeys(t, {"ca", "cert", "key", "sni", "verify", "min_version"}); !st.ok()) {
      return configError("redis.tls: " + st.error().message);
    }
    for (auto [key, field] : {std::pair{"ca", &tc.ca_file}, std::pair{"cert", &tc.cert_file},
                              std::pair{"key", &tc.key_file}, std::pair{"sni", &tc.sni}}) {
      if (!t[key]) continue;
      auto v = readString(t[key], std::string("redis.tls.") + key);
      if (!v.ok()) return v.error();
      *field = *v;
    }
    if (tc.cert_file.has_value() != tc.key_file.has_value()) {
      return configError("redis.tls: cert and key go together");
    }
    if (t["verify"]) {
      auto b = readBool(t["verify"], "redis.tls.verify");
      if (!b.ok()) return b.error();
      tc.verify = *b;
    }
    if (t["min_version"]) {
      auto v = readString(t["min_version"], "redis.tls.min_version");
      if (!v.ok()) return v.error();
      if (*v != "1.2" && *v != "1.3")
        return configError("redis.tls.min_version: expected 1.2 or 1.3");
      tc.min_version = *v;
    }
  } else {
    return configError("redis.tls: expected true, false or a map");
  }
  auto ctx = net::TlsClientContext::create(tc);
  if (!ctx.ok()) return configError("redis.tls: " + ctx.error().message);
  ep.tls = *ctx;
  ep.tls_id = tc.ca_file.value_or("") + "|" + tc.cert_file.value_or("") + "|" +
              tc.sni.value_or("") + "|" + (tc.verify ? "v" : "nv") + "|" + tc.min_version;
  return {};
}

}  // namespace

Status parseRedis(const YAML::Node& node, RedisSettings& r) {
  if (!node || !node.IsMap()) {
    return configError("redis: required with mode redis or hybrid (a map)");
  }
  if (auto st = checkKeys(node, {"address", "username", "password", "database", "timeout",
                                 "connect_timeout", "prefix", "tls", "sentinel"});
      !st.ok()) {
    return configError("redis: " + st.error().message);
  }
  if (node["address"]) {
    if (node["sentinel"])
      return configError("redis.address: give 'address' or 'sentinel', not both");
    auto a = readString(node["address"], "redis.address");
    if (!a.ok()) return a.error();
    auto hp = parseHostPort(*a, "redis.address");
    if (!hp.ok()) return hp.error();
    r.endpoint.host = hp->first;
    r.endpoint.port = hp->second;
  }
  if (const auto& sn = node["sentinel"]) {
    if (!sn.IsMap())
      return configError("redis.sentinel: expected a map with 'master' and 'addresses'");
    if (auto st = checkKeys(sn, {"master", "addresses", "password"}); !st.ok()) {
      return configError("redis.sentinel: " + st.error().message);
    }
    auto m = readString(sn["master"], "redis.sentinel.master");
    if (!m.ok()) return m.error();
    if (m->empty()) return configError("redis.sentinel.master: must not be empty");
    r.endpoint.sentinel_master = *m;
    const auto& list = sn["addresses"];
    if (!list || !list.IsSequence() || list.size() == 0) {
      return configError("redis.sentinel.addresses: expected a list of IP:PORT");
    }
    for (size_t i = 0; i < list.size(); ++i) {
      std::string what = "redis.sentinel.addresses[" + std::to_string(i) + "]";
      auto a = readString(list[i], what);
      if (!a.ok()) return a.error();
      auto hp = parseHostPort(*a, what);
      if (!hp.ok()) return hp.error();
      r.endpoint.sentinels.push_back(*hp);
    }
    if (sn["password"]) {
      auto pw = readString(sn["password"], "redis.sentinel.password");
      if (!pw.ok()) return pw.error();
      r.endpoint.sentinel_password = *pw;
    }
  }
  for (auto [key, field] :
       {std::pair{"username", &r.endpoint.username}, std::pair{"password", &r.endpoint.password},
        std::pair{"prefix", &r.prefix}}) {
    if (!node[key]) continue;
    auto v = readString(node[key], std::string("redis.") + key);
    if (!v.ok()) return v.error();
    *field = *v;
  }
  if (!r.endpoint.username.empty() && r.endpoint.password.empty()) {
    return configError("redis.username: needs a password");
  }
  if (node["database"]) {
    auto d = readInt(node["database"], "redis.database", 0, 1024);
    if (!d.ok()) return d.error();
    r.endpoint.database = *d;
  }
  if (node["timeout"]) {
    auto t = parseMillis(node["timeout"], "redis.timeout");
    if (!t.ok()) return t.error();
    r.endpoint.timeout = *t;
  }
  if (node["connect_timeout"]) {
    auto t = parseMillis(node["connect_timeout"], "redis.connect_timeout");
    if (!t.ok()) return t.error();
    r.endpoint.connect_timeout = *t;
  }
  if (node["tls"]) return parseRedisTls(node["tls"], r.endpoint);
  return {};
}

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
    }
  }
  for (const auto& l : c.limits)
    n += ',' + l.name;
  return n;
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
  if (config["mode"]) {
    auto m = readString(config["mode"], "mode");
    if (!m.ok()) return m.error();
    if (*m == "redis") {
      c.mode = Mode::kRedis;
    } else if (*m == "hybrid") {
      c.mode = Mode::kHybrid;
    } else if (*m != "local") {
      return configError("mode: unknown mode '" + *m + "'; expected local, redis or hybrid");
    }
  }
  if (c.mode == Mode::kLocal) {
    for (auto k : {"redis", "on_redis_error", "fallback_share"}) {
      if (config[k]) return configError(std::string(k) + ": only with mode redis or hybrid");
    }
  }
  if (c.mode != Mode::kHybrid && config["hybrid"]) {
    return configError("hybrid: only with mode hybrid");
  }
  if (c.mode == Mode::kHybrid && config["hybrid"]) {
    const auto& h = config["hybrid"];
    if (auto st = checkKeys(h, {"batch", "batch_ttl"}); !st.ok()) {
      return configError("hybrid: " + st.error().message);
    }
    if (h["batch"]) {
      auto b = readInt(h["batch"], "hybrid.batch", 2, 1'000'000);
      if (!b.ok()) return b.error();
      c.hybrid_batch = static_cast<uint64_t>(*b);
    }
    if (h["batch_ttl"]) {
      auto t = parseMillis(h["batch_ttl"], "hybrid.batch_ttl");
      if (!t.ok()) return t.error();
      c.hybrid_ttl = *t;
    }
  }
  if (const auto& k = config["key"]) {
    if (k.IsSequence()) {
      if (k.size() == 0) return configError("key: expected at least one key part");
      for (size_t i = 0; i < k.size(); ++i) {
        auto part = parseKeyPart(k[i], "key[" + std::to_string(i) + "]");
        if (!part.ok()) return part.error();
        c.key.push_back(std::move(*part));
      }
    } else {
      auto part = parseKeyPart(k, "key");
      if (!part.ok()) return part.error();
      c.key.push_back(std::move(*part));
    }
  } else {
    c.key.push_back(KeySpec{KeyPart::kClientIp, {}});
  }
  if (config["missing_key"]) {
    auto m = readString(config["missing_key"], "missing_key");
    if (!m.ok()) return m.error();
    if (*m == "allow") {
      c.missing_key = MissingKey::kAllow;
    } else if (*m == "deny") {
      c.missing_key = MissingKey::kDeny;
    } else if (*m == "shared") {
      c.missing_key = MissingKey::kShared;
    } else {
      return configError("missing_key: unknown value '" + *m + "'; expected allow, deny or shared");
    }
  }
  const auto& limits = config["limits"];
  if (!limits) return configError("limits: required (a list of limits)");
  if (!limits.IsSequence() || limits.size() == 0) {
    return configError("limits: expected a non-empty list of limits");
  }
  if (limits.size() > 8) return configError("limits: at most 8 limits per policy");
  for (size_t i = 0; i < limits.size(); ++i) {
    auto l = parseLimit(limits[i], "limits[" + std::to_string(i) + "]");
    if (!l.ok()) return l.error();
    for (const auto& prev : c.limits) {
      if (prev.name == l->name) {
        return configError("limits[" + std::to_string(i) + "]: duplicate limit name '" + l->name +
                           "'; give one a 'name'");
      }
    }
    c.limits.push_back(std::move(*l));
  }
  if (c.mode != Mode::kLocal) {
    if (auto st = parseRedis(config["redis"], c.redis); !st.ok()) return st.error();
    OnRedisError def = OnRedisError::kFailOpen;
    if (config["on_redis_error"]) {
      auto e = parseOnError(config["on_redis_error"], "on_redis_error");
      if (!e.ok()) return e.error();
      def = *e;
    }
    for (size_t i = 0; i < limits.size(); ++i) {
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
  } else {
    for (size_t i = 0; i < limits.size(); ++i) {
      if (limits[i]["on_redis_error"]) {
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
  if (config["headers"]) {
    auto h = readString(config["headers"], "headers");
    if (!h.ok()) return h.error();
    if (*h == "draft") {
      c.headers = HeaderStyle::kDraft;
    } else if (*h == "legacy") {
      c.headers = HeaderStyle::kLegacy;
    } else if (*h == "none") {
      c.headers = HeaderStyle::kNone;
    } else {
      return configError("headers: unknown style '" + *h + "'; expected draft, legacy or none");
    }
  }
  if (config["headers_on_success"]) {
    auto b = readBool(config["headers_on_success"], "headers_on_success");
    if (!b.ok()) return b.error();
    c.headers_on_success = *b;
  }
  if (config["max_keys"]) {
    auto n = readInt(config["max_keys"], "max_keys", 16, 16 * 1024 * 1024);
    if (!n.ok()) return n.error();
    c.max_keys = static_cast<size_t>(*n);
  }
  if (config["name"]) {
    auto n = readString(config["name"], "name");
    if (!n.ok()) return n.error();
    if (n->empty()) return configError("name: must not be empty");
    c.name = *n;
  } else {
    c.name = defaultName(c);
  }
  c.policy_header = policyHeader(c.limits);
  return c;
}

std::string policyHeader(const std::vector<LimitSpec>& limits) {
  // draft-ietf-httpapi-ratelimit-headers: a list of named quota policies.
  std::string v;
  for (const auto& l : limits) {
    if (!v.empty()) v += ", ";
    v += '"' + l.name + "\";q=" + std::to_string(l.quota());
    if (l.windowSeconds() > 0) v += ";w=" + std::to_string(l.windowSeconds());
  }
  return v;
}

int64_t ceilSeconds(int64_t ns) {
  constexpr int64_t kSecond = 1'000'000'000;
  return ns <= 0 ? 0 : (ns + kSecond - 1) / kSecond;
}

void addLimitHeaders(HeaderStyle style, const std::string& policy_header,
                     const std::vector<LimitSpec>& limits, const Decision& d, http::HeaderMap& h) {
  if (d.limiting < 0 || static_cast<size_t>(d.limiting) >= limits.size()) return;
  const LimitSpec& l = limits[static_cast<size_t>(d.limiting)];
  switch (style) {
    case HeaderStyle::kNone:
      return;
    case HeaderStyle::kDraft: {
      h.set("ratelimit-policy", policy_header);
      std::string v = "\"" + l.name + "\";r=" + std::to_string(d.remaining);
      if (l.algorithm != Algorithm::kConcurrency)
        v += ";t=" + std::to_string(ceilSeconds(d.reset_ns));
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

bool extractKey(const std::vector<KeySpec>& spec, const http::RequestContext& ctx,
                std::string& scratch) {
  scratch.clear();
  for (size_t i = 0; i < spec.size(); ++i) {
    std::string_view v;
    switch (spec[i].part) {
      case KeyPart::kClientIp:
        v = ctx.client_ip;
        break;
      case KeyPart::kRoute:
        v = ctx.route_name;
        break;
      case KeyPart::kConsumer:
        v = ctx.consumer;
        break;
      case KeyPart::kHeader:
        v = ctx.request.headers.get(spec[i].header);
        break;
      case KeyPart::kClaim:
        if (ctx.claims) v = ctx.claims->get(spec[i].header);
        break;
    }
    if (v.empty()) return false;
    if (i > 0) scratch += kKeySeparator;
    scratch += v;
  }
  return true;
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
  scrape.family(kRedisUp).add({}, RedisConn::connectionsUp());
  metrics::addFieldFamilies(scrape, kFamilies, r.by_name);
}

}  // namespace gatehouse::policies::rate_limit
