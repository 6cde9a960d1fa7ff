#pragma once
// Remote JWKS for jwt_auth: fetched asynchronously on the worker that first needs it, shared by
// every worker, refreshed periodically and re-fetched when a token names an unknown `kid`
// (at most once per min_refetch). Sources are kept by what they fetch (cluster, path, Host)
// across config reloads, so a reload does not refetch.
//
// A fetch is a cluster-client call (proxy/cluster_client.h) on the worker that started it: the
// cluster named by `jwks_cluster`, or the implicit cluster of `jwks_uri`'s origin, looked up
// by name in that worker's current snapshot and held for the call's duration. So it gets the
// cluster's pooled connections, balancing, health, retries and resolution.
//
// Publication: the key set is an immutable shared_ptr guarded by a mutex plus an atomic
// generation. Each worker keeps its own copy of the shared_ptr and compares generations (one
// relaxed load per request); the mutex is taken only when the generation moved.
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "policies/jwt_auth/jwt.h"
#include "runtime/task.h"

namespace gatehouse::policies::jwt {

struct KeySet {
  std::vector<Key> keys;
  bool hasKid(const std::string& kid) const {
    for (const auto& k : keys) {
      if (k.kid == kid) return true;
    }
    return false;
  }
};

// Calls fn(key) for each key that may verify a token with (kid, alg), at most `limit` keys:
// a key with a kid matches tokens with that kid or none; a key without one matches any token.
template <typename Fn>
void forEachCandidate(const KeySet& set, const std::string& kid, Alg alg, size_t limit, Fn&& fn) {
  size_t n = 0;
  for (const auto& k : set.keys) {
    if (n >= limit) return;
    if (!k.kid.empty() && !kid.empty() && k.kid != kid) continue;
    if (!k.usableFor(alg)) continue;
    ++n;
    if (fn(k)) return;
  }
}

struct JwksOptions {
  std::string cluster;    // jwks_cluster, or the implicit cluster of jwks_uri
  std::string target;     // jwks_path, or jwks_uri's path and query
  std::string authority;  // the Host to send: jwks_uri's; empty for a named cluster
  std::string label;      // the metrics' `uri` label: jwks_uri, or "cluster:NAME/PATH"
  int64_t refresh_ms = 300'000;
  int64_t min_refetch_ms = 10'000;
  int64_t timeout_ms = 5'000;
};

class JwksSource : public std::enable_shared_from_this<JwksSource> {
 public:
  // Control thread: the source for these options (shared with earlier builds when cluster,
  // target and Host match; timings follow the newest build).
  static std::shared_ptr<JwksSource> obtain(const JwksOptions& opts);

  explicit JwksSource(const JwksOptions& opts);

  // Worker: this thread's view of the current key set (null before the first fetch succeeds).
  const KeySet* current() const;
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }
  bool loaded() const { return generation() != 0; }
  bool fetching() const { return fetching_.load(std::memory_order_acquire); }

  // Worker: starts a background fetch if one is due (first load, periodic refresh) or asked
  // for (`unknown_kid`, rate limited). Returns true when a fetch is now in flight.
  bool refreshIfDue(bool unknown_kid);
  // Worker: waits (polling, slow path only) until the generation moves past `seen` or no
  // fetch is in flight, bounded by the fetch timeout.
  runtime::Task<void> waitForFetch(uint64_t seen);

  uint64_t fetchCount() const { return fetches_.load(std::memory_order_relaxed); }
  uint64_t fetchErrors() const { return fetch_errors_.load(std::memory_order_relaxed); }

 private:
  bool tryStart(int64_t now_ms, int64_t min_gap_ms);
  static runtime::Task<void> fetchTask(std::shared_ptr<JwksSource> self);
  // Parses and publishes a fetched JWKS; why it was refused, or empty.
  std::string take(const std::string& body);
  void publish(std::vector<Key> keys);

  uint64_t id_;
  const std::string cluster_;
  const std::string target_;
  const std::string authority_;
  const std::string label_;
  std::atomic<int64_t> refresh_ms_;
  std::atomic<int64_t> min_refetch_ms_;
  std::atomic<int64_t> timeout_ms_;

  mutable std::mutex mu_;  // guards keys_ (publication and per-worker refresh only)
  std::shared_ptr<const KeySet> keys_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<bool> fetching_{false};
  std::atomic<int64_t> last_start_ms_{INT64_MIN / 2};
  std::atomic<int64_t> last_success_ms_{INT64_MIN / 2};
  std::atomic<uint64_t> fetches_{0};
  std::atomic<uint64_t> fetch_errors_{0};
};

}  // namespace gatehouse::policies::jwt
