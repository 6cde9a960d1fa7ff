#include "policies/rate_limit/common.h"

#include <yaml-cpp/yaml.h>

#include <arpa/inet.h>

#include "config/model.h"
#include "net/tls.h"
#include "policies/policy_yaml.h"
#include "trace/request_trace.h"

namespace gatehouse::policies::rate_limit {
namespace {

constexpr char kKeySeparator = '\x1f';
// The key of every request without one, under missing_key: shared.
constexpr std::string_view kSharedKey =
    "\x1e"
    "anonymous";

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
Status parseRedisTls(const YAML::Node& t, redis::Endpoint& ep) {
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
    if (auto st = readOptional(t, "verify", tc.verify, "redis.tls.verify"); !st.ok()) {
      return st.error();
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

// `key`: one key part or a non-empty list of them.
Status parseKeyParts(const YAML::Node& k, std::vector<KeySpec>& out) {
  if (!k.IsSequence()) {
    auto part = parseKeyPart(k, "key");
    if (!part.ok()) return part.error();
    out.push_back(std::move(*part));
    return {};
  }
  if (k.size() == 0) return configError("key: expected at least one key part");
  for (size_t i = 0; i < k.size(); ++i) {
    auto part = parseKeyPart(k[i], "key[" + std::to_string(i) + "]");
    if (!part.ok()) return part.error();
    out.push_back(std::move(*part));
  }
  return {};
}

}  // namespace

Result<runtime::Duration> readCallTimeout(const YAML::Node& node, const std::string& what) {
  // The unit is required: a bare number ("5") is refused rather than read as milliseconds.
  const bool unit = node.IsScalar() && !node.Scalar().empty() &&
                    (node.Scalar().back() < '0' || node.Scalar().back() > '9');
  auto d = readDuration(unit ? node : YAML::Node(), what, std::chrono::milliseconds(1),
                        std::chrono::seconds(60), "100ms or 2s");
  if (!d.ok()) return d.error();
  return std::chrono::duration_cast<runtime::Duration>(*d);
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
  } else if (s->rfind("var:", 0) == 0 && s->size() > 4) {
    // A request variable set by a policy earlier on the route (graphql_operation, say).
    k.part = KeyPart::kVar;
    k.header = s->substr(4);
  } else {
    return configError(std::string(what) + ": unknown key '" + *s +
                       "'; expected client_ip, route, consumer, header:NAME, claim:NAME or "
                       "var:NAME");
  }
  return k;
}

Result<OnRedisError> parseOnError(const YAML::Node& node, const std::string& what) {
  return readChoice<OnRedisError>(node, what,
                                  {{"fail_open", OnRedisError::kFailOpen},
                                   {"fail_closed", OnRedisError::kFailClosed},
                                   {"fallback", OnRedisError::kFallback}});
}

Status parseRedis(const YAML::Node& node, std::string_view required, RedisSettings& r) {
  if (!node || !node.IsMap()) return configError("redis: required with " + std::string(required));
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
  for (auto [key, field] : {std::pair{"timeout", &r.endpoint.timeout},
                            std::pair{"connect_timeout", &r.endpoint.connect_timeout}}) {
    if (!node[key]) continue;
    auto t = readCallTimeout(node[key], std::string("redis.") + key);
    if (!t.ok()) return t.error();
    *field = *t;
  }
  if (node["tls"]) return parseRedisTls(node["tls"], r.endpoint);
  return {};
}

Result<std::string> parseMode(const YAML::Node& config,
                              std::initializer_list<std::string_view> modes) {
  if (!config["mode"]) return std::string("local");
  std::vector<std::string_view> names(modes);
  auto i = readChoiceIndex(config["mode"], "mode", names, "mode");
  if (!i.ok()) return i.error();
  return std::string(names[*i]);
}

Status parseKeyedOptions(const YAML::Node& config, KeyPart default_key, KeyedLimitOptions& out) {
  if (const auto& k = config["key"]) {
    if (auto st = parseKeyParts(k, out.key); !st.ok()) return st.error();
  } else {
    out.key.push_back(KeySpec{default_key, {}});
  }
  if (config["missing_key"]) {
    auto m = readChoice<MissingKey>(config["missing_key"], "missing_key",
                                    {{"allow", MissingKey::kAllow},
                                     {"deny", MissingKey::kDeny},
                                     {"shared", MissingKey::kShared}});
    if (!m.ok()) return m.error();
    out.missing_key = *m;
  }
  if (config["headers"]) {
    auto h = readChoice<HeaderStyle>(config["headers"], "headers",
                                     {{"draft", HeaderStyle::kDraft},
                                      {"legacy", HeaderStyle::kLegacy},
                                      {"none", HeaderStyle::kNone}},
                                     "style");
    if (!h.ok()) return h.error();
    out.headers = *h;
  }
  if (auto st = readOptional(config, "headers_on_success", out.headers_on_success); !st.ok())
    return st.error();
  if (config["max_keys"]) {
    auto n = readInt(config["max_keys"], "max_keys", 16, 16 * 1024 * 1024);
    if (!n.ok()) return n.error();
    out.max_keys = static_cast<size_t>(*n);
  }
  return {};
}

Status parseLimitList(const YAML::Node& limits, std::string_view noun, const LimitParser& parse,
                      KeyedLimitOptions& out) {
  const std::string plural = std::string(noun) + "s";
  if (!limits) return configError("limits: required (a list of " + plural + ")");
  if (!limits.IsSequence() || limits.size() == 0) {
    return configError("limits: expected a non-empty list of " + plural);
  }
  if (limits.size() > 8) return configError("limits: at most 8 " + plural + " per policy");
  for (size_t i = 0; i < limits.size(); ++i) {
    const std::string what = "limits[" + std::to_string(i) + "]";
    auto l = parse(limits[i], what);
    if (!l.ok()) return l.error();
    for (const auto& prev : out.limits) {
      if (prev.name == l->name) {
        return configError(what + ": duplicate " + std::string(noun) + " name '" + l->name +
                           "'; give one a 'name'");
      }
    }
    out.limits.push_back(std::move(*l));
  }
  out.policy_header = policyHeader(out.limits);
  return {};
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
      case KeyPart::kVar:
        v = ctx.var(spec[i].header);
        break;
    }
    if (v.empty()) return false;
    if (i > 0) scratch += kKeySeparator;
    scratch += v;
  }
  return true;
}

std::optional<http::Verdict> keyOf(const KeyedLimitOptions& o, http::RequestContext& ctx,
                                   std::string& key, metrics::Counter& missing,
                                   metrics::Counter& rejected, std::string_view what) {
  if (extractKey(o.key, ctx, key)) return std::nullopt;
  missing.inc();
  switch (o.missing_key) {
    case MissingKey::kAllow:
      return http::Verdict::kContinue;
    case MissingKey::kDeny:
      rejected.inc();
      return ctx.respondError(429, "request has no value for the " + std::string(what) + " key");
    case MissingKey::kShared:
      break;
  }
  key = kSharedKey;
  return std::nullopt;
}

bool decisionFromReply(const redis::CallResult& r, size_t limits, Decision& d) {
  if (!r.ok || r.ints.size() != 5) return false;
  constexpr int64_t kMs = 1'000'000;
  d = Decision{};
  d.allowed = r.ints[0] >= 1;
  d.limiting = static_cast<int>(r.ints[1]);
  if (d.limiting < 0 || d.limiting >= static_cast<int>(limits)) d.limiting = -1;
  d.remaining = static_cast<uint64_t>(std::max<int64_t>(0, r.ints[2]));
  d.reset_ns = r.ints[3] * kMs;
  d.retry_after_ns = r.ints[4] * kMs;
  return true;
}

namespace {

// 429 `message` with the quota headers of `d` and Retry-After.
http::Verdict respondLimited(http::RequestContext& ctx, std::string_view message,
                             const KeyedLimitOptions& o, const Decision& d) {
  ctx.respondError(429, message);
  addLimitHeaders(o.headers, o.policy_header, o.limits, d, ctx.local_reply.headers);
  ctx.local_reply.headers.set("retry-after",
                              std::to_string(std::max<int64_t>(1, ceilSeconds(d.retry_after_ns))));
  return http::Verdict::kRespond;
}

}  // namespace

http::Verdict KeyedLimitFilter::decide(http::RequestContext& ctx) {
  if (ctx.trace) {
    ctx.trace->event(
        "rate_limit",
        {trace::Attribute::text("rate_limit.verdict", decision_.allowed ? "allowed" : "limited"),
         trace::Attribute::integer("rate_limit.remaining",
                                   static_cast<int64_t>(decision_.remaining))});
  }
  if (decision_.allowed) {
    charged_ = true;
    allowed_.inc();
    return http::Verdict::kContinue;
  }
  rejected_.inc();
  return respondLimited(ctx, message_, options_, decision_);
}

http::Verdict KeyedLimitFilter::onResponseHeaders(http::RequestContext& ctx) {
  // Our own 429 already carries the headers; add them to other responses only when asked.
  if (charged_ && options_.headers_on_success) {
    addLimitHeaders(options_.headers, options_.policy_header, options_.limits, decision_,
                    ctx.response.headers);
  }
  return http::Verdict::kContinue;
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

}  // namespace gatehouse::policies::rate_limit
