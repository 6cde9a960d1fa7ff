#pragma once
// Task<T>: a lazy C++20 coroutine. `co_await task` starts it and resumes the awaiter when it
// finishes (symmetric transfer, so deep chains do not grow the stack). spawn() starts a
// Task<void> that owns itself. Exceptions are not used on workers: one escaping a coroutine is
// a bug and terminates. Frames come from a per-thread free list to keep malloc off the hot path.
#include <coroutine>
#include <cstddef>
#include <exception>
#include <optional>
#include <utility>

namespace gatehouse::runtime {

// Size-classed per-thread free list for coroutine frames.
void* allocateFrame(std::size_t size);
void freeFrame(void* p, std::size_t size) noexcept;
// Frees the cached frames that no allocation needed since the last call. Returns the bytes.
std::size_t trimFrameCache() noexcept;

struct FramePromiseBase {
  static void* operator new(std::size_t size) { return allocateFrame(size); }
  static void operator delete(void* p, std::size_t size) noexcept { freeFrame(p, size); }
  [[noreturn]] void unhandled_exception() noexcept { std::terminate(); }
};

template <typename T>
class Task;

namespace detail {

template <typename Promise>
struct FinalAwaiter {
  bool await_ready() const noexcept { return false; }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> h) noexcept {
    auto& p = h.promise();
    // Finished while the awaiter is still on the stack (started inline, never suspended):
    // return to it instead of resuming it again, so loops of synchronous completions do not
    // nest stack frames (symmetric transfer is only a tail call when the compiler makes it one).
    if (p.running_inline) return std::noop_coroutine();
    return p.continuation ? p.continuation : std::noop_coroutine();
  }
  void await_resume() const noexcept {}
};

template <typename T>
struct TaskPromise : FramePromiseBase {
  std::coroutine_handle<> continuation;
  bool running_inline = false;
  std::optional<T> value;

  Task<T> get_return_object() noexcept;
  std::suspend_always initial_suspend() const noexcept { return {}; }
  FinalAwaiter<TaskPromise> final_suspend() const noexcept { return {}; }
  template <typename U>
  void return_value(U&& v) {
    value.emplace(std::forward<U>(v));
  }
};

template <>
struct TaskPromise<void> : FramePromiseBase {
  std::coroutine_handle<> continuation;
  bool running_inline = false;
  Task<void> get_return_object() noexcept;
  std::suspend_always initial_suspend() const noexcept { return {}; }
  FinalAwaiter<TaskPromise> final_suspend() const noexcept { return {}; }
  void return_void() const noexcept {}
};

}  // namespace detail

template <typename T = void>
class [[nodiscard]] Task {
 public:
  using promise_type = detail::TaskPromise<T>;
  using Handle = std::coroutine_handle<promise_type>;

  Task() = default;
  explicit Task(Handle h) : handle_(h) {}
  Task(Task&& o) noexcept : handle_(std::exchange(o.handle_, {})) {}
  Task& operator=(Task&& o) noexcept {
    if (this != &o) {
      if (handle_) handle_.destroy();
      handle_ = std::exchange(o.handle_, {});
    }
    return *this;
  }
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;
  ~Task() {
    if (handle_) handle_.destroy();
  }

  bool valid() const { return static_cast<bool>(handle_); }

  auto operator co_await() && noexcept {
    struct Awaiter {
      Handle h;
      bool await_ready() const noexcept { return !h || h.done(); }
      // Runs the task inline; if it completes without suspending, the caller continues right
      // here (no suspension, no nesting). Otherwise the task resumes the caller when it ends.
      bool await_suspend(std::coroutine_handle<> awaiting) noexcept {
        auto& p = h.promise();
        p.continuation = awaiting;
        p.running_inline = true;
        h.resume();
        if (h.done()) return false;
        p.running_inline = false;
        return true;
      }
      T await_resume() {
        if constexpr (!std::is_void_v<T>) return std::move(*h.promise().value);
      }
    };
    return Awaiter{handle_};
  }

  Handle release() { return std::exchange(handle_, {}); }

 private:
  Handle handle_;
};

namespace detail {
template <typename T>
Task<T> TaskPromise<T>::get_return_object() noexcept {
  return Task<T>{std::coroutine_handle<TaskPromise<T>>::from_promise(*this)};
}
inline Task<void> TaskPromise<void>::get_return_object() noexcept {
  return Task<void>{std::coroutine_handle<TaskPromise<void>>::from_promise(*this)};
}

// Self-owning driver: runs a Task<void> to completion and frees itself. Live drivers are kept
// in a per-thread list so a stopped loop can destroy what is still suspended (clean exit).
struct DetachedNode {
  DetachedNode* prev = nullptr;
  DetachedNode* next = nullptr;
  std::coroutine_handle<> handle;
};
void linkDetached(DetachedNode* n) noexcept;
void unlinkDetached(DetachedNode* n) noexcept;

struct Detached {
  struct promise_type : FramePromiseBase {
    DetachedNode node;
    promise_type() noexcept {
      node.handle = std::coroutine_handle<promise_type>::from_promise(*this);
      linkDetached(&node);
    }
    ~promise_type() { unlinkDetached(&node); }
    Detached get_return_object() noexcept { return {}; }
    std::suspend_never initial_suspend() const noexcept { return {}; }
    std::suspend_never final_suspend() const noexcept { return {}; }
    void return_void() const noexcept {}
  };
};
inline Detached runDetached(Task<void> t) {
  co_await std::move(t);
}
}  // namespace detail

// Starts `t` now, on the calling thread; it runs until its first suspension, then continues
// from the event loop. The task owns itself.
inline void spawn(Task<void> t) {
  detail::runDetached(std::move(t));
}

// Destroys every spawned coroutine of this thread that is still suspended, newest first (so
// children go before the parents whose objects they use). For after EventLoop::run() returns.
void destroyDetachedCoroutines() noexcept;

}  // namespace gatehouse::runtime

namespace gatehouse::runtime {

class EventLoop;

namespace detail {
struct JoinState {
  int pending = 2;
  std::coroutine_handle<> waiter;
};
Task<void> joinOne(Task<void> t, JoinState* js, EventLoop* loop);
}  // namespace detail

// Runs a and b concurrently on this thread's loop; completes when both have completed.
Task<void> whenBoth(EventLoop& loop, Task<void> a, Task<void> b);

}  // namespace gatehouse::runtime
