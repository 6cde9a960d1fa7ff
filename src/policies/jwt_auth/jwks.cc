#include "policies/jwt_auth/jwks.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <unordered_map>

#include "core/clock.h"
#include "core/log.h"
#include "metrics/registry.h"
#include "proxy/cluster_client.h"
#include "runtime/event_loop.h"

namespace gatehouse::policies::jwt {
namespace {

std::atomic<uint64_t> g_next_id{1};
constexpr size_t kMaxJwksBytes = 1 << 20;
constexpr auto kPollInterval = std::chrono::milliseconds(5);

struct SourceRegistry {
  std::mutex mu;
  // key -> (metrics label, source)
  std::map<std::string, std::pair<std::string, std::weak_ptr<JwksSource>>> by_key;
};
SourceRegistry& sources() {
  static SourceRegistry r;
  return r;
}

struct ThreadView {
  uint64_t generation = 0;
  std::shared_ptr<const KeySet> keys;
};

// gatehouse_jwt_jwks_fetches_total{uri,result}: one sample pair per live source.
void collectFetches(metrics::Scrape& scrape) {
  static constexpr metrics::Family kFetches{"gatehouse_jwt_jwks_fetches_total",
                                            "Remote JWKS fetches by jwt_auth, by result.",
                                            metrics::Type::kCounter,
                                            {"uri", "result"}};
  auto& reg = sources();
  std::lock_guard lock(reg.mu);
  if (reg.by_key.empty()) return;
  auto& samples = scrape.family(kFetches);
  // Sources differing only in TLS options share a URI: one series per URI.
  std::map<std::string, std::pair<uint64_t, uint64_t>> by_uri;  // uri -> (ok, error)
  for (const auto& [key, entry] : reg.by_key) {
    auto src = entry.second.lock();
    if (!src) continue;
    const uint64_t failed = src->fetchErrors();
    const uint64_t all = src->fetchCount();
    auto& row = by_uri[entry.first];
    row.first += all >= failed ? all - failed : 0;
    row.second += failed;
  }
  for (const auto& [uri, row] : by_uri) {
    samples.add({uri, "ok"}, row.first);
    samples.add({uri, "error"}, row.second);
  }
}

}  // namespace

std::shared_ptr<JwksSource> JwksSource::obtain(const JwksOptions& opts) {
  // The implicit cluster's name carries the URL's TLS options, so they are part of the key.
  std::string key = opts.cluster + '\n' + opts.target + '\n' + opts.authority;
  auto& reg = sources();
  {
    std::lock_guard lock(reg.mu);
    if (auto it = reg.by_key.find(key); it != reg.by_key.end()) {
      if (auto existing = it->second.second.lock()) {
        existing->refresh_ms_.store(opts.refresh_ms);
        existing->min_refetch_ms_.store(opts.min_refetch_ms);
        existing->timeout_ms_.store(opts.timeout_ms);
        return existing;
      }
    }
  }
  auto src = std::make_shared<JwksSource>(opts);
  // Outside our lock: a scrape holds the registry's lock and then takes ours.
  metrics::Registry::process().add("gatehouse_jwt_jwks_fetches_total", &collectFetches);
  std::lock_guard lock(reg.mu);
  std::erase_if(reg.by_key, [](const auto& kv) { return kv.second.second.expired(); });
  reg.by_key[key] = {opts.label, src};
  return src;
}

JwksSource::JwksSource(const JwksOptions& opts)
    : id_(g_next_id.fetch_add(1)),
      cluster_(opts.cluster),
      target_(opts.target),
      authority_(opts.authority),
      label_(opts.label),
      refresh_ms_(opts.refresh_ms),
      min_refetch_ms_(opts.min_refetch_ms),
      timeout_ms_(opts.timeout_ms) {}

const KeySet* JwksSource::current() const {
  thread_local std::unordered_map<uint64_t, ThreadView> views;
  const uint64_t gen = generation_.load(std::memory_order_acquire);
  if (gen == 0) return nullptr;
  auto [it, inserted] = views.try_emplace(id_);
  ThreadView& v = it->second;
  if (v.generation != gen) {
    if (inserted && views.size() > 64) {
      // Views of sources gone with old configs: drop those no other thread shares.
      std::erase_if(views, [&](const auto& kv) {
        return kv.first != id_ && kv.second.keys.use_count() == 1;
      });
    }
    std::lock_guard lock(mu_);
    v.keys = keys_;
    v.generation = generation_.load(std::memory_order_acquire);
  }
  return v.keys.get();
}

bool JwksSource::tryStart(int64_t now_ms, int64_t min_gap_ms) {
  if (now_ms - last_start_ms_.load(std::memory_order_acquire) < min_gap_ms) return false;
  bool expected = false;
  if (!fetching_.compare_exchange_strong(expected, true, std::memory_order_acq_rel)) return false;
  last_start_ms_.store(now_ms, std::memory_order_release);
  return true;
}

bool JwksSource::refreshIfDue(bool unknown_kid) {
  if (fetching()) return true;
  const int64_t now = clock::steadyMs();
  const int64_t min_gap = min_refetch_ms_.load(std::memory_order_relaxed);
  bool due = false;
  if (!loaded()) {
    // Not loaded yet (or every fetch failed): retry, but not more than once a second.
    due = tryStart(now, std::min<int64_t>(min_gap, 1000));
  } else if (unknown_kid) {
    due = tryStart(now, min_gap);
  } else if (now - last_success_ms_.load(std::memory_order_relaxed) >=
             refresh_ms_.load(std::memory_order_relaxed)) {
    due = tryStart(now, min_gap);
  }
  if (due) runtime::spawn(fetchTask(shared_from_this()));
  return fetching();
}

runtime::Task<void> JwksSource::waitForFetch(uint64_t seen) {
  runtime::EventLoop* loop = runtime::EventLoop::current();
  if (!loop) co_return;
  const auto deadline = runtime::Clock::now() + std::chrono::milliseconds(timeout_ms_.load() + 100);
  while (generation() == seen && fetching() && runtime::Clock::now() < deadline) {
    co_await loop->sleepFor(kPollInterval);
  }
}

runtime::Task<void> JwksSource::fetchTask(std::shared_ptr<JwksSource> self) {
  std::string why;
  if (proxy::WorkerContext* worker = proxy::currentWorker()) {
    proxy::ClusterRequest req;
    req.target = self->target_;
    req.authority = self->authority_;
    req.headers.emplace_back("accept", "application/json");
    req.timeout = std::chrono::milliseconds(self->timeout_ms_.load());
    req.max_response_bytes = kMaxJwksBytes;
    // Holds the worker's current snapshot (and with it the cluster) until the call ends.
    proxy::ClusterResult resp =
        co_await proxy::callCluster(*worker, self->cluster_, std::move(req));
    if (!resp.ok()) {
      why = std::string(proxy::errorReply(resp.error).log);
      if (!resp.error.detail.empty()) why += " (" + resp.error.detail + ")";
    } else if (resp.response.status != 200) {
      why = "status " + std::to_string(resp.response.status);
    } else {
      why = self->take(resp.response.body);
    }
  } else {
    why = "no worker on this thread";  // only a unit test without a worker gets here
  }
  if (!why.empty()) {
    self->fetch_errors_.fetch_add(1, std::memory_order_relaxed);
    log::warn("jwt_auth: JWKS fetch from ", self->label_, " failed: ", why,
              "; keeping the previous keys");
  }
  self->fetches_.fetch_add(1, std::memory_order_relaxed);  // completed fetches
  self->fetching_.store(false, std::memory_order_release);
}

std::string JwksSource::take(const std::string& body) {
  size_t skipped = 0;
  auto keys = parseJwks(body, &skipped);
  if (!keys.ok()) return keys.error().message;
  // A published JWKS must not carry shared secrets: an HMAC key fetched from a URL could be
  // read by anyone, so it is never trusted.
  std::erase_if(*keys, [](const Key& k) { return k.type == KeyType::kOct; });
  if (keys->empty()) return "no usable signing keys";
  publish(std::move(*keys));
  return {};
}

void JwksSource::publish(std::vector<Key> keys) {
  auto set = std::make_shared<KeySet>();
  set->keys = std::move(keys);
  {
    std::lock_guard lock(mu_);
    keys_ = std::move(set);
    generation_.fetch_add(1, std::memory_order_acq_rel);
  }
  last_success_ms_.store(clock::steadyMs(), std::memory_order_relaxed);
}

}  // namespace gatehouse::policies::jwt
