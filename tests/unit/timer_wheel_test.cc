#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <random>
#include <vector>

#include "runtime/event_loop.h"

namespace gatehouse {
namespace {

using runtime::EventLoop;
using runtime::TimePoint;
using std::chrono::milliseconds;

struct Probe {
  EventLoop* loop = nullptr;
  TimePoint deadline{};
  TimePoint fired_at{};
  int fires = 0;
  runtime::Timer timer;
  static void onFire(void* p) {
    auto* self = static_cast<Probe*>(p);
    ++self->fires;
    self->fired_at = self->loop->now();
  }
};

TEST(TimerWheel, FiresOnceNeverEarlyAtMostOneTickLateOverAllLevels) {
  EventLoop loop;
  const TimePoint t0 = loop.now();
  std::mt19937_64 rng(7);
  // Deadlines spread over every level: sub-ms up to ~20 days.
  std::vector<std::unique_ptr<Probe>> probes;
  for (int i = 0; i < 3000; ++i) {
    auto p = std::make_unique<Probe>();
    p->loop = &loop;
    int64_t scale = int64_t{1} << (rng() % 31);  // ms
    auto offset = std::chrono::microseconds(static_cast<int64_t>(rng() % (scale * 1000 + 1)));
    p->deadline = t0 + offset;
    p->timer.arm(loop, p->deadline, &Probe::onFire, p.get());
    probes.push_back(std::move(p));
  }
  EXPECT_EQ(loop.timerCount(), probes.size());
  // Cancel some before anything runs.
  for (size_t i = 0; i < probes.size(); i += 7)
    probes[i]->timer.cancel();
  // Advance in irregular steps, up to past the last deadline.
  TimePoint now = t0;
  const TimePoint end = t0 + milliseconds(int64_t{1} << 31);
  while (now < end) {
    int64_t step_us = static_cast<int64_t>(rng() % 3'000'000'000ULL) >> (rng() % 32);
    now += std::chrono::microseconds(std::max<int64_t>(step_us, 1));
    loop.runTimersAt(now);
    for (size_t i = 0; i < probes.size(); ++i) {
      const auto& p = *probes[i];
      if (i % 7 == 0) continue;
      // Due (a whole tick past the deadline): must have fired by now.
      if (p.deadline + milliseconds(1) <= now) {
        ASSERT_EQ(p.fires, 1) << "timer " << i;
      }
      if (p.fires) {
        ASSERT_GE(p.fired_at, p.deadline) << "timer " << i << " fired early";
      }
    }
  }
  for (size_t i = 0; i < probes.size(); ++i)
    EXPECT_EQ(probes[i]->fires, i % 7 == 0 ? 0 : 1) << "timer " << i;
  EXPECT_EQ(loop.timerCount(), 0u);
  EXPECT_EQ(loop.nextTimerWakeup(), runtime::TimerWheel::kNoWork);
}

TEST(TimerWheel, NextWakeupIsNeverAfterTheEarliestDeadline) {
  EventLoop loop;
  const TimePoint t0 = loop.now();
  std::mt19937_64 rng(11);
  std::vector<std::unique_ptr<Probe>> probes;
  TimePoint now = t0;
  for (int round = 0; round < 200; ++round) {
    auto p = std::make_unique<Probe>();
    p->loop = &loop;
    p->deadline = now + milliseconds(1 + static_cast<int64_t>(rng() % 5'000'000));
    p->timer.arm(loop, p->deadline, &Probe::onFire, p.get());
    probes.push_back(std::move(p));
    TimePoint earliest = TimePoint::max();
    for (const auto& q : probes) {
      if (q->timer.armed()) earliest = std::min(earliest, q->deadline);
    }
    TimePoint wake = loop.nextTimerWakeup();
    // Waking early (to cascade) is fine; waking after a deadline plus one tick is not.
    ASSERT_LE(wake, earliest + milliseconds(1));
    now = std::max(now, std::min(wake, now + milliseconds(static_cast<int64_t>(rng() % 100000))));
    loop.runTimersAt(now);
  }
}

TEST(TimerWheel, CallbacksMayCancelArmAndRearm) {
  EventLoop loop;
  const TimePoint t0 = loop.now();
  struct Chain {
    EventLoop* loop;
    runtime::Timer a, b, c;
    int a_fired = 0, b_fired = 0, c_fired = 0;
  } ch{&loop, {}, {}, {}};
  // a and b are due in the same tick; a cancels b and arms c in the past (fires in the same
  // advance) and re-arms itself 5 ms later.
  ch.a.arm(
      loop, t0 + milliseconds(3),
      [](void* p) {
        auto* c = static_cast<Chain*>(p);
        if (++c->a_fired > 1) return;
        c->b.cancel();
        c->c.arm(
            *c->loop, c->loop->now() - milliseconds(10),
            [](void* q) { ++static_cast<Chain*>(q)->c_fired; }, c);
        c->a.arm(*c->loop, c->loop->now() + milliseconds(5), c->a.callback(), c);
      },
      &ch);
  ch.b.arm(
      loop, t0 + milliseconds(3), [](void* p) { ++static_cast<Chain*>(p)->b_fired; }, &ch);
  loop.runTimersAt(t0 + milliseconds(4));
  EXPECT_EQ(ch.a_fired, 1);
  EXPECT_EQ(ch.b_fired, 0);
  EXPECT_EQ(ch.c_fired, 1);
  EXPECT_TRUE(ch.a.armed());
  loop.runTimersAt(t0 + milliseconds(8));
  EXPECT_EQ(ch.a_fired, 1);  // due at 9 ms
  loop.runTimersAt(t0 + milliseconds(10));
  EXPECT_EQ(ch.a_fired, 2);
  EXPECT_EQ(loop.timerCount(), 0u);
}

TEST(TimerWheel, FarFutureDeadlinesStayParked) {
  EventLoop loop;
  Probe p;
  p.loop = &loop;
  p.deadline = runtime::kNoDeadline;
  p.timer.arm(loop, p.deadline, &Probe::onFire, &p);
  loop.runTimersAt(loop.now() + std::chrono::hours(24 * 900));
  EXPECT_EQ(p.fires, 0);
  EXPECT_TRUE(p.timer.armed());
}

}  // namespace
}  // namespace gatehouse
