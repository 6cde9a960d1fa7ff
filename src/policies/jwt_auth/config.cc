#include "policies/jwt_auth/config.h"

#include "policies/policy_yaml.h"

namespace gatehouse::policies::jwt_auth {
namespace {

constexpr int64_t kDay = 24 * 3600 * 1000;

Status parseInlineJwks(const YAML::Node& n, jwt::KeySet& out) {
  std::string text;
  if (n.IsScalar()) {
    text = n.Scalar();
  } else if (n.IsMap()) {
    // A YAML map mirrors the JSON object; round-trip it through YAML's JSON-compatible emitter.
    YAML::Emitter em;
    em << YAML::DoubleQuoted << YAML::Flow << n;
    text = em.c_str();
  } else {
    return configError("jwks: expected a JWKS JSON string or a map with 'keys'");
  }
  size_t skipped = 0;
  auto keys = jwt::parseJwks(text, &skipped);
  if (!keys.ok()) return prefixed("jwks", keys.error());
  if (keys->empty()) return configError("jwks: no usable signing key");
  for (auto& k : *keys)
    out.keys.push_back(std::move(k));
  return {};
}

Status parseKeyList(const YAML::Node& n, jwt::KeySet& out) {
  if (!n.IsSequence()) return configError("keys: expected a list of {kid, alg, pem | secret}");
  for (size_t i = 0; i < n.size(); ++i) {
    const YAML::Node& e = n[i];
    const std::string what = "keys[" + std::to_string(i) + "]";
    if (!e.IsMap()) return configError(what + ": expected a map");
    if (auto st = checkKeys(e, {"kid", "alg", "pem", "secret", "secret_base64url"}); !st.ok()) {
      return prefixed(what, st.error());
    }
    int material = (e["pem"] ? 1 : 0) + (e["secret"] ? 1 : 0) + (e["secret_base64url"] ? 1 : 0);
    if (material != 1)
      return configError(what +
                         ": expected exactly one of pem, secret, "
                         "secret_base64url");
    jwt::Key key;
    if (e["pem"]) {
      auto pem = readString(e["pem"], what + ".pem");
      if (!pem.ok()) return pem.error();
      auto k = jwt::parsePemKey(*pem);
      if (!k.ok()) return prefixed(what + ".pem", k.error());
      key = std::move(*k);
    } else {
      const bool b64 = static_cast<bool>(e["secret_base64url"]);
      auto s = readString(b64 ? e["secret_base64url"] : e["secret"], what + ".secret");
      if (!s.ok()) return s.error();
      key.type = jwt::KeyType::kOct;
      if (b64) {
        if (!jwt::base64UrlDecode(*s, key.secret)) {
          return configError(what + ".secret_base64url: not base64url (no padding)");
        }
      } else {
        key.secret = std::move(*s);
      }
      if (key.secret.size() < 32) {
        return configError(what + ": HMAC secrets must have at least 32 bytes");
      }
    }
    if (e["kid"]) {
      auto kid = readString(e["kid"], what + ".kid");
      if (!kid.ok()) return kid.error();
      key.kid = std::move(*kid);
    }
    if (e["alg"]) {
      auto a = readString(e["alg"], what + ".alg");
      if (!a.ok()) return a.error();
      auto alg = jwt::parseAlg(*a);
      if (!alg) return configError(what + ".alg: unsupported algorithm '" + *a + "'");
      key.alg = *alg;
      if (!key.usableFor(*alg)) {
        return configError(what + ".alg: " + *a + " does not fit the key's type");
      }
    }
    out.keys.push_back(std::move(key));
  }
  return {};
}

// Where the remote JWKS comes from: `jwks_uri` (its origin's implicit cluster) or
// `jwks_cluster` + `jwks_path`, and how often it is fetched.
Status parseRemote(const YAML::Node& config, const http::PolicyContext& ctx, Config& c) {
  const bool by_uri = static_cast<bool>(config["jwks_uri"]);
  const bool by_cluster = static_cast<bool>(config["jwks_cluster"]);
  if (by_uri && by_cluster)
    return configError("jwks_cluster: set jwks_uri or jwks_cluster, not both");
  if (!by_cluster && config["jwks_path"])
    return configError("jwks_path: only valid with jwks_cluster");
  if (!by_uri) {
    for (const char* k : {"jwks_ca_file", "jwks_tls_verify"}) {
      if (config[k]) {
        return configError(std::string(k) + ": only valid with jwks_uri" +
                           (by_cluster ? " (the cluster's tls applies)" : ""));
      }
    }
  }
  if (!by_uri && !by_cluster) {
    for (const char* k : {"jwks_refresh", "jwks_min_refetch", "jwks_timeout"}) {
      if (config[k])
        return configError(std::string(k) + ": only valid with jwks_uri or jwks_cluster");
    }
    return {};
  }
  jwt::JwksOptions o;
  if (by_uri) {
    auto uri = readString(config["jwks_uri"], "jwks_uri");
    if (!uri.ok()) return uri.error();
    auto url = http::parseUrl(*uri);
    if (!url.ok()) return prefixed("jwks_uri", url.error());
    http::ClientTlsOptions tls;
    if (const auto& v = config["jwks_ca_file"]) {
      auto s = readString(v, "jwks_ca_file");
      if (!s.ok()) return s.error();
      tls.ca_file = *s;
    }
    if (auto st = readOptional(config, "jwks_tls_verify", tls.verify); !st.ok()) return st.error();
    if (ctx.clusters) {
      auto name = ctx.clusters->clusterForUrl(*url, tls);
      if (!name.ok()) return prefixed("jwks_uri", name.error());
      o.cluster = std::move(*name);
    } else {
      o.cluster = http::implicitClusterName(*url, tls);
    }
    o.target = url->target;
    o.authority = url->authority;
    o.label = *uri;
  } else {
    auto name = readString(config["jwks_cluster"], "jwks_cluster");
    if (!name.ok()) return name.error();
    if (ctx.clusters && !ctx.clusters->hasCluster(*name)) {
      return configError("jwks_cluster: unknown cluster '" + *name + "'");
    }
    if (!config["jwks_path"]) return configError("jwks_path: required with jwks_cluster");
    auto path = readString(config["jwks_path"], "jwks_path");
    if (!path.ok()) return path.error();
    if (path->empty() || path->front() != '/') {
      return configError("jwks_path: expected an absolute path such as /.well-known/jwks.json");
    }
    o.cluster = std::move(*name);
    o.target = std::move(*path);
    o.label = "cluster:" + o.cluster + o.target;
  }
  if (const auto& v = config["jwks_refresh"]) {
    auto d = readDurationMs(v, "jwks_refresh", 1000, 7 * kDay);
    if (!d.ok()) return d.error();
    o.refresh_ms = *d;
  }
  if (const auto& v = config["jwks_min_refetch"]) {
    auto d = readDurationMs(v, "jwks_min_refetch", 0, kDay);
    if (!d.ok()) return d.error();
    o.min_refetch_ms = *d;
  }
  if (const auto& v = config["jwks_timeout"]) {
    auto d = readDurationMs(v, "jwks_timeout", 10, 60000);
    if (!d.ok()) return d.error();
    o.timeout_ms = *d;
  }
  c.remote = jwt::JwksSource::obtain(o);
  return {};
}

}  // namespace

Result<Config> parseConfig(const YAML::Node& config, const http::PolicyContext& ctx) {
  if (!config || !config.IsMap()) {
    return configError("expected a map with keys, jwks, jwks_uri or jwks_cluster");
  }
  // Laid out by hand: clang-format would put one key per line.
  // clang-format off
  if (auto st = checkKeys(
          config,
          {"jwks",            "keys",            "jwks_uri",         "jwks_cluster",
           "jwks_path",       "jwks_refresh",    "jwks_min_refetch", "jwks_timeout",
           "jwks_ca_file",    "jwks_tls_verify", "algorithms",       "issuers",
           "audiences",       "clock_skew",      "require_exp",      "max_token_age",
           "required_claims", "scopes",          "claims",           "forward_claims",
           "consumer_claim",  "groups_claim",    "anonymous",        "header",
           "cookie",          "query",           "strip_token",      "cache_size",
           "cache_ttl"});
      !st.ok()) {
    // clang-format on
    return st.error();
  }
  Config c;
  if (const auto& n = config["jwks"]) {
    if (auto st = parseInlineJwks(n, c.static_keys); !st.ok()) return st.error();
  }
  if (const auto& n = config["keys"]) {
    if (auto st = parseKeyList(n, c.static_keys); !st.ok()) return st.error();
  }
  if (auto st = parseRemote(config, ctx, c); !st.ok()) return st.error();
  if (c.static_keys.keys.empty() && !c.remote) {
    return configError("no keys: set keys, jwks, jwks_uri or jwks_cluster");
  }

  c.allowed.fill(true);
  if (const auto& n = config["algorithms"]) {
    auto list = readStringList(n, "algorithms");
    if (!list.ok()) return list.error();
    c.allowed.fill(false);
    for (const auto& a : *list) {
      auto alg = jwt::parseAlg(a);
      if (!alg) {
        return configError("algorithms: unsupported algorithm '" + a +
                           "'; expected HS256/384/512, RS256/384/512, PS256/384/512, "
                           "ES256/384 or EdDSA");
      }
      c.allowed[static_cast<size_t>(*alg)] = true;
    }
  }
  for (auto [key, out] :
       {std::pair{"issuers", &c.checks.issuers}, std::pair{"audiences", &c.checks.audiences},
        std::pair{"required_claims", &c.checks.required}}) {
    if (const auto& n = config[key]) {
      auto list = readStringList(n, key);
      if (!list.ok()) return list.error();
      *out = std::move(*list);
    }
  }
  if (const auto& n = config["clock_skew"]) {
    auto d = readDurationMs(n, "clock_skew", 0, 600000);
    if (!d.ok()) return d.error();
    c.checks.skew = *d / 1000;
  }
  if (auto st = readOptional(config, "require_exp", c.checks.require_exp); !st.ok())
    return st.error();
  if (const auto& n = config["max_token_age"]) {
    auto d = readDurationMs(n, "max_token_age", 1000, 365 * kDay);
    if (!d.ok()) return d.error();
    c.checks.max_age = *d / 1000;
  }
  if (auto st = bearer::parseBearerOptions(config, c); !st.ok()) return st.error();
  if (const auto& n = config["consumer_claim"]) {
    auto s = readName(n, "consumer_claim");
    if (!s.ok()) return s.error();
    c.consumer_claim = std::move(*s);
  }
  if (const auto& n = config["cache_ttl"]) {
    auto d = readDurationMs(n, "cache_ttl", 1000, kDay);
    if (!d.ok()) return d.error();
    c.cache_ttl = *d / 1000;
  }
  return c;
}

}  // namespace gatehouse::policies::jwt_auth
