#include "cache/coalescer.h"

namespace gatehouse::cache {

void Waiter::wake() {
  loop_.post([self = shared_from_this()] { self->wakeHere(); });
}

void Waiter::wakeHere() {
  woken_ = true;
  if (!handle_) return;
  auto h = handle_;
  handle_ = nullptr;
  timer_.cancel();
  loop_.schedule(h);
}

void Waiter::onTimeout(void* self) {
  auto* w = static_cast<Waiter*>(self);
  if (!w->handle_) return;
  auto h = w->handle_;
  w->handle_ = nullptr;
  h.resume();
}

std::shared_ptr<Waiter> Coalescer::join(std::string_view key, runtime::EventLoop& loop,
                                        bool& leader) {
  Shard& s = shards_[std::hash<std::string_view>{}(key) % kShards];
  std::lock_guard lock(s.mu);
  auto it = s.flights.find(key);
  if (it == s.flights.end()) {
    s.flights.try_emplace(std::string(key));
    leader = true;
    return nullptr;
  }
  leader = false;
  auto w = std::make_shared<Waiter>(loop);
  it->second.push_back(w);
  waiting_.fetch_add(1, std::memory_order_relaxed);
  coalesced_.fetch_add(1, std::memory_order_relaxed);
  return w;
}

bool Coalescer::tryLead(std::string_view key) {
  Shard& s = shards_[std::hash<std::string_view>{}(key) % kShards];
  std::lock_guard lock(s.mu);
  return s.flights.try_emplace(std::string(key)).second;
}

void Coalescer::finish(std::string_view key) {
  std::vector<std::shared_ptr<Waiter>> waiters;
  {
    Shard& s = shards_[std::hash<std::string_view>{}(key) % kShards];
    std::lock_guard lock(s.mu);
    auto it = s.flights.find(key);
    if (it == s.flights.end()) return;
    waiters.swap(it->second);
    s.flights.erase(it);
  }
  for (auto& w : waiters)
    w->wake();
}

}  // namespace gatehouse::cache
