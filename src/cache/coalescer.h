#pragma once
// Request coalescing: concurrent misses for one key make one upstream request. The first
// request for a key leads a "flight"; later ones wait on a Waiter until the leader finishes
// (its answer stored, or not storable, or failed), then look the store up again. Workers are
// threads: a Waiter lives on its request's loop and is woken by a post() to that loop from
// whichever thread finishes the flight. Sharded like the store; any thread.
#include <atomic>
#include <coroutine>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "runtime/event_loop.h"

namespace gatehouse::cache {

// One request waiting for a flight. Created, awaited and destroyed on its loop's thread;
// wake() may be called from any thread.
class Waiter : public std::enable_shared_from_this<Waiter> {
 public:
  explicit Waiter(runtime::EventLoop& loop) : loop_(loop) {}
  Waiter(const Waiter&) = delete;
  Waiter& operator=(const Waiter&) = delete;

  // Any thread: resumes the waiting coroutine on its own loop (or makes a later wait() return
  // at once).
  void wake();

  // Awaitable on the waiter's loop: true when woken, false when `deadline` passed first. A
  // coroutine destroyed while it waits leaves nothing behind to resume.
  auto wait(runtime::TimePoint deadline) {
    struct Awaiter {
      Waiter& w;
      runtime::TimePoint deadline;
      bool await_ready() const noexcept { return w.woken_ || deadline <= w.loop_.now(); }
      void await_suspend(std::coroutine_handle<> h) {
        w.handle_ = h;
        w.timer_.arm(w.loop_, deadline, &Waiter::onTimeout, &w);
      }
      bool await_resume() const noexcept { return w.woken_; }
      ~Awaiter() {
        w.handle_ = nullptr;
        w.timer_.cancel();
      }
    };
    return Awaiter{*this, deadline};
  }

 private:
  static void onTimeout(void* self);
  void wakeHere();

  runtime::EventLoop& loop_;
  std::coroutine_handle<> handle_;
  runtime::Timer timer_;
  bool woken_ = false;  // loop thread only
};

class Coalescer {
 public:
  static constexpr size_t kShards = 16;

  // Opens the flight for `key` (`leader` set true, nullptr returned: the caller asks the
  // upstream and must call finish(key)), or joins the open one as a Waiter on `loop`.
  std::shared_ptr<Waiter> join(std::string_view key, runtime::EventLoop& loop, bool& leader);
  // Opens the flight for `key` when none is open (true: the caller leads it and must call
  // finish(key)); never waits.
  bool tryLead(std::string_view key);
  // Closes the flight for `key` and wakes its waiters.
  void finish(std::string_view key);

  // Requests waiting right now (a gauge) and in all (a counter).
  int64_t waiting() const { return waiting_.load(std::memory_order_relaxed); }
  uint64_t coalesced() const { return coalesced_.load(std::memory_order_relaxed); }
  void leftWaiting() { waiting_.fetch_sub(1, std::memory_order_relaxed); }

 private:
  struct KeyHash {
    using is_transparent = void;
    size_t operator()(std::string_view k) const { return std::hash<std::string_view>{}(k); }
  };
  struct Shard {
    std::mutex mu;
    std::unordered_map<std::string, std::vector<std::shared_ptr<Waiter>>, KeyHash, std::equal_to<>>
        flights;
  };

  std::atomic<int64_t> waiting_{0};
  std::atomic<uint64_t> coalesced_{0};
  Shard shards_[kShards];
};

}  // namespace gatehouse::cache
