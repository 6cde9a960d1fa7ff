#pragma once
// One EventLoop per thread: edge-triggered epoll, a timing wheel and a cross-thread post queue.
// Everything registered with a loop (sockets, timers) belongs to the loop's thread; the only
// cross-thread entry point is post(). While run() runs, the loop's owner() is that thread and
// debug builds assert it in add/remove/schedule and in Timer::arm/cancel (core/owner_thread.h).
#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstdint>
#include <functional>
#include <mutex>
#include <vector>

#include "core/owner_thread.h"
#include "runtime/timer_wheel.h"

namespace gatehouse::runtime {

inline constexpr TimePoint kNoDeadline = TimePoint::max();

class EventLoop;

// Readiness state of one registered fd. Owned by the socket that registered it; the loop keeps
// a slot index + generation so events for a closed fd are dropped, never dereferenced.
class Timer;

struct IoWaiter {
  // Called by the loop when the fd may be ready; the waiter retries its syscall and either
  // completes (resuming its coroutine) or re-registers itself.
  void (*on_ready)(IoWaiter* self) = nullptr;
  std::coroutine_handle<> coro;  // the suspended coroutine
  Timer* timer = nullptr;        // its deadline timer, if any
  int err = 0;                   // errno-style result; ECANCELED after cancel()
};

struct IoHandle {
  IoWaiter* reader = nullptr;
  IoWaiter* writer = nullptr;
  // Starts false: registering an fd that already has data queues an initial EPOLLIN event.
  bool read_ready = false;  // false after EAGAIN / short read, true after an EPOLLIN edge
  bool write_ready = true;  // false after EAGAIN / short write, true after an EPOLLOUT edge
  bool hup = false;         // peer hung up or socket error seen
  // Peer shut down its writing side (EPOLLRDHUP). The FIN often arrives in the same edge as
  // the last data, so a short read then does not mean "wait for another edge": none will come.
  bool rdhup = false;
  // Called once (then cleared) when the peer hangs up (FIN, RST or a socket error) while no
  // read is pending: a proxy notices a client that leaves while it is not reading from it.
  void (*on_hangup)(void* arg) = nullptr;
  void* hangup_arg = nullptr;
  uint32_t slot = UINT32_MAX;
};

// A one-shot timer owned by its creator (RAII: destroying it cancels it).
class Timer : private TimerLink {
 public:
  using Callback = void (*)(void* arg);
  Timer() = default;
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;
  ~Timer() { cancel(); }

  // Arms (or re-arms) the timer on `loop`, which must be the calling thread's loop.
  void arm(EventLoop& loop, TimePoint deadline, Callback cb, void* arg);
  void cancel();
  bool armed() const { return prev != nullptr; }
  TimePoint deadline() const { return deadline_; }
  Callback callback() const { return cb_; }

 private:
  friend class EventLoop;
  friend class TimerWheel;
  EventLoop* loop_ = nullptr;
  TimePoint deadline_{};
  Callback cb_ = nullptr;
  void* arg_ = nullptr;
  uint64_t expiry_ = 0;  // the wheel's tick
  uint16_t slot_ = 0;    // which wheel list holds it (meaningful while armed)
};

class EventLoop {
 public:
  EventLoop();
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Runs until stop(). The calling thread owns the loop from here until run() returns; after
  // that, whoever joined that thread may tear down what is still registered.
  void run();
  // Thread-safe.
  void stop();
  // Thread-safe: runs fn on the loop's thread.
  void post(std::function<void()> fn);
  // Same thread: resumes h on the next loop iteration (never re-enters the caller).
  void schedule(std::coroutine_handle<> h) {
    GH_ASSERT_OWNER(owner_);
    ready_.push_back(h);
  }

  // Registers fd for EPOLLIN|EPOLLOUT|EPOLLRDHUP, edge-triggered, once for its lifetime.
  bool add(int fd, IoHandle& h);
  void remove(int fd, IoHandle& h);
  // remove() for an fd closed right after and never duplicated: close() takes it out of epoll,
  // so the EPOLL_CTL_DEL syscall is skipped (a stale event finds the slot's generation moved).
  void forget(IoHandle& h);

  // Cached at each iteration; cheap.
  TimePoint now() const { return now_; }
  void updateNow() { now_ = Clock::now(); }

  // The loop running on this thread, or nullptr.
  static EventLoop* current();
  // The thread running run(); for GH_ASSERT_OWNER(loop.owner()) in per-worker state.
  const OwnerThread& owner() const { return owner_; }

  // Awaitable sleep.
  auto sleepUntil(TimePoint deadline) {
    struct Awaiter {
      EventLoop& loop;
      TimePoint deadline;
      Timer timer;
      bool await_ready() const noexcept { return deadline <= loop.now(); }
      void await_suspend(std::coroutine_handle<> h) {
        timer.arm(
            loop, deadline, [](void* a) { std::coroutine_handle<>::from_address(a).resume(); },
            h.address());
      }
      void await_resume() const noexcept {}
    };
    return Awaiter{*this, deadline, {}};
  }
  auto sleepFor(Duration d) { return sleepUntil(now_ + d); }

  size_t timerCount() const { return wheel_.size(); }
  // Fires the timers due at `now` (which becomes now()) without polling: tests drive time.
  void runTimersAt(TimePoint now) {
    GH_ASSERT_OWNER(owner_);
    now_ = now;
    wheel_.advance(now);
  }
  TimePoint nextTimerWakeup() const { return wheel_.nextWakeup(); }

 private:
  friend class Timer;
  void runPosted();
  void dispatch(uint64_t data, uint32_t events);

  int epfd_ = -1;
  int wakefd_ = -1;
  bool stopping_ = false;
  TimePoint now_;
  TimerWheel wheel_;
  std::vector<IoHandle*> slots_;
  std::vector<uint32_t> generations_;
  std::vector<uint32_t> free_slots_;
  std::vector<std::coroutine_handle<>> ready_;
  std::mutex post_mu_;
  std::vector<std::function<void()>> posted_;
  std::atomic<bool> stop_requested_{false};
  [[no_unique_address]] OwnerThread owner_;
};

}  // namespace gatehouse::runtime
