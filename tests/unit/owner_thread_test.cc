// Thread-ownership checks (core/owner_thread.h): an event loop's timers, a worker's single-writer
// counters, its balancers and its connection pools abort when touched from a thread that does
// not own them. The checks are compiled out of release builds, so the death tests run in the
// debug, asan and tsan presets.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <memory>
#include <thread>

#include "config/model.h"
#include "core/owner_thread.h"
#include "lb/health_aware.h"
#include "metrics/stats.h"
#include "runtime/event_loop.h"
#include "upstream/connection_pool.h"

namespace gatehouse {
namespace {

using runtime::EventLoop;

void noop(void*) {}

// Runs `loop` on a thread of its own; returns once run() has started (and owns the loop).
std::thread runOnThread(EventLoop& loop) {
  auto running = std::make_shared<std::promise<void>>();
  auto started = running->get_future();
  loop.post([running] { running->set_value(); });
  std::thread t([&loop] { loop.run(); });
  started.wait();
  return t;
}

#define SKIP_WITHOUT_OWNER_CHECKS() \
  if (!GATEHOUSE_OWNER_CHECKS) GTEST_SKIP() << "owner checks are compiled out (NDEBUG)"

TEST(OwnerThreadDeathTest, ArmingATimerFromAnotherThreadAborts) {
  SKIP_WITHOUT_OWNER_CHECKS();
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        EventLoop loop;
        std::thread owner = runOnThread(loop);
        runtime::Timer timer;
        timer.arm(loop, loop.now() + std::chrono::seconds(60), &noop, nullptr);
        owner.join();  // not reached
      },
      "thread-ownership violation: 'loop.owner_'.*event_loop.cc");
}

TEST(OwnerThreadDeathTest, SecondWriterOfASingleWriterCounterAborts) {
  SKIP_WITHOUT_OWNER_CHECKS();
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        metrics::Counter c;
        std::thread([&c] { c.inc(); }).join();
        c.inc();
      },
      "thread-ownership violation: 'writer'");
}

// A worker's balancer as the worker builds it: round robin over two hosts with health state.
std::unique_ptr<lb::HealthAwareBalancer> makeWorkerBalancer() {
  auto state = std::make_shared<lb::ClusterHealthState>();
  lb::HostSet hosts;
  for (const char* name : {"10.0.0.1:80", "10.0.0.2:80"}) {
    lb::Host h;
    h.name = name;
    h.health = std::make_shared<lb::HostHealth>(state);
    hosts.hosts.push_back(std::move(h));
  }
  config::Cluster c;
  c.lb = "round_robin";
  return std::make_unique<lb::HealthAwareBalancer>(*lb::makeLoadBalancerFactory(c), hosts, state,
                                                   lb::HealthPolicy{});
}

TEST(OwnerThreadDeathTest, PickingFromAnotherWorkersBalancerAborts) {
  SKIP_WITHOUT_OWNER_CHECKS();
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        auto balancer = makeWorkerBalancer();
        std::thread([&balancer] { balancer->pick({}); }).join();
      },
      "thread-ownership violation: 'owner_'.*health_aware.cc");
}

TEST(OwnerThreadDeathTest, SecondThreadUsingAWorkersConnectionPoolAborts) {
  SKIP_WITHOUT_OWNER_CHECKS();
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        upstream::EndpointPool pool(4, std::chrono::seconds(60));
        std::thread([&pool] { pool.acquire(runtime::Clock::now()); }).join();
        pool.acquire(runtime::Clock::now());
      },
      "thread-ownership violation: 'owner_'.*connection_pool.cc");
}

TEST(OwnerThread, BalancerAndPoolBelongToTheThreadThatUsesThem) {
  // Built here, used on "the worker" only: no check fires (the control thread may build a
  // balancer to warm shared tables, and pools are made before their worker runs).
  std::unique_ptr<lb::HealthAwareBalancer> balancer;
  upstream::EndpointPool pool(4, std::chrono::seconds(60));
  std::thread([&] {
    balancer = makeWorkerBalancer();
    const int host = balancer->pick({});
    balancer->onStart(host);
    balancer->onEnd(host, std::chrono::milliseconds(1), true);
    upstream::PoolLease lease;
    lease.take(&pool);
    EXPECT_EQ(pool.acquire(runtime::Clock::now()), nullptr);
  }).join();
  EXPECT_EQ(pool.active, 0u);
  balancer.reset();  // teardown after the worker stopped needs no check
}

TEST(OwnerThread, OwnerArmsAndCancelsThroughPostAndJoinerTearsDown) {
  EventLoop loop;
  runtime::Timer timer;
  std::thread owner = runOnThread(loop);
  std::promise<bool> armed;
  auto armed_result = armed.get_future();
  loop.post([&] {
    timer.arm(loop, loop.now() + std::chrono::seconds(60), &noop, nullptr);
    armed.set_value(timer.armed());
  });
  EXPECT_TRUE(armed_result.get());
  loop.stop();
  owner.join();
  // run() returned and its thread was joined: the joiner may cancel what is still armed.
  EXPECT_FALSE(loop.owner().owned());
  timer.cancel();
  EXPECT_FALSE(timer.armed());
  EXPECT_EQ(loop.timerCount(), 0u);
}

TEST(OwnerThread, CounterWritesFromItsOwnThreadPass) {
  metrics::Counter c;
  std::thread([&c] {
    c.inc(3);
    c.dec();
  }).join();
  EXPECT_EQ(c.get(), 2u);
  EXPECT_EQ(c.writer.owned(), GATEHOUSE_OWNER_CHECKS != 0);
}

}  // namespace
}  // namespace gatehouse
