// Thread-ownership checks (core/owner_thread.h): an event loop's timers and a worker's
// single-writer counters abort when touched from a thread that does not own them. The checks are
// compiled out of release builds, so these tests run in the debug, asan and tsan presets.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <memory>
#include <thread>

#include "core/owner_thread.h"
#include "metrics/stats.h"
#include "runtime/event_loop.h"

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
