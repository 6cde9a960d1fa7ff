#include "policies/key_auth/key_auth.h"

#include <yaml-cpp/yaml.h>

#include <optional>
#include <string>
#include <utility>

#include "core/encoding.h"
#include "http/headers.h"
#include "policies/auth/auth_common.h"
#include "policies/auth/consumers.h"
#include "policies/policy_yaml.h"

namespace gatehouse::policies::key_auth {
namespace {

constexpr std::string_view kDefaultHeader = "x-api-key";
constexpr std::string_view kChallenge = "ApiKey realm=\"gatehouse\"";
constexpr std::string_view kMessage = "invalid or missing API key";

struct Options {
  std::string header;  // empty: keys are not read from a header
  std::string query;   // empty: keys are not read from the query
  bool strip = false;
  std::string anonymous;  // empty: a request without a key is rejected
  ConsumerKeys keys;
  bool inline_consumers = false;
  auth::IdentityOptions identity;
};

// Query values arrive percent-encoded; keys are compared decoded so a client may escape them.
// '+' stays a '+': it is only a space in form bodies, and keys often contain it (base64).
std::string percentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      int hi = encoding::hexDigit(s[i + 1]);
      int lo = encoding::hexDigit(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi << 4 | lo));
        i += 2;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

// Stateless but for its counters (per-thread cells): one shared instance serves every worker.
class KeyAuthFilter final : public http::StatelessFilter {
 public:
  explicit KeyAuthFilter(Options o) : opts_(std::move(o)) {}
  const Options& options() const { return opts_; }

  http::Verdict onRequestHeaders(http::RequestContext& ctx) const override {
    if (auth::alreadyAuthenticated(ctx, opts_.identity)) {
      if (opts_.strip) strip(ctx.request);  // another method won: still never forward a key
      return http::Verdict::kContinue;
    }
    // A request may carry the key several times; more than one value is ambiguous (which one
    // would the upstream trust?), so it counts as an invalid key rather than picking one.
    int seen = 0;
    std::string key;
    if (!opts_.header.empty()) {
      for (const auto& f : ctx.request.headers.fields()) {
        if (!http::iequals(f.name, opts_.header)) continue;
        ++seen;
        key.assign(f.value);
      }
    }
    if (!opts_.query.empty()) {
      forEachParam(ctx.request.query, [&](std::string_view name, std::string_view value) {
        if (name != opts_.query) return;
        ++seen;
        key = percentDecode(value);
      });
    }
    if (seen == 0) {
      if (opts_.identity.optional) return http::Verdict::kContinue;
      if (!opts_.anonymous.empty()) {
        counters_.local().anonymous.inc();
        ctx.consumer = opts_.anonymous;
        ctx.consumer_groups.clear();
        return http::Verdict::kContinue;
      }
      counters_.local().missing.inc();
      return reject(ctx, auth_metrics::Reason::kMissing);
    }
    const Consumer* c = seen == 1 ? opts_.keys.find(key) : nullptr;
    if (!c) {
      counters_.local().invalid.inc();
      return reject(ctx, auth_metrics::Reason::kBadCredentials);
    }
    counters_.local().accepted.inc();
    auth::setIdentity(ctx, *c, opts_.identity);
    if (opts_.strip) strip(ctx.request);
    return http::Verdict::kContinue;
  }

  const Counters& counters() const { return counters_; }

 private:
  template <typename Fn>
  static void forEachParam(std::string_view query, Fn&& fn) {
    while (!query.empty()) {
      size_t amp = query.find('&');
      std::string_view pair = query.substr(0, amp);
      query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
      size_t eq = pair.find('=');
      fn(pair.substr(0, eq),
         eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1));
    }
  }

  void strip(http::Request& req) const {
    if (!opts_.header.empty()) req.headers.remove(opts_.header);
    auth::removeQueryParam(req, opts_.query);
  }

  http::Verdict reject(http::RequestContext& ctx, auth_metrics::Reason reason) const {
    return auth::reject(ctx, "key_auth", reason, kChallenge, kMessage);
  }

  const Options opts_;
  Counters counters_;  // per-thread cells: every worker counts in its own
};

class KeyAuthFactory final : public auth::AuthFactory {
 public:
  explicit KeyAuthFactory(Options o) : filter_(std::move(o)) {}
  http::FilterRef create() const override { return http::FilterRef::shared(filter_); }

  std::string_view policyName() const override { return "key_auth"; }
  std::string challenge() const override { return std::string(kChallenge); }
  bool isOptional() const override { return opts().identity.optional; }
  std::string_view anonymousName() const override { return opts().anonymous; }
  bool definesConsumer(std::string_view name) const override {
    if (name == opts().anonymous) return true;
    if (!opts().inline_consumers) return false;
    for (const Consumer* c : opts().keys.consumers()) {
      if (c->name == name) return true;
    }
    return false;
  }
  const auth::IdentityOptions& identity() const override { return opts().identity; }
  const KeyAuthFilter& filter() const { return filter_; }

 private:
  const Options& opts() const { return filter_.options(); }
  const KeyAuthFilter filter_;
};

}  // namespace

const Counters* countersOf(const http::FilterFactory& factory) {
  const auto* f = dynamic_cast<const KeyAuthFactory*>(&factory);
  return f ? &f->filter().counters() : nullptr;
}

Result<http::FilterFactoryPtr> build(const YAML::Node& config, const http::PolicyContext& ctx) {
  if (!config || !config.IsMap()) return configError("expected a map with 'consumers'");
  if (auto st = auth::checkAuthKeys(config, {"header", "query", "strip", "anonymous", "consumers"});
      !st.ok()) {
    return st.error();
  }
  Options o;
  o.header = std::string(kDefaultHeader);
  if (const auto& h = config["header"]) {
    if (h.IsNull()) {
      o.header.clear();
    } else {
      auto s = readString(h, "header");
      if (!s.ok()) return s.error();
      if (!s->empty() && !isHeaderName(*s)) {
        return configError("header: invalid header name '" + *s + "'");
      }
      o.header = std::move(*s);
    }
  }
  if (const auto& q = config["query"]) {
    auto s = readString(q, "query");
    if (!s.ok()) return s.error();
    for (char ch : *s) {
      if (ch == '&' || ch == '=' || ch == '#' || static_cast<unsigned char>(ch) <= 0x20) {
        return configError("query: invalid query parameter name '" + *s + "'");
      }
    }
    o.query = std::move(*s);
  }
  if (o.header.empty() && o.query.empty()) {
    return configError("header and query are both empty: there is nowhere to read a key from");
  }
  if (auto st = readOptional(config, "strip", o.strip); !st.ok()) return st.error();
  if (const auto& a = config["anonymous"]) {
    auto s = readString(a, "anonymous");
    if (!s.ok()) return s.error();
    if (s->empty()) return configError("anonymous: must be a consumer name");
    o.anonymous = std::move(*s);
  }
  auto identity = auth::readIdentityOptions(config, ctx);
  if (!identity.ok()) return identity.error();
  o.identity = std::move(*identity);
  if (o.identity.optional && !o.anonymous.empty()) {
    return configError(
        "optional and anonymous exclude each other: an optional policy leaves requests without "
        "a key unauthenticated for a later policy (require_consumer) to decide");
  }
  const auto& registry = auth::registryOf(ctx);
  const YAML::Node& list = config["consumers"];
  // A list of maps is the inline form; "registry", a list of names or nothing use the registry.
  const bool names = list && list.IsSequence() && list.size() > 0 && list[0].IsScalar();
  o.inline_consumers = list && !list.IsScalar() && !names;
  if (o.inline_consumers) {
    auto keys = ConsumerKeys::parse(list, "consumers");
    if (!keys.ok()) return keys.error();
    o.keys = std::move(*keys);
  } else {
    if (!list && registry->isEmpty()) {
      return configError(
          "consumers: expected a non-empty list of consumers, or a top-level consumers registry");
    }
    auto picked = auth::selectConsumers(
        list, *registry, [](const Consumer& c) { return !c.key_digests.empty(); },
        "API key credentials");
    if (!picked.ok()) return picked.error();
    o.keys = ConsumerKeys(registry, std::move(*picked));
  }
  if (!o.anonymous.empty() && registry->byName(o.anonymous)) {
    return configError("anonymous: '" + o.anonymous +
                       "' is a consumer in the registry; anonymous requests must be "
                       "distinguishable from authenticated ones");
  }
  auth_metrics::ensureRegistered();
  for (const Consumer* c : o.keys.consumers()) {
    if (c->name == o.anonymous) {
      return configError("anonymous: '" + o.anonymous +
                         "' is also a configured consumer; anonymous requests must be "
                         "distinguishable from authenticated ones");
    }
  }
  return http::FilterFactoryPtr(std::make_shared<KeyAuthFactory>(std::move(o)));
}

}  // namespace gatehouse::policies::key_auth
