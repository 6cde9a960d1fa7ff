#include "explain/policy_notes.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <exception>
#include <vector>

#include "core/encoding.h"
#include "net/cidr.h"
#include "policies/auth/auth_common.h"
#include "policies/auth/consumers.h"
#include "policies/auth/credentials.h"

namespace gatehouse::explain {

namespace {

using YAML::Node;

std::string str(const Node& n, std::string fallback = {}) {
  return n && n.IsScalar() ? n.as<std::string>() : std::move(fallback);
}

std::vector<std::string> strings(const Node& n) {
  std::vector<std::string> out;
  if (n && n.IsSequence()) {
    for (const auto& item : n)
      if (item.IsScalar()) out.push_back(item.as<std::string>());
  } else if (n && n.IsScalar()) {
    out.push_back(n.as<std::string>());
  }
  return out;
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items)
    out += (out.empty() ? "" : ", ") + i;
  return out;
}

bool optionalAuth(const Node& config, const http::FilterFactory* factory) {
  if (const auto* a = dynamic_cast<const policies::auth::AuthFactory*>(factory)) {
    return a->isOptional();
  }
  return config["optional"] && config["optional"].IsScalar() && config["optional"].as<bool>();
}

PolicyNote respond(int status, std::string detail) {
  return {Decision::kRespond, status, std::move(detail)};
}
PolicyNote pass(std::string detail) {
  return {Decision::kContinue, 0, std::move(detail)};
}
PolicyNote depends(std::string detail, int failure_status = 0) {
  return {Decision::kDepends, failure_status, std::move(detail)};
}

// A missing credential: 401, unless the policy is optional (or has an anonymous identity).
PolicyNote missingCredential(const Node& config, const http::FilterFactory* factory,
                             std::string what) {
  if (const Node anon = config["anonymous"]; anon && anon.IsScalar()) {
    return pass("no " + what + ": passes as anonymous consumer '" + anon.as<std::string>() + "'");
  }
  if (optionalAuth(config, factory)) {
    return pass("no " + what + ": optional, passes unauthenticated");
  }
  return respond(401, "no " + what + ": 401");
}

PolicyNote ipRestriction(const Node& config, const ChainState& s) {
  auto listed = [&](const char* key, std::string& hit) {
    for (const auto& text : strings(config[key])) {
      auto c = net::Cidr::parse(text);
      if (!c.ok()) continue;
      net::CidrSet one;
      one.add(*c);
      if (one.contains(s.client_ip)) {
        hit = text;
        return true;
      }
    }
    return false;
  };
  std::string hit;
  const std::string ip(s.client_ip);
  if (listed("deny", hit))
    return respond(403, "client " + ip + " is on the deny list (" + hit + ")");
  if (config["allow"]) {
    if (!listed("allow", hit)) return respond(403, "client " + ip + " is not on the allow list");
    return pass("client " + ip + " is on the allow list (" + hit + ")");
  }
  return pass("client " + ip + " is on no deny list");
}

PolicyNote cors(const Node& config, const ChainState& s) {
  const auto origins = strings(config["origins"]);
  const std::string_view origin = s.headers->get("origin");
  const bool allowed =
      std::find(origins.begin(), origins.end(), "*") != origins.end() ||
      std::find(origins.begin(), origins.end(), std::string(origin)) != origins.end();
  const bool preflight = s.method == "OPTIONS" && s.headers->has("origin") &&
                         s.headers->has("access-control-request-method");
  if (preflight) {
    if (!allowed)
      return respond(403, "preflight from origin '" + std::string(origin) + "' refused");
    return respond(204,
                   "answers the preflight itself (origin allowed; the requested method and "
                   "headers are checked too: 403 if they are not allowed)");
  }
  if (origin.empty()) return pass("no Origin header: nothing to add");
  if (!allowed) return pass("origin '" + std::string(origin) + "' not allowed: no CORS headers");
  return pass("origin '" + std::string(origin) + "' allowed: adds Access-Control-Allow-Origin");
}

// The consumers key_auth accepts keys of: inline items, registry names, or the whole registry.
const policies::Consumer* keyOwner(const Node& config, const ChainState& s,
                                   const policies::Sha256Digest& digest, std::string& inline_name) {
  const Node list = config["consumers"];
  if (list && list.IsSequence()) {
    for (const auto& item : list) {
      if (item.IsMap()) {
        for (const auto& k : strings(item["keys"])) {
          policies::Sha256Digest d{};
          if (policies::parseHexDigest(k, d) && d == digest) {
            inline_name = str(item["name"]);
            return nullptr;
          }
        }
      } else if (item.IsScalar() && s.consumers) {
        const policies::Consumer* c = s.consumers->byName(item.as<std::string>());
        if (c && std::find(c->key_digests.begin(), c->key_digests.end(), digest) !=
                     c->key_digests.end()) {
          return c;
        }
      }
    }
    return nullptr;
  }
  if (!s.consumers) return nullptr;
  for (const auto& c : s.consumers->consumers()) {
    if (std::find(c.key_digests.begin(), c.key_digests.end(), digest) != c.key_digests.end()) {
      return &c;
    }
  }
  return nullptr;
}

PolicyNote keyAuth(const Node& config, const http::FilterFactory* factory, ChainState& s) {
  const std::string header = config["header"] ? str(config["header"]) : std::string("x-api-key");
  const std::string query = str(config["query"]);
  std::vector<std::string_view> keys;
  if (!header.empty()) {
    for (const auto& f : s.headers->fields())
      if (http::iequals(f.name, header)) keys.push_back(f.value);
  }
  if (!query.empty()) {
    std::string_view q = s.query;
    while (!q.empty()) {
      const size_t amp = q.find('&');
      const std::string_view pair = q.substr(0, amp);
      q = amp == std::string_view::npos ? std::string_view{} : q.substr(amp + 1);
      const size_t eq = pair.find('=');
      if (pair.substr(0, eq) == query && eq != std::string_view::npos) {
        keys.push_back(pair.substr(eq + 1));
      }
    }
  }
  const std::string where = header.empty()  ? "query '" + query + "'"
                            : query.empty() ? "header '" + header + "'"
                                            : "header '" + header + "' or query '" + query + "'";
  if (keys.empty()) return missingCredential(config, factory, "API key in " + where);
  if (keys.size() > 1) return respond(401, "more than one API key in " + where + ": 401");
  // Keys are stored as SHA-256 digests; hashing the presented one is what the policy does too.
  const policies::Sha256Digest digest = policies::sha256(keys[0]);
  std::string inline_name;
  if (const policies::Consumer* c = keyOwner(config, s, digest, inline_name)) {
    s.consumer = c->name;
    return pass("API key in " + where + " belongs to consumer '" + c->name + "'");
  }
  if (!inline_name.empty()) {
    s.consumer = inline_name;
    return pass("API key in " + where + " belongs to consumer '" + inline_name + "'");
  }
  if (keys[0].find('%') != std::string_view::npos) {
    s.maybe_authenticated = true;
    return depends("API key in " + where + " is percent-encoded: decoded and checked at run time",
                   401);
  }
  return respond(401, "API key in " + where + " matches no consumer: 401");
}

// Auth policies whose check needs a secret, a clock or a service: the presence of the
// credential is all that can be judged here.
PolicyNote presenceAuth(std::string_view name, const Node& config,
                        const http::FilterFactory* factory, ChainState& s) {
  const std::string header = config["header"] ? str(config["header"]) : "authorization";
  const std::string_view value = s.headers->get(header);
  std::string scheme;
  std::string what;
  if (name == "basic_auth") {
    scheme = "basic ";
    what = "Basic credentials";
  } else if (name == "hmac_auth") {
    scheme = "signature ";
    what = "HMAC signature (Authorization: Signature ...)";
  } else {
    scheme = header == "authorization" ? "bearer " : "";
    what = "bearer token in header '" + header + "'";
    if (config["cookie"] || config["query"]) what = "token (" + what + ", cookie or query)";
  }
  std::string lower(value.substr(0, std::min(value.size(), scheme.size())));
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; });
  const bool present = !value.empty() && lower == scheme;
  if (!present && !config["cookie"] && !config["query"]) {
    return missingCredential(config, factory, what);
  }
  s.maybe_authenticated = true;
  if (name == "basic_auth") {
    std::string user;
    if (auto decoded =
            policies::base64Decode(value.substr(std::min(value.size(), scheme.size())))) {
      user = decoded->substr(0, decoded->find(':'));
    }
    if (s.consumers && !user.empty() && !s.consumers->findBasic(user) && !config["users"]) {
      return respond(401, "user '" + user + "' is no consumer: 401");
    }
    return depends("user '" + user + "': password checked at run time (not here)", 401);
  }
  if (name == "jwt_auth")
    return depends("token present: signature and claims checked at run time", 401);
  if (name == "oauth2_introspection") {
    return depends("token present: introspected at run time (not called here)", 401);
  }
  return depends("signature present: verified at run time", 401);
}

PolicyNote rateLimit(std::string_view name, const Node& config) {
  std::vector<std::string> limits;
  for (const auto& l : config["limits"]) {
    if (l["concurrency"]) {
      limits.push_back(str(l["concurrency"]) + " in flight");
      continue;
    }
    std::string text = str(l["rate"]);
    if (l["burst"]) text += " (burst " + str(l["burst"]) + ")";
    if (l["algorithm"]) text += " " + str(l["algorithm"]);
    limits.push_back(text);
  }
  std::vector<std::string> key = strings(config["key"]);
  if (key.empty()) key.push_back("client_ip");
  const std::string mode = str(config["mode"], "local");
  if (name == "quota") {
    return depends("would count against the quota keyed by " + joined(key) +
                       " (not counted here): 429 once it is used up",
                   429);
  }
  return depends("would check " + joined(limits) + " per " + joined(key) + " (" + mode +
                     " counters; not counted here): 429 when exceeded",
                 429);
}

PolicyNote requireConsumer(const ChainState& s) {
  if (!s.consumer.empty()) return pass("consumer '" + s.consumer + "' set by an earlier policy");
  if (s.maybe_authenticated) return depends("passes if an earlier credential verifies", 401);
  return respond(401, "no earlier policy authenticated the request: 401");
}

PolicyNote acl(const Node& config, const ChainState& s) {
  const auto allow = strings(config["allow"]);
  const auto deny = strings(config["deny"]);
  if (s.consumer.empty()) {
    if (s.maybe_authenticated) return depends("decided by the consumer verified at run time", 403);
    if (!allow.empty()) return respond(403, "no consumer and an allow list: 403");
    return pass("no consumer; deny list only");
  }
  std::vector<std::string> names = {s.consumer};
  if (s.consumers) {
    if (const auto* c = s.consumers->byName(s.consumer)) {
      names.insert(names.end(), c->groups.begin(), c->groups.end());
    }
  }
  auto onList = [&](const std::vector<std::string>& list) {
    for (const auto& n : names)
      if (std::find(list.begin(), list.end(), n) != list.end()) return n;
    return std::string();
  };
  if (auto hit = onList(deny); !hit.empty()) return respond(403, "'" + hit + "' is denied: 403");
  if (!allow.empty()) {
    if (auto hit = onList(allow); !hit.empty()) return pass("'" + hit + "' is allowed");
    return respond(403, "consumer '" + s.consumer + "' is not on the allow list: 403");
  }
  return pass("consumer '" + s.consumer + "' is on no deny list");
}

PolicyNote describeOther(std::string_view name, const Node& config) {
  if (name == "direct_response") {
    return respond(config["status"] ? config["status"].as<int>() : 200, "answers directly");
  }
  if (name == "redirect") {
    return respond(config["status"] ? config["status"].as<int>() : 302, "redirects");
  }
  if (name == "cert_auth") return depends("needs a verified TLS client certificate", 401);
  if (name == "headers") return pass("changes request and/or response headers");
  if (name == "rewrite") return pass("rewrites the path or Host sent upstream");
  if (name == "compress") return pass("may compress the response");
  if (name == "cache") return depends("may answer from the cache (not looked up here)");
  if (name == "metering") return pass("counts usage after the response (not counted here)");
  if (name == "adaptive_concurrency") return depends("503 when over the adaptive limit", 503);
  if (name == "lua") return depends("runs a Lua script (not run here)");
  if (name == "openapi_validate") return depends("validates the request against OpenAPI", 400);
  if (name == "transform") return pass("transforms the request and/or response");
  if (name == "version") return depends("may pick the cluster by API version");
  if (name == "aggregate") return respond(200, "answers by calling several upstreams");
  if (name == "grpc_transcode") return depends("transcodes JSON to gRPC when a mapping matches");
  return depends("decided at run time");
}

}  // namespace

std::string_view decisionName(Decision d) {
  switch (d) {
    case Decision::kContinue:
      return "continue";
    case Decision::kRespond:
      return "respond";
    case Decision::kDepends:
      return "depends";
  }
  return "depends";
}

PolicyNote notePolicy(std::string_view name, const YAML::Node& config,
                      const http::FilterFactory* factory, ChainState& state) {
  // The config was validated when the snapshot was built; a conversion that still throws
  // gives an honest "unknown" rather than an abort.
  try {
    if (name == "ip_restriction") return ipRestriction(config, state);
    if (name == "cors") return cors(config, state);
    if (name == "key_auth") return keyAuth(config, factory, state);
    if (name == "basic_auth" || name == "hmac_auth" || name == "jwt_auth" ||
        name == "oauth2_introspection") {
      return presenceAuth(name, config, factory, state);
    }
    if (name == "rate_limit" || name == "quota") return rateLimit(name, config);
    if (name == "require_consumer") return requireConsumer(state);
    if (name == "acl") return acl(config, state);
    return describeOther(name, config);
  } catch (const std::exception& e) {
    return depends(std::string("not judged: ") + e.what());
  }
}

}  // namespace gatehouse::explain
