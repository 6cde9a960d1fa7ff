#include "policies/auth/auth_common.h"

#include <algorithm>

#include "http/headers.h"
#include "policies/policy_yaml.h"
#include "trace/request_trace.h"

namespace gatehouse::policies::auth {

Status checkAuthKeys(const YAML::Node& config, std::initializer_list<std::string_view> own) {
  if (!config.IsMap()) return configError("expected a map");
  for (const auto& kv : config) {
    std::string key = kv.first.as<std::string>("");
    bool ok = std::find(own.begin(), own.end(), key) != own.end() ||
              std::find(std::begin(kIdentityKeys), std::end(kIdentityKeys), key) !=
                  std::end(kIdentityKeys);
    if (ok) continue;
    std::string list;
    for (auto a : own)
      list += (list.empty() ? "" : ", ") + std::string(a);
    for (auto a : kIdentityKeys)
      list += ", " + std::string(a);
    return configError("unknown option '" + key + "'; expected one of: " + list);
  }
  return {};
}

Result<IdentityOptions> readIdentityOptions(const YAML::Node& config,
                                            const http::PolicyContext& ctx) {
  IdentityOptions o;
  if (auto st = readOptional(config, "optional", o.optional); !st.ok()) return st.error();
  if (const auto& n = config["consumer_header"]) {
    auto s = readString(n, "consumer_header");
    if (!s.ok()) return s.error();
    if (!isHeaderName(*s)) return configError("consumer_header: invalid header name '" + *s + "'");
    o.consumer_header = std::move(*s);
  }
  if (const auto& n = config["metadata_headers"]) {
    auto map = readHeaderMap(n, "metadata_headers", "metadata key to header name");
    if (!map.ok()) return map.error();
    o.metadata_headers = std::move(*map);
  }
  std::vector<std::string> earlier_headers;
  for (const auto& f : ctx.preceding) {
    const auto* a = dynamic_cast<const AuthFactory*>(f.get());
    if (!a) continue;
    if (!a->anonymousName().empty()) o.anonymous_before.emplace_back(a->anonymousName());
    const IdentityOptions& e = a->identity();
    if (!e.consumer_header.empty()) earlier_headers.push_back(e.consumer_header);
    for (const auto& kv : e.metadata_headers)
      earlier_headers.push_back(kv.second);
  }
  auto mine = [&](const std::string& h) {
    bool earlier = std::any_of(earlier_headers.begin(), earlier_headers.end(),
                               [&](const std::string& x) { return http::iequals(x, h); });
    if (!earlier) o.strip_when_skipping.push_back(h);
  };
  if (!o.consumer_header.empty()) mine(o.consumer_header);
  for (const auto& kv : o.metadata_headers)
    mine(kv.second);
  return o;
}

const std::shared_ptr<const ConsumerRegistry>& registryOf(const http::PolicyContext& ctx) {
  return ctx.consumers ? ctx.consumers : ConsumerRegistry::empty();
}

Result<std::vector<const Consumer*>> selectConsumers(const YAML::Node& node,
                                                     const ConsumerRegistry& registry,
                                                     bool (*has)(const Consumer&),
                                                     std::string_view what) {
  std::vector<const Consumer*> out;
  if (!node || (node.IsScalar() && node.Scalar() == "registry")) {
    for (const auto& c : registry.consumers()) {
      if (has(c)) out.push_back(&c);
    }
    if (out.empty()) {
      return configError(std::string("consumers: no consumer in the top-level consumers registry "
                                     "has ") +
                         std::string(what));
    }
    return out;
  }
  if (!node.IsSequence() || node.size() == 0) {
    return configError("consumers: expected \"registry\" or a list of consumer names");
  }
  for (size_t i = 0; i < node.size(); ++i) {
    std::string at = "consumers[" + std::to_string(i) + "]";
    auto name = readString(node[i], at);
    if (!name.ok()) return name.error();
    const Consumer* c = registry.byName(*name);
    if (!c) {
      return configError(at + ": unknown consumer '" + *name +
                         "' (not in the top-level consumers registry)");
    }
    if (!has(*c)) {
      return configError(at + ": consumer '" + *name + "' has no " + std::string(what));
    }
    if (std::find(out.begin(), out.end(), c) == out.end()) out.push_back(c);
  }
  return out;
}

void traceAuthAllowed(http::RequestContext& ctx, std::string_view consumer) {
  ctx.trace->event("auth", {trace::Attribute::text("auth.result", "allowed"),
                            trace::Attribute::text("gatehouse.consumer", consumer)});
}

void traceAuthDenied(http::RequestContext& ctx, std::string_view policy, std::string_view reason) {
  ctx.trace->event("auth", {trace::Attribute::text("auth.result", "denied"),
                            trace::Attribute::text("auth.policy", policy),
                            trace::Attribute::text("auth.reason", reason)});
}

void stripIdentityHeaders(http::RequestContext& ctx, const IdentityOptions& o) {
  if (!o.consumer_header.empty()) ctx.request.headers.remove(o.consumer_header);
  for (const auto& [key, header] : o.metadata_headers)
    ctx.request.headers.remove(header);
}

void setIdentity(http::RequestContext& ctx, const Consumer& c, const IdentityOptions& o) {
  if (ctx.trace) traceAuthAllowed(ctx, c.name);
  ctx.consumer = c.name;
  ctx.consumer_groups.assign(c.groups.begin(), c.groups.end());
  if (!o.consumer_header.empty()) ctx.request.headers.set(o.consumer_header, c.name);
  for (const auto& [key, header] : o.metadata_headers) {
    for (const auto& [k, v] : c.metadata) {
      if (k == key) ctx.request.headers.set(header, v);
    }
  }
}

bool skipAuthenticated(http::RequestContext& ctx, const IdentityOptions& o) {
  bool done = !ctx.consumer.empty() &&
              std::find(o.anonymous_before.begin(), o.anonymous_before.end(), ctx.consumer) ==
                  o.anonymous_before.end();
  if (!done) {
    stripIdentityHeaders(ctx, o);
    return false;
  }
  for (const auto& h : o.strip_when_skipping)
    ctx.request.headers.remove(h);
  return true;
}

bool alreadyAuthenticated(http::RequestContext& ctx, const IdentityOptions& o) {
  if (o.optional) return skipAuthenticated(ctx, o);
  stripIdentityHeaders(ctx, o);
  return false;
}

http::Verdict reject(http::RequestContext& ctx, std::string_view policy,
                     auth_metrics::Reason reason, std::string_view challenge,
                     std::string_view message, int status) {
  auth_metrics::reject(policy, reason);
  if (ctx.trace) traceAuthDenied(ctx, policy, auth_metrics::reasonName(reason));
  // A failed credential must not leave an identity from an earlier policy behind.
  ctx.consumer.clear();
  ctx.consumer_groups.clear();
  http::Verdict v = ctx.respondError(status, message);
  if (status == 401 && !challenge.empty())
    ctx.local_reply.headers.add("www-authenticate", challenge);
  return v;
}

void removeQueryParam(http::Request& req, std::string_view name) {
  if (name.empty() || req.query.empty()) return;
  std::string kept;
  kept.reserve(req.query.size());
  std::string_view q = req.query;
  while (!q.empty()) {
    size_t amp = q.find('&');
    std::string_view pair = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view{} : q.substr(amp + 1);
    if (pair.substr(0, pair.find('=')) == name) continue;
    if (!kept.empty()) kept.push_back('&');
    kept.append(pair);
  }
  req.query = std::move(kept);
}

}  // namespace gatehouse::policies::auth
