#include "cache/store.h"

#include <algorithm>

namespace gatehouse::cache {

Store::Store(uint64_t max_bytes) : max_bytes_(max_bytes) {}

Store::Shard& Store::shardOf(std::string_view key) {
  return shards_[std::hash<std::string_view>{}(key) % kShards];
}

EntryPtr Store::lookup(std::string_view key, const std::function<bool(const Entry&)>& select) {
  Shard& s = shardOf(key);
  std::lock_guard lock(s.mu);
  auto it = s.slots.find(key);
  if (it == s.slots.end()) return nullptr;
  for (const auto& v : it->second.variants) {
    if (select(*v)) {
      s.lru.splice(s.lru.begin(), s.lru, it->second.lru);
      return v;
    }
  }
  return nullptr;
}

bool Store::insert(std::string_view key, EntryPtr entry) {
  const uint64_t size = entry->bytes() + key.size();
  const uint64_t limit = shardLimit();
  if (size > limit) return false;
  Shard& s = shardOf(key);
  std::lock_guard lock(s.mu);
  auto [it, added] = s.slots.try_emplace(std::string(key));
  Slot& slot = it->second;
  if (added) {
    s.lru.push_front(it->first);
    slot.lru = s.lru.begin();
    slot.bytes = key.size();
    s.bytes += key.size();
  } else {
    s.lru.splice(s.lru.begin(), s.lru, slot.lru);
  }
  auto& vs = slot.variants;
  auto same =
      std::find_if(vs.begin(), vs.end(), [&](const EntryPtr& v) { return v->vary == entry->vary; });
  if (same == vs.end() && vs.size() >= kMaxVariants) same = vs.end() - 1;
  const uint64_t added_bytes = entry->bytes();
  if (same != vs.end()) {
    const uint64_t old = (*same)->bytes();
    slot.bytes -= old;
    s.bytes -= old;
    *same = std::move(entry);
  } else {
    vs.push_back(std::move(entry));
    same = vs.end() - 1;
  }
  std::rotate(vs.begin(), same, same + 1);  // most recent first
  slot.bytes += added_bytes;
  s.bytes += added_bytes;
  evictLocked(s, limit);
  return true;
}

void Store::eraseLocked(Shard& s, SlotMap::iterator it) {
  s.bytes -= it->second.bytes;
  s.lru.erase(it->second.lru);
  s.slots.erase(it);
}

void Store::evictLocked(Shard& s, uint64_t limit) {
  while (s.bytes > limit && !s.lru.empty()) {
    auto it = s.slots.find(s.lru.back());
    eraseLocked(s, it);
    evictions_.fetch_add(1, std::memory_order_relaxed);
  }
}

bool Store::remove(std::string_view key) {
  Shard& s = shardOf(key);
  std::lock_guard lock(s.mu);
  auto it = s.slots.find(key);
  if (it == s.slots.end()) return false;
  eraseLocked(s, it);
  return true;
}

template <class Pred>
size_t Store::removeIf(Pred pred) {
  size_t removed = 0;
  for (Shard& s : shards_) {
    std::lock_guard lock(s.mu);
    for (auto it = s.slots.begin(); it != s.slots.end();) {
      auto next = std::next(it);
      if (pred(it->first, it->second)) {
        eraseLocked(s, it);
        ++removed;
      }
      it = next;
    }
  }
  return removed;
}

size_t Store::removePrefix(std::string_view prefix) {
  return removeIf([&](const std::string& key, const Slot&) { return key.starts_with(prefix); });
}

size_t Store::removeTag(std::string_view tag) {
  return removeIf([&](const std::string&, const Slot& slot) {
    for (const auto& v : slot.variants) {
      if (std::find(v->tags.begin(), v->tags.end(), tag) != v->tags.end()) return true;
    }
    return false;
  });
}

void Store::setMaxBytes(uint64_t max_bytes) {
  max_bytes_.store(max_bytes, std::memory_order_relaxed);
  const uint64_t limit = shardLimit();
  for (Shard& s : shards_) {
    std::lock_guard lock(s.mu);
    evictLocked(s, limit);
  }
}

uint64_t Store::bytes() const {
  uint64_t n = 0;
  for (const Shard& s : shards_) {
    std::lock_guard lock(s.mu);
    n += s.bytes;
  }
  return n;
}

uint64_t Store::keys() const {
  uint64_t n = 0;
  for (const Shard& s : shards_) {
    std::lock_guard lock(s.mu);
    n += s.slots.size();
  }
  return n;
}

namespace {
struct Zones {
  std::mutex mu;
  std::vector<std::pair<std::string, std::weak_ptr<Store>>> zones;
};
Zones& zones() {
  static Zones z;
  return z;
}
}  // namespace

std::shared_ptr<Store> storeForZone(std::string_view zone, uint64_t max_bytes) {
  Zones& z = zones();
  std::lock_guard lock(z.mu);
  std::erase_if(z.zones, [](const auto& p) { return p.second.expired(); });
  for (auto& [name, weak] : z.zones) {
    if (name != zone) continue;
    auto store = weak.lock();
    if (!store) break;  // its last user went away meanwhile: start afresh
    if (store->maxBytes() != max_bytes) store->setMaxBytes(max_bytes);
    return store;
  }
  std::erase_if(z.zones, [&](const auto& p) { return p.first == zone; });
  auto store = std::make_shared<Store>(max_bytes);
  z.zones.emplace_back(std::string(zone), store);
  return store;
}

std::vector<std::pair<std::string, std::shared_ptr<Store>>> liveZones() {
  Zones& z = zones();
  std::lock_guard lock(z.mu);
  std::vector<std::pair<std::string, std::shared_ptr<Store>>> out;
  for (auto& [name, weak] : z.zones) {
    if (auto s = weak.lock()) out.emplace_back(name, std::move(s));
  }
  return out;
}

}  // namespace gatehouse::cache
