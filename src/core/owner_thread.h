#pragma once
// Thread-ownership checks for Gatehouse's one threading rule: an event loop, and everything
// registered with it or owned by its worker (sockets, timers, per-worker counters), belongs to
// one thread; other threads reach it only through EventLoop::post().
//
// An OwnerThread records the owning thread; GH_ASSERT_OWNER(x) aborts with a message naming the
// object, both threads and the call site when another thread gets there. The checks are active
// when NDEBUG is not defined (the debug, asan and tsan presets). In release builds OwnerThread is
// an empty type and the macros expand to nothing, so the hot path pays nothing (store it as
// [[no_unique_address]] so it takes no space either).
//
// Thread: any. bind()/release() are called by the owner (or before or after its life, when the
// threads are already ordered by thread start or join); check() and claim() from any thread.
#include <atomic>
#include <thread>

#if !defined(GATEHOUSE_OWNER_CHECKS)
#ifdef NDEBUG
#define GATEHOUSE_OWNER_CHECKS 0
#else
#define GATEHOUSE_OWNER_CHECKS 1
#endif
#endif

namespace gatehouse {

#if GATEHOUSE_OWNER_CHECKS
class OwnerThread {
 public:
  // The calling thread becomes the owner.
  void bind() noexcept { id_.store(std::this_thread::get_id(), std::memory_order_relaxed); }
  // No owner until the next bind() or claim(): checks pass. For teardown after the owner's
  // thread has been joined.
  void release() noexcept { id_.store(std::thread::id{}, std::memory_order_relaxed); }
  bool owned() const noexcept { return id_.load(std::memory_order_relaxed) != std::thread::id{}; }
  // Aborts unless the calling thread is the owner or there is none.
  void check(const char* what, const char* file, int line) const noexcept {
    std::thread::id owner = id_.load(std::memory_order_relaxed);
    if (owner != std::thread::id{} && owner != std::this_thread::get_id())
      fail(what, owner, file, line);
  }
  // For single-writer data: the first thread to write becomes the owner; then as check().
  void claim(const char* what, const char* file, int line) noexcept {
    std::thread::id self = std::this_thread::get_id();
    std::thread::id owner{};
    if (id_.compare_exchange_strong(owner, self, std::memory_order_relaxed)) return;
    if (owner != self) fail(what, owner, file, line);
  }

 private:
  [[noreturn]] static void fail(const char* what, std::thread::id owner, const char* file,
                                int line) noexcept;
  std::atomic<std::thread::id> id_{};
};
#else
class OwnerThread {
 public:
  void bind() noexcept {}
  void release() noexcept {}
  bool owned() const noexcept { return false; }
  void check(const char*, const char*, int) const noexcept {}
  void claim(const char*, const char*, int) noexcept {}
};
#endif

}  // namespace gatehouse

#if GATEHOUSE_OWNER_CHECKS
// Aborts (message + std::abort) when the calling thread is not the owner of `owner`.
#define GH_ASSERT_OWNER(owner) (owner).check(#owner, __FILE__, __LINE__)
// As GH_ASSERT_OWNER, but an unowned `owner` becomes the calling thread's (first writer wins).
#define GH_CLAIM_OWNER(owner) (owner).claim(#owner, __FILE__, __LINE__)
#else
#define GH_ASSERT_OWNER(owner) static_cast<void>(0)
#define GH_CLAIM_OWNER(owner) static_cast<void>(0)
#endif
