// rate_limit: bucket and window math with an injected clock, multi-limit charging, the key
// table (reclaiming idle keys, overflow) and exactness under concurrent threads.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "policies/rate_limit/limiter.h"

namespace gatehouse::policies::rate_limit {
namespace {

constexpr int64_t kS = 1'000'000'000;
constexpr int64_t kT0 = 1'000 * kS;  // an arbitrary monotonic "now"

LimitSpec bucket(uint64_t count, int64_t period, uint64_t burst) {
  LimitSpec l;
  l.name = "tb";
  l.algorithm = Algorithm::kTokenBucket;
  l.rate = {count, period};
  l.burst = burst;
  return l;
}

LimitSpec window(uint64_t count, int64_t period) {
  LimitSpec l;
  l.name = "sw";
  l.algorithm = Algorithm::kSlidingWindow;
  l.rate = {count, period};
  return l;
}

LimitSpec concurrency(uint64_t n) {
  LimitSpec l;
  l.name = "cc";
  l.algorithm = Algorithm::kConcurrency;
  l.burst = n;
  return l;
}

// Charges `spec` repeatedly at `now`; returns how many were allowed.
int drain(const LimitSpec& spec, uint64_t& state, int64_t now, int tries) {
  int ok = 0;
  for (int i = 0; i < tries; ++i) {
    Check c = checkLimit(spec, state, now);
    if (c.allowed) {
      state = c.next_state;
      ++ok;
    }
  }
  return ok;
}

TEST(RateLimitRate, ParsesUnits) {
  auto r = parseRate("10/s");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->count, 10u);
  EXPECT_EQ(r->period_ns, kS);
  EXPECT_EQ(parseRate("5/min")->period_ns, 60 * kS);
  EXPECT_EQ(parseRate("5/m")->period_ns, 60 * kS);
  EXPECT_EQ(parseRate("1000/h")->period_ns, 3600 * kS);
  EXPECT_EQ(parseRate("1/day")->period_ns, 86400 * kS);
  EXPECT_EQ(parseRate("2/30s")->period_ns, 30 * kS);
}

TEST(RateLimitRate, RejectsBadRates) {
  for (auto bad : {"", "10", "10/", "/s", "0/s", "ten/s", "10/fortnight", "10/0s", "-1/s", "10/ s",
                   "1.5/s", "10/s ", "10/400d"}) {
    auto r = parseRate(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_NE(r.error().message.find("invalid rate"), std::string::npos) << bad;
    }
  }
}

TEST(RateLimitBucket, BurstThenRefillAtRate) {
  LimitSpec l = bucket(10, kS, 5);  // 10/s, burst 5: one token per 100 ms
  uint64_t st = 0;
  EXPECT_EQ(drain(l, st, kT0, 100), 5);
  // 99 ms later: still no token.
  EXPECT_EQ(drain(l, st, kT0 + 99'000'000, 1), 0);
  // 100 ms: exactly one.
  EXPECT_EQ(drain(l, st, kT0 + 100'000'000, 10), 1);
  // A long idle period refills to burst, never beyond.
  EXPECT_EQ(drain(l, st, kT0 + 3600 * kS, 100), 5);
}

TEST(RateLimitBucket, RemainingResetAndRetryAfter) {
  LimitSpec l = bucket(1, kS, 3);  // 1/s, burst 3
  uint64_t st = 0;
  Check c = checkLimit(l, st, kT0);
  ASSERT_TRUE(c.allowed);
  EXPECT_EQ(c.remaining, 2u);
  EXPECT_EQ(c.reset_ns, kS);  // one token to refill
  st = c.next_state;
  st = checkLimit(l, st, kT0).next_state;
  c = checkLimit(l, st, kT0);
  ASSERT_TRUE(c.allowed);
  EXPECT_EQ(c.remaining, 0u);
  EXPECT_EQ(c.reset_ns, 3 * kS);
  st = c.next_state;
  c = checkLimit(l, st, kT0 + kS / 4);
  EXPECT_FALSE(c.allowed);
  EXPECT_EQ(c.retry_after_ns, kS - kS / 4);
  EXPECT_TRUE(isIdle(l, st, kT0 + 3 * kS));
  EXPECT_FALSE(isIdle(l, st, kT0 + 3 * kS - 1));
}

TEST(RateLimitWindow, CountsWithinOneWindow) {
  LimitSpec l = window(5, 10 * kS);
  uint64_t st = 0;
  const int64_t start = 100 * 10 * kS;  // a window boundary
  EXPECT_EQ(drain(l, st, start + kS, 10), 5);
  Check c = checkLimit(l, st, start + 2 * kS);
  EXPECT_FALSE(c.allowed);
  EXPECT_EQ(c.reset_ns, 8 * kS);
}

TEST(RateLimitWindow, PreviousWindowIsWeighted) {
  LimitSpec l = window(10, 10 * kS);
  uint64_t st = 0;
  const int64_t start = 100 * 10 * kS;
  EXPECT_EQ(drain(l, st, start + 9 * kS, 10), 10);
  // 30% into the next window, the previous 10 still weigh 7: 3 more fit.
  EXPECT_EQ(drain(l, st, start + 13 * kS, 10), 3);
  // 60% in: previous weighs 4, current 3: 3 more fit.
  EXPECT_EQ(drain(l, st, start + 16 * kS, 10), 3);
  // Two windows later nothing counts.
  EXPECT_TRUE(isIdle(l, st, start + 30 * kS));
  EXPECT_EQ(drain(l, st, start + 30 * kS, 20), 10);
}

TEST(RateLimitWindow, RetryAfterIsWhenTheNextRequestFits) {
  LimitSpec l = window(10, 10 * kS);
  uint64_t st = 0;
  const int64_t start = 100 * 10 * kS;
  drain(l, st, start + 9 * kS, 10);
  Check c = checkLimit(l, st, start + 9 * kS);
  ASSERT_FALSE(c.allowed);
  // Next window: prev = 10 must weigh <= 9, i.e. 1 s into it: 2 s from now.
  EXPECT_EQ(c.retry_after_ns, 2 * kS);
  EXPECT_FALSE(checkLimit(l, st, start + 9 * kS + c.retry_after_ns - 1).allowed);
  EXPECT_TRUE(checkLimit(l, st, start + 9 * kS + c.retry_after_ns).allowed);
}

TEST(RateLimitWindow, UndoMovesWithTheWindow) {
  LimitSpec l = window(10, 10 * kS);
  const int64_t start = 100 * 10 * kS;
  uint64_t st = checkLimit(l, 0, start + kS).next_state;
  EXPECT_FALSE(isIdle(l, st, start + kS));
  EXPECT_TRUE(isIdle(l, undoCharge(l, st, start + kS), start + kS));
  // Undone after a rollover: the count now sits in "previous".
  EXPECT_TRUE(isIdle(l, undoCharge(l, st, start + 11 * kS), start + 11 * kS));
}

TEST(RateLimitTable, ChecksAllLimitsAndChargesNoneOnReject) {
  // 3 per second and 4 per minute: the per-second limit rejects the 4th request in the first
  // second, and that rejection must not use up the per-minute quota.
  LimiterTable t({bucket(3, kS, 3), window(4, 60 * kS)}, 64);
  const uint64_t k = LimiterTable::hashKey("a");
  const int64_t now = 1000 * 60 * kS + kS;
  int allowed = 0;
  for (int i = 0; i < 10; ++i)
    allowed += t.acquire(k, now, nullptr).allowed ? 1 : 0;
  EXPECT_EQ(allowed, 3);
  Decision d = t.acquire(k, now + 2 * kS, nullptr);
  ASSERT_TRUE(d.allowed);  // 4th of the minute: the 7 rejected ones were not charged
  EXPECT_EQ(d.limiting, 1);
  EXPECT_EQ(d.remaining, 0u);
  d = t.acquire(k, now + 3 * kS, nullptr);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.limiting, 1);
  EXPECT_GT(d.retry_after_ns, 0);
}

TEST(RateLimitTable, KeysAreIndependent) {
  LimiterTable t({bucket(1, kS, 1)}, 64);
  EXPECT_TRUE(t.acquire(LimiterTable::hashKey("a"), kT0, nullptr).allowed);
  EXPECT_FALSE(t.acquire(LimiterTable::hashKey("a"), kT0, nullptr).allowed);
  EXPECT_TRUE(t.acquire(LimiterTable::hashKey("b"), kT0, nullptr).allowed);
}

TEST(RateLimitTable, ConcurrencyReleasedOnComplete) {
  LimiterTable t({concurrency(2)}, 64);
  const uint64_t k = LimiterTable::hashKey("a");
  uint32_t s1 = 0, s2 = 0;
  EXPECT_TRUE(t.acquire(k, kT0, &s1).allowed);
  EXPECT_TRUE(t.acquire(k, kT0, &s2).allowed);
  EXPECT_FALSE(t.acquire(k, kT0, nullptr).allowed);
  t.release(s1);
  EXPECT_TRUE(t.acquire(k, kT0, nullptr).allowed);
}

TEST(RateLimitTable, BoundedMemoryReclaimsIdleKeys) {
  LimiterTable t({bucket(1, kS, 1)}, 16);
  ASSERT_EQ(t.capacity(), 16u);
  // 1000 distinct keys, each idle again one second later: all fit by reclaiming idle slots.
  for (int i = 0; i < 1000; ++i) {
    Decision d = t.acquire(LimiterTable::hashKey("k" + std::to_string(i)), kT0 + i * kS, nullptr);
    EXPECT_TRUE(d.allowed);
    EXPECT_FALSE(d.overflow);
  }
  EXPECT_LE(t.usedSlots(), 16u);
}

TEST(RateLimitTable, FullOfBusyKeysChargesTheOverflowEntry) {
  LimiterTable t({bucket(1, 3600 * kS, 1)}, 16);
  int overflow = 0, allowed = 0;
  for (int i = 0; i < 64; ++i) {
    Decision d = t.acquire(LimiterTable::hashKey("k" + std::to_string(i)), kT0, nullptr);
    overflow += d.overflow ? 1 : 0;
    allowed += d.allowed ? 1 : 0;
  }
  EXPECT_GT(overflow, 0);
  // Each tracked key got its one request, and the overflow entry admitted exactly one: a full
  // table never turns into a bypass.
  EXPECT_EQ(allowed, static_cast<int>(t.usedSlots()) + 1);
}

TEST(RateLimitTable, HybridAllowanceIsSpentThenExpires) {
  LimitSpec a;
  a.name = "allowance";
  a.algorithm = Algorithm::kAllowance;
  LimiterTable t({a}, 64);
  const uint64_t k = LimiterTable::hashKey("a");
  EXPECT_FALSE(t.acquire(k, kT0, nullptr).allowed);  // nothing taken from Redis yet
  t.deposit(k, 3, kT0, kT0 + kS);
  for (int i = 0; i < 3; ++i)
    EXPECT_TRUE(t.acquire(k, kT0 + i, nullptr).allowed);
  EXPECT_FALSE(t.acquire(k, kT0 + 10, nullptr).allowed);
  t.deposit(k, 5, kT0, kT0 + kS);
  EXPECT_TRUE(t.acquire(k, kT0 + kS - 2'000'000, nullptr).allowed);
  // Unused tokens expire with their batch: they were granted for a bounded time only.
  EXPECT_FALSE(t.acquire(k, kT0 + kS, nullptr).allowed);
  EXPECT_TRUE(isIdle(a, 0, kT0));
}

TEST(RateLimitTable, ConcurrentThreadsAdmitExactlyBurst) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 20000;
  for (int round = 0; round < 6; ++round) {
    // Alternate which of the two limits is the strict one.
    LimiterTable t(
        round % 2 == 0
            ? std::vector<LimitSpec>{bucket(1000, 3600 * kS, 777), window(100000, 3600 * kS)}
            : std::vector<LimitSpec>{bucket(1000, 3600 * kS, 100000), window(777, 3600 * kS)},
        1024);
    const uint64_t k = LimiterTable::hashKey("hot");
    std::atomic<int> allowed{0};
    std::atomic<bool> go{false};
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) {
      threads.emplace_back([&] {
        while (!go.load()) {
        }
        int mine = 0;
        for (int j = 0; j < kPerThread; ++j)
          mine += t.acquire(k, kT0, nullptr).allowed ? 1 : 0;
        allowed += mine;
      });
    }
    go = true;
    for (auto& th : threads)
      th.join();
    EXPECT_EQ(allowed.load(), 777) << "round " << round;
  }
}

TEST(RateLimitTable, ConcurrentConcurrencyLimitNeverExceedsCap) {
  LimiterTable t({concurrency(3)}, 64);
  const uint64_t k = LimiterTable::hashKey("a");
  std::atomic<int> in_flight{0}, max_seen{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&] {
      for (int j = 0; j < 20000; ++j) {
        uint32_t slot = 0;
        if (!t.acquire(k, kT0, &slot).allowed) continue;
        int now = ++in_flight;
        int prev = max_seen.load();
        while (now > prev && !max_seen.compare_exchange_weak(prev, now)) {
        }
        --in_flight;
        t.release(slot);
      }
    });
  }
  for (auto& th : threads)
    th.join();
  EXPECT_LE(max_seen.load(), 3);
  EXPECT_GE(max_seen.load(), 1);
  // Everything released: the key is idle again.
  for (int i = 0; i < 3; ++i)
    EXPECT_TRUE(t.acquire(k, kT0, nullptr).allowed);
}

}  // namespace
}  // namespace gatehouse::policies::rate_limit
