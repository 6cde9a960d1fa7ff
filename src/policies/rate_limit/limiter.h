#pragma once
// The local (in-process) rate limiter: limit math on packed 64-bit states and a fixed-size,
// lock-free hash table of per-key states shared by every worker.
//
// Exactness without locks: each limit of a key is one std::atomic<uint64_t> updated by CAS, so
// concurrent requests for one key on any number of workers are admitted exactly as a single
// thread would admit them. Time is an argument (nanoseconds on a monotonic clock), which makes
// the math testable with an injected clock.
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/calendar.h"
#include "core/result.h"

namespace gatehouse::policies::rate_limit {

// kAllowance is internal (mode hybrid): a key's share of the global budget taken from Redis
// in a batch, spent locally until it runs out or expires. kCalendar (policy quota): a count per
// calendar period (day, week, month in a time zone); its `now` is wall-clock Unix time.
enum class Algorithm { kTokenBucket, kSlidingWindow, kConcurrency, kAllowance, kCalendar };

// "10/s", "1000/h", "5/min", "2/30s": count per period.
struct Rate {
  uint64_t count = 0;
  int64_t period_ns = 0;
};
Result<Rate> parseRate(std::string_view text);

struct LimitSpec {
  std::string name;  // shown in RateLimit-Policy; defaults to the rate text
  Algorithm algorithm = Algorithm::kTokenBucket;
  Rate rate;           // unused by kConcurrency
  uint64_t burst = 0;  // token bucket capacity; the in-flight cap for kConcurrency
  std::shared_ptr<const cal::Calendar> calendar;  // kCalendar (the count is rate.count)

  // The number a client sees as "the limit" (quota) in headers.
  uint64_t quota() const {
    return algorithm == Algorithm::kSlidingWindow || algorithm == Algorithm::kCalendar ? rate.count
                                                                                       : burst;
  }
  // The window advertised in RateLimit-Policy, in seconds (0 for concurrency limits).
  int64_t windowSeconds() const;
};

// The sliding-window state packs two counters in 22 bits each.
inline constexpr uint64_t kMaxWindowCount = (uint64_t{1} << 22) - 1;
// The calendar state packs the period index (24 bits) and its count (40 bits).
inline constexpr uint64_t kMaxCalendarCount = (uint64_t{1} << 40) - 1;

// What one limit says about one request at time `now`.
struct Check {
  bool allowed = false;
  uint64_t next_state = 0;     // the state after charging (meaningful when allowed)
  uint64_t remaining = 0;      // quota left after this request (if allowed) or now (if not)
  int64_t reset_ns = 0;        // until the quota is fully available again (window end)
  int64_t retry_after_ns = 0;  // until a request would be allowed (when not allowed)
};

// Pure functions of (spec, state, now). State 0 is a fresh key for every algorithm.
Check checkLimit(const LimitSpec& spec, uint64_t state, int64_t now_ns);
// The state after undoing one charge that produced `charged` (a racing limit rejected).
uint64_t undoCharge(const LimitSpec& spec, uint64_t state, int64_t now_ns);
uint64_t releaseConcurrency(uint64_t state);
// An idle state says nothing a fresh one would not: reclaiming it grants no quota.
bool isIdle(const LimitSpec& spec, uint64_t state, int64_t now_ns);
// Requests counted against a window or calendar limit at `now` (0 for the other algorithms).
uint64_t usedIn(const LimitSpec& spec, uint64_t state, int64_t now_ns);

struct Decision {
  bool allowed = false;
  int limiting = -1;  // index of the limit shown in headers (strictest / rejecting)
  uint64_t remaining = 0;
  int64_t reset_ns = 0;
  int64_t retry_after_ns = 0;
  bool overflow = false;  // the table was full of busy keys: charged to the overflow entry
};

// A fixed-capacity open-addressing table: slot = {atomic key hash, one atomic state per limit}.
// Keys are 64-bit XXH64 hashes of the key text (collisions are negligible at these sizes).
// Slots are never freed; a new key reclaims an idle slot within its probe window, which
// amortises eviction into inserts and needs no sweeper thread. When every slot in the window is
// busy, the request is charged to a single shared overflow entry (strict, never a bypass).
class LimiterTable {
 public:
  LimiterTable(std::vector<LimitSpec> limits, size_t max_keys);

  // Checks every limit, then charges all of them only if all allow. Any thread.
  // `slot_out` receives the slot used (needed to release concurrency limits).
  Decision acquire(uint64_t key_hash, int64_t now_ns, uint32_t* slot_out);
  // Releases the in-flight count of every concurrency limit of a slot acquire() charged.
  void release(uint32_t slot);
  // Mode hybrid (a table of one kAllowance limit): adds `tokens` that stay usable until
  // `expiry_ns` to the key's entry; tokens already there and still valid are kept. The key is
  // looked up again: the slot seen before the Redis call may have gone to another key since.
  // With no slot free, the tokens are dropped (fewer admissions, never more).
  void deposit(uint64_t key_hash, uint64_t tokens, int64_t now_ns, int64_t expiry_ns);
  bool isOverflow(uint32_t slot) const { return slot == capacity_; }
  // Admin reads (any thread, no insert): the key's state per limit; false when the key has
  // no entry (a fresh key: every state 0).
  bool peek(uint64_t key_hash, std::vector<uint64_t>& states) const;
  // Admin: the key's usage is forgotten (its states become fresh). Any thread.
  void reset(uint64_t key_hash);

  const std::vector<LimitSpec>& limits() const { return limits_; }
  bool hasConcurrency() const { return has_concurrency_; }
  size_t capacity() const { return capacity_; }
  size_t usedSlots() const;  // for tests and metrics; O(capacity)

  static uint64_t hashKey(std::string_view key);

 private:
  static constexpr uint64_t kEmpty = 0;
  static constexpr uint64_t kBusy = 1;  // a slot being reclaimed
  static constexpr size_t kProbe = 16;

  std::atomic<uint64_t>& tag(size_t slot) { return tags_[slot]; }
  std::atomic<uint64_t>& state(size_t slot, size_t limit) {
    return states_[slot * limits_.size() + limit];
  }
  size_t findOrInsert(uint64_t h, int64_t now_ns);
  size_t find(uint64_t h) const;  // capacity_ when absent
  bool slotIdle(size_t slot, int64_t now_ns);

  std::vector<LimitSpec> limits_;
  bool has_concurrency_ = false;
  size_t capacity_ = 0;  // power of two, plus one overflow slot at index capacity_
  std::unique_ptr<std::atomic<uint64_t>[]> tags_;
  std::unique_ptr<std::atomic<uint64_t>[]> states_;
};

// The counters of one policy instance, kept across config reloads and DNS-discovery changes
// (both rebuild the snapshot and every factory). `identity` names the policy (its route and
// position) and `what` the table's role; the limits and capacity are added to it, so a changed
// limit starts from fresh counters while an unchanged one keeps its states and in-flight
// counts. The table lives while a factory holds it: the previous snapshot's factory still does
// while the next one is built. An empty identity (unit tests) gives a table of its own.
// Control thread (policy builders).
std::shared_ptr<LimiterTable> sharedTable(const std::string& identity, std::string_view what,
                                          const std::vector<LimitSpec>& limits, size_t max_keys);

}  // namespace gatehouse::policies::rate_limit
