#include "policies/rate_limit/limiter.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <thread>

#include "lb/hash.h"
#include "policies/policy_yaml.h"

namespace gatehouse::policies::rate_limit {
namespace {

constexpr int64_t kSecond = 1'000'000'000;

// Window math multiplies counts by nanosecond periods: up to 2^22 * 2^55 needs 128 bits.
__extension__ typedef unsigned __int128 U128;

// Sliding-window state: | window index mod 2^20 | previous count (22) | current count (22) |
constexpr uint64_t kCountMask = kMaxWindowCount;
constexpr uint64_t kWindowBits = 20;
constexpr uint64_t kWindowMask = (uint64_t{1} << kWindowBits) - 1;

struct Window {
  uint64_t index;  // full window number (now / W)
  uint64_t cur;
  uint64_t prev;
  int64_t elapsed;  // ns into the current window
};

Window decodeWindow(uint64_t state, int64_t period, int64_t now) {
  uint64_t cw = static_cast<uint64_t>(now / period);
  Window w{cw, 0, 0, now - static_cast<int64_t>(cw) * period};
  uint64_t stored = state >> 44;
  uint64_t d = ((cw & kWindowMask) - stored) & kWindowMask;
  if (d == 0) {
    w.cur = state & kCountMask;
    w.prev = (state >> 22) & kCountMask;
  } else if (d == 1) {
    w.prev = state & kCountMask;
  }
  // Older than the previous window: nothing counts any more. (A key untouched for exactly a
  // multiple of 2^20 windows would be misread; its slot is reclaimed long before that in
  // practice, and the effect is at most one stale window's count.)
  return w;
}

uint64_t encodeWindow(const Window& w) {
  return ((w.index & kWindowMask) << 44) | ((w.prev & kCountMask) << 22) | (w.cur & kCountMask);
}

int64_t ceilDiv(U128 a, uint64_t b) {
  return static_cast<int64_t>((a + b - 1) / b);
}

Check checkTokenBucket(const LimitSpec& s, uint64_t state, int64_t now) {
  // GCRA: the state is the theoretical arrival time (TAT). Equivalent to a token bucket of
  // `burst` tokens refilled at count/period, in one word.
  const uint64_t t = static_cast<uint64_t>(std::max<int64_t>(1, s.rate.period_ns / s.rate.count));
  const uint64_t tau = t * s.burst;
  const uint64_t n = static_cast<uint64_t>(now);
  const uint64_t tat = std::max(state, n);
  const uint64_t new_tat = tat + t;
  Check c;
  if (new_tat - n <= tau) {
    c.allowed = true;
    c.next_state = new_tat;
    c.remaining = (tau - (new_tat - n)) / t;
    c.reset_ns = static_cast<int64_t>(new_tat - n);
  } else {
    c.remaining = 0;
    c.reset_ns = static_cast<int64_t>(tat - n);
    c.retry_after_ns = static_cast<int64_t>(new_tat - n - tau);
  }
  return c;
}

Check checkWindow(const LimitSpec& s, uint64_t state, int64_t now) {
  const uint64_t period = static_cast<uint64_t>(s.rate.period_ns);
  const uint64_t limit = s.rate.count;
  Window w = decodeWindow(state, s.rate.period_ns, now);
  const uint64_t left = period - static_cast<uint64_t>(w.elapsed);
  // estimate * period, in integers: prev weighted by the part of its window still covered.
  U128 used = static_cast<U128>(w.prev) * left + static_cast<U128>(w.cur + 1) * period;
  U128 cap = static_cast<U128>(limit) * period;
  Check c;
  c.reset_ns = static_cast<int64_t>(left);
  if (used <= cap && w.cur + 1 <= kMaxWindowCount) {
    c.allowed = true;
    Window next = w;
    next.cur += 1;
    c.next_state = encodeWindow(next);
    c.remaining = static_cast<uint64_t>((cap - used) / period);
    return c;
  }
  U128 now_used = used - period;
  c.remaining = now_used >= cap ? 0 : static_cast<uint64_t>((cap - now_used) / period);
  if (w.cur + 1 <= limit && w.prev > 0) {
    // In this window: wait until prev's weight has dropped enough.
    // Need prev * (period - e') <= (limit - cur - 1) * period.
    U128 room = static_cast<U128>(limit - w.cur - 1) * period;
    int64_t e_needed = static_cast<int64_t>(period) - ceilDiv(room, w.prev);
    c.retry_after_ns = std::max<int64_t>(1, e_needed - w.elapsed);
  } else {
    // Next window: cur becomes prev; need cur * (period - e'') <= (limit - 1) * period.
    int64_t e_needed = 0;
    if (w.cur > 0) {
      U128 room = static_cast<U128>(limit - 1) * period;
      e_needed = std::max<int64_t>(0, static_cast<int64_t>(period) - ceilDiv(room, w.cur));
    }
    c.retry_after_ns = static_cast<int64_t>(left) + e_needed;
  }
  return c;
}

Check checkConcurrency(const LimitSpec& s, uint64_t state) {
  Check c;
  if (state < s.burst) {
    c.allowed = true;
    c.next_state = state + 1;
    c.remaining = s.burst - state - 1;
  } else {
    // Nothing tells when an in-flight request ends; one second is a polite hint.
    c.retry_after_ns = kSecond;
  }
  return c;
}

// Allowance state: | expiry in ms on the monotonic clock (40 bits) | tokens (24 bits) |
constexpr uint64_t kAllowanceTokenMask = (uint64_t{1} << 24) - 1;
constexpr int64_t kMs = 1'000'000;

bool allowanceValid(uint64_t state, int64_t now) {
  return (state & kAllowanceTokenMask) > 0 && static_cast<int64_t>(state >> 24) * kMs > now;
}

Check checkAllowance(uint64_t state, int64_t now) {
  Check c;
  if (allowanceValid(state, now)) {
    c.allowed = true;
    c.next_state = state - 1;
    c.remaining = (state & kAllowanceTokenMask) - 1;
  }
  return c;
}

// Calendar state: | period index mod 2^24 | count (40 bits) |.
constexpr uint64_t kPeriodMask = (uint64_t{1} << 24) - 1;

// The period of `now` for a calendar limit. Time-zone lookups are cheap but not free: each
// thread remembers the last period it computed per calendar and reuses it until it ends.
cal::Period periodAt(const cal::Calendar& c, int64_t now_ns) {
  struct Cached {
    const cal::Calendar* cal = nullptr;
    cal::Period p;
  };
  thread_local Cached cache[4];
  const int64_t now_s = now_ns / kSecond;
  for (auto& e : cache) {
    if (e.cal == &c && now_s >= e.p.start_s && now_s < e.p.end_s) return e.p;
  }
  cal::Period p = c.at(now_s);
  // Replace the entry of this calendar, or the first one (a few calendars per thread at most).
  Cached* slot = &cache[0];
  for (auto& e : cache) {
    if (e.cal == &c) slot = &e;
  }
  *slot = Cached{&c, p};
  return p;
}

// The count of `state` in the period `p` (0 when the state is of an older period).
uint64_t calendarCount(uint64_t state, const cal::Period& p) {
  if ((state >> 40) != (static_cast<uint64_t>(p.index) & kPeriodMask)) return 0;
  return state & kMaxCalendarCount;
}

Check checkCalendar(const LimitSpec& s, uint64_t state, int64_t now) {
  const cal::Period p = periodAt(*s.calendar, now);
  const uint64_t used = calendarCount(state, p);
  Check c;
  c.reset_ns = std::max<int64_t>(0, p.end_s * kSecond - now);
  if (used + 1 <= s.rate.count) {
    c.allowed = true;
    c.next_state = ((static_cast<uint64_t>(p.index) & kPeriodMask) << 40) | (used + 1);
    c.remaining = s.rate.count - used - 1;
  } else {
    c.retry_after_ns = c.reset_ns;
  }
  return c;
}

}  // namespace

Result<Rate> parseRate(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return configError("invalid rate '" + std::string(text) + "': " + std::string(why) +
                       " (expected COUNT/UNIT, e.g. 10/s, 5/min, 1000/h, 2/30s)");
  };
  auto slash = text.find('/');
  if (slash == std::string_view::npos) return bad("missing '/'");
  std::string_view num = text.substr(0, slash);
  std::string_view per = text.substr(slash + 1);
  auto parseUint = [](std::string_view s, uint64_t& out) {
    if (s.empty() || s.size() > 12) return false;
    out = 0;
    for (char ch : s) {
      if (ch < '0' || ch > '9') return false;
      out = out * 10 + static_cast<uint64_t>(ch - '0');
    }
    return true;
  };
  Rate r;
  if (!parseUint(num, r.count)) return bad("count is not a whole number");
  if (r.count == 0) return bad("count must be at least 1");
  size_t digits = 0;
  while (digits < per.size() && per[digits] >= '0' && per[digits] <= '9')
    ++digits;
  uint64_t mult = 1;
  if (digits > 0 && !parseUint(per.substr(0, digits), mult)) return bad("bad period multiplier");
  if (mult == 0) return bad("period must be positive");
  std::string_view unit = per.substr(digits);
  int64_t unit_ns = 0;
  if (unit == "s" || unit == "sec" || unit == "second") {
    unit_ns = kSecond;
  } else if (unit == "m" || unit == "min" || unit == "minute") {
    unit_ns = 60 * kSecond;
  } else if (unit == "h" || unit == "hour") {
    unit_ns = 3600 * kSecond;
  } else if (unit == "d" || unit == "day") {
    unit_ns = 86400 * kSecond;
  } else {
    return bad("unknown unit '" + std::string(unit) + "'; use s, min, h or d");
  }
  if (mult > static_cast<uint64_t>(366 * 86400 * kSecond / unit_ns))
    return bad("period longer than a year");
  r.period_ns = static_cast<int64_t>(mult) * unit_ns;
  if (r.count > static_cast<uint64_t>(r.period_ns)) return bad("more than one per nanosecond");
  return r;
}

int64_t LimitSpec::windowSeconds() const {
  if (algorithm == Algorithm::kConcurrency) return 0;
  if (algorithm == Algorithm::kCalendar) {
    // Nominal lengths: the real period varies (DST days, month lengths).
    switch (calendar->unit()) {
      case cal::PeriodUnit::kDay:
        return 86400;
      case cal::PeriodUnit::kWeek:
        return 7 * 86400;
      case cal::PeriodUnit::kMonth:
        return 30 * 86400;
    }
  }
  if (algorithm == Algorithm::kSlidingWindow) return std::max<int64_t>(1, rate.period_ns / kSecond);
  // A full bucket refills in burst * (period / count).
  return std::max<int64_t>(
      1, static_cast<int64_t>(static_cast<U128>(rate.period_ns) * burst / rate.count / kSecond));
}

Check checkLimit(const LimitSpec& spec, uint64_t state, int64_t now_ns) {
  switch (spec.algorithm) {
    case Algorithm::kTokenBucket:
      return checkTokenBucket(spec, state, now_ns);
    case Algorithm::kSlidingWindow:
      return checkWindow(spec, state, now_ns);
    case Algorithm::kConcurrency:
      return checkConcurrency(spec, state);
    case Algorithm::kAllowance:
      return checkAllowance(state, now_ns);
    case Algorithm::kCalendar:
      return checkCalendar(spec, state, now_ns);
  }
  return {};
}

uint64_t undoCharge(const LimitSpec& spec, uint64_t state, int64_t now_ns) {
  switch (spec.algorithm) {
    case Algorithm::kTokenBucket: {
      uint64_t t =
          static_cast<uint64_t>(std::max<int64_t>(1, spec.rate.period_ns / spec.rate.count));
      return state > t ? state - t : 0;
    }
    case Algorithm::kSlidingWindow: {
      Window w = decodeWindow(state, spec.rate.period_ns, now_ns);
      if (w.cur > 0) {
        --w.cur;
      } else if (w.prev > 0) {
        --w.prev;  // the window rolled over between the charge and its undo
      }
      return encodeWindow(w);
    }
    case Algorithm::kConcurrency:
      return releaseConcurrency(state);
    case Algorithm::kAllowance:
      return allowanceValid(state, now_ns) ? state + 1 : state;
    case Algorithm::kCalendar:
      // A charge of an older period is gone with its period: nothing to undo.
      return calendarCount(state, periodAt(*spec.calendar, now_ns)) > 0 ? state - 1 : state;
  }
  return state;
}

uint64_t releaseConcurrency(uint64_t state) {
  return state > 0 ? state - 1 : 0;
}

bool isIdle(const LimitSpec& spec, uint64_t state, int64_t now_ns) {
  switch (spec.algorithm) {
    case Algorithm::kTokenBucket:
      return state <= static_cast<uint64_t>(now_ns);  // the bucket is full again
    case Algorithm::kSlidingWindow: {
      Window w = decodeWindow(state, spec.rate.period_ns, now_ns);
      return w.cur == 0 && w.prev == 0;
    }
    case Algorithm::kConcurrency:
      return state == 0;
    case Algorithm::kAllowance:
      return !allowanceValid(state, now_ns);
    case Algorithm::kCalendar:
      return calendarCount(state, periodAt(*spec.calendar, now_ns)) == 0;
  }
  return false;
}

uint64_t usedIn(const LimitSpec& spec, uint64_t state, int64_t now_ns) {
  if (spec.algorithm == Algorithm::kCalendar) {
    return calendarCount(state, periodAt(*spec.calendar, now_ns));
  }
  if (spec.algorithm != Algorithm::kSlidingWindow) return 0;
  Window w = decodeWindow(state, spec.rate.period_ns, now_ns);
  const auto period = static_cast<uint64_t>(spec.rate.period_ns);
  const U128 weighted = static_cast<U128>(w.prev) * (period - static_cast<uint64_t>(w.elapsed));
  return w.cur + static_cast<uint64_t>(weighted / period);
}

LimiterTable::LimiterTable(std::vector<LimitSpec> limits, size_t max_keys)
    : limits_(std::move(limits)) {
  for (const auto& l : limits_)
    has_concurrency_ = has_concurrency_ || l.algorithm == Algorithm::kConcurrency;
  capacity_ = 16;
  while (capacity_ < max_keys)
    capacity_ *= 2;
  // make_unique<T[]> value-initialises: every tag and state starts at 0 (empty / fresh).
  tags_ = std::make_unique<std::atomic<uint64_t>[]>(capacity_ + 1);
  states_ = std::make_unique<std::atomic<uint64_t>[]>((capacity_ + 1) * limits_.size());
}

uint64_t LimiterTable::hashKey(std::string_view key) {
  uint64_t h = lb::xxh64(key, 0x7261746523u);
  return h <= kBusy ? h + 2 : h;
}

bool LimiterTable::slotIdle(size_t slot, int64_t now_ns) {
  for (size_t i = 0; i < limits_.size(); ++i) {
    if (!isIdle(limits_[i], state(slot, i).load(std::memory_order_acquire), now_ns)) return false;
  }
  return true;
}

size_t LimiterTable::findOrInsert(uint64_t h, int64_t now_ns) {
  const size_t mask = capacity_ - 1;
  const size_t start = static_cast<size_t>(h) & mask;
  auto waitNotBusy = [](std::atomic<uint64_t>& t) {
    uint64_t v;
    // A reclaim is a handful of stores by a running thread; yield in case it was preempted.
    while ((v = t.load(std::memory_order_acquire)) == kBusy)
      std::this_thread::yield();
    return v;
  };
  // Pass 1: the key, or the first empty slot. Slots never become empty again, so a key that
  // is present always sits before the first empty slot of its probe window.
  for (size_t i = 0; i < kProbe; ++i) {
    size_t s = (start + i) & mask;
    uint64_t t = waitNotBusy(tag(s));
    if (t == h) return s;
    if (t == kEmpty) {
      uint64_t expected = kEmpty;
      if (tag(s).compare_exchange_strong(expected, h, std::memory_order_acq_rel)) return s;
      if (expected == kBusy) expected = waitNotBusy(tag(s));
      if (expected == h) return s;
    }
  }
  // Pass 2: the window is full; reclaim the first idle slot. Concurrent inserters of the same
  // key pick the same slot, and only one wins the tag CAS.
  for (size_t i = 0; i < kProbe; ++i) {
    size_t s = (start + i) & mask;
    uint64_t t = waitNotBusy(tag(s));
    if (t == h) return s;
    if (!slotIdle(s, now_ns)) continue;
    if (!tag(s).compare_exchange_strong(t, kBusy, std::memory_order_acq_rel)) {
      if (t == kBusy) t = waitNotBusy(tag(s));
      if (t == h) return s;
      continue;
    }
    if (!slotIdle(s, now_ns)) {  // charged between the check and the CAS: keep the old key
      tag(s).store(t, std::memory_order_release);
      continue;
    }
    for (size_t l = 0; l < limits_.size(); ++l)
      state(s, l).store(0, std::memory_order_relaxed);
    tag(s).store(h, std::memory_order_release);
    return s;
  }
  return capacity_;  // overflow entry
}

Decision LimiterTable::acquire(uint64_t key_hash, int64_t now_ns, uint32_t* slot_out) {
  const size_t s = findOrInsert(key_hash, now_ns);
  if (slot_out) *slot_out = static_cast<uint32_t>(s);
  Decision d;
  d.overflow = s == capacity_;
  const size_t n = limits_.size();

  // Check every limit first: a request that any limit rejects charges none of them. (With one
  // limit the charging CAS below is the check.)
  bool all = true;
  for (size_t i = 0; n > 1 && i < n; ++i) {
    Check c = checkLimit(limits_[i], state(s, i).load(std::memory_order_acquire), now_ns);
    if (!c.allowed) {
      if (all || c.retry_after_ns > d.retry_after_ns) {
        d.limiting = static_cast<int>(i);
        d.retry_after_ns = c.retry_after_ns;
        d.reset_ns = c.reset_ns;
        d.remaining = 0;
      }
      all = false;
    }
  }
  if (!all) return d;

  // Charge each limit with a CAS. A racing request may make a later limit reject after an
  // earlier one was charged: undo those charges, so rejected requests never consume quota.
  for (size_t i = 0; i < n; ++i) {
    auto& st = state(s, i);
    uint64_t cur = st.load(std::memory_order_acquire);
    Check c;
    for (;;) {
      c = checkLimit(limits_[i], cur, now_ns);
      if (!c.allowed) break;
      if (st.compare_exchange_weak(cur, c.next_state, std::memory_order_acq_rel)) break;
    }
    if (!c.allowed) {
      for (size_t j = 0; j < i; ++j) {
        auto& sj = state(s, j);
        uint64_t v = sj.load(std::memory_order_acquire);
        while (!sj.compare_exchange_weak(v, undoCharge(limits_[j], v, now_ns),
                                         std::memory_order_acq_rel)) {
        }
      }
      d.allowed = false;
      d.limiting = static_cast<int>(i);
      d.remaining = 0;
      d.reset_ns = c.reset_ns;
      d.retry_after_ns = c.retry_after_ns;
      return d;
    }
    // The strictest limit is the one with the least quota left.
    if (d.limiting < 0 || c.remaining < d.remaining) {
      d.limiting = static_cast<int>(i);
      d.remaining = c.remaining;
      d.reset_ns = c.reset_ns;
    }
  }
  d.allowed = true;
  return d;
}

void LimiterTable::release(uint32_t slot) {
  if (slot > capacity_) return;
  for (size_t i = 0; i < limits_.size(); ++i) {
    if (limits_[i].algorithm != Algorithm::kConcurrency) continue;
    auto& st = state(slot, i);
    uint64_t v = st.load(std::memory_order_acquire);
    while (!st.compare_exchange_weak(v, releaseConcurrency(v), std::memory_order_acq_rel)) {
    }
  }
}

void LimiterTable::deposit(uint64_t key_hash, uint64_t tokens, int64_t now_ns, int64_t expiry_ns) {
  if (limits_.size() != 1 || limits_[0].algorithm != Algorithm::kAllowance || tokens == 0) return;
  const size_t slot = findOrInsert(key_hash, now_ns);
  if (slot == capacity_) return;
  auto& st = state(slot, 0);
  const uint64_t expiry_ms = static_cast<uint64_t>(expiry_ns / kMs);
  uint64_t v = st.load(std::memory_order_acquire);
  for (;;) {
    uint64_t have = allowanceValid(v, now_ns) ? (v & kAllowanceTokenMask) : 0;
    uint64_t expiry = have > 0 ? std::max(expiry_ms, v >> 24) : expiry_ms;
    uint64_t next = (expiry << 24) | std::min(kAllowanceTokenMask, have + tokens);
    if (st.compare_exchange_weak(v, next, std::memory_order_acq_rel)) return;
  }
}

size_t LimiterTable::find(uint64_t h) const {
  const size_t mask = capacity_ - 1;
  const size_t start = static_cast<size_t>(h) & mask;
  for (size_t i = 0; i < kProbe; ++i) {
    size_t s = (start + i) & mask;
    uint64_t t = tags_[s].load(std::memory_order_acquire);
    if (t == h) return s;
    if (t == kEmpty) break;
  }
  return capacity_;
}

bool LimiterTable::peek(uint64_t key_hash, std::vector<uint64_t>& states) const {
  states.assign(limits_.size(), 0);
  const size_t s = find(key_hash);
  if (s == capacity_) return false;
  for (size_t i = 0; i < limits_.size(); ++i)
    states[i] = states_[s * limits_.size() + i].load(std::memory_order_acquire);
  return true;
}

void LimiterTable::reset(uint64_t key_hash) {
  const size_t s = find(key_hash);
  if (s == capacity_) return;
  for (size_t i = 0; i < limits_.size(); ++i)
    state(s, i).store(0, std::memory_order_release);
}

size_t LimiterTable::usedSlots() const {
  size_t n = 0;
  for (size_t i = 0; i < capacity_; ++i)
    n += tags_[i].load(std::memory_order_relaxed) > kBusy ? 1 : 0;
  return n;
}

std::shared_ptr<LimiterTable> sharedTable(const std::string& identity, std::string_view what,
                                          const std::vector<LimitSpec>& limits, size_t max_keys) {
  if (identity.empty()) return std::make_shared<LimiterTable>(limits, max_keys);
  // Everything that gives a stored state its meaning. The limit names only label headers.
  std::string fp = identity + '\n' + std::string(what) + '\n' + std::to_string(max_keys);
  for (const auto& l : limits) {
    fp += '\n' + std::to_string(static_cast<int>(l.algorithm)) + ' ' +
          std::to_string(l.rate.count) + ' ' + std::to_string(l.rate.period_ns) + ' ' +
          std::to_string(l.burst);
    if (l.calendar) fp += ' ' + std::string(cal::toString(l.calendar->unit()));
  }
  static std::mutex mu;
  static std::map<std::string, std::weak_ptr<LimiterTable>> tables;
  std::lock_guard lock(mu);
  for (auto it = tables.begin(); it != tables.end();) {
    it = it->second.expired() ? tables.erase(it) : std::next(it);
  }
  auto& kept = tables[fp];
  if (auto t = kept.lock()) return t;
  auto t = std::make_shared<LimiterTable>(limits, max_keys);
  kept = t;
  return t;
}

}  // namespace gatehouse::policies::rate_limit
