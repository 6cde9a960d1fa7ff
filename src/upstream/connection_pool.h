#pragma once
// Per-worker pool of idle keep-alive connections to one upstream endpoint (one pool per
// cluster x host). No locks: a pool belongs to one worker. Idle connections are checked without
// a syscall: any readiness edge while idle (bytes or FIN from the upstream) makes them unusable.
#include <cstddef>
#include <memory>
#include <vector>

#include "net/tcp.h"
#include "runtime/event_loop.h"
#include "upstream/h2_client.h"

namespace gatehouse::upstream {

struct PooledConnection {
  std::unique_ptr<net::TcpStream> stream;
  runtime::TimePoint idle_since{};
  uint64_t requests = 0;
};

class EndpointPool {
 public:
  EndpointPool(size_t max_idle, runtime::Duration idle_timeout)
      : max_idle_(max_idle), idle_timeout_(idle_timeout) {}

  // An idle connection that is still usable, or nullptr.
  std::unique_ptr<PooledConnection> acquire(runtime::TimePoint now);
  // Returns a connection after a complete exchange; it is closed if the pool is full.
  void release(std::unique_ptr<PooledConnection> conn, runtime::TimePoint now);
  // Closes connections idle past the timeout or closed by the upstream.
  void sweep(runtime::TimePoint now);
  void setLimits(size_t max_idle, runtime::Duration idle_timeout) {
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
  void h2Add(std::shared_ptr<H2Client> c) { h2_.push_back(std::move(c)); }
  size_t h2Count() const { return h2_.size(); }

 private:
  bool usable(PooledConnection& c, runtime::TimePoint now) const;
  std::vector<std::unique_ptr<PooledConnection>> idle_;  // LIFO: the warmest first
  std::vector<std::shared_ptr<H2Client>> h2_;
  size_t max_idle_;
  runtime::Duration idle_timeout_;
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
    ++pool_->active;
  }
  void release() {
    if (pool_) --pool_->active;
    pool_ = nullptr;
  }

 private:
  EndpointPool* pool_ = nullptr;
};

}  // namespace gatehouse::upstream
