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
  if (waiters_.empty()) {
    // Closed by unique_ptr. A request waiting for a slot on another worker gets this one's.
    if (idle_.size() >= max_idle_ || conn->slot.othersWaiting()) return;
  }
  conn->idle_since = now;
  idle_.push_back(std::move(conn));
  if (!waiters_.empty()) waiters_.front()->notify();
}

void EndpointPool::sweep(runtime::TimePoint now) {
  idle_.erase(std::remove_if(idle_.begin(), idle_.end(),
                             [&](auto& c) {
                               if (!usable(*c, now)) return true;
                               // Idle here while a request waits for a slot elsewhere.
                               return waiters_.empty() && c->slot.othersWaiting();
                             }),
              idle_.end());
  std::erase_if(h2_, [](const auto& c) {
    // An HTTP/2 connection without streams gives its slot to a request waiting elsewhere.
    if (c->alive() && c->activeStreams() == 0 && c->slotWanted()) c->close();
    return !c->alive();
  });
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

namespace {

// Slots freed on another worker wake nobody here: look again this often.
constexpr auto kSlotPoll = std::chrono::milliseconds(5);

// Registers a waiting request with the pool for as long as it waits.
class WaiterRegistration {
 public:
  WaiterRegistration(EndpointPool& pool, runtime::Notifier& n) : pool_(pool), n_(n) {
    pool_.addWaiter(&n_);
  }
  ~WaiterRegistration() { pool_.removeWaiter(&n_); }
  WaiterRegistration(const WaiterRegistration&) = delete;
  WaiterRegistration& operator=(const WaiterRegistration&) = delete;

 private:
  EndpointPool& pool_;
  runtime::Notifier& n_;
};

// An existing connection, or a slot to open one; false when neither is available.
bool tryTake(Checkout& c, EndpointPool& pool, const Breakers& b, bool http2,
             runtime::TimePoint now) {
  if (http2) {
    c.h2 = pool.h2Pick();
    if (c.h2) return true;
  } else {
    c.conn = pool.acquire(now);
    if (c.conn) return true;
  }
  return !b.enabled || c.slot.tryAcquire(b.state, b.cap(Limit::kConnections));
}

}  // namespace

Checkout checkout(EndpointPool& pool, const Breakers& b, bool http2, runtime::TimePoint now) {
  Checkout c;
  c.wait = !tryTake(c, pool, b, http2, now);
  return c;
}

runtime::Task<Checkout> waitForConnection(EndpointPool& pool, const Breakers& b, bool http2,
                                          runtime::EventLoop& loop, runtime::TimePoint deadline) {
  Checkout c;
  BreakerGuard pending;
  if (!pending.acquire(*b.state, Limit::kPending, b.cap(Limit::kPending))) {
    c.overflow = Limit::kPending;
    co_return c;
  }
  runtime::Notifier wake;
  WaiterRegistration reg(pool, wake);
  for (;;) {
    const auto now = loop.now();
    if (tryTake(c, pool, b, http2, now)) co_return c;
    if (now >= deadline) {
      b.state->countOverflow(Limit::kConnections);
      c.overflow = Limit::kConnections;
      co_return c;
    }
    co_await wake.wait(loop, std::min(deadline, now + kSlotPoll));
  }
}

}  // namespace gatehouse::upstream
