// upstream circuit breakers: the shared counters and their RAII guards, connection checkout at
// max_connections (pending, overflow), the `circuit_breakers:` config and the counters kept
// across reloads.
#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "config_test_util.h"
#include "metrics/registry.h"
#include "runtime/event_loop.h"
#include "runtime/task.h"
#include "server/snapshot_builder.h"
#include "upstream/circuit_breaker.h"
#include "upstream/connection_pool.h"
#include "upstream/health_checker.h"

namespace gatehouse::upstream {
namespace {

using config::test_util::load;
using config::test_util::loadOk;
using config::test_util::onlyError;

Breakers enabled(uint64_t conns, uint64_t pending, uint64_t requests, uint64_t retries) {
  Breakers b;
  b.state = std::make_shared<ClusterBreaker>();
  b.enabled = true;
  b.max = {conns, pending, requests, retries};
  return b;
}

TEST(CircuitBreaker, GuardsTakeUpToTheCapAndCountOverflows) {
  Breakers b = enabled(10, 10, 2, 3);
  BreakerGuard g1, g2, g3;
  EXPECT_TRUE(b.tryAcquire(Limit::kRequests, g1));
  EXPECT_TRUE(b.tryAcquire(Limit::kRequests, g2));
  EXPECT_FALSE(b.tryAcquire(Limit::kRequests, g3));
  EXPECT_FALSE(g3.held());
  EXPECT_EQ(b.state->current(Limit::kRequests), 2u);
  EXPECT_EQ(b.state->overflows(Limit::kRequests), 1u);
  g1.reset();
  EXPECT_TRUE(b.tryAcquire(Limit::kRequests, g3));
  {
    BreakerGuard moved = std::move(g3);
    EXPECT_FALSE(g3.held());
    EXPECT_EQ(b.state->current(Limit::kRequests), 2u);
  }
  EXPECT_EQ(b.state->current(Limit::kRequests), 1u);
  g2.reset();
  EXPECT_EQ(b.state->current(Limit::kRequests), 0u);
  EXPECT_EQ(b.state->overflows(Limit::kRequests), 1u);
  EXPECT_EQ(b.state->overflows(Limit::kConnections), 0u);
}

TEST(CircuitBreaker, RetryGuardHonoursMaxRetries) {
  Breakers b = enabled(10, 10, 10, 2);
  std::vector<BreakerGuard> retries(3);
  EXPECT_TRUE(b.tryAcquireRetry(retries[0]));
  EXPECT_TRUE(b.tryAcquireRetry(retries[1]));
  EXPECT_FALSE(b.tryAcquireRetry(retries[2]));
  EXPECT_EQ(b.state->current(Limit::kRetries), 2u);
  EXPECT_EQ(b.state->overflows(Limit::kRetries), 1u);
  retries.clear();
  EXPECT_EQ(b.state->current(Limit::kRetries), 0u);
  BreakerGuard again;
  EXPECT_TRUE(b.tryAcquireRetry(again));
}

TEST(CircuitBreaker, MaxRetriesZeroRefusesEveryRetry) {
  Breakers b = enabled(10, 10, 10, 0);
  BreakerGuard g;
  EXPECT_FALSE(b.tryAcquireRetry(g));
  EXPECT_EQ(b.state->current(Limit::kRetries), 0u);
}

TEST(CircuitBreaker, DisabledBreakersGrantEverythingAndCountNothing) {
  Breakers b;
  b.state = std::make_shared<ClusterBreaker>();
  std::vector<BreakerGuard> g(100);
  for (auto& x : g)
    EXPECT_TRUE(b.tryAcquire(Limit::kRequests, x));
  EXPECT_FALSE(g[0].held());
  EXPECT_EQ(b.state->current(Limit::kRequests), 0u);
}

TEST(CircuitBreaker, ConnectionSlotsReachTheCapWithoutAnOverflow) {
  auto state = std::make_shared<ClusterBreaker>();
  ConnectionSlot a, b, c;
  EXPECT_TRUE(a.tryAcquire(state, 2));
  EXPECT_TRUE(b.tryAcquire(state, 2));
  EXPECT_FALSE(c.tryAcquire(state, 2));
  EXPECT_EQ(state->overflows(Limit::kConnections), 0u);
  EXPECT_EQ(state->current(Limit::kConnections), 2u);
  EXPECT_FALSE(a.othersWaiting());
  EXPECT_TRUE(state->tryAcquire(Limit::kPending, 1));
  EXPECT_TRUE(a.othersWaiting());
  state->release(Limit::kPending);
  a = std::move(b);
  EXPECT_EQ(state->current(Limit::kConnections), 1u);
  a.reset();
  EXPECT_EQ(state->current(Limit::kConnections), 0u);
}

// Racing workers never hold more than the cap together, and every unit comes back.
TEST(CircuitBreaker, ConcurrentWorkersNeverExceedTheCap) {
  Breakers b = enabled(10, 10, 3, 3);
  std::atomic<uint64_t> max_seen{0};
  std::atomic<uint64_t> granted{0};
  // Units held right now, counted by the holders themselves: the breaker's own counter may
  // read one above the cap for an instant while a refused taker gives its unit back.
  std::atomic<uint64_t> holding{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20000; ++i) {
        BreakerGuard g;
        if (!b.tryAcquire(Limit::kRequests, g)) continue;
        granted.fetch_add(1);
        uint64_t now = holding.fetch_add(1) + 1;
        uint64_t prev = max_seen.load();
        while (now > prev && !max_seen.compare_exchange_weak(prev, now)) {
        }
        holding.fetch_sub(1);
      }
    });
  }
  for (auto& t : threads)
    t.join();
  EXPECT_LE(max_seen.load(), 3u);
  EXPECT_GT(granted.load(), 0u);
  EXPECT_EQ(b.state->current(Limit::kRequests), 0u);
  EXPECT_EQ(granted.load() + b.state->overflows(Limit::kRequests), 80000u);
}

TEST(CircuitBreaker, CheckoutWaitsAtMaxConnectionsAndOverflowsPending) {
  runtime::EventLoop loop;
  EndpointPool pool(4, std::chrono::seconds(60));
  Breakers b = enabled(1, 1, 10, 3);
  Checkout first = checkout(pool, b, false, loop.now());
  EXPECT_FALSE(first.wait);
  EXPECT_TRUE(first.slot.held());
  Checkout second = checkout(pool, b, false, loop.now());
  EXPECT_TRUE(second.wait);

  std::optional<Limit> waiter_result, overflow_result;
  bool waiter_got_slot = false;
  auto waiter = [&]() -> runtime::Task<> {
    Checkout c =
        co_await waitForConnection(pool, b, false, loop, loop.now() + std::chrono::seconds(10));
    waiter_result = c.overflow;
    waiter_got_slot = c.slot.held();
  };
  auto second_waiter = [&]() -> runtime::Task<> {
    // The first waiter holds the only pending place.
    Checkout c =
        co_await waitForConnection(pool, b, false, loop, loop.now() + std::chrono::seconds(10));
    overflow_result = c.overflow;
  };
  auto driver = [&]() -> runtime::Task<> {
    co_await loop.sleepFor(std::chrono::milliseconds(20));
    EXPECT_EQ(b.state->current(Limit::kPending), 1u);
    first.slot.reset();  // the connection closed: its slot frees up
    for (int i = 0; i < 200 && !waiter_got_slot; ++i)
      co_await loop.sleepFor(std::chrono::milliseconds(5));
    loop.stop();
  };
  runtime::spawn(waiter());
  runtime::spawn(second_waiter());
  runtime::spawn(driver());
  loop.run();
  runtime::destroyDetachedCoroutines();
  EXPECT_EQ(overflow_result, Limit::kPending);
  EXPECT_FALSE(waiter_result.has_value());
  EXPECT_TRUE(waiter_got_slot);
  EXPECT_EQ(b.state->overflows(Limit::kPending), 1u);
  EXPECT_EQ(b.state->current(Limit::kPending), 0u);
  EXPECT_EQ(b.state->current(Limit::kConnections), 0u);  // the waiter's slot went with it
}

TEST(CircuitBreaker, PendingRequestTimesOutAsMaxConnections) {
  runtime::EventLoop loop;
  EndpointPool pool(4, std::chrono::seconds(60));
  Breakers b = enabled(1, 5, 10, 3);
  Checkout first = checkout(pool, b, false, loop.now());
  std::optional<Limit> result;
  auto waiter = [&]() -> runtime::Task<> {
    Checkout c = co_await waitForConnection(pool, b, false, loop,
                                            loop.now() + std::chrono::milliseconds(30));
    result = c.overflow;
    loop.stop();
  };
  runtime::spawn(waiter());
  loop.run();
  runtime::destroyDetachedCoroutines();
  EXPECT_EQ(result, Limit::kConnections);
  EXPECT_EQ(b.state->overflows(Limit::kConnections), 1u);
  EXPECT_EQ(b.state->current(Limit::kPending), 0u);
}

// A connection coming back while a request of the cluster waits elsewhere for a slot is
// closed (its slot freed), unless a request of this pool waits for it.
TEST(CircuitBreaker, ReleasedConnectionFreesItsSlotForAPendingRequest) {
  auto state = std::make_shared<ClusterBreaker>();
  EndpointPool pool(4, std::chrono::seconds(60));
  auto conn = [&] {
    auto c = std::make_unique<PooledConnection>();
    EXPECT_TRUE(c->slot.tryAcquire(state, 10));
    return c;
  };
  const runtime::TimePoint now{};
  pool.release(conn(), now);
  EXPECT_EQ(pool.idleCount(), 1u);
  EXPECT_EQ(state->current(Limit::kConnections), 1u);

  ASSERT_TRUE(state->tryAcquire(Limit::kPending, 10));  // someone, somewhere, waits
  pool.release(conn(), now);
  EXPECT_EQ(pool.idleCount(), 1u);
  EXPECT_EQ(state->current(Limit::kConnections), 1u);

  runtime::Notifier local;
  pool.addWaiter(&local);
  pool.release(conn(), now);
  EXPECT_EQ(pool.idleCount(), 2u);  // kept for the local waiter
  EXPECT_EQ(state->current(Limit::kConnections), 2u);
  pool.removeWaiter(&local);
  state->release(Limit::kPending);
}

TEST(CircuitBreaker, ConfigDefaultsAreEnvoys) {
  auto cfg = loadOk(
      "clusters:\n  - name: c\n    endpoints: [\"127.0.0.1:1\"]\n"
      "    circuit_breakers: {max_requests: 7}\n"
      "routes:\n  - match: {path_prefix: /}\n    cluster: c\n");
  ASSERT_TRUE(cfg.clusters[0].circuit_breakers);
  const auto& cb = *cfg.clusters[0].circuit_breakers;
  EXPECT_EQ(cb.max_requests, 7u);
  EXPECT_EQ(cb.max_connections, 1024u);
  EXPECT_EQ(cb.max_pending_requests, 1024u);
  EXPECT_EQ(cb.max_retries, 3u);
  auto none = loadOk(
      "clusters:\n  - name: c\n    endpoints: [\"127.0.0.1:1\"]\n"
      "routes:\n  - match: {path_prefix: /}\n    cluster: c\n");
  EXPECT_FALSE(none.clusters[0].circuit_breakers);
}

TEST(CircuitBreaker, ConfigErrorsNameTheOption) {
  auto e = onlyError(
      "clusters:\n  - name: c\n    endpoints: [\"127.0.0.1:1\"]\n"
      "    circuit_breakers: {max_requests: 0}\n"
      "routes:\n  - match: {path_prefix: /}\n    cluster: c\n");
  EXPECT_EQ(e.path, "clusters[0].circuit_breakers.max_requests");
  auto u = onlyError(
      "clusters:\n  - name: c\n    endpoints: [\"127.0.0.1:1\"]\n"
      "    circuit_breakers: {max_request: 5}\n"
      "routes:\n  - match: {path_prefix: /}\n    cluster: c\n");
  EXPECT_NE(u.message.find("max_request"), std::string::npos) << u.format();
  auto n = onlyError(
      "clusters:\n  - name: c\n    endpoints: [\"127.0.0.1:1\"]\n"
      "    circuit_breakers: 5\n"
      "routes:\n  - match: {path_prefix: /}\n    cluster: c\n");
  EXPECT_EQ(n.path, "clusters[0].circuit_breakers");
}

TEST(CircuitBreaker, CountersSurviveReloadsWhileTheClusterStays) {
  runtime::EventLoop loop;
  HealthRegistry r(loop);
  auto build = [&](std::string_view breakers, std::string_view name) {
    std::string yaml = "clusters:\n  - name: " + std::string(name) +
                       "\n    endpoints: [\"127.0.0.1:1\"]\n" + std::string(breakers) +
                       "routes:\n  - match: {path_prefix: /}\n    cluster: " + std::string(name) +
                       "\n";
    auto cfg = std::make_shared<const config::Config>(loadOk(yaml));
    auto sr = server::buildSnapshot(cfg, nullptr, 1, &r);
    EXPECT_TRUE(sr.snapshot);
    r.activate(proxy::clustersOf(sr.snapshot));
    return sr.snapshot;
  };
  auto s1 = build("    circuit_breakers: {max_requests: 2}\n", "c");
  BreakerGuard in_flight;
  ASSERT_TRUE(s1->clusters[0].breakers.tryAcquire(Limit::kRequests, in_flight));
  auto s2 = build("    circuit_breakers: {max_requests: 1}\n", "c");
  EXPECT_EQ(s2->clusters[0].breakers.state, s1->clusters[0].breakers.state);
  BreakerGuard next;
  // The request from the old snapshot still counts against the new cap.
  EXPECT_FALSE(s2->clusters[0].breakers.tryAcquire(Limit::kRequests, next));
  in_flight.reset();
  EXPECT_TRUE(s2->clusters[0].breakers.tryAcquire(Limit::kRequests, next));
  next.reset();
  // Renamed away and back: fresh counters.
  auto s3 = build("", "d");
  auto s4 = build("    circuit_breakers: {max_requests: 1}\n", "c");
  EXPECT_NE(s4->clusters[0].breakers.state, s1->clusters[0].breakers.state);
  EXPECT_FALSE(s3->clusters[0].breakers.enabled);
}

TEST(CircuitBreaker, MetricsShowEveryLimit) {
  Breakers b = enabled(4, 2, 1, 3);
  BreakerGuard g, over;
  ASSERT_TRUE(b.tryAcquire(Limit::kRequests, g));
  EXPECT_FALSE(b.tryAcquire(Limit::kRequests, over));
  Breakers off;
  off.state = std::make_shared<ClusterBreaker>();
  metrics::Scrape scrape;
  collectBreakerMetrics(scrape, {{"api", &b}, {"quiet", &off}});
  const std::string out = scrape.text();
  EXPECT_NE(
      out.find(
          "gatehouse_cluster_breaker_overflow_total{cluster=\"api\",limit=\"max_requests\"} 1\n"),
      std::string::npos)
      << out;
  EXPECT_NE(out.find("gatehouse_cluster_breaker_open{cluster=\"api\",limit=\"max_requests\"} 1\n"),
            std::string::npos);
  EXPECT_NE(
      out.find("gatehouse_cluster_breaker_open{cluster=\"api\",limit=\"max_connections\"} 0\n"),
      std::string::npos);
  EXPECT_NE(
      out.find("gatehouse_cluster_breaker_current{cluster=\"api\",limit=\"max_requests\"} 1\n"),
      std::string::npos);
  EXPECT_EQ(out.find("quiet"), std::string::npos);
}

}  // namespace
}  // namespace gatehouse::upstream
