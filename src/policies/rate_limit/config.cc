#include "policies/rate_limit/config.h"

#include <yaml-cpp/yaml.h>

#include <map>
#include <mutex>

#include "policies/policy_yaml.h"

namespace gatehouse::policies::rate_limit {
namespace {

constexpr char kKeySeparator = '\x1f';
constexpr uint64_t kMaxBurst = 1'000'000'000;

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
  } else {
    return configError(std::string(what) + ": unknown key '" + *s +
                       "'; expected client_ip, route, consumer or header:NAME");
  }
  return k;
}

Result<LimitSpec> parseLimit(const YAML::Node& node, const std::string& what) {
  if (!node.IsMap()) return configError(what + ": expected a map");
  if (auto st = checkKeys(node, {"name", "rate", "burst", "algorithm", "concurrency"}); !st.ok()) {
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
    }
  }
  for (const auto& l : c.limits)
    n += ',' + l.name;
  return n;
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

}  // namespace

Result<RateLimitConfig> parseConfig(const YAML::Node& config) {
  if (!config || !config.IsMap()) return configError("expected a map with at least 'limits'");
  if (auto st = checkKeys(config, {"name", "mode", "key", "missing_key", "limits", "headers",
                                   "headers_on_success", "max_keys"});
      !st.ok()) {
    return st.error();
  }
  RateLimitConfig c;
  if (config["mode"]) {
    auto m = readString(config["mode"], "mode");
    if (!m.ok()) return m.error();
    if (*m == "redis" || *m == "hybrid") {
      return configError("mode: '" + *m + "' is not supported yet; only 'local' is");
    }
    if (*m != "local") return configError("mode: unknown mode '" + *m + "'; expected local");
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

std::string labelValue(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
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

void renderMetrics(std::string& out) {
  auto& r = counterRegistry();
  std::lock_guard lock(r.mu);
  if (r.by_name.empty()) return;
  struct Family {
    const char* name;
    const char* help;
    std::atomic<uint64_t> InstanceCounters::*field;
  };
  static const Family kFamilies[] = {
      {"gatehouse_rate_limit_allowed_total", "Requests a rate_limit policy let through.",
       &InstanceCounters::allowed},
      {"gatehouse_rate_limit_limited_total", "Requests a rate_limit policy rejected.",
       &InstanceCounters::limited},
      {"gatehouse_rate_limit_missing_key_total", "Requests without a value for the policy's key.",
       &InstanceCounters::missing_key},
      {"gatehouse_rate_limit_overflow_total",
       "Requests charged to the shared overflow entry because the key table was full.",
       &InstanceCounters::overflow},
  };
  for (const auto& f : kFamilies) {
    out.append("# HELP ").append(f.name).append(" ").append(f.help).append("\n");
    out.append("# TYPE ").append(f.name).append(" counter\n");
    for (const auto& [name, c] : r.by_name) {
      out.append(f.name).append("{policy=\"").append(labelValue(name)).append("\"} ");
      out.append(std::to_string(((*c).*(f.field)).load(std::memory_order_relaxed))).append("\n");
    }
  }
}

}  // namespace gatehouse::policies::rate_limit
