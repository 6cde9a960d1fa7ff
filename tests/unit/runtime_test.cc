#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "net/tcp.h"
#include "runtime/event_loop.h"
#include "runtime/task.h"

namespace gatehouse {
namespace {

using runtime::EventLoop;
using runtime::Task;

TEST(Runtime, TimersFireInDeadlineOrder) {
  EventLoop loop;
  std::vector<int> order;
  auto sleeper = [&](int ms, int id) -> Task<> {
    co_await loop.sleepFor(std::chrono::milliseconds(ms));
    order.push_back(id);
    if (order.size() == 3) loop.stop();
  };
  runtime::spawn(sleeper(30, 3));
  runtime::spawn(sleeper(10, 1));
  runtime::spawn(sleeper(20, 2));
  loop.run();
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(loop.timerCount(), 0u);
}

TEST(Runtime, CancelledTimerNeverFires) {
  EventLoop loop;
  bool fired = false;
  {
    runtime::Timer t;
    t.arm(
        loop, loop.now() + std::chrono::milliseconds(5),
        [](void* p) { *static_cast<bool*>(p) = true; }, &fired);
  }  // destroyed: cancelled
  auto stopper = [&]() -> Task<> {
    co_await loop.sleepFor(std::chrono::milliseconds(20));
    loop.stop();
  };
  runtime::spawn(stopper());
  loop.run();
  EXPECT_FALSE(fired);
}

TEST(Runtime, TcpEchoAndReadTimeout) {
  EventLoop loop;
  auto addr = net::SocketAddress::parse("127.0.0.1", 0);
  ASSERT_TRUE(addr.ok());
  auto listener = net::TcpListener::bind(loop, *addr, 16, false);
  ASSERT_TRUE(listener.ok()) << listener.error().message;
  auto local = (*listener)->localAddress();
  std::string echoed;
  bool timed_out = false;

  auto server = [&]() -> Task<> {
    auto acc = co_await (*listener)->accept();
    if (!acc.ok()) co_return;
    net::TcpStream s(loop, acc->fd);
    char buf[64];
    for (;;) {
      auto n = co_await s.read(buf, sizeof buf, runtime::kNoDeadline);
      if (!n.ok() || *n == 0) break;
      iovec v{buf, *n};
      if (!(co_await s.writeAll(&v, 1, runtime::kNoDeadline)).ok()) break;
    }
    loop.stop();  // the client closed: both sides are done
  };
  auto client = [&]() -> Task<> {
    auto c = co_await net::TcpStream::connect(loop, local, loop.now() + std::chrono::seconds(5));
    if (!c.ok()) {
      loop.stop();
      co_return;
    }
    auto& s = **c;
    std::string msg = "hello gatehouse";
    iovec v{msg.data(), msg.size()};
    (void)co_await s.writeAll(&v, 1, runtime::kNoDeadline);
    char buf[64];
    while (echoed.size() < msg.size()) {
      auto n = co_await s.read(buf, sizeof buf, loop.now() + std::chrono::seconds(5));
      if (!n.ok() || *n == 0) break;
      echoed.append(buf, *n);
    }
    // Nothing more will come: this read must time out.
    auto r = co_await s.read(buf, sizeof buf, loop.now() + std::chrono::milliseconds(30));
    timed_out = !r.ok() && r.error().code == ErrorCode::kTimeout;
  };
  runtime::spawn(server());
  runtime::spawn(client());
  loop.run();
  runtime::destroyDetachedCoroutines();
  EXPECT_EQ(echoed, "hello gatehouse");
  EXPECT_TRUE(timed_out);
}

TEST(Runtime, StoppedLoopDestroysSuspendedCoroutines) {
  EventLoop loop;
  int destroyed = 0;
  struct Probe {
    int* n;
    ~Probe() { ++*n; }
  };
  auto waiter = [&]() -> Task<> {
    Probe p{&destroyed};
    co_await loop.sleepFor(std::chrono::hours(1));
  };
  runtime::spawn(waiter());
  runtime::spawn(waiter());
  auto stopper = [&]() -> Task<> {
    co_await loop.sleepFor(std::chrono::milliseconds(1));
    loop.stop();
  };
  runtime::spawn(stopper());
  loop.run();
  EXPECT_EQ(destroyed, 0);
  runtime::destroyDetachedCoroutines();
  EXPECT_EQ(destroyed, 2);
  EXPECT_EQ(loop.timerCount(), 0u);
}

TEST(Runtime, SynchronousCompletionsDoNotGrowTheStack) {
  // A million awaited tasks that finish without suspending: with plain symmetric transfer and
  // no tail calls (debug and sanitizer builds) this overflowed the stack.
  auto leaf = [](int i) -> Task<int> { co_return i; };
  long sum = 0;
  auto loop = [&]() -> Task<> {
    for (int i = 0; i < 1000000; ++i)
      sum += co_await leaf(i);
  };
  runtime::spawn(loop());
  EXPECT_EQ(sum, 499999500000L);
}

TEST(Runtime, ConnectRefusedIsAnError) {
  EventLoop loop;
  // Find a port that is closed: bind, note it, close.
  auto addr = net::SocketAddress::parse("127.0.0.1", 0);
  auto l = net::TcpListener::bind(loop, *addr, 1, false);
  ASSERT_TRUE(l.ok());
  auto local = (*l)->localAddress();
  (*l)->close();
  bool failed = false;
  auto client = [&]() -> Task<> {
    auto c = co_await net::TcpStream::connect(loop, local, loop.now() + std::chrono::seconds(5));
    failed = !c.ok() && c.error().code == ErrorCode::kConnectFailed;
    loop.stop();
  };
  runtime::spawn(client());
  loop.run();
  EXPECT_TRUE(failed);
}

TEST(Runtime, HangupWatcherSeesPeerFinWithNoReadPending) {
  EventLoop loop;
  int watched_fds[2];
  int unwatched_fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, watched_fds), 0);
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, unwatched_fds), 0);
  net::TcpStream watched(loop, watched_fds[0]);
  net::TcpStream unwatched(loop, unwatched_fds[0]);
  struct Seen {
    EventLoop* loop;
    int watched = 0;
    int unwatched = 0;
  } seen{&loop};
  watched.watchHangup(
      [](void* p) {
        auto* s = static_cast<Seen*>(p);
        ++s->watched;
        s->loop->stop();
      },
      &seen);
  unwatched.watchHangup([](void* p) { ++static_cast<Seen*>(p)->unwatched; }, &seen);
  unwatched.unwatchHangup();
  runtime::Timer safety;  // a missed hang-up fails the test instead of hanging it
  safety.arm(
      loop, loop.now() + std::chrono::seconds(10),
      [](void* p) { static_cast<EventLoop*>(p)->stop(); }, &loop);
  // Nobody reads either socket: only the watcher can report the peer's FIN.
  ::shutdown(unwatched_fds[1], SHUT_WR);
  ::shutdown(watched_fds[1], SHUT_WR);
  loop.run();
  EXPECT_EQ(seen.watched, 1);
  EXPECT_EQ(seen.unwatched, 0);
  EXPECT_TRUE(watched.peerShutWrite());
  ::close(watched_fds[1]);
  ::close(unwatched_fds[1]);
}

}  // namespace
}  // namespace gatehouse
