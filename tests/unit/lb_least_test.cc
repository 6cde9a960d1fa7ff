// least_conn and least_time: feedback from onStart/onEnd steers the picks.
#include <gtest/gtest.h>

#include <chrono>
#include <vector>

#include "lb/least_conn.h"
#include "lb/least_time.h"
#include "lb_test_util.h"

namespace gatehouse::lb {
namespace {

using namespace std::chrono_literals;
using test_util::equalHosts;
using test_util::makeHosts;

TEST(LbLeastConn, PrefersTheHostWithFewerInFlight) {
  for (uint64_t seed = 0; seed < 50; ++seed) {
    LeastConn lb(equalHosts(3), 0, seed);
    lb.onStart(0);
    lb.onStart(0);
    lb.onStart(1);
    EXPECT_EQ(lb.pick({}), 2);
    lb.onStart(2);
    lb.onStart(2);
    EXPECT_EQ(lb.pick({}), 1);  // 2, 1, 2 in flight
    lb.onEnd(0, 1ms, true);
    lb.onEnd(0, 1ms, true);
    EXPECT_EQ(lb.pick({}), 0);
  }
}

TEST(LbLeastConn, KeepsInFlightEven) {
  LeastConn lb(equalHosts(5), 0, 1);
  for (int i = 0; i < 50; ++i)
    lb.onStart(lb.pick({}));
  for (int h = 0; h < 5; ++h)
    EXPECT_EQ(lb.inFlight(h), 10u);
}

TEST(LbLeastConn, TiesSpreadAtRandom) {
  // Nothing in flight: every host ties, and the random start spreads the picks.
  LeastConn lb(equalHosts(4), 0, 5);
  std::vector<int> counts(4);
  for (int i = 0; i < 4000; ++i)
    ++counts[static_cast<size_t>(lb.pick({}))];
  for (int c : counts)
    EXPECT_GT(c, 800);
}

TEST(LbLeastConn, WeightsCompareActivePlusOneOverWeight) {
  LeastConn lb(makeHosts({3, 1}), 0, 1);
  // (a + 1) / w: host 0 takes three requests for host 1's one.
  std::vector<uint32_t> counts(2);
  for (int i = 0; i < 40; ++i) {
    int h = lb.pick({});
    lb.onStart(h);
    ++counts[static_cast<size_t>(h)];
  }
  EXPECT_EQ(counts[0], 30u);
  EXPECT_EQ(counts[1], 10u);
}

TEST(LbLeastConn, TwoChoicesNeverPickTheBusiestHost) {
  LeastConn lb(equalHosts(10), 2, 42);
  for (int i = 0; i < 100; ++i)
    lb.onStart(3);
  std::vector<int> counts(10);
  for (int i = 0; i < 10'000; ++i)
    ++counts[static_cast<size_t>(lb.pick({}))];
  EXPECT_EQ(counts[3], 0);
  for (int h = 0; h < 10; ++h) {
    if (h != 3) {
      EXPECT_GT(counts[static_cast<size_t>(h)], 700) << h;
    }
  }
}

TEST(LbLeastConn, UnmatchedEndsAreHarmless) {
  LeastConn lb(equalHosts(2), 0, 1);
  lb.onEnd(0, 1ms, true);
  lb.onEnd(7, 1ms, true);
  lb.onStart(-1);
  EXPECT_EQ(lb.inFlight(0), 0u);
  LeastConn none(HostSet{}, 0, 1);
  EXPECT_EQ(none.pick({}), -1);
}

// A clock the test moves by hand.
struct FakeClock {
  std::chrono::nanoseconds now{1'000'000'000};
  LeastTime::Clock fn() {
    return [this] { return now; };
  }
};

TEST(LbLeastTime, MovesAwayFromASlowHostAndComesBackAfterDecay) {
  FakeClock clock;
  LeastTime lb(equalHosts(2), 10s, 2, 1, clock.fn());
  lb.onEnd(0, 10ms, true);
  lb.onEnd(1, 10ms, true);
  lb.onEnd(0, 500ms, true);  // host 0 turns slow: the estimate jumps at once
  EXPECT_NEAR(lb.estimate(0), 500e6, 1);
  for (int i = 0; i < 100; ++i)
    EXPECT_EQ(lb.pick({}), 1);

  // Host 1 keeps answering in 10 ms; host 0 gets nothing, so its estimate only decays:
  // 500 ms * exp(-t / 10 s) falls below 10 ms after 10 s * ln(50) = 39 s.
  int first_back = -1;
  for (int second = 1; second <= 60 && first_back < 0; ++second) {
    clock.now += 1s;
    lb.onEnd(1, 10ms, true);
    if (lb.pick({}) == 0) first_back = second;
  }
  EXPECT_GE(first_back, 38);
  EXPECT_LE(first_back, 41);
}

TEST(LbLeastTime, FasterSamplesLowerTheEstimateGradually) {
  FakeClock clock;
  LeastTime lb(equalHosts(1), 10s, 2, 1, clock.fn());
  lb.onEnd(0, 100ms, true);
  clock.now += 10s;  // one time constant: the old estimate keeps exp(-1) of its weight
  lb.onEnd(0, 10ms, true);
  EXPECT_NEAR(lb.estimate(0), 100e6 * std::exp(-1.0) + 10e6 * (1 - std::exp(-1.0)), 1e3);
}

TEST(LbLeastTime, InFlightMultipliesTheEstimate) {
  FakeClock clock;
  LeastTime lb(equalHosts(2), 10s, 0, 1, clock.fn());
  lb.onEnd(0, 10ms, true);
  lb.onEnd(1, 25ms, true);
  EXPECT_EQ(lb.pick({}), 0);
  lb.onStart(0);
  lb.onStart(0);  // 10 ms * 3 > 25 ms * 1
  EXPECT_EQ(lb.pick({}), 1);
}

TEST(LbLeastTime, UnknownHostsAreTriedOneRequestAtATime) {
  FakeClock clock;
  LeastTime lb(equalHosts(3), 10s, 0, 1, clock.fn());
  lb.onEnd(0, 5ms, true);
  lb.onEnd(1, 5ms, true);
  // Host 2 has no sample: optimistic, so it is picked first...
  EXPECT_EQ(lb.pick({}), 2);
  lb.onStart(2);
  // ...but not again until it has answered.
  for (int i = 0; i < 20; ++i)
    EXPECT_NE(lb.pick({}), 2);
  lb.onEnd(2, 1ms, true);
  EXPECT_EQ(lb.pick({}), 2);
}

TEST(LbLeastTime, FastFailuresDoNotAttractTraffic) {
  FakeClock clock;
  LeastTime lb(equalHosts(2), 10s, 0, 1, clock.fn());
  lb.onEnd(1, 20ms, true);
  lb.onEnd(0, 100us, false);  // connection refused, quickly
  EXPECT_GE(lb.estimate(0), 40e6);
  EXPECT_EQ(lb.pick({}), 1);
}

TEST(LbLeastTime, WeightDividesTheScore) {
  FakeClock clock;
  LeastTime lb(makeHosts({4, 1}), 10s, 0, 1, clock.fn());
  lb.onEnd(0, 30ms, true);
  lb.onEnd(1, 10ms, true);
  EXPECT_EQ(lb.pick({}), 0);  // 30 / 4 < 10 / 1
}

TEST(LbLeastTime, TwoChoicesSpreadEqualHosts) {
  FakeClock clock;
  LeastTime lb(equalHosts(5), 10s, 2, 3, clock.fn());
  for (int h = 0; h < 5; ++h)
    lb.onEnd(h, 10ms, true);
  std::vector<int> counts(5);
  for (int i = 0; i < 5000; ++i)
    ++counts[static_cast<size_t>(lb.pick({}))];
  for (int c : counts)
    EXPECT_GT(c, 700);
}

}  // namespace
}  // namespace gatehouse::lb
