#include "metrics/per_thread.h"

#include <mutex>
#include <vector>

#include "core/log.h"

namespace gatehouse::metrics {
namespace {

struct SlotPool {
  std::mutex mu;
  std::vector<size_t> free;  // handed back by exited threads
  size_t next = 0;
};

SlotPool& pool() {
  static SlotPool p;
  return p;
}

// Holds this thread's slot; gives it back when the thread exits.
struct ThreadSlot {
  size_t index = 0;
  bool shared = false;  // the overflow slot: never handed back
  ThreadSlot() {
    auto& p = pool();
    std::lock_guard lock(p.mu);
    if (!p.free.empty()) {
      index = p.free.back();
      p.free.pop_back();
    } else if (p.next < kMaxThreadSlots) {
      index = p.next++;
    } else {
      index = kMaxThreadSlots - 1;
      shared = true;
      static bool logged = false;
      if (!logged) log::error("metrics: more than ", kMaxThreadSlots, " threads count metrics");
      logged = true;
      return;
    }
  }
  ~ThreadSlot() {
    if (shared) return;
    auto& p = pool();
    std::lock_guard lock(p.mu);
    p.free.push_back(index);
  }
};

}  // namespace

size_t detail::assignThreadSlot() {
  thread_local ThreadSlot slot;
  detail::t_thread_slot = slot.index;
  return slot.index;
}

}  // namespace gatehouse::metrics
