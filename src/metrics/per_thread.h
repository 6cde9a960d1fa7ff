#pragma once
// Cells for counters that any thread may bump (policies, codecs, mirrors): every thread gets its
// own cache-line-aligned copy of `Cells`, created on its first update, so each copy has one
// writer and an update stays a relaxed load + store (metrics::Counter). The scrape (admin
// thread) sums the copies. A thread's slot index is handed back when the thread exits and reused
// by a later thread, which keeps counting in the same copy: counts are never lost.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "core/owner_thread.h"
#include "metrics/cells.h"

namespace gatehouse::metrics {

// Threads that can hold a slot at once (workers, the control and admin threads, offload threads).
// A thread beyond that shares the last slot (counts may then race; logged once).
inline constexpr size_t kMaxThreadSlots = 256;

namespace detail {
inline constexpr size_t kNoSlot = ~size_t{0};
// This thread's slot index. Constant-initialised, so reading it is one thread-local load (no
// TLS init wrapper): the request path pays that, not a call.
inline thread_local size_t t_thread_slot = kNoSlot;
// Takes a slot for this thread (and gives it back when the thread exits).
size_t assignThreadSlot();
}  // namespace detail

// This thread's slot, assigned on first use. Any thread.
inline size_t threadSlot() {
  const size_t slot = detail::t_thread_slot;
  if (slot != detail::kNoSlot) [[likely]]
    return slot;
  return detail::assignThreadSlot();
}

template <typename Cells>
class PerThread {
 public:
  PerThread() = default;
  PerThread(const PerThread&) = delete;
  PerThread& operator=(const PerThread&) = delete;
  ~PerThread() {
    for (auto& s : slots_)
      std::unique_ptr<Aligned>(s.load(std::memory_order_relaxed));  // owned since local()
  }

  // The calling thread's cells. Any thread; the first call on a thread allocates.
  Cells& local() {
    auto& slot = slots_[threadSlot()];
    Aligned* c = slot.load(std::memory_order_acquire);
#if GATEHOUSE_OWNER_CHECKS
    // Debug builds check that every cell has one writer thread (metrics::Counter claims its
    // first writer), so a slot handed on by an exited thread gets a fresh copy; the old one is
    // kept for the sums.
    if (c && c->user != std::this_thread::get_id()) {
      std::lock_guard lock(retired_mu_);
      if (slot.compare_exchange_strong(c, nullptr, std::memory_order_acq_rel)) {
        retired_.emplace_back(c);
      }
      c = nullptr;
    }
#endif
    if (!c) {
      auto fresh = std::make_unique<Aligned>();
      Aligned* expected = nullptr;
      // Only the last slot can be contended (see kMaxThreadSlots): compare-exchange keeps one.
      if (slot.compare_exchange_strong(expected, fresh.get(), std::memory_order_acq_rel)) {
        c = fresh.release();
      } else {
        c = expected;
      }
    }
    return c->cells;
  }

  // Calls fn(const Cells&) for every thread's copy. Admin thread (scrape).
  template <typename Fn>
  void forEach(Fn&& fn) const {
    for (const auto& s : slots_) {
      if (const Aligned* c = s.load(std::memory_order_acquire)) fn(c->cells);
    }
#if GATEHOUSE_OWNER_CHECKS
    std::lock_guard lock(retired_mu_);
    for (const auto& c : retired_)
      fn(c->cells);
#endif
  }

  // The sum of one Counter field over every copy. Admin thread (scrape).
  template <typename CounterField>
  uint64_t sum(CounterField Cells::*field) const {
    uint64_t total = 0;
    forEach([&](const Cells& c) { total += (c.*field).get(); });
    return total;
  }

 private:
  struct alignas(64) Aligned {
    Cells cells;
#if GATEHOUSE_OWNER_CHECKS
    std::thread::id user = std::this_thread::get_id();  // the thread the copy was made for
#endif
  };
  std::atomic<Aligned*> slots_[kMaxThreadSlots] = {};
#if GATEHOUSE_OWNER_CHECKS
  mutable std::mutex retired_mu_;
  std::vector<std::unique_ptr<Aligned>> retired_;  // copies of exited threads (debug builds)
#endif
};

// The process-wide PerThread<Cells> (one per Cells type), never destroyed: a thread still running
// while the process exits may count into it.
template <typename Cells>
PerThread<Cells>& processCells() {
  static PerThread<Cells>* cells = std::make_unique<PerThread<Cells>>().release();
  return *cells;
}

}  // namespace gatehouse::metrics
