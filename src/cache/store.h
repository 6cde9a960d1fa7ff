#pragma once
// The memory store: responses by key (each key holding its Vary variants), bounded in bytes
// with LRU eviction. Sharded by key hash, each shard with its own mutex, so workers hitting
// different keys never contend and no lock is global. A hit returns a shared_ptr to the
// immutable entry: the lock is held only for the map lookup. Any thread.
#include <atomic>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "cache/coalescer.h"
#include "cache/entry.h"

namespace gatehouse::cache {

class Store {
 public:
  static constexpr size_t kShards = 16;
  static constexpr size_t kMaxVariants = 8;  // per key; the oldest goes first

  explicit Store(uint64_t max_bytes);
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // The variant of `key` that `select` accepts (most recent first), marking the key used.
  EntryPtr lookup(std::string_view key, const std::function<bool(const Entry&)>& select);
  // Stores `entry` under `key`, replacing the variant with the same Vary values. An entry
  // larger than a shard's share of the bound is not stored (false).
  bool insert(std::string_view key, EntryPtr entry);
  // Removes every variant of `key`; true when there was one.
  bool remove(std::string_view key);
  // Removes every key starting with `prefix`, or every entry carrying `tag`; how many keys.
  size_t removePrefix(std::string_view prefix);
  size_t removeTag(std::string_view tag);

  // A new bound (a reload that changed the zone's size); evicts down to it.
  void setMaxBytes(uint64_t max_bytes);
  uint64_t maxBytes() const { return max_bytes_.load(std::memory_order_relaxed); }
  uint64_t bytes() const;
  uint64_t keys() const;
  uint64_t evictions() const { return evictions_.load(std::memory_order_relaxed); }
  // The zone's open flights (request coalescing), shared by the workers like the entries.
  Coalescer& flights() { return flights_; }

 private:
  struct Slot {
    std::vector<EntryPtr> variants;  // most recent first
    uint64_t bytes = 0;
    std::list<std::string>::iterator lru;  // position in Shard::lru (front: most recent)
  };
  // Heterogeneous lookup: a string_view key finds without building a string.
  struct KeyHash {
    using is_transparent = void;
    size_t operator()(std::string_view k) const { return std::hash<std::string_view>{}(k); }
  };
  using SlotMap = std::unordered_map<std::string, Slot, KeyHash, std::equal_to<>>;
  struct Shard {
    mutable std::mutex mu;
    SlotMap slots;
    std::list<std::string> lru;
    uint64_t bytes = 0;
  };

  Shard& shardOf(std::string_view key);
  uint64_t shardLimit() const { return maxBytes() / kShards; }
  void evictLocked(Shard& s, uint64_t limit);
  void eraseLocked(Shard& s, SlotMap::iterator it);
  template <class Pred>
  size_t removeIf(Pred pred);

  std::atomic<uint64_t> max_bytes_;
  std::atomic<uint64_t> evictions_{0};
  Shard shards_[kShards];
  Coalescer flights_;
};

// The process-wide stores by zone name: a zone outlives config reloads as long as some
// snapshot's policy uses it, so a reload keeps what is cached. Control thread (policy builds)
// and the admin thread.
std::shared_ptr<Store> storeForZone(std::string_view zone, uint64_t max_bytes);
// The zones that are alive, for purges and metrics.
std::vector<std::pair<std::string, std::shared_ptr<Store>>> liveZones();

}  // namespace gatehouse::cache
