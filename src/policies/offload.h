#pragma once
// CPU-heavy work (bcrypt verification: 50-100 ms) off the worker loops. A small process-wide
// pool of threads runs the job; the result comes back to the awaiting worker through
// EventLoop::post, so the loop keeps serving other connections meanwhile. The queue is
// bounded: when it is full, offload() completes at once with no value and the caller answers
// 503 rather than letting waits grow without limit.
#include <coroutine>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>

#include "runtime/event_loop.h"
#include "runtime/task.h"

namespace gatehouse::policies::offload {

inline constexpr size_t kThreads = 2;
inline constexpr size_t kMaxQueued = 128;

namespace detail {

// The calling worker's loop, kept reachable from pool threads only while that thread lives
// (a job finishing after its worker exited must not post to a destroyed loop).
struct Mailbox {
  std::mutex mu;
  runtime::EventLoop* loop = nullptr;
  void post(std::function<void()> fn);
};
std::shared_ptr<Mailbox> mailboxForThisThread();

// False when the queue is full. `job` runs on a pool thread.
bool submit(std::function<void()> job);

template <typename T>
struct State {
  std::optional<T> result;
  std::coroutine_handle<> handle;
  bool alive = true;  // loop thread only: false once the awaiting frame is gone
};

}  // namespace detail

// Jobs waiting or running; for metrics and tests.
size_t queued();

// Runs `fn` on the pool; the awaiting coroutine resumes on its own loop (the calling thread
// must run an EventLoop). nullopt when the pool is saturated.
template <typename T>
runtime::Task<std::optional<T>> run(std::function<T()> fn) {
  struct Awaiter {
    std::shared_ptr<detail::State<T>> st;
    std::function<T()> fn;
    ~Awaiter() { st->alive = false; }
    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<> h) {
      st->handle = h;
      if (!runtime::EventLoop::current()) {  // no loop to come back to (unit tests): inline
        st->result = fn();
        return false;
      }
      auto mb = detail::mailboxForThisThread();
      bool queued = detail::submit([st = st, mb = std::move(mb), fn = std::move(fn)]() mutable {
        st->result = fn();
        mb->post([st] {
          if (st->alive) st->handle.resume();
        });
      });
      return queued;  // not queued: resume at once, with no result
    }
    std::optional<T> await_resume() { return std::move(st->result); }
  };
  // A named awaiter, not a temporary: GCC 12 may destroy temporaries of a co_await
  // expression twice (GCC PR 100611).
  Awaiter awaiter{std::make_shared<detail::State<T>>(), std::move(fn)};
  co_return co_await awaiter;
}

}  // namespace gatehouse::policies::offload
