#include "policies/oauth2_introspection/oauth2_introspection.h"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <coroutine>
#include <map>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "policies/auth/auth_rejections.h"
#include "policies/auth/bearer_auth.h"
#include "policies/auth/consumers.h"
#include "policies/policy_yaml.h"
#include "proxy/cluster_client.h"
#include "runtime/event_loop.h"

namespace gatehouse::policies::oauth2_introspection {
namespace {

enum Reason : size_t {
  kMissing,
  kMalformed,
  kInactive,
  kClaims,
  kInsufficientScope,
  kEndpointError,
  kReasonCount,
};
constexpr std::array<std::string_view, kReasonCount> kReasonNames = {
    "missing", "malformed", "inactive", "claims", "insufficient_scope", "endpoint_error",
};

struct Config : bearer::BearerOptions {
  std::string cluster;        // endpoint_cluster, or the implicit cluster of `endpoint`
  std::string target;         // endpoint_path, or the endpoint URL's path and query
  std::string authority;      // the Host to send: the endpoint URL's; empty for a named cluster
  std::string authorization;  // "Basic ..." for the client credentials
  std::string token_type_hint;
  int64_t timeout_ms = 2000;
  std::vector<std::string> consumer_claims = {"sub", "client_id", "username"};
  int64_t cache_ttl = 60;    // seconds, positive answers
  int64_t negative_ttl = 5;  // seconds, inactive answers; 0 = not cached
  size_t max_token_bytes = 8192;
};

std::string base64(std::string_view in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  out.resize(static_cast<size_t>(std::max(n, 0)));
  return out;
}

class IntrospectionFilter final : public http::StatelessFilter {
 public:
  explicit IntrospectionFilter(Config c) : c_(std::move(c)), caches_(c_.cache_entries) {
    for (size_t i = 0; i < kReasonCount; ++i) {
      rejections_[i] = authRejectionCounter("oauth2_introspection", kReasonNames[i]);
    }
  }
  http::Verdict onRequestHeaders(http::RequestContext& ctx) const override {
    std::string token;
    switch (bearer::extractToken(ctx.request, c_.source, token)) {
      case bearer::Extract::kNone:
        if (!c_.anonymous.empty()) return bearer::admitAnonymous(ctx, c_.anonymous, c_.forward);
        return reject(ctx, kMissing);
      case bearer::Extract::kMalformed:
        return reject(ctx, kMalformed);
      case bearer::Extract::kFound:
        break;
    }
    if (token.size() > c_.max_token_bytes) return reject(ctx, kMalformed);
    const Sha256Digest digest = sha256(token);
    if (const bearer::Identity* hit = caches_.local().find(digest, bearer::unixNow())) {
      return apply(ctx, *hit);
    }
    // One call per token per worker at a time: concurrent requests with the same new token
    // wait for the first one's answer instead of each asking the endpoint.
    auto& flights = inFlight();
    if (auto it = flights.find({this, digest}); it != flights.end()) {
      ctx.pending = join(ctx, it->second);
      return http::Verdict::kPause;
    }
    auto flight = std::make_shared<Flight>();
    flights.emplace(std::pair{this, digest}, flight);
    ctx.pending = introspect(ctx, std::move(token), digest, std::move(flight));
    return http::Verdict::kPause;
  }

 private:
  struct Flight {
    bool done = false;
    std::optional<bearer::Identity> result;  // nullopt: the endpoint failed
    std::vector<std::coroutine_handle<>> waiters;
  };
  using FlightMap =
      std::map<std::pair<const IntrospectionFilter*, Sha256Digest>, std::shared_ptr<Flight>>;
  static FlightMap& inFlight() {
    thread_local FlightMap map;  // entries live only while their call runs
    return map;
  }

  struct FlightWait {
    Flight& f;
    bool await_ready() const noexcept { return f.done; }
    void await_suspend(std::coroutine_handle<> h) { f.waiters.push_back(h); }
    void await_resume() const noexcept {}
  };

  runtime::Task<http::Verdict> join(http::RequestContext& ctx, std::shared_ptr<Flight> f) const {
    co_await FlightWait{*f};
    co_return answer(ctx, f->result);
  }

  runtime::Task<http::Verdict> introspect(http::RequestContext& ctx, std::string token,
                                          Sha256Digest digest, std::shared_ptr<Flight> f) const {
    std::optional<bearer::Identity> r = co_await call(std::move(token));
    if (r && (r->status != 401 || c_.negative_ttl > 0)) caches_.local().put(digest, *r);
    f->result = std::move(r);
    f->done = true;
    inFlight().erase({this, digest});
    if (runtime::EventLoop* loop = runtime::EventLoop::current()) {
      for (auto h : f->waiters)
        loop->schedule(h);
    }
    co_return answer(ctx, f->result);
  }

  http::Verdict answer(http::RequestContext& ctx, const std::optional<bearer::Identity>& r) const {
    if (r) return apply(ctx, *r);
    count(kEndpointError);
    return bearer::unavailable(ctx);
  }

  // One RFC 7662 call: the identity it gives (status 200, 403, or 401 for inactive), or
  // nullopt when the endpoint failed (unreachable, non-200, not an introspection answer).
  runtime::Task<std::optional<bearer::Identity>> call(std::string token) const {
    proxy::WorkerContext* worker = proxy::currentWorker();
    if (!worker) co_return std::nullopt;  // only a unit test without a worker gets here
    proxy::ClusterRequest req;
    req.method = "POST";
    req.target = c_.target;
    req.authority = c_.authority;
    req.timeout = std::chrono::milliseconds(c_.timeout_ms);
    req.max_response_bytes = 256 * 1024;
    req.headers.emplace_back("content-type", "application/x-www-form-urlencoded");
    req.headers.emplace_back("accept", "application/json");
    if (!c_.authorization.empty()) req.headers.emplace_back("authorization", c_.authorization);
    req.body = "token=" + formEncode(token);
    if (!c_.token_type_hint.empty()) req.body += "&token_type_hint=" + c_.token_type_hint;
    // Holds the worker's current snapshot (and with it the cluster) until the call ends.
    auto resp = co_await proxy::callCluster(*worker, c_.cluster, std::move(req));
    if (!resp.ok() || resp.response.status != 200) co_return std::nullopt;
    auto body = nlohmann::json::parse(resp.response.body, nullptr, false);
    auto active = body.is_object() ? body.find("active") : body.end();
    if (!body.is_object() || active == body.end() || !active->is_boolean()) co_return std::nullopt;
    const int64_t now = bearer::unixNow();
    bearer::Identity id;
    id.status = resolve(body, active->get<bool>(), now, id);
    if (id.status == 401) id.expires = now + c_.negative_ttl;
    co_return id;
  }

  // Fills `id` from an introspection answer; returns 200, 403 or 401 (inactive / unusable).
  int resolve(const nlohmann::json& claims, bool active, int64_t now, bearer::Identity& id) const {
    auto numeric = [&](const char* name) -> std::optional<int64_t> {
      auto it = claims.find(name);
      if (it == claims.end() || !it->is_number()) return std::nullopt;
      return it->get<int64_t>();
    };
    auto exp = numeric("exp");
    auto nbf = numeric("nbf");
    // The server said active, but a token past exp or before nbf is not usable here either.
    if (!active || (exp && *exp <= now) || (nbf && *nbf > now)) return 401;
    for (const auto& name : c_.consumer_claims) {
      const nlohmann::json* v = bearer::claimAt(claims, name);
      if (v && v->is_string() && !v->get_ref<const std::string&>().empty()) {
        id.consumer = v->get<std::string>();
        break;
      }
    }
    if (id.consumer.empty()) return 401;
    bearer::resolveClaims(claims, c_.groups_claim, c_.forward, id);
    id.expires = now + c_.cache_ttl;
    if (exp) id.expires = std::min(id.expires, *exp);
    return bearer::rulesPass(c_.rules, claims) ? 200 : 403;
  }

  http::Verdict apply(http::RequestContext& ctx, const bearer::Identity& id) const {
    if (id.status == 401) return reject(ctx, kInactive);
    if (id.status == 403) {
      count(kInsufficientScope);
      ctx.consumer.clear();
      ctx.consumer_groups.clear();
      return bearer::forbidden(ctx);
    }
    return bearer::admit(ctx, id, c_.forward, c_.strip_token, c_.source);
  }

  void count(Reason r) const { rejections_[r].inc(); }

  http::Verdict reject(http::RequestContext& ctx, Reason r) const {
    count(r);
    return bearer::unauthorized(ctx, r != kMissing);
  }

  const Config c_;
  bearer::WorkerCaches caches_;
  std::array<AuthRejectionCounter, kReasonCount> rejections_{};
};

}  // namespace

std::string formEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else if (c == ' ') {
      out.push_back('+');
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

namespace {

// Where the calls go: `endpoint` (its origin's implicit cluster) or `endpoint_cluster` +
// `endpoint_path`.
Status parseEndpoint(const YAML::Node& config, const http::PolicyContext& ctx, Config& c) {
  const bool by_url = static_cast<bool>(config["endpoint"]);
  const bool by_cluster = static_cast<bool>(config["endpoint_cluster"]);
  if (by_url && by_cluster) {
    return configError("endpoint_cluster: set endpoint or endpoint_cluster, not both");
  }
  if (!by_url && !by_cluster) {
    return configError(
        "endpoint: required (the RFC 7662 URL), or endpoint_cluster and "
        "endpoint_path");
  }
  if (!by_cluster && config["endpoint_path"]) {
    return configError("endpoint_path: only valid with endpoint_cluster");
  }
  if (by_cluster) {
    for (const char* k : {"ca_file", "tls_verify"}) {
      if (config[k]) {
        return configError(std::string(k) +
                           ": only valid with endpoint (the cluster's tls applies)");
      }
    }
    auto name = readString(config["endpoint_cluster"], "endpoint_cluster");
    if (!name.ok()) return name.error();
    if (ctx.clusters && !ctx.clusters->hasCluster(*name)) {
      return configError("endpoint_cluster: unknown cluster '" + *name + "'");
    }
    if (!config["endpoint_path"])
      return configError("endpoint_path: required with endpoint_cluster");
    auto path = readString(config["endpoint_path"], "endpoint_path");
    if (!path.ok()) return path.error();
    if (path->empty() || path->front() != '/') {
      return configError("endpoint_path: expected an absolute path such as /oauth2/introspect");
    }
    c.cluster = std::move(*name);
    c.target = std::move(*path);
    return {};
  }
  auto text = readString(config["endpoint"], "endpoint");
  if (!text.ok()) return text.error();
  auto url = http::parseUrl(*text);
  if (!url.ok()) return configError("endpoint: " + url.error().message);
  http::ClientTlsOptions tls;
  if (const auto& n = config["ca_file"]) {
    auto s = readString(n, "ca_file");
    if (!s.ok()) return s.error();
    tls.ca_file = *s;
  }
  if (auto st = readOptional(config, "tls_verify", tls.verify); !st.ok()) return st.error();
  if (ctx.clusters) {
    auto name = ctx.clusters->clusterForUrl(*url, tls);
    if (!name.ok()) return configError("endpoint: " + name.error().message);
    c.cluster = std::move(*name);
  } else {
    c.cluster = http::implicitClusterName(*url, tls);
  }
  c.target = url->target;
  c.authority = url->authority;
  return {};
}

}  // namespace

Result<http::FilterFactoryPtr> build(const YAML::Node& config, const http::PolicyContext& ctx) {
  if (!config || !config.IsMap()) return configError("expected a map with 'endpoint'");
  if (auto st = checkKeys(config, {"endpoint",     "endpoint_cluster", "endpoint_path",
                                   "client_id",    "client_secret",    "token_type_hint",
                                   "timeout",      "ca_file",          "tls_verify",
                                   "scopes",       "claims",           "consumer_claims",
                                   "groups_claim", "anonymous",        "forward_claims",
                                   "cache_size",   "cache_ttl",        "negative_cache_ttl",
                                   "header",       "cookie",           "query",
                                   "strip_token"});
      !st.ok()) {
    return st.error();
  }
  Config c;
  if (auto st = parseEndpoint(config, ctx, c); !st.ok()) return st.error();
  if (config["client_id"]) {
    auto id = readString(config["client_id"], "client_id");
    if (!id.ok()) return id.error();
    std::string secret;
    if (config["client_secret"]) {
      auto s = readString(config["client_secret"], "client_secret");
      if (!s.ok()) return s.error();
      secret = *s;
    }
    c.authorization = "Basic " + base64(formEncode(*id) + ":" + formEncode(secret));
  } else if (config["client_secret"]) {
    return configError("client_secret: needs client_id");
  }
  if (const auto& n = config["token_type_hint"]) {
    auto s = readString(n, "token_type_hint");
    if (!s.ok()) return s.error();
    c.token_type_hint = formEncode(*s);
  }
  if (const auto& n = config["timeout"]) {
    auto d = readDurationMs(n, "timeout", 10, 60000);
    if (!d.ok()) return d.error();
    c.timeout_ms = *d;
  }
  if (auto st = bearer::parseBearerOptions(config, c); !st.ok()) return st.error();
  if (const auto& n = config["consumer_claims"]) {
    auto list = readStringList(n, "consumer_claims");
    if (!list.ok()) return list.error();
    if (list->empty()) return configError("consumer_claims: expected at least one claim");
    c.consumer_claims = std::move(*list);
  }
  if (const auto& n = config["cache_ttl"]) {
    auto d = readDurationMs(n, "cache_ttl", 0, 24 * 3600 * 1000);
    if (!d.ok()) return d.error();
    c.cache_ttl = *d / 1000;
  }
  if (const auto& n = config["negative_cache_ttl"]) {
    auto d = readDurationMs(n, "negative_cache_ttl", 0, 3600 * 1000);
    if (!d.ok()) return d.error();
    c.negative_ttl = *d / 1000;
  }
  return http::FilterFactoryPtr(
      std::make_shared<http::StatelessFactory<IntrospectionFilter>>(std::move(c)));
}

}  // namespace gatehouse::policies::oauth2_introspection
