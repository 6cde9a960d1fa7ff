#pragma once
// Hierarchical timing wheel (1 ms ticks, 6 levels of 64 slots: about 2 years of range) behind
// the event loop's Timer. Arming and cancelling are O(1) list operations; the binary heap it
// replaces did O(log n) pointer-chasing compares per arm/cancel, which showed at thousands of
// connections (every request arms and cancels a few timers). A timer never fires early: its
// deadline is rounded up to the next tick, so it fires up to 1 ms late.
#include <chrono>
#include <cstddef>
#include <cstdint>

namespace gatehouse::runtime {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;
using Duration = Clock::duration;

class Timer;

// Intrusive doubly-linked list node; list heads are bare links.
struct TimerLink {
  TimerLink* prev = nullptr;
  TimerLink* next = nullptr;
};

class TimerWheel {
 public:
  static constexpr int kLevels = 6;
  static constexpr int kSlotBits = 6;
  static constexpr int kSlots = 1 << kSlotBits;
  static constexpr uint64_t kNever = UINT64_MAX;

  explicit TimerWheel(TimePoint epoch);
  ~TimerWheel();
  TimerWheel(const TimerWheel&) = delete;
  TimerWheel& operator=(const TimerWheel&) = delete;

  // `t` must not be linked; its deadline is read from it.
  void add(Timer* t);
  void remove(Timer* t);
  // Fires every timer whose deadline is at or before `now`, including ones armed by the
  // callbacks with a deadline that has already passed.
  void advance(TimePoint now);
  // When advance() next has work: kNoWork when nothing is armed.
  TimePoint nextWakeup() const;
  size_t size() const { return size_; }

  static constexpr TimePoint kNoWork = TimePoint::max();

 private:
  static constexpr uint16_t kDueSlot = kLevels * kSlots;
  static constexpr uint16_t kExpiredSlot = kDueSlot + 1;

  uint64_t ceilTick(TimePoint t) const;
  uint64_t floorTick(TimePoint t) const;
  void place(Timer* t);
  void linkTail(TimerLink& head, Timer* t, uint16_t slot);
  // The first tick >= cur_ at which a slot must be cascaded or expired; kNever if none.
  uint64_t nextEventTick() const;
  void cascade(int level, int slot);
  void processTick();

  TimePoint epoch_;
  uint64_t cur_ = 0;  // the next tick to process; every tick before it has been processed
  size_t size_ = 0;
  uint64_t bits_[kLevels] = {};  // non-empty slots per level
  TimerLink slots_[kLevels][kSlots];
  TimerLink due_;      // armed with a deadline already processed: fire on the next advance
  TimerLink expired_;  // being fired by processTick (callbacks may cancel members)
};

}  // namespace gatehouse::runtime
