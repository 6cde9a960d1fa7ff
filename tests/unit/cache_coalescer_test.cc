// Request coalescing (cache/coalescer.h): one leader per key, waiters woken across threads by
// a post() to their own loop, or by their deadline.
#include <gtest/gtest.h>

#include <thread>

#include "cache/coalescer.h"
#include "runtime/event_loop.h"
#include "runtime/task.h"

namespace gatehouse::cache {
namespace {

using runtime::EventLoop;
using runtime::Task;

TEST(CoalescerTest, OneLeaderPerKey) {
  EventLoop loop;
  Coalescer c;
  bool leader = false;
  EXPECT_EQ(c.join("k", loop, leader), nullptr);
  EXPECT_TRUE(leader);
  auto w = c.join("k", loop, leader);
  EXPECT_FALSE(leader);
  EXPECT_NE(w, nullptr);
  EXPECT_FALSE(c.tryLead("k"));
  EXPECT_TRUE(c.tryLead("other"));
  EXPECT_EQ(c.waiting(), 1);
  EXPECT_EQ(c.coalesced(), 1u);
  c.finish("k");
  c.finish("k");  // idempotent
  EXPECT_TRUE(c.tryLead("k"));
}

TEST(CoalescerTest, AWaiterIsWokenFromAnotherThread) {
  EventLoop loop;
  Coalescer c;
  bool leader = false;
  (void)c.join("k", loop, leader);
  auto w = c.join("k", loop, leader);
  int result = -1;
  auto waiter = [&]() -> Task<> {
    result = (co_await w->wait(loop.now() + std::chrono::seconds(30))) ? 1 : 0;
    loop.stop();
  };
  runtime::spawn(waiter());
  std::thread leader_thread([&] { c.finish("k"); });
  loop.run();
  leader_thread.join();
  EXPECT_EQ(result, 1);
}

TEST(CoalescerTest, AWaiterGivesUpAtItsDeadline) {
  EventLoop loop;
  Coalescer c;
  bool leader = false;
  (void)c.join("k", loop, leader);
  auto w = c.join("k", loop, leader);
  int result = -1;
  auto waiter = [&]() -> Task<> {
    result = (co_await w->wait(loop.now() + std::chrono::milliseconds(20))) ? 1 : 0;
    loop.stop();
  };
  runtime::spawn(waiter());
  loop.run();
  EXPECT_EQ(result, 0);
  c.finish("k");  // a late wake-up finds nobody waiting
}

}  // namespace
}  // namespace gatehouse::cache
