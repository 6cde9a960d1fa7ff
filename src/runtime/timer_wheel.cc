#include "runtime/timer_wheel.h"

#include <bit>

#include "core/log.h"
#include "runtime/event_loop.h"

namespace gatehouse::runtime {

namespace {
constexpr uint64_t kSlotMask = TimerWheel::kSlots - 1;
// Ticks beyond this are parked at the top level and re-placed when they cascade.
constexpr uint64_t kRange = uint64_t{1} << (TimerWheel::kSlotBits * TimerWheel::kLevels);

constexpr int shiftOf(int level) {
  return level * TimerWheel::kSlotBits;
}

void initHead(TimerLink& h) {
  h.prev = h.next = &h;
}
bool emptyList(const TimerLink& h) {
  return h.next == &h;
}

void unlink(TimerLink* n) {
  n->prev->next = n->next;
  n->next->prev = n->prev;
  n->prev = n->next = nullptr;
}

// Moves every node of `from` to the (empty) list `to`.
void spliceAll(TimerLink& from, TimerLink& to) {
  if (emptyList(from)) return;
  to.next = from.next;
  to.prev = from.prev;
  to.next->prev = &to;
  to.prev->next = &to;
  initHead(from);
}
}  // namespace

TimerWheel::TimerWheel(TimePoint epoch) : epoch_(epoch) {
  for (auto& level : slots_) {
    for (auto& s : level)
      initHead(s);
  }
  initHead(due_);
  initHead(expired_);
}

TimerWheel::~TimerWheel() {
  // Timers outliving their loop must not point into freed lists.
  auto drop = [](TimerLink& h) {
    while (!emptyList(h))
      unlink(h.next);
  };
  for (auto& level : slots_) {
    for (auto& s : level)
      drop(s);
  }
  drop(due_);
  drop(expired_);
}

uint64_t TimerWheel::ceilTick(TimePoint t) const {
  if (t <= epoch_) return 0;
  auto d = t - epoch_;
  // Far-future deadlines (kNoDeadline) would overflow the conversion below.
  if (d > std::chrono::hours(24 * 365 * 100)) return kNever - 1;
  return static_cast<uint64_t>(std::chrono::ceil<std::chrono::milliseconds>(d).count());
}

uint64_t TimerWheel::floorTick(TimePoint t) const {
  if (t <= epoch_) return 0;
  return static_cast<uint64_t>(std::chrono::floor<std::chrono::milliseconds>(t - epoch_).count());
}

void TimerWheel::linkTail(TimerLink& head, Timer* t, uint16_t slot) {
  t->prev = head.prev;
  t->next = &head;
  head.prev->next = t;
  head.prev = t;
  t->slot_ = slot;
}

void TimerWheel::add(Timer* t) {
  // Linking a linked timer again would corrupt two lists.
  if (GH_BUG_IF(t->prev != nullptr || t->next != nullptr)) return;
  t->expiry_ = ceilTick(t->deadline_);
  ++size_;
  if (t->expiry_ < cur_) {
    linkTail(due_, t, kDueSlot);
    return;
  }
  place(t);
}

void TimerWheel::place(Timer* t) {
  uint64_t e = t->expiry_;
  uint64_t delta = e - cur_;
  int level = 0;
  if (delta >= kRange) {
    level = kLevels - 1;
    e = cur_ + kRange - 1;
  } else if (delta >= kSlots) {
    level = (std::bit_width(delta) - 1) / kSlotBits;
  }
  int slot = static_cast<int>((e >> shiftOf(level)) & kSlotMask);
  linkTail(slots_[level][slot], t, static_cast<uint16_t>(level * kSlots + slot));
  bits_[level] |= uint64_t{1} << slot;
}

void TimerWheel::remove(Timer* t) {
  if (GH_BUG_IF(t->prev == nullptr || size_ == 0)) return;
  uint16_t s = t->slot_;
  unlink(t);
  --size_;
  if (s < kDueSlot) {
    int level = s / kSlots, slot = s % kSlots;
    if (emptyList(slots_[level][slot])) bits_[level] &= ~(uint64_t{1} << slot);
  }
}

uint64_t TimerWheel::nextEventTick() const {
  uint64_t best = kNever;
  if (bits_[0]) {
    int idx = static_cast<int>(cur_ & kSlotMask);
    best = cur_ + static_cast<uint64_t>(std::countr_zero(std::rotr(bits_[0], idx)));
  }
  for (int level = 1; level < kLevels; ++level) {
    if (!bits_[level]) continue;
    uint64_t unit = uint64_t{1} << shiftOf(level);
    uint64_t base = (cur_ + unit - 1) & ~(unit - 1);  // next cascade point (cur_ if on one)
    int s0 = static_cast<int>((base >> shiftOf(level)) & kSlotMask);
    auto k = static_cast<uint64_t>(std::countr_zero(std::rotr(bits_[level], s0)));
    uint64_t at = base + k * unit;
    if (at < best) best = at;
  }
  return best;
}

TimePoint TimerWheel::nextWakeup() const {
  if (!emptyList(due_)) return epoch_;
  if (size_ == 0) return kNoWork;
  uint64_t tick = nextEventTick();
  if (tick == kNever) return kNoWork;
  return epoch_ + std::chrono::milliseconds(tick);
}

void TimerWheel::cascade(int level, int slot) {
  TimerLink moving;
  initHead(moving);
  spliceAll(slots_[level][slot], moving);
  bits_[level] &= ~(uint64_t{1} << slot);
  while (!emptyList(moving)) {
    auto* t = static_cast<Timer*>(moving.next);
    unlink(t);
    place(t);
  }
}

// Processes tick cur_: cascades the higher-level slots that start here (top level first, so
// their timers can drop straight into lower slots), then fires level 0's slot.
void TimerWheel::processTick() {
  if ((cur_ & kSlotMask) == 0) {
    for (int level = kLevels - 1; level >= 1; --level) {
      uint64_t unit = uint64_t{1} << shiftOf(level);
      if ((cur_ & (unit - 1)) == 0) {
        cascade(level, static_cast<int>((cur_ >> shiftOf(level)) & kSlotMask));
      }
    }
  }
  int idx = static_cast<int>(cur_ & kSlotMask);
  ++cur_;  // timers armed by the callbacks below belong to later ticks (or to due_)
  if (!(bits_[0] & (uint64_t{1} << idx))) return;
  spliceAll(slots_[0][idx], expired_);
  for (TimerLink* n = expired_.next; n != &expired_; n = n->next)
    static_cast<Timer*>(n)->slot_ = kExpiredSlot;
  bits_[0] &= ~(uint64_t{1} << idx);
  while (!emptyList(expired_)) {
    auto* t = static_cast<Timer*>(expired_.next);
    unlink(t);
    --size_;
    t->cb_(t->arg_);  // may destroy t, cancel other expired timers or arm new ones
  }
}

void TimerWheel::advance(TimePoint now) {
  const uint64_t target = floorTick(now);
  for (;;) {
    while (!emptyList(due_)) {
      auto* t = static_cast<Timer*>(due_.next);
      unlink(t);
      --size_;
      t->cb_(t->arg_);
    }
    if (cur_ > target) return;
    uint64_t next = nextEventTick();
    if (next > target) {
      cur_ = target + 1;  // nothing happens in between: skip the empty ticks
      return;
    }
    cur_ = next;
    processTick();
  }
}

}  // namespace gatehouse::runtime
