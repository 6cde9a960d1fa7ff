#pragma once
// Clock readings as plain integers, for code that keeps timestamps in atomics or compares them
// with numbers from elsewhere (Redis, token claims). Any thread.
#include <chrono>
#include <cstdint>

namespace gatehouse::clock {

// Monotonic time in nanoseconds (an arbitrary epoch: for intervals only).
inline int64_t steadyNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Monotonic time in milliseconds.
inline int64_t steadyMs() {
  return steadyNs() / 1'000'000;
}

// Wall-clock Unix time in nanoseconds.
inline int64_t wallNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace gatehouse::clock
