// lb::HealthAwareBalancer: the availability view every algorithm shares, the panic threshold,
// outlier ejection with an injected clock, and slow-start weights.
#include <gtest/gtest.h>

#include <deque>
#include <map>
#include <memory>
#include <set>

#include "config/loader.h"
#include "config/model.h"
#include "lb/health_aware.h"
#include "lb_test_util.h"

namespace gatehouse::lb {
namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using std::chrono::seconds;

struct Fixture {
  explicit Fixture(const std::vector<uint32_t>& weights, std::string algorithm = "round_robin")
      : state(std::make_shared<ClusterHealthState>()) {
    hosts = test_util::makeHosts(weights);
    for (Host& h : hosts.hosts)
      h.health = std::make_shared<HostHealth>(state);
    config::Cluster c;
    c.lb = std::move(algorithm);
    inner = *makeLoadBalancerFactory(c);
  }
  std::unique_ptr<HealthAwareBalancer> make(const HealthPolicy& p) {
    return std::make_unique<HealthAwareBalancer>(inner, hosts, state, p, [this] { return now; });
  }
  HostHealth& health(size_t i) { return *hosts.hosts[i].health; }
  void setHealthy(size_t i, bool healthy) {
    health(i).check_healthy.store(healthy);
    state->bump();
  }
  std::map<int, int> picks(LoadBalancer& lb, int n) {
    std::map<int, int> out;
    for (int i = 0; i < n; ++i)
      ++out[lb.pick({})];
    return out;
  }

  std::shared_ptr<ClusterHealthState> state;
  HostSet hosts;
  LoadBalancerFactoryPtr inner;
  int64_t now = 1'000'000'000'000;
};

TEST(HealthView, EveryAlgorithmPicksOnlyAvailableHosts) {
  for (std::string_view name : config::kLbAlgorithms) {
    Fixture f({1, 1, 1, 1}, std::string(name));
    auto lb = f.make(HealthPolicy{});
    f.setHealthy(1, false);
    f.health(3).ejected_until_ns.store(f.now + 1'000'000'000);
    f.state->bump();
    // Two of four available is not below the 50% threshold: no panic.
    EXPECT_FALSE(lb->panicking()) << name;
    EXPECT_EQ(lb->viewSize(), 2u) << name;
    std::set<int> seen;
    for (int i = 0; i < 400; ++i) {
      PickContext ctx;
      std::string ip = "10.1.0." + std::to_string(i % 250);
      ctx.client_ip = ip;
      int h = lb->pick(ctx);
      lb->onStart(h);
      lb->onEnd(h, milliseconds(1), true);
      seen.insert(h);
    }
    EXPECT_EQ(seen, (std::set<int>{0, 2})) << name;
  }
}

TEST(HealthView, PanicThresholdSpreadsOverEveryHost) {
  Fixture f({1, 1, 1, 1});
  auto lb = f.make(HealthPolicy{});
  f.setHealthy(0, false);
  f.setHealthy(1, false);
  f.setHealthy(2, false);
  EXPECT_TRUE(lb->panicking());
  auto counts = f.picks(*lb, 400);
  EXPECT_EQ(counts.size(), 4u);
  f.setHealthy(2, true);
  EXPECT_FALSE(lb->panicking());
  counts = f.picks(*lb, 400);
  EXPECT_EQ(counts.size(), 2u);
  EXPECT_EQ(counts.count(0) + counts.count(1), 0u);
}

TEST(HealthView, DrainedHostsGetNothingEvenInPanic) {
  Fixture f({1, 1, 1, 1});
  auto lb = f.make(HealthPolicy{});
  f.health(0).admin_drained.store(true);
  f.state->bump();
  auto counts = f.picks(*lb, 400);
  EXPECT_EQ(counts.size(), 3u);
  EXPECT_EQ(counts.count(0), 0u);
  // Three of four down: panic spreads over every host except the drained one.
  f.setHealthy(1, false);
  f.setHealthy(2, false);
  f.setHealthy(3, false);
  EXPECT_TRUE(lb->panicking());
  counts = f.picks(*lb, 400);
  EXPECT_EQ(counts.size(), 3u);
  EXPECT_EQ(counts.count(0), 0u);
  // Undrained: back in the view.
  f.setHealthy(1, true);
  f.setHealthy(2, true);
  f.setHealthy(3, true);
  f.health(0).admin_drained.store(false);
  f.state->bump();
  EXPECT_EQ(f.picks(*lb, 400).count(0), 1u);
}

TEST(HealthView, PanicThresholdZeroFailsWhenNothingIsAvailable) {
  Fixture f({1, 1});
  HealthPolicy p;
  p.panic_threshold = 0;
  auto lb = f.make(p);
  f.setHealthy(0, false);
  EXPECT_EQ(f.picks(*lb, 50), (std::map<int, int>{{1, 50}}));
  f.setHealthy(1, false);
  EXPECT_EQ(lb->pick({}), -1);
}

TEST(HealthView, HigherPanicThresholdPanicsSooner) {
  Fixture f({1, 1, 1, 1});
  HealthPolicy p;
  p.panic_threshold = 0.8;
  auto lb = f.make(p);
  f.setHealthy(0, false);  // 3 of 4 = 75% < 80%
  EXPECT_TRUE(lb->panicking());
  EXPECT_EQ(lb->viewSize(), 4u);
}

TEST(HealthView, NoRebuildWithoutAnEpochChange) {
  Fixture f({1, 1});
  auto lb = f.make(HealthPolicy{});
  // A change nobody announced is not seen: workers look only at the epoch.
  f.health(0).check_healthy.store(false);
  EXPECT_EQ(lb->viewSize(), 2u);
  f.state->bump();
  EXPECT_EQ(lb->viewSize(), 1u);
}

TEST(HealthView, KeepsInnerStateWhenTheViewIsUnchanged) {
  Fixture f({1, 1, 1}, "least_conn");
  auto lb = f.make(HealthPolicy{});
  lb->onStart(0);
  lb->onStart(1);
  f.state->bump();  // same hosts, same weights: the least_conn counts survive
  for (int i = 0; i < 20; ++i)
    EXPECT_EQ(lb->pick({}), 2);
}

TEST(EjectionMath, TimeGrowsWithLevelAndIsCapped) {
  HealthPolicy p;
  p.base_ejection_time = seconds(30);
  p.max_ejection_time = seconds(100);
  EXPECT_EQ(ejectionTime(p, 1), seconds(30));
  EXPECT_EQ(ejectionTime(p, 2), seconds(60));
  EXPECT_EQ(ejectionTime(p, 3), seconds(90));
  EXPECT_EQ(ejectionTime(p, 4), seconds(100));
  EXPECT_EQ(ejectionTime(p, 4000000000u), seconds(100));
}

TEST(EjectionMath, MaxEjectedAllowsAtLeastOne) {
  EXPECT_EQ(maxEjected(2, 10), 1u);
  EXPECT_EQ(maxEjected(20, 10), 2u);
  EXPECT_EQ(maxEjected(3, 50), 1u);
  EXPECT_EQ(maxEjected(4, 100), 4u);
  EXPECT_EQ(maxEjected(4, 0), 0u);
}

HealthPolicy outlierPolicy() {
  HealthPolicy p;
  p.consecutive_failures = 3;
  p.base_ejection_time = seconds(10);
  p.max_ejection_time = seconds(25);
  p.max_ejection_percent = 50;
  return p;
}

TEST(Outlier, ConsecutiveFailuresEjectForBaseTimesLevel) {
  Fixture f({1, 1, 1, 1});
  auto lb = f.make(outlierPolicy());
  HostHealth& h = f.health(1);
  lb->onEnd(1, milliseconds(1), false);
  lb->onEnd(1, milliseconds(1), false);
  lb->onEnd(1, milliseconds(1), true);  // a success resets the run
  lb->onEnd(1, milliseconds(1), false);
  lb->onEnd(1, milliseconds(1), false);
  EXPECT_FALSE(h.ejected.load());
  const uint64_t epoch = f.state->epoch.load();
  lb->onEnd(1, milliseconds(1), false);
  EXPECT_TRUE(h.ejected.load());
  EXPECT_EQ(h.ejected_until_ns.load(), f.now + nanoseconds(seconds(10)).count());
  EXPECT_EQ(h.ejections_total.load(), 1u);
  EXPECT_EQ(f.state->ejected.load(), 1u);
  EXPECT_GT(f.state->epoch.load(), epoch);
  EXPECT_EQ(f.picks(*lb, 90)[1], 0);

  // The control thread ends it once the time has passed; a second ejection lasts twice as long
  // and a third is capped.
  f.now += nanoseconds(seconds(10)).count();
  EXPECT_TRUE(h.available(f.now));
  h.ejected.store(false);
  f.state->ejected.fetch_sub(1);
  f.state->bump();
  EXPECT_EQ(f.picks(*lb, 80)[1], 20);
  for (int i = 0; i < 3; ++i)
    lb->onEnd(1, milliseconds(1), false);
  EXPECT_EQ(h.ejected_until_ns.load(), f.now + nanoseconds(seconds(20)).count());
  h.ejected.store(false);
  f.state->ejected.fetch_sub(1);
  for (int i = 0; i < 3; ++i)
    lb->onEnd(1, milliseconds(1), false);
  EXPECT_EQ(h.ejected_until_ns.load(), f.now + nanoseconds(seconds(25)).count());
  EXPECT_EQ(h.ejections_total.load(), 3u);
}

TEST(Outlier, MaxEjectionPercentIsRespected) {
  Fixture f({1, 1, 1, 1});
  auto lb = f.make(outlierPolicy());  // 50% of 4 = 2
  for (int host = 0; host < 4; ++host) {
    for (int i = 0; i < 5; ++i)
      lb->onEnd(host, milliseconds(1), false);
  }
  EXPECT_EQ(f.state->ejected.load(), 2u);
  int ejected = 0;
  for (int host = 0; host < 4; ++host)
    ejected += f.health(static_cast<size_t>(host)).ejected.load() ? 1 : 0;
  EXPECT_EQ(ejected, 2);
}

TEST(Outlier, SharedAcrossWorkers) {
  Fixture f({1, 1, 1, 1});
  auto w1 = f.make(outlierPolicy());
  auto w2 = f.make(outlierPolicy());
  w1->onEnd(2, milliseconds(1), false);
  w2->onEnd(2, milliseconds(1), false);
  w1->onEnd(2, milliseconds(1), false);
  EXPECT_TRUE(f.health(2).ejected.load());
  EXPECT_EQ(w2->viewWeight(2), 0u);
}

TEST(Outlier, OffByDefault) {
  Fixture f({1, 1});
  auto lb = f.make(HealthPolicy{});
  for (int i = 0; i < 100; ++i)
    lb->onEnd(0, milliseconds(1), false);
  EXPECT_FALSE(f.health(0).ejected.load());
  EXPECT_EQ(f.health(0).consecutive_failures.load(), 0u);
}

TEST(SlowStart, WeightRampsLinearlyFromTheMinimum) {
  HealthPolicy p;
  p.slow_start_window = seconds(10);
  p.slow_start_min_weight = 0.1;
  EXPECT_EQ(slowStartWeight(p, 2, seconds(0)), 20u);
  EXPECT_EQ(slowStartWeight(p, 2, seconds(1)), 20u);
  EXPECT_EQ(slowStartWeight(p, 2, seconds(5)), 100u);
  EXPECT_EQ(slowStartWeight(p, 2, seconds(10)), 200u);
  EXPECT_EQ(slowStartWeight(p, 2, seconds(60)), 200u);
  uint32_t last = 0;
  for (int ms = 0; ms <= 10000; ms += 250) {
    uint32_t w = slowStartWeight(p, 3, milliseconds(ms));
    EXPECT_GE(w, last);
    last = w;
  }
}

class SlowStartShare : public ::testing::TestWithParam<const char*> {};

TEST_P(SlowStartShare, RecoveredHostShareGrowsOverTheWindow) {
  Fixture f({1, 1}, GetParam());
  HealthPolicy p;
  p.slow_start_window = seconds(10);
  p.slow_start_min_weight = 0.05;
  auto lb = f.make(p);
  f.health(1).available_since_ns.store(f.now);
  f.state->bump();
  double last_share = -1;
  for (int step = 0; step <= 11; ++step) {
    f.state->bump();  // the control thread's ramp step
    int to_new = 0;
    constexpr int kPicks = 4000;
    // Eight requests in flight, oldest finishing first: least_conn balances what is in flight.
    std::deque<int> in_flight;
    for (int i = 0; i < kPicks; ++i) {
      int h = lb->pick({});
      lb->onStart(h);
      in_flight.push_back(h);
      if (in_flight.size() > 8) {
        lb->onEnd(in_flight.front(), milliseconds(1), true);
        in_flight.pop_front();
      }
      to_new += h == 1 ? 1 : 0;
    }
    for (int h : in_flight)
      lb->onEnd(h, milliseconds(1), true);
    double share = static_cast<double>(to_new) / kPicks;
    EXPECT_GE(share, last_share - 0.03) << GetParam() << " step " << step;
    if (step == 0) {
      EXPECT_LT(share, 0.12) << GetParam();
    }
    last_share = share;
    f.now += nanoseconds(seconds(1)).count();
  }
  EXPECT_NEAR(last_share, 0.5, 0.05) << GetParam();
  EXPECT_EQ(lb->viewWeight(0), 1u);  // ramp over: back to the configured weights
}

INSTANTIATE_TEST_SUITE_P(Algorithms, SlowStartShare,
                         ::testing::Values("round_robin", "random", "least_conn"));

TEST(SlowStart, HashingAlgorithmsKeepTheirWeights) {
  Fixture f({1, 1}, "maglev");
  HealthPolicy p;
  p.slow_start_window = seconds(10);
  auto lb = f.make(p);
  f.health(1).available_since_ns.store(f.now);
  f.state->bump();
  EXPECT_EQ(lb->viewWeight(1), 1u);
}

std::set<int> seenHosts(LoadBalancer& lb, int n = 200) {
  std::set<int> out;
  for (int i = 0; i < n; ++i)
    out.insert(lb.pick({}));
  return out;
}

TEST(Priority, NextGroupTakesOverBelowTheFailoverThreshold) {
  Fixture f({1, 1, 1, 1});
  f.hosts.hosts[2].priority = 1;
  f.hosts.hosts[3].priority = 1;
  auto lb = f.make(HealthPolicy{});  // failover below 70% of a group
  EXPECT_EQ(seenHosts(*lb), (std::set<int>{0, 1}));
  f.setHealthy(0, false);  // 1 of 2 primaries
  EXPECT_EQ(seenHosts(*lb), (std::set<int>{2, 3}));
  EXPECT_FALSE(lb->panicking());
  f.setHealthy(2, false);  // no group is healthy enough: every available host
  EXPECT_EQ(seenHosts(*lb), (std::set<int>{1, 3}));
  f.setHealthy(1, false);
  f.setHealthy(3, false);  // nothing available: panic over every host
  EXPECT_TRUE(lb->panicking());
  EXPECT_EQ(seenHosts(*lb), (std::set<int>{0, 1, 2, 3}));
  f.setHealthy(0, true);
  f.setHealthy(1, true);
  EXPECT_EQ(seenHosts(*lb), (std::set<int>{0, 1}));
}

TEST(Priority, ThresholdIsConfigurable) {
  Fixture f({1, 1, 1});
  f.hosts.hosts[2].priority = 3;  // a lone backup; the gap in numbers does not matter
  HealthPolicy p;
  p.priority_failover_threshold = 0.5;
  auto lb = f.make(p);
  f.setHealthy(0, false);  // 1 of 2 is not below 50%
  EXPECT_EQ(seenHosts(*lb), (std::set<int>{1}));
  f.setHealthy(1, false);
  EXPECT_EQ(seenHosts(*lb), (std::set<int>{2}));
}

}  // namespace
}  // namespace gatehouse::lb
