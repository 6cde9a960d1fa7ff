#pragma once
// The idle and lifetime bounds of a tunnel (an upgraded HTTP/1.1 connection, or an HTTP/2
// extended-CONNECT stream), shared by both of its directions: the first reason to end it is
// kept, and `stop` cuts both directions, once. Idle means no byte either way: one timer,
// pushed forward lazily from the last activity.
// Thread: the worker of the downstream connection.
#include "metrics/stats.h"
#include "runtime/event_loop.h"

namespace gatehouse::proxy {

class TunnelTimers {
 public:
  using Stop = void (*)(void* ctx);
  TunnelTimers(runtime::EventLoop& loop, Stop stop, void* ctx)
      : loop_(loop), stop_(stop), ctx_(ctx), last_activity_(loop.now()) {}
  TunnelTimers(const TunnelTimers&) = delete;
  TunnelTimers& operator=(const TunnelTimers&) = delete;

  // Arms the timers; a zero duration means no such bound.
  void start(runtime::Duration idle, runtime::Duration max_lifetime) {
    idle_ = idle;
    if (idle.count() > 0) idle_timer_.arm(loop_, loop_.now() + idle, &onIdle, this);
    if (max_lifetime.count() > 0) {
      life_timer_.arm(loop_, loop_.now() + max_lifetime, &onLifetime, this);
    }
  }
  // Bytes moved one way or the other.
  void touch() { last_activity_ = loop_.now(); }
  void end(metrics::TunnelClose why) {
    if (reason_ == metrics::TunnelClose::kClosed) reason_ = why;
    if (ended_) return;
    ended_ = true;
    stop_(ctx_);
  }
  metrics::TunnelClose reason() const { return reason_; }

 private:
  static void onIdle(void* arg) {
    auto* t = static_cast<TunnelTimers*>(arg);
    auto due = t->last_activity_ + t->idle_;
    if (t->loop_.now() >= due) {
      t->end(metrics::TunnelClose::kIdle);
    } else {
      t->idle_timer_.arm(t->loop_, due, &TunnelTimers::onIdle, t);
    }
  }
  static void onLifetime(void* arg) {
    static_cast<TunnelTimers*>(arg)->end(metrics::TunnelClose::kLifetime);
  }

  runtime::EventLoop& loop_;
  Stop stop_;
  void* ctx_;
  runtime::Duration idle_{};
  runtime::TimePoint last_activity_;
  metrics::TunnelClose reason_ = metrics::TunnelClose::kClosed;
  bool ended_ = false;
  runtime::Timer idle_timer_;
  runtime::Timer life_timer_;
};

}  // namespace gatehouse::proxy
