#pragma once
// What the consistent-hashing balancers (ring_hash, ip_hash, maglev) share. A Table maps a key
// hash to a position and a position to a host; the balancer around it adds the hash key, the
// fallback for requests without one, and bounded load (Mirrokni, Thorup, Zadimoghaddam,
// "Consistent Hashing with Bounded Loads", 2017): walk on from the hashed position to the first
// host whose in-flight count is below its capacity,
//   capacity(host) = ceil(bounded_load * (in-flight on this worker + 1) * weight / total weight).
// The tables are immutable and shared by all workers (TableCache); the in-flight counts are
// per worker, like the balancer.
#include <algorithm>
#include <cmath>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "config/model.h"
#include "lb/hash.h"
#include "lb/hash_key.h"
#include "lb/load_balancer.h"
#include "lb/random.h"
#include "lb/round_robin.h"

namespace gatehouse::lb {

// Table requirements:
//   size_t size() const;                     // positions; 0 when there are no hosts
//   size_t position(uint64_t hash) const;    // where a key hash lands, < size()
//   uint32_t host(size_t position) const;    // host index at a position
template <typename Table>
class HashingBalancer final : public LoadBalancer {
 public:
  HashingBalancer(const HostSet& hosts, std::shared_ptr<const Table> table,
                  const config::LbOptions& options, uint64_t seed)
      : table_(std::move(table)),
        key_(options.hash_key),
        bounded_load_(options.bounded_load),
        in_flight_(hosts.hosts.size(), 0) {
    if (options.fallback == config::LbFallback::kRandom) {
      fallback_ = std::make_unique<WeightedRandom>(hosts, seed);
    } else {
      fallback_ = std::make_unique<RoundRobin>(hosts, seed);
    }
    if (bounded_load_ > 0) {
      double total = 0;
      for (const Host& h : hosts.hosts)
        total += std::max<uint32_t>(h.weight, 1);
      for (const Host& h : hosts.hosts) {
        capacity_factor_.push_back(bounded_load_ * std::max<uint32_t>(h.weight, 1) / total);
      }
    }
  }

  int pick(const PickContext& ctx) override {
    if (table_->size() == 0) return -1;
    std::optional<std::string_view> key = extractHashKey(key_, ctx);
    if (!key) return fallback_->pick(ctx);
    size_t pos = table_->position(xxh64(*key));
    if (bounded_load_ <= 0) return static_cast<int>(table_->host(pos));
    return boundedPick(pos);
  }

  void onStart(int host) override {
    if (host < 0 || static_cast<size_t>(host) >= in_flight_.size()) return;
    ++in_flight_[static_cast<size_t>(host)];
    ++total_in_flight_;
  }

  void onEnd(int host, std::chrono::nanoseconds, bool) override {
    if (host < 0 || static_cast<size_t>(host) >= in_flight_.size()) return;
    uint32_t& n = in_flight_[static_cast<size_t>(host)];
    if (n == 0) return;
    --n;
    --total_in_flight_;
  }

  // The host a key hashes to, ignoring load. For tests and tools.
  int hostForKey(std::string_view key) const {
    if (table_->size() == 0) return -1;
    return static_cast<int>(table_->host(table_->position(xxh64(key))));
  }
  uint32_t inFlight(int host) const { return in_flight_.at(static_cast<size_t>(host)); }

 private:
  bool underCapacity(uint32_t host) const {
    double capacity = std::ceil(capacity_factor_[host] * static_cast<double>(total_in_flight_ + 1));
    return static_cast<double>(in_flight_[host]) + 1 <= capacity;
  }

  int boundedPick(size_t pos) const {
    // The capacities add up to at least in-flight + 1, so some host is below its own. The walk
    // normally meets one within a few steps; the limit only guards against tables in which a
    // light host holds few positions.
    const size_t size = table_->size();
    const size_t limit = std::min(size, 64 + 16 * in_flight_.size());
    for (size_t step = 0; step < limit; ++step) {
      uint32_t host = table_->host(pos);
      if (underCapacity(host)) return static_cast<int>(host);
      if (++pos == size) pos = 0;
    }
    // Then the next host by index from where the key landed: still a function of the key.
    const auto n = static_cast<uint32_t>(in_flight_.size());
    uint32_t host = table_->host(pos);
    for (uint32_t i = 0; i < n; ++i, host = host + 1 == n ? 0 : host + 1) {
      if (underCapacity(host)) return static_cast<int>(host);
    }
    return static_cast<int>(table_->host(pos));
  }

  std::shared_ptr<const Table> table_;
  config::HashKey key_;
  double bounded_load_;
  std::unique_ptr<LoadBalancer> fallback_;
  std::vector<double> capacity_factor_;  // bounded_load * weight / total weight
  std::vector<uint32_t> in_flight_;
  uint64_t total_in_flight_ = 0;
};

// One table per host set, built once and shared by every worker's balancer. Factories keep one
// as a mutable member: create() runs when a worker installs a snapshot (and once on the
// control thread, when the snapshot is built, to warm it), never per request, so the lock is
// off the request path. A different host set (after discovery or health changes) replaces it.
template <typename Table>
class TableCache {
 public:
  template <typename Build>
  std::shared_ptr<const Table> get(const HostSet& hosts, Build&& build) {
    std::lock_guard lock(mu_);
    if (table_ && sameHosts(hosts)) return table_;
    table_ = std::make_shared<const Table>(build(hosts));
    key_.clear();
    for (const Host& h : hosts.hosts)
      key_.emplace_back(h.name, h.weight);
    return table_;
  }

 private:
  bool sameHosts(const HostSet& hosts) const {
    if (hosts.hosts.size() != key_.size()) return false;
    for (size_t i = 0; i < key_.size(); ++i) {
      if (hosts.hosts[i].name != key_[i].first || hosts.hosts[i].weight != key_[i].second) {
        return false;
      }
    }
    return true;
  }

  std::mutex mu_;
  std::shared_ptr<const Table> table_;
  std::vector<std::pair<std::string, uint32_t>> key_;  // (name, weight) per host, in order
};

// The factory of a hashing algorithm: Table::build(hosts, options.*kTableParam) makes the
// table (ring points per weight, Maglev table size), shared through the cache.
template <typename Table, uint32_t config::LbOptions::*kTableParam>
class HashingFactory final : public LoadBalancerFactory {
 public:
  explicit HashingFactory(const config::LbOptions& options) : options_(options) {}
  std::unique_ptr<LoadBalancer> create(const HostSet& hosts) const override {
    auto table = cache_.get(
        hosts, [this](const HostSet& h) { return Table::build(h, options_.*kTableParam); });
    return std::make_unique<HashingBalancer<Table>>(hosts, std::move(table), options_,
                                                    randomSeed());
  }
  // A ramping weight would move keys between hosts at every step.
  bool rampsWeights() const override { return false; }

 private:
  config::LbOptions options_;
  mutable TableCache<Table> cache_;
};

}  // namespace gatehouse::lb
