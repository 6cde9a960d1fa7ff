#include "runtime/event_loop.h"
#include "runtime/task.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>

#include "core/log.h"

namespace gatehouse::runtime {

namespace {
thread_local EventLoop* t_current = nullptr;
constexpr uint64_t kWakeData = UINT64_MAX;

// Coroutine frame free lists: 64-byte classes up to 4 KiB, capped so a burst does not pin
// memory forever.
constexpr std::size_t kClassSize = 64;
constexpr std::size_t kClasses = 64;
constexpr std::size_t kMaxFreePerClass = 4096;
struct FrameCache {
  std::array<std::vector<void*>, kClasses> free;  // taken and given at the back (warmest)
  std::array<std::size_t, kClasses> low{};        // fewest cached per class since the last trim
  ~FrameCache() {
    for (auto& v : free) {
      for (void* p : v)
        std::free(p);
    }
  }
};
thread_local FrameCache t_frames;
}  // namespace

void* allocateFrame(std::size_t size) {
  std::size_t cls = (size + kClassSize - 1) / kClassSize;
  if (cls < kClasses) {
    auto& list = t_frames.free[cls];
    if (!list.empty()) {
      void* p = list.back();
      list.pop_back();
      if (list.size() < t_frames.low[cls]) t_frames.low[cls] = list.size();
      return p;
    }
    t_frames.low[cls] = 0;
    void* p = std::malloc(cls * kClassSize);
    if (!p) throw std::bad_alloc();
    return p;
  }
  void* p = std::malloc(size);
  if (!p) throw std::bad_alloc();
  return p;
}

void freeFrame(void* p, std::size_t size) noexcept {
  std::size_t cls = (size + kClassSize - 1) / kClassSize;
  if (cls < kClasses) {
    auto& list = t_frames.free[cls];
    if (list.size() < kMaxFreePerClass) {
      list.push_back(p);
      return;
    }
  }
  std::free(p);
}

std::size_t trimFrameCache() noexcept {
  std::size_t bytes = 0;
  for (std::size_t cls = 0; cls < kClasses; ++cls) {
    auto& list = t_frames.free[cls];
    std::size_t n = std::min(t_frames.low[cls], list.size());
    for (std::size_t i = 0; i < n; ++i)
      std::free(list[i]);
    list.erase(list.begin(), list.begin() + static_cast<std::ptrdiff_t>(n));
    if (list.empty()) list.shrink_to_fit();
    t_frames.low[cls] = list.size();
    bytes += n * cls * kClassSize;
  }
  return bytes;
}

// ---- Timer ----

void Timer::arm(EventLoop& loop, TimePoint deadline, Callback cb, void* arg) {
  GH_ASSERT_OWNER(loop.owner_);
  if (GH_BUG_IF(cb == nullptr)) return;  // the wheel would call it
  cb_ = cb;
  arg_ = arg;
  if (armed() && loop_ == &loop && deadline == deadline_) return;
  cancel();
  loop_ = &loop;
  deadline_ = deadline;
  loop.wheel_.add(this);
}

void Timer::cancel() {
  if (!armed()) return;
  GH_ASSERT_OWNER(loop_->owner_);
  loop_->wheel_.remove(this);
}

// ---- EventLoop ----

EventLoop::EventLoop() : now_(Clock::now()), wheel_(now_) {
  epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
  wakefd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (epfd_ < 0 || wakefd_ < 0) {
    log::error("event loop: cannot create epoll/eventfd: ", std::strerror(errno));
    std::abort();
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kWakeData;
  ::epoll_ctl(epfd_, EPOLL_CTL_ADD, wakefd_, &ev);
}

EventLoop::~EventLoop() {
  // Posted closures may own resources; run nothing, just destroy them here.
  posted_.clear();
  if (wakefd_ >= 0) ::close(wakefd_);
  if (epfd_ >= 0) ::close(epfd_);
  if (t_current == this) t_current = nullptr;
}

EventLoop* EventLoop::current() {
  return t_current;
}

bool EventLoop::add(int fd, IoHandle& h) {
  GH_ASSERT_OWNER(owner_);
  // A second registration would leave the first slot pointing at the handle forever.
  if (GH_BUG_IF(h.slot != UINT32_MAX)) return false;
  uint32_t slot;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
  } else {
    slot = static_cast<uint32_t>(slots_.size());
    slots_.push_back(nullptr);
    generations_.push_back(0);
  }
  slots_[slot] = &h;
  h.slot = slot;
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.u64 = (static_cast<uint64_t>(generations_[slot]) << 32) | slot;
  if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    slots_[slot] = nullptr;
    free_slots_.push_back(slot);
    h.slot = UINT32_MAX;
    return false;
  }
  return true;
}

void EventLoop::remove(int fd, IoHandle& h) {
  GH_ASSERT_OWNER(owner_);
  if (h.slot == UINT32_MAX) return;
  // A handle this loop does not hold (another loop's, or stale): freeing its slot would hand
  // another socket's events to whoever reuses it.
  if (GH_BUG_IF(h.slot >= slots_.size() || slots_[h.slot] != &h)) {
    h.slot = UINT32_MAX;
    return;
  }
  // Closing the fd removes it from epoll; the explicit DEL covers dup'ed fds.
  ::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
  forget(h);
}

void EventLoop::forget(IoHandle& h) {
  GH_ASSERT_OWNER(owner_);
  if (h.slot == UINT32_MAX) return;
  if (GH_BUG_IF(h.slot >= slots_.size() || slots_[h.slot] != &h)) {
    h.slot = UINT32_MAX;
    return;
  }
  slots_[h.slot] = nullptr;
  ++generations_[h.slot];
  free_slots_.push_back(h.slot);
  h.slot = UINT32_MAX;
}

void EventLoop::dispatch(uint64_t data, uint32_t events) {
  uint32_t slot = static_cast<uint32_t>(data);
  uint32_t gen = static_cast<uint32_t>(data >> 32);
  auto live = [&]() -> IoHandle* {
    if (slot >= slots_.size() || generations_[slot] != gen) return nullptr;
    return slots_[slot];
  };
  IoHandle* h = live();
  if (!h) return;
  bool err = (events & (EPOLLERR | EPOLLHUP)) != 0;
  if (err) h->hup = true;
  if (events & EPOLLRDHUP) h->rdhup = true;
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP)) {
    h->read_ready = true;
    if (h->reader) {
      IoWaiter* r = std::exchange(h->reader, nullptr);
      r->on_ready(r);
      h = live();  // the resumed coroutine may have closed the socket
      if (!h) return;
    } else if (h->on_hangup && (events & (EPOLLRDHUP | EPOLLERR | EPOLLHUP))) {
      std::exchange(h->on_hangup, nullptr)(h->hangup_arg);
      h = live();  // the watcher may have ended what owns the socket
      if (!h) return;
    }
  }
  if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
    h->write_ready = true;
    if (h->writer) {
      IoWaiter* w = std::exchange(h->writer, nullptr);
      w->on_ready(w);
    }
  }
}

void EventLoop::run() {
  GH_ASSERT_OWNER(owner_);
  owner_.bind();
  t_current = this;
  constexpr int kMaxEvents = 256;
  epoll_event events[kMaxEvents];
  while (!stopping_) {
    int timeout_ms = -1;
    if (!ready_.empty()) {
      timeout_ms = 0;
    } else if (TimePoint next = wheel_.nextWakeup(); next != TimerWheel::kNoWork) {
      auto wait = next - Clock::now();
      if (wait <= Duration::zero()) {
        timeout_ms = 0;
      } else {
        // Round up so a timer never fires early.
        auto ms = std::chrono::ceil<std::chrono::milliseconds>(wait).count();
        timeout_ms = ms > 60000 ? 60000 : static_cast<int>(ms);
      }
    }
    int n = ::epoll_wait(epfd_, events, kMaxEvents, timeout_ms);
    now_ = Clock::now();
    if (n < 0 && errno != EINTR) {
      log::error("epoll_wait: ", std::strerror(errno));
    }
    for (int i = 0; i < n; ++i) {
      if (events[i].data.u64 == kWakeData) {
        uint64_t v;
        while (::read(wakefd_, &v, sizeof v) > 0) {
        }
        runPosted();
        continue;
      }
      dispatch(events[i].data.u64, events[i].events);
    }
    wheel_.advance(now_);
    // Resume scheduled coroutines; new ones scheduled meanwhile wait for the next turn.
    if (!ready_.empty()) {
      std::vector<std::coroutine_handle<>> batch;
      batch.swap(ready_);
      for (auto h : batch)
        h.resume();
    }
    if (stop_requested_.load(std::memory_order_acquire)) stopping_ = true;
  }
  runPosted();
  // The thread that joins this one may destroy timers and sockets still registered.
  owner_.release();
}

void EventLoop::stop() {
  stop_requested_.store(true, std::memory_order_release);
  uint64_t one = 1;
  ssize_t r = ::write(wakefd_, &one, sizeof one);
  (void)r;
}

void EventLoop::post(std::function<void()> fn) {
  {
    std::lock_guard lock(post_mu_);
    posted_.push_back(std::move(fn));
  }
  uint64_t one = 1;
  ssize_t r = ::write(wakefd_, &one, sizeof one);
  (void)r;
}

void EventLoop::runPosted() {
  std::vector<std::function<void()>> batch;
  {
    std::lock_guard lock(post_mu_);
    batch.swap(posted_);
  }
  for (auto& fn : batch)
    fn();
}

}  // namespace gatehouse::runtime

namespace gatehouse::runtime {
namespace detail {
namespace {
thread_local DetachedNode* t_detached_head = nullptr;
}

void linkDetached(DetachedNode* n) noexcept {
  n->next = t_detached_head;
  if (t_detached_head) t_detached_head->prev = n;
  t_detached_head = n;
}

void unlinkDetached(DetachedNode* n) noexcept {
  if (n->prev) n->prev->next = n->next;
  if (n->next) n->next->prev = n->prev;
  if (t_detached_head == n) t_detached_head = n->next;
  n->prev = n->next = nullptr;
}

Task<void> joinOne(Task<void> t, JoinState* js, EventLoop* loop) {
  co_await std::move(t);
  // Resume the joiner from the loop, never from inside this finishing frame.
  if (--js->pending == 0 && js->waiter) loop->schedule(js->waiter);
}
}  // namespace detail

void destroyDetachedCoroutines() noexcept {
  // The head is the newest. Destroying a frame unlinks its node.
  while (detail::t_detached_head)
    detail::t_detached_head->handle.destroy();
}

Task<void> whenBoth(EventLoop& loop, Task<void> a, Task<void> b) {
  detail::JoinState js;
  spawn(detail::joinOne(std::move(a), &js, &loop));
  spawn(detail::joinOne(std::move(b), &js, &loop));
  struct Wait {
    detail::JoinState* js;
    bool await_ready() const noexcept { return js->pending == 0; }
    void await_suspend(std::coroutine_handle<> h) noexcept { js->waiter = h; }
    void await_resume() const noexcept {}
  };
  co_await Wait{&js};
}
}  // namespace gatehouse::runtime
