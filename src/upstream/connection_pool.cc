#include "upstream/connection_pool.h"

#include <algorithm>

namespace gatehouse::upstream {

bool EndpointPool::usable(PooledConnection& c, runtime::TimePoint now) const {
  if (now - c.idle_since > idle_timeout_) return false;
  // An idle socket was left drained; a later edge means the upstream sent bytes or closed.
  if (c.stream->peerHungUp()) return false;
  return c.stream->idleCheckUsable();
}

std::unique_ptr<PooledConnection> EndpointPool::acquire(runtime::TimePoint now,
                                                        std::string_view owner) {
  GH_CLAIM_OWNER(owner_);
  // From the warmest; unusable ones met on the way are closed, other owners' ones stay.
  for (size_t i = idle_.size(); i-- > 0;) {
    if (idle_[i]->owner != owner) continue;
    auto c = std::move(idle_[i]);
    idle_.erase(idle_.begin() + static_cast<std::ptrdiff_t>(i));
    if (usable(*c, now)) return c;
  }
  return nullptr;
}

void EndpointPool::release(std::unique_ptr<PooledConnection> conn, runtime::TimePoint now) {
  GH_CLAIM_OWNER(owner_);
  if (waiters_.empty()) {
    // Closed by unique_ptr. A request waiting for a slot on another worker gets this one's.
    if (idle_.size() >= max_idle_ || conn->slot.othersWaiting()) return;
  }
  conn->idle_since = now;
  idle_.push_back(std::move(conn));
  if (!waiters_.empty()) waiters_.front()->notify();
}

void EndpointPool::sweep(runtime::TimePoint now) {
  GH_CLAIM_OWNER(owner_);
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
  GH_CLAIM_OWNER(owner_);
  // One pass: the least-loaded connection with room; dead ones are dropped on the way.
  size_t best = SIZE_MAX;
  for (size_t i = 0; i < h2_.size();) {
    const auto& c = h2_[i];
    if (!c->alive()) {
      h2_[i] = std::move(h2_.back());
      h2_.pop_back();
      continue;
    }
    if (c->hasCapacity() && (best == SIZE_MAX || c->activeStreams() < h2_[best]->activeStreams())) {
      best = i;
    }
    ++i;
  }
  return best == SIZE_MAX ? nullptr : h2_[best];
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

enum class Take { kTaken, kConnectInFlight, kNoSlot };

// An existing connection, or a slot to open one.
Take tryTake(Checkout& c, EndpointPool& pool, const Breakers& b, bool http2, runtime::TimePoint now,
             std::string_view owner) {
  if (http2) {
    c.h2 = pool.h2Pick();
    if (c.h2) return Take::kTaken;
    if (pool.h2Connecting() > 0) return Take::kConnectInFlight;
  } else {
    c.conn = pool.acquire(now, owner);
    if (c.conn) return Take::kTaken;
  }
  return !b.enabled || c.slot.tryAcquire(b.state, b.cap(Limit::kConnections)) ? Take::kTaken
                                                                              : Take::kNoSlot;
}

}  // namespace

void EndpointPool::endH2Connect() {
  GH_CLAIM_OWNER(owner_);
  --h2_connecting_;
  for (auto* n : waiters_)
    n->notify();
}

Checkout checkout(EndpointPool& pool, const Breakers& b, bool http2, runtime::TimePoint now,
                  std::string_view owner) {
  Checkout c;
  c.wait = tryTake(c, pool, b, http2, now, owner) != Take::kTaken;
  return c;
}

runtime::Task<Checkout> waitForConnection(EndpointPool& pool, const Breakers& b, bool http2,
                                          runtime::EventLoop& loop, runtime::TimePoint deadline,
                                          std::string owner) {
  Checkout c;
  BreakerGuard pending;  // only while waiting for a connection slot (max_connections)
  runtime::Notifier wake;
  WaiterRegistration reg(pool, wake);
  for (;;) {
    const auto now = loop.now();
    const Take t = tryTake(c, pool, b, http2, now, owner);
    if (t == Take::kTaken) co_return c;
    if (t == Take::kNoSlot && !pending.held() &&
        !pending.acquire(*b.state, Limit::kPending, b.cap(Limit::kPending))) {
      c.overflow = Limit::kPending;
      co_return c;
    }
    if (now >= deadline) {
      // Waited a whole connect timeout for another request's connection: open one instead.
      if (t == Take::kConnectInFlight &&
          (!b.enabled || c.slot.tryAcquire(b.state, b.cap(Limit::kConnections)))) {
        co_return c;
      }
      b.state->countOverflow(Limit::kConnections);
      c.overflow = Limit::kConnections;
      co_return c;
    }
    co_await wake.wait(loop, std::min(deadline, now + kSlotPoll));
  }
}

}  // namespace gatehouse::upstream
