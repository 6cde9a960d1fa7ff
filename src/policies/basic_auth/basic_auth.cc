#include "policies/basic_auth/basic_auth.h"

#include <openssl/rand.h>
#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "http/headers.h"
#include "metrics/per_thread.h"
#include "metrics/registry.h"
#include "policies/auth/auth_common.h"
#include "policies/offload.h"
#include "policies/policy_yaml.h"

namespace gatehouse::policies::basic_auth {
namespace {

constexpr std::string_view kPolicy = "basic_auth";
constexpr std::string_view kMessage = "invalid or missing credentials";
constexpr size_t kCacheSlots = 4096;  // per worker; direct-mapped, ~200 KiB
constexpr int64_t kDefaultTtlMs = 300'000;

// One thread's counts (single writer); /metrics and bcryptCounters() sum every thread's.
struct BcryptCells {
  metrics::Counter cache_hits;
  metrics::Counter verified;
  metrics::Counter failed;
  metrics::Counter busy;
};
BcryptCells& localCounters() {
  return metrics::processCells<BcryptCells>().local();
}

// Cache keys are a MAC under a per-process random key, so a memory dump of the cache does not
// give an attacker a fast (unsalted SHA-256) way to test password guesses.
const std::string& processKey() {
  static const std::string key = [] {
    std::string k(32, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(k.data()), static_cast<int>(k.size())) != 1) {
      k = std::to_string(
          clock::steadyNs());  // still per-process; RAND_bytes does not fail in practice
    }
    return k;
  }();
  return key;
}

// Verified (user, password, stored hash) -> time of verification. Per worker thread, so no
// locks; including the stored hash in the key makes a changed password miss after a reload.
struct CacheEntry {
  std::string key;  // 32-byte MAC; empty = free
  int64_t verified_ns = 0;
};

std::vector<CacheEntry>& workerCache() {
  thread_local std::vector<CacheEntry> cache(kCacheSlots);
  return cache;
}

size_t slotOf(const std::string& key) {
  uint64_t h = 0;
  std::memcpy(&h, key.data(), sizeof h);
  return static_cast<size_t>(h % kCacheSlots);
}

std::string cacheKey(std::string_view user, std::string_view password, const std::string& hash) {
  std::string data;
  data.reserve(user.size() + password.size() + hash.size() + 2);
  data.append(user).push_back('\0');
  data.append(password).push_back('\0');
  data.append(hash);
  std::string mac = hmac(HmacAlgorithm::kSha256, processKey(), data);
  cleanse(data);
  return mac;
}

struct Options {
  std::string challenge;
  int64_t cache_ttl_ns = kDefaultTtlMs * 1'000'000;
  bool strip = false;  // remove Authorization before proxying (the upstream never sees it)
  std::shared_ptr<const ConsumerRegistry> registry;  // keeps the registry alive
  std::shared_ptr<const ConsumerRegistry> inline_users;
  std::map<std::string, ConsumerRegistry::BasicEntry, std::less<>> users;
  auth::IdentityOptions identity;
};

class BasicAuthFilter final : public http::StatelessFilter {
 public:
  explicit BasicAuthFilter(Options o) : opts_(std::move(o)) {}
  const Options& options() const { return opts_; }

  http::Verdict onRequestHeaders(http::RequestContext& ctx) const override {
    if (auth::alreadyAuthenticated(ctx, opts_.identity)) return http::Verdict::kContinue;
    std::string_view credentials;
    int basic_headers = 0;
    for (const auto& f : ctx.request.headers.fields()) {
      if (!http::iequals(f.name, "authorization")) continue;
      std::string_view v = f.value;
      if (v.size() < 6 || !http::iequals(v.substr(0, 6), "basic ")) continue;
      ++basic_headers;
      credentials = v.substr(6);
    }
    if (basic_headers == 0) {
      if (opts_.identity.optional) return http::Verdict::kContinue;
      return reject(ctx, auth_metrics::Reason::kMissing);
    }
    while (!credentials.empty() && credentials.front() == ' ')
      credentials.remove_prefix(1);
    std::optional<std::string> decoded =
        basic_headers == 1 ? base64Decode(credentials) : std::nullopt;
    size_t colon = decoded ? decoded->find(':') : std::string::npos;
    if (colon == std::string::npos) return reject(ctx, auth_metrics::Reason::kMalformed);
    std::string_view user = std::string_view(*decoded).substr(0, colon);
    std::string_view password = std::string_view(*decoded).substr(colon + 1);
    auto it = opts_.users.find(user);
    if (it == opts_.users.end()) {
      cleanse(*decoded);
      return reject(ctx, auth_metrics::Reason::kBadCredentials);
    }
    const ConsumerRegistry::BasicEntry& entry = it->second;
    const PasswordHash& hash = entry.credential->password;
    if (hash.kind == PasswordHash::Kind::kSha256) {
      bool ok = verifyPassword(hash, password);
      cleanse(*decoded);
      return ok ? accept(ctx, *entry.consumer) : reject(ctx, auth_metrics::Reason::kBadCredentials);
    }
    std::string key = cacheKey(user, password, hash.text);
    if (opts_.cache_ttl_ns > 0) {
      const CacheEntry& e = workerCache()[slotOf(key)];
      if (!e.key.empty() && clock::steadyNs() - e.verified_ns < opts_.cache_ttl_ns &&
          constantTimeEquals(e.key, key)) {
        cleanse(*decoded);
        localCounters().cache_hits.inc();
        return accept(ctx, *entry.consumer);
      }
    }
    std::string pw(password);
    cleanse(*decoded);
    ctx.pending = verifyOffLoop(ctx, entry.consumer, hash, std::move(pw), std::move(key));
    return http::Verdict::kPause;
  }

 private:
  // bcrypt on the offload pool; the request waits, the worker loop does not.
  runtime::Task<http::Verdict> verifyOffLoop(http::RequestContext& ctx, const Consumer* consumer,
                                             PasswordHash hash, std::string password,
                                             std::string key) const {
    // Named, not temporaries inside the co_await expression (GCC PR 100611).
    std::function<bool()> job = [hash = std::move(hash), pw = std::move(password)]() mutable {
      bool r = verifyPassword(hash, pw);
      cleanse(pw);
      return r;
    };
    runtime::Task<std::optional<bool>> task = offload::run<bool>(std::move(job));
    std::optional<bool> ok = co_await std::move(task);
    if (!ok) {
      localCounters().busy.inc();
      auth::reject(ctx, kPolicy, auth_metrics::Reason::kBusy, {},
                   "authentication temporarily unavailable", 503);
      ctx.local_reply.headers.add("retry-after", "1");
      co_return http::Verdict::kRespond;
    }
    if (!*ok) {
      localCounters().failed.inc();
      co_return reject(ctx, auth_metrics::Reason::kBadCredentials);
    }
    localCounters().verified.inc();
    if (opts_.cache_ttl_ns > 0) {
      CacheEntry& e = workerCache()[slotOf(key)];
      e.key = std::move(key);
      e.verified_ns = clock::steadyNs();
    }
    co_return accept(ctx, *consumer);
  }

  http::Verdict accept(http::RequestContext& ctx, const Consumer& c) const {
    auth::setIdentity(ctx, c, opts_.identity);
    if (opts_.strip) ctx.request.headers.remove("authorization");
    return http::Verdict::kContinue;
  }

  http::Verdict reject(http::RequestContext& ctx, auth_metrics::Reason reason) const {
    return auth::reject(ctx, kPolicy, reason, opts_.challenge, kMessage);
  }

  const Options opts_;
};

class BasicAuthFactory final : public auth::AuthFactory {
 public:
  explicit BasicAuthFactory(Options o) : filter_(std::move(o)) {}
  http::FilterRef create() const override { return http::FilterRef::shared(filter_); }

  std::string_view policyName() const override { return kPolicy; }
  std::string challenge() const override { return opts().challenge; }
  bool isOptional() const override { return opts().identity.optional; }
  bool definesConsumer(std::string_view name) const override {
    return opts().inline_users && opts().inline_users->byName(name);
  }
  const auth::IdentityOptions& identity() const override { return opts().identity; }

 private:
  const Options& opts() const { return filter_.options(); }
  const BasicAuthFilter filter_;
};

void collectMetrics(metrics::Scrape& scrape) {
  static constexpr metrics::Family kBcrypt{
      "gatehouse_basic_auth_bcrypt_total",
      "bcrypt password checks of basic_auth, by outcome (cache_hit: answered from the per-worker "
      "cache without bcrypt).",
      metrics::Type::kCounter,
      {"result"}};
  auto& samples = scrape.family(kBcrypt);
  const BcryptCounters c = bcryptCounters();
  samples.add({"cache_hit"}, c.cache_hits);
  samples.add({"verified"}, c.verified);
  samples.add({"failed"}, c.failed);
  samples.add({"busy"}, c.busy);
}

// Inline `users: [{username, password, groups}]`: each user is its own consumer.
Result<std::shared_ptr<const ConsumerRegistry>> readUsers(const YAML::Node& list) {
  if (!list.IsSequence() || list.size() == 0) {
    return configError("users: expected a non-empty list of {username, password}");
  }
  std::vector<Consumer> consumers;
  for (size_t i = 0; i < list.size(); ++i) {
    const YAML::Node& item = list[i];
    std::string at = "users[" + std::to_string(i) + "]";
    if (!item.IsMap()) return configError(at + ": expected a map with username, password");
    if (auto st = checkKeys(item, {"username", "password", "groups"}); !st.ok()) {
      return configError(at + ": " + st.error().message);
    }
    if (!item["username"] || !item["password"]) {
      return configError(at + ": 'username' and 'password' are required");
    }
    auto user = readString(item["username"], at + ".username");
    if (!user.ok()) return user.error();
    if (user->empty() || user->find(':') != std::string::npos) {
      return configError(at + ".username: must be non-empty and without ':'");
    }
    auto pw = readString(item["password"], at + ".password");
    if (!pw.ok()) return pw.error();
    auto hash = parsePasswordHash(*pw);
    if (!hash.ok()) return configError(at + ".password: " + hash.error().message);
    Consumer c;
    c.name = *user;
    if (const auto& g = item["groups"]) {
      if (auto st = readGroups(g, at + ".groups", c.groups); !st.ok()) return st.error();
    }
    c.basic.push_back({std::move(*user), std::move(*hash)});
    consumers.push_back(std::move(c));
  }
  auto r = ConsumerRegistry::create(std::move(consumers));
  if (!r.ok()) return configError("users: " + r.error().message);
  return r;
}

}  // namespace

BcryptCounters bcryptCounters() {
  const auto& cells = metrics::processCells<BcryptCells>();
  return {cells.sum(&BcryptCells::cache_hits), cells.sum(&BcryptCells::verified),
          cells.sum(&BcryptCells::failed), cells.sum(&BcryptCells::busy)};
}

Result<http::FilterFactoryPtr> build(const YAML::Node& config, const http::PolicyContext& ctx) {
  auto options = optionalMap(config);
  if (!options.ok()) return options.error();
  const YAML::Node& cfg = *options;
  if (auto st = auth::checkAuthKeys(cfg, {"realm", "consumers", "users", "cache_ttl", "strip"});
      !st.ok()) {
    return st.error();
  }
  Options o;
  std::string realm = "gatehouse";
  if (const auto& r = cfg["realm"]) {
    auto s = readString(r, "realm");
    if (!s.ok()) return s.error();
    if (s->empty() || s->find('"') != std::string::npos || s->find('\\') != std::string::npos ||
        !isHeaderValue(*s)) {
      return configError("realm: expected a non-empty string without quotes or backslashes");
    }
    realm = std::move(*s);
  }
  o.challenge = "Basic realm=\"" + realm + "\"";
  if (const auto& t = cfg["cache_ttl"]) {
    auto ms = readDuration(t, "cache_ttl", std::chrono::milliseconds(0), std::chrono::hours(24),
                           "5m (0 disables the cache)");
    if (!ms.ok()) return ms.error();
    o.cache_ttl_ns = ms->count() * 1'000'000;
  }
  if (auto st = readOptional(cfg, "strip", o.strip); !st.ok()) return st.error();
  auto identity = auth::readIdentityOptions(cfg, ctx);
  if (!identity.ok()) return identity.error();
  o.identity = std::move(*identity);

  const auto& registry = auth::registryOf(ctx);
  const YAML::Node& users = cfg["users"];
  const YAML::Node& consumers = cfg["consumers"];
  if (users) {
    auto r = readUsers(users);
    if (!r.ok()) return r.error();
    o.inline_users = std::move(*r);
    for (const auto& c : o.inline_users->consumers()) {
      o.users.emplace(c.basic[0].username, *o.inline_users->findBasic(c.basic[0].username));
    }
  }
  // Registry credentials: when `consumers` says so, or by default when there are no inline users.
  if (consumers || !users) {
    if (!consumers && registry->isEmpty()) {
      return configError(
          "expected 'users' (inline) or a top-level consumers registry with basic credentials");
    }
    auto picked = auth::selectConsumers(
        consumers, *registry, [](const Consumer& c) { return !c.basic.empty(); },
        "basic credentials");
    if (!picked.ok()) return picked.error();
    o.registry = registry;
    for (const Consumer* c : *picked) {
      for (const auto& b : c->basic) {
        if (!o.users.emplace(b.username, ConsumerRegistry::BasicEntry{c, &b}).second) {
          return configError("users: username '" + b.username +
                             "' is also a basic credential in the consumers registry");
        }
      }
    }
  }
  if (o.inline_users) {
    for (const auto& c : o.inline_users->consumers()) {
      if (registry->byName(c.name)) {
        return configError("users: '" + c.name +
                           "' is also a consumer in the registry; use one or the other");
      }
    }
  }
  auth_metrics::ensureRegistered();
  metrics::Registry::process().add("basic_auth_bcrypt", &collectMetrics);
  return http::FilterFactoryPtr(std::make_shared<BasicAuthFactory>(std::move(o)));
}

}  // namespace gatehouse::policies::basic_auth
