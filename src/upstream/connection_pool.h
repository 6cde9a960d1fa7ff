#pragma once
// Per-worker pool of idle keep-alive connections to one upstream endpoint (one pool per
// cluster x host). No locks: a pool belongs to one worker, the first thread that uses it
// (checked in debug builds). Idle connections are checked without a syscall: any readiness edge
// while idle (bytes or FIN from the upstream) makes them unusable.
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/owner_thread.h"
#include "net/tcp.h"
#include "runtime/event_loop.h"
#include "runtime/notifier.h"
#include "runtime/task.h"
#include "upstream/circuit_breaker.h"
#include "upstream/h2_client.h"

namespace gatehouse::upstream {

struct PooledConnection {
  std::unique_ptr<net::TcpStream> stream;
  runtime::TimePoint idle_since{};
  uint64_t requests = 0;
  ConnectionSlot slot;  // counted against the cluster's max_connections (when configured)
  // Cluster proxy_protocol: the PROXY header this connection was opened with (without the
  // unique id). Only requests of the same downstream client (same header) reuse it.
  std::string owner;
};

class EndpointPool {
 public:
  EndpointPool(size_t max_idle, runtime::Duration idle_timeout)
      : max_idle_(max_idle), idle_timeout_(idle_timeout) {}

  // An idle, still usable connection opened for `owner` (empty: a shared one), or nullptr.
  std::unique_ptr<PooledConnection> acquire(runtime::TimePoint now, std::string_view owner = {});
  // Returns a connection after a complete exchange. It goes to a request of this pool waiting
  // for a connection if there is one; otherwise it is closed if the pool is full or if a
  // request of the cluster waits elsewhere for a connection slot.
  void release(std::unique_ptr<PooledConnection> conn, runtime::TimePoint now);
  // Closes connections idle past the timeout or closed by the upstream, and idle ones whose
  // slot a pending request elsewhere needs.
  void sweep(runtime::TimePoint now);
  // Requests waiting (max_connections reached) for a connection of this pool to come back.
  void addWaiter(runtime::Notifier* n) {
    GH_CLAIM_OWNER(owner_);
    waiters_.push_back(n);
  }
  void removeWaiter(runtime::Notifier* n) {
    GH_CLAIM_OWNER(owner_);
    std::erase(waiters_, n);
  }
  void setLimits(size_t max_idle, runtime::Duration idle_timeout) {
    GH_CLAIM_OWNER(owner_);
    max_idle_ = max_idle;
    idle_timeout_ = idle_timeout;
  }
  size_t idleCount() const { return idle_.size(); }
  size_t active = 0;  // connections checked out (in use by requests)
  // Cluster `protocol: auto`: what ALPN chose on the first TLS connection (0 = not yet known).
  enum class Alpn : uint8_t { kUnknown, kHttp1, kH2 } alpn = Alpn::kUnknown;

  // HTTP/2 endpoints: connections shared by many requests. The least busy one with room for
  // another stream, or nullptr (dead ones are dropped here).
  std::shared_ptr<H2Client> h2Pick();
  void h2Add(std::shared_ptr<H2Client> c) {
    GH_CLAIM_OWNER(owner_);
    h2_.push_back(std::move(c));
  }
  size_t h2Count() const { return h2_.size(); }
  // Requests of this worker opening an HTTP/2 connection right now: others wait for it rather
  // than open one each (a burst of N requests would otherwise open N connections).
  size_t h2Connecting() const { return h2_connecting_; }
  void beginH2Connect() {
    GH_CLAIM_OWNER(owner_);
    ++h2_connecting_;
  }
  // Wakes the requests waiting for it, whether the connection was added or failed.
  void endH2Connect();

 private:
  friend class PoolLease;
  bool usable(PooledConnection& c, runtime::TimePoint now) const;
  std::vector<std::unique_ptr<PooledConnection>> idle_;  // LIFO: the warmest first
  std::vector<std::shared_ptr<H2Client>> h2_;
  size_t h2_connecting_ = 0;
  std::vector<runtime::Notifier*> waiters_;  // FIFO
  size_t max_idle_;
  runtime::Duration idle_timeout_;
  // The worker that uses the pool: claimed on first use, since pools may be made before their
  // worker runs (tests) and are destroyed after it stops.
  [[no_unique_address]] OwnerThread owner_;
};

// Counts a connection as in use on its pool for as long as the lease is held.
class PoolLease {
 public:
  PoolLease() = default;
  PoolLease(const PoolLease&) = delete;
  PoolLease& operator=(const PoolLease&) = delete;
  ~PoolLease() { release(); }
  void take(EndpointPool* p) {
    release();
    pool_ = p;
    GH_CLAIM_OWNER(pool_->owner_);
    ++pool_->active;
  }
  void release() {
    if (!pool_) return;
    GH_CLAIM_OWNER(pool_->owner_);
    --pool_->active;
    pool_ = nullptr;
  }

 private:
  EndpointPool* pool_ = nullptr;
};

// What a request gets from a pool: a connection to use, the right to open one, or a refusal.
// Held by the request opening an HTTP/2 connection, until it is added to the pool or failed.
class H2ConnectGuard {
 public:
  explicit H2ConnectGuard(EndpointPool& pool) : pool_(pool) { pool_.beginH2Connect(); }
  ~H2ConnectGuard() { pool_.endH2Connect(); }
  H2ConnectGuard(const H2ConnectGuard&) = delete;
  H2ConnectGuard& operator=(const H2ConnectGuard&) = delete;

 private:
  EndpointPool& pool_;
};

struct Checkout {
  std::unique_ptr<PooledConnection> conn;  // HTTP/1: an idle connection to reuse
  std::shared_ptr<H2Client> h2;            // HTTP/2: a connection with room for a stream
  ConnectionSlot slot;                     // when neither: open one (held when breakers are on)
  std::optional<Limit> overflow;           // refused: answer 503 for this limit
  // max_connections reached, or an HTTP/2 connection is being opened: co_await waitForConnection
  bool wait = false;
};

// Worker thread. Never suspends, so the common case costs no coroutine frame.
// `owner`: HTTP/1.1 connections carrying a PROXY header reuse only one opened for that header.
Checkout checkout(EndpointPool& pool, const Breakers& b, bool http2, runtime::TimePoint now,
                  std::string_view owner = {});
// After checkout() said `wait`: the request waits until a connection of this pool comes back,
// one with room for a stream appears (HTTP/2: the connection another request is opening), or a
// connection slot frees up. Waiting for a slot counts as pending (at most max_pending_requests,
// else overflow max_pending_requests); at `deadline` the overflow is max_connections, except
// that a request that waited for another's HTTP/2 connect opens its own. Slots freed on other
// workers are seen by polling every few ms.
runtime::Task<Checkout> waitForConnection(EndpointPool& pool, const Breakers& b, bool http2,
                                          runtime::EventLoop& loop, runtime::TimePoint deadline,
                                          std::string owner = {});

}  // namespace gatehouse::upstream
