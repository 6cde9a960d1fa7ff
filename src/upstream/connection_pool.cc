#include "upstream/connection_pool.h"

#include <algorithm>

namespace gatehouse::upstream {

bool EndpointPool::usable(PooledConnection& c, runtime::TimePoint now) const {
  if (now - c.idle_since > idle_timeout_) return false;
  // An idle socket was left drained; a later edge means the upstream sent bytes or closed.
  if (c.stream->peerHungUp()) return false;
  return c.stream->idleCheckUsable();
}

std::unique_ptr<PooledConnection> EndpointPool::acquire(runtime::TimePoint now) {
  while (!idle_.empty()) {
    auto c = std::move(idle_.back());
    idle_.pop_back();
    if (usable(*c, now)) return c;
  }
  return nullptr;
}

void EndpointPool::release(std::unique_ptr<PooledConnection> conn, runtime::TimePoint now) {
  if (idle_.size() >= max_idle_) return;  // closed by unique_ptr
  conn->idle_since = now;
  idle_.push_back(std::move(conn));
}

void EndpointPool::sweep(runtime::TimePoint now) {
  idle_.erase(std::remove_if(idle_.begin(), idle_.end(), [&](auto& c) { return !usable(*c, now); }),
              idle_.end());
  std::erase_if(h2_, [](const auto& c) { return !c->alive(); });
}

std::shared_ptr<H2Client> EndpointPool::h2Pick() {
  std::erase_if(h2_, [](const auto& c) { return !c->alive(); });
  H2Client* best = nullptr;
  for (const auto& c : h2_) {
    if (c->hasCapacity() && (!best || c->activeStreams() < best->activeStreams())) best = c.get();
  }
  for (const auto& c : h2_) {
    if (c.get() == best) return c;
  }
  return nullptr;
}

}  // namespace gatehouse::upstream
