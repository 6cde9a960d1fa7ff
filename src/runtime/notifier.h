#pragma once
// A one-waiter wake-up between coroutines of one loop: one side waits (with a deadline), the
// other notifies. A notify with nobody waiting is remembered, so a wake-up is never lost
// between "checked the condition" and "started waiting".
#include <coroutine>

#include "runtime/event_loop.h"

namespace gatehouse::runtime {

class Notifier {
 public:
  Notifier() = default;
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  // Resumes the waiter on the next loop turn (never inline: the notifier's caller may be in the
  // middle of a codec callback).
  void notify() {
    pending_ = true;
    if (waiter_) {
      auto h = waiter_;
      waiter_ = nullptr;
      timer_.cancel();
      loop_->schedule(h);
    }
  }
  bool waiting() const { return waiter_ != nullptr; }
  // Forgets a notification nobody waited for (an object reused for new work).
  void clearPending() { pending_ = false; }

  // True when notified, false when the deadline passed first.
  auto wait(EventLoop& loop, TimePoint deadline) {
    struct Awaiter {
      Notifier& n;
      EventLoop& loop;
      TimePoint deadline;
      bool await_ready() const noexcept { return n.pending_ || deadline <= loop.now(); }
      void await_suspend(std::coroutine_handle<> h) {
        n.loop_ = &loop;
        n.waiter_ = h;
        if (deadline != kNoDeadline) n.timer_.arm(loop, deadline, &Notifier::onTimeout, &n);
      }
      bool await_resume() noexcept {
        bool notified = n.pending_;
        n.pending_ = false;
        return notified;
      }
    };
    return Awaiter{*this, loop, deadline};
  }

 private:
  static void onTimeout(void* self) {
    auto* n = static_cast<Notifier*>(self);
    if (!n->waiter_) return;
    auto h = n->waiter_;
    n->waiter_ = nullptr;
    h.resume();
  }

  bool pending_ = false;
  std::coroutine_handle<> waiter_;
  EventLoop* loop_ = nullptr;
  Timer timer_;
};

// Resumes the awaiting coroutine on the loop's next turn (to leave a codec callback first).
struct YieldToLoop {
  EventLoop& loop;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) { loop.schedule(h); }
  void await_resume() const noexcept {}
};

}  // namespace gatehouse::runtime
